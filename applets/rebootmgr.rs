//! let guests restart or stop themselves through a socket at /dev/reboot
//!
//! rebootmgr [--pidfile F] [--log FILE] [NAME...]
//!
//! Puts a unix socket at dev/reboot in each guest's tree (every configured
//! guest without NAME) and runs `vserver NAME restart` or `vserver NAME
//! stop` when the guest asks (vreboot, vhalt); see rebootmgr(8).

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::ConfigRoot;
use vsbox::vserver::rebootmgr::{self, Config};

/// Serve the reboot and halt requests of guests: a socket at /dev/reboot in
/// each guest, `vserver NAME restart|stop` run for the guest that asks.
/// SIGHUP remakes the sockets from the guest list; SIGTERM ends it.
#[derive(FromArgs)]
struct Args {
    /// the pid file, locked while rebootmgr runs (default
    /// /run/rebootmgr.pid)
    #[argh(option)]
    pidfile: Option<PathBuf>,
    /// the log of requests and of the vserver commands' output (default
    /// /var/log/boot.log)
    #[argh(option)]
    log: Option<PathBuf>,
    /// the guests to serve (default: every configured guest)
    #[argh(positional)]
    names: Vec<String>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("rebootmgr", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    for name in &args.names {
        vsbox::conf::guest::check_name(name)
            .map_err(|e| vsbox::Error::usage(format!("{name}: {e}")))?;
    }
    rebootmgr::run(Config {
        root: ConfigRoot::select(None),
        pidfile: args
            .pidfile
            .unwrap_or_else(|| rebootmgr::DEFAULT_PIDFILE.into()),
        log: args.log.unwrap_or_else(|| rebootmgr::DEFAULT_LOG.into()),
        names: args.names,
    })
}
