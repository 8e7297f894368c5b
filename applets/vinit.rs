//! the guest's pid 1: reap orphans, pass signals on, end with the main command
//!
//! vinit --supervise PID [--ready-fd FD]
//! vinit --rc [--runlevel N] [--ready-fd FD]
//! vinit --monitor PID --context N -- COMMAND...
//!
//! chcontext and vserver start run it as pid 1 of a new context, from a
//! sealed in-memory copy of vsbox: --supervise after they have started the
//! context's main command (PID); --rc for a guest without an init of its
//! own, to run the guest's runlevel scripts. vserver start runs --monitor on
//! the host: it waits for the guest's pid 1 and restarts or stops the guest
//! after a reboot or halt inside it. Not meant to be run by hand.

use std::ffi::OsString;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::context::init;

/// The pid 1 of a vsbox context. With --supervise: reaps every orphan,
/// passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH on
/// to the main command, and exits with its status when it ends. With --rc:
/// clears /var/run, writes /var/run/utmp, runs the guest's rc script for its
/// runlevel (without one, its /etc/rcN.d links), reaps orphans; on SIGTERM
/// from the host (or SIGINT, SIGHUP, SIGPWR) runs runlevel 6 and exits 0,
/// on SIGTERM from inside the guest (reboot) runs runlevel 6 and exits 129,
/// on SIGUSR1 or SIGUSR2 (halt, poweroff) runs runlevel 0 and exits 130;
/// before it exits, SIGTERM to every process left, 5 seconds, SIGKILL. With --monitor (on the host):
/// waits for the guest's pid 1 and runs COMMAND restart after a reboot in
/// the guest, COMMAND stop after a halt.
#[derive(FromArgs)]
struct Args {
    /// the main command's pid (a child of this process)
    #[argh(option)]
    supervise: Option<i32>,
    /// run the guest's runlevel scripts
    #[argh(switch)]
    rc: bool,
    /// the runlevel for --rc (default: initdefault of /etc/inittab, else 3)
    #[argh(option)]
    runlevel: Option<char>,
    /// a descriptor to close once ready: with --rc, once the start scripts
    /// are done, after writing a byte on it (the starter waits for that; a
    /// close alone means vinit died); with --supervise, once vinit
    /// is not dumpable (the main command waits for that)
    #[argh(option)]
    ready_fd: Option<i32>,
    /// monitor the context's pid 1 PID (a child of this process)
    #[argh(option)]
    monitor: Option<i32>,
    /// with --monitor: the context's number
    #[argh(option)]
    context: Option<u32>,
    /// with --monitor: the master of the guest's console, to keep
    #[argh(option)]
    console_fd: Option<i32>,
    /// with --monitor: the command run with restart or stop added
    #[argh(positional, greedy)]
    command: Vec<String>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    // Before anything else: exec has just made this process dumpable.
    init::make_undumpable()?;
    let (args, command) = match cli::parse_with_command::<Args>("vinit", args, |a| a.command.len())? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    if let (Some(pid), Some(number)) = (args.monitor, args.context) {
        vsbox::context::spawn::monitor(pid, number, &command, args.console_fd)
    }
    match (args.supervise, args.rc) {
        (Some(main), false) => init::run_supervisor(main, args.ready_fd),
        (None, true) => {
            let level = match args.runlevel {
                None => None,
                Some(c @ ('0'..='9' | 'S' | 's')) => Some(c as u8),
                Some(c) => return Err(vsbox::Error::usage(format!("'{}' is not a runlevel", c))),
            };
            init::run_runlevels(level, args.ready_fd)
        }
        _ => Err(vsbox::Error::usage(
            "give one of --supervise PID, --rc or --monitor PID --context N",
        )),
    }
}
