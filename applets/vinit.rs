//! the guest's pid 1: reap orphans, pass signals on, end with the main command
//!
//! vinit --supervise PID
//! vinit --rc [--runlevel N] [--ready-fd FD]
//!
//! chcontext and vserver start run it as pid 1 of a new context, from a
//! sealed in-memory copy of vsbox: --supervise after they have started the
//! context's main command (PID); --rc for a guest without an init of its
//! own, to run the guest's runlevel scripts. Not meant to be run by hand.

use std::ffi::OsString;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::context::init;

/// The pid 1 of a vsbox context. With --supervise: reaps every orphan,
/// passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH on
/// to the main command, and exits with its status when it ends. With --rc:
/// clears /var/run, writes /var/run/utmp, runs the guest's rc script for its
/// runlevel, reaps orphans, and on SIGTERM runs runlevel 6 and exits.
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
    /// with --rc: a descriptor to close once the start scripts are done (the
    /// starter waits for that)
    #[argh(option)]
    ready_fd: Option<i32>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("vinit", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    match (args.supervise, args.rc) {
        (Some(main), false) => init::run_supervisor(main),
        (None, true) => {
            let level = match args.runlevel {
                None => None,
                Some(c @ ('0'..='9' | 'S' | 's')) => Some(c as u8),
                Some(c) => return Err(vsbox::Error::usage(format!("'{c}' is not a runlevel"))),
            };
            init::run_runlevels(level, args.ready_fd)
        }
        _ => Err(vsbox::Error::usage(
            "give one of --supervise PID or --rc (see vinit --help)",
        )),
    }
}
