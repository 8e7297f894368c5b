//! run a host service bound to its addresses from /etc/vservices (v_SVC)
//!
//! vservice SVC CMD ARGS...      (or, called as v_SVC: v_SVC CMD ARGS...)
//!
//! The service may use only the addresses in /etc/vservices/SVC.conf
//! (IP="..."), so that it leaves the guests' addresses to them: see
//! vservice(8).

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::ConfigRoot;
use vsbox::net::chbind;
use vsbox::{Error, Result};

/// Run CMD, a host service, bound to the addresses of SVC: IP="..." in
/// /etc/vservices/SVC.conf (addresses or device names), by default
/// 127.0.0.1 and the main address of the default route's device.
#[derive(FromArgs)]
struct Args {
    /// print the addresses of SVC and exit
    #[argh(switch)]
    show: bool,
    /// the configuration root instead of /etc (also $VSBOX_CONFIG_ROOT)
    #[argh(option)]
    config_root: Option<PathBuf>,
    /// the service name, then the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let (args, rest) = match cli::parse_with_command::<Args>("vservice", args, |a| a.command.len())?
    {
        Parsed::Run(r) => r,
        Parsed::Exit(code) => return Ok(code),
    };
    let Some((service, command)) = rest.split_first() else {
        return Err(Error::usage("no service given"));
    };
    let service = service
        .to_str()
        .ok_or_else(|| Error::usage("the service name is not UTF-8"))?;
    let root = ConfigRoot::select(args.config_root);
    let ips = chbind::service_addresses(&root, service)?;
    if args.show {
        println!("{ips}");
        return Ok(0);
    }
    if command.is_empty() {
        return Err(Error::usage("no command given"));
    }
    chbind::run(&ips, None, command)
}
