//! start the ONBOOT guests by PRIORITY, stop all running guests
//!
//! vservers [--silent] [--config-root DIR] start|stop|restart|status

use std::ffi::OsString;
use std::path::PathBuf;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::conf::ConfigRoot;
use vsbox::vserver::all;
use vsbox::vserver::guest::Options;
use vsbox::{Error, Result};

/// The vservers service: start starts every guest with ONBOOT=yes, lower
/// PRIORITY first; stop stops every running guest, in the reverse order;
/// status lists the guests and whether they run.
#[derive(FromArgs)]
struct Args {
    /// print nothing but errors
    #[argh(switch)]
    silent: bool,
    /// where vservers.conf and vservers/ are (default: $VSBOX_CONFIG_ROOT,
    /// else /etc)
    #[argh(option)]
    config_root: Option<PathBuf>,
    /// start, stop, restart or status
    #[argh(positional)]
    action: String,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("vservers", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let root = ConfigRoot::select(args.config_root);
    let options = Options {
        silent: args.silent,
        ..Options::default()
    };
    let errors = match args.action.as_str() {
        "start" => all::start(&root, options)?,
        "stop" => all::stop(&root, options)?,
        "restart" => {
            let mut e = all::stop(&root, options)?;
            e.extend(all::start(&root, options)?);
            e
        }
        "status" => {
            let (guests, errors) = all::guests(&root, options)?;
            for g in &guests {
                let state = if g.context()?.is_some() {
                    "running"
                } else {
                    "stopped"
                };
                let onboot = if g.config.onboot { "onboot" } else { "-" };
                println!(
                    "{:<20} {state:<8} {onboot:<7} {}",
                    g.name(),
                    g.config.priority
                );
            }
            errors
        }
        other => {
            return Err(Error::usage(format!("unknown action '{}': start, stop, restart or status", vsbox::error::shown(other)
            )));
        }
    };
    for e in &errors {
        eprintln!("{}", e.report("vservers"));
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}
