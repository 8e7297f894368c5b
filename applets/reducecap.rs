//! run a command with fewer capabilities (the guest ceiling with --secure)
//!
//! reducecap [--secure] [--cap CAP]... [--flag F]... [--show] [--] CMD ARGS...
//!
//! Reduces the privileges of the current process and executes CMD in it:
//! no new context, no namespace, the same process id.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::context::flags::ContextFlag;
use vsbox::context::privileges::{Privileges, Snapshot};
use vsbox::{Error, Result};

/// Reduce the capabilities of this process and execute CMD. With --secure,
/// keep only the guest ceiling (see reducecap(8)) and install the guest's
/// seccomp filter; --cap CAP adds a capability back, --cap '!CAP' removes
/// one.
#[derive(FromArgs)]
struct Args {
    /// keep only the guest capability ceiling and deny the guest's
    /// dangerous system calls
    #[argh(switch)]
    secure: bool,
    /// add CAP back to the ceiling, or with a leading ! remove it
    /// (repeatable; CAP_NET_RAW, NET_RAW and net_raw are the same)
    #[argh(option)]
    cap: Vec<String>,
    /// a context flag (repeatable); lock forbids setns, unshare and new
    /// namespaces
    #[argh(option)]
    flag: Vec<String>,
    /// print the resulting capability sets before executing CMD (CMD is
    /// optional with --show)
    #[argh(switch)]
    show: bool,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let (args, command) =
        match cli::parse_with_command::<Args>("reducecap", args, |a| a.command.len())? {
            Parsed::Run(r) => r,
            Parsed::Exit(code) => return Ok(code),
        };
    if command.is_empty() && !args.show {
        return Err(Error::usage("no command given"));
    }
    let privileges = Privileges::from_options(args.secure, &args.cap, &args.flag)?;
    let flags = &privileges.flags;
    for flag in [
        ContextFlag::Sched,
        ContextFlag::Nproc,
        ContextFlag::Private,
        ContextFlag::Fakeinit,
    ] {
        if flags.contains(flag) {
            eprintln!(
                "reducecap: flag {} applies to a whole context (chcontext, vserver); ignored here",
                flag.name()
            );
        }
    }
    for warning in privileges.warnings() {
        eprintln!("reducecap: {warning}");
    }
    privileges.prepare().apply()?;
    if args.show {
        println!("{}", Snapshot::current()?);
    }
    let Some((program, rest)) = command.split_first() else {
        return Ok(0);
    };
    let err = std::process::Command::new(program).args(rest).exec();
    Err(Error::io(
        format!("cannot execute {}", program.to_string_lossy()),
        &err,
    ))
}
