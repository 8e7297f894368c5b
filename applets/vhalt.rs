//! ask the host's reboot manager to stop this guest (run inside a guest)
//!
//! vhalt
//!
//! Sends "halt" over /dev/reboot to rebootmgr on the host, which runs
//! `vserver NAME stop` for this guest; see vhalt(8).

use std::ffi::OsString;
use std::path::Path;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::vserver::rebootmgr::{self, Request};

/// Ask the host's reboot manager (rebootmgr) to stop this guest.
#[derive(FromArgs)]
struct Args {}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    match cli::parse::<Args>("vhalt", args)? {
        Parsed::Run(Args {}) => {}
        Parsed::Exit(code) => return Ok(code),
    }
    rebootmgr::ask(Path::new(rebootmgr::SOCKET), Request::Halt)?;
    Ok(0)
}
