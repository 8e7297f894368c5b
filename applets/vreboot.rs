//! ask the host's reboot manager to restart this guest (run inside a guest)
//!
//! vreboot
//!
//! Sends "reboot" over /dev/reboot to rebootmgr on the host, which runs
//! `vserver NAME restart` for this guest; see vreboot(8).

use std::ffi::OsString;
use std::path::Path;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::vserver::rebootmgr::{self, Request};

/// Ask the host's reboot manager (rebootmgr) to restart this guest.
#[derive(FromArgs)]
struct Args {}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    match cli::parse::<Args>("vreboot", args)? {
        Parsed::Run(Args {}) => {}
        Parsed::Exit(code) => return Ok(code),
    }
    rebootmgr::ask(Path::new(rebootmgr::SOCKET), Request::Reboot)?;
    Ok(0)
}
