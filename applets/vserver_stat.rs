//! show each running guest's processes, memory, CPU time and uptime
//!
//! vserver-stat [--json]
//!
//! One line for the host and one per running guest, in the seed's columns
//! (CTX PROC VSZ RSS userTIME sysTIME UPTIME NAME, then the description);
//! see vserver-stat(8).

use std::ffi::OsString;
use std::io::Write;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::procfs::stat;

/// Show, for the host and each running guest: context number, process
/// count, virtual and resident memory, user and system CPU time, uptime,
/// name and description.
#[derive(FromArgs)]
struct Args {
    /// print a JSON array of {"ctx", "name", "processes", "vsz", "rss",
    /// "user_usec", "sys_usec", "uptime_secs", "description"} objects
    /// (sizes in bytes)
    #[argh(switch)]
    json: bool,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("vserver-stat", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
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
