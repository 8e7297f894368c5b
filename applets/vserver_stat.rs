//! show each running guest's processes, memory, CPU time and uptime
//!
//! vserver-stat [--all] [--json]
//!
//! One line for the host and one per running guest, in the seed's columns
//! (CTX PROC VSZ RSS userTIME sysTIME UPTIME NAME, then the description);
//! with --all, one line per configured guest, running or stopped (NAME
//! STATE CONTEXT ADDRESSES INIT UPTIME MEMORY), as `vserver list`; see
//! vserver-stat(8).

use std::ffi::OsString;
use std::io::Write;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::procfs::stat;

/// Show, for the host and each running guest: context number, process
/// count, virtual and resident memory, user and system CPU time, uptime,
/// name and description. With --all: every configured guest, running or
/// stopped, with its state, context, addresses, init, uptime and memory.
#[derive(FromArgs)]
struct Args {
    /// list every configured guest, running or stopped (as `vserver list`)
    #[argh(switch, short = 'a')]
    all: bool,
    /// where vservers.conf and vservers/ are, for --all (default:
    /// $VSBOX_CONFIG_ROOT, else /etc)
    #[argh(option)]
    config_root: Option<std::path::PathBuf>,
    /// print a JSON array of {"ctx", "name", "processes", "vsz", "rss",
    /// "user_usec", "sys_usec", "uptime_secs", "description"} objects
    /// (sizes in bytes); with --all, of {"name", "running", "context",
    /// "processes", "uptime_secs", "memory_bytes", "state", "addresses",
    /// "init", "error"} objects
    #[argh(switch)]
    json: bool,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("vserver-stat", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    if args.all {
        let root = vsbox::conf::ConfigRoot::select(args.config_root);
        return vsbox::vserver::list::print(&root, args.json).map(|()| 0);
    }
    if args.config_root.is_some() {
        return Err(vsbox::Error::usage("--config-root goes with --all"));
    }
    let lines = stat::collect()?;
    let text = if args.json {
        stat::json(&lines)
    } else {
        stat::table(&lines)
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| vsbox::Error::io("cannot write the guest list", &e))?;
    Ok(0)
}
