//! the guest's pid 1: reap orphans, pass signals on, end with the main command
//!
//! vinit --supervise PID
//!
//! chcontext and vserver start run it as pid 1 of a new context, from a
//! sealed in-memory copy of vsbox, after they have started the context's
//! main command (PID). It is not meant to be run by hand.

use std::ffi::OsString;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::context::init;

/// The pid 1 of a vsbox context: reaps every orphan, passes SIGTERM, SIGINT,
/// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH on to the main command, and
/// exits with the main command's status when it ends.
#[derive(FromArgs)]
struct Args {
    /// the main command's pid (a child of this process)
    #[argh(option)]
    supervise: i32,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("vinit", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    init::run_supervisor(args.supervise)
}
