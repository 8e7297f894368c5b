//! run a command that may use only some IP addresses (ipv4root on the host)
//!
//! chbind [--silent] --ip DEV|IP[/mask]... [--bcast ADDR] CMD ARGS...
//!
//! The command and every process it starts may bind and send only from
//! the given addresses, as a guest with IPROOT: see chbind(8).

use std::ffi::OsString;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::net::chbind;
use vsbox::{Error, Result};

/// Run CMD so that it and its children may use only the given addresses:
/// bind(0.0.0.0) means the first one, connections to 127.0.0.1 go to it,
/// and other addresses are refused (EPERM).
#[derive(FromArgs)]
struct Args {
    /// do not print the addresses the command is bound to
    #[argh(switch)]
    silent: bool,
    /// an address (IP or IP/mask) or a network device, which stands for its
    /// addresses (repeatable; the first address is the main one)
    #[argh(option)]
    ip: Vec<String>,
    /// an extra broadcast address the command may use
    #[argh(option)]
    bcast: Option<String>,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let (args, command) =
        match cli::parse_with_command::<Args>("chbind", args, |a| a.command.len())? {
            Parsed::Run(r) => r,
            Parsed::Exit(code) => return Ok(code),
        };
    if args.ip.is_empty() {
        return Err(Error::usage("no address given: --ip IP or --ip DEVICE"));
    }
    let bcast = args
        .bcast
        .as_deref()
        .map(|b| {
            b.parse()
                .map_err(|_| Error::usage(format!("--bcast '{}': not an IPv4 address", vsbox::error::shown(b))))
        })
        .transpose()?;
    let ips = chbind::resolve(&args.ip)?;
    if command.is_empty() {
        return Err(Error::usage("no command given"));
    }
    if !args.silent {
        eprintln!("chbind: bound to {ips}");
    }
    chbind::run(&ips, bcast, &command)
}
