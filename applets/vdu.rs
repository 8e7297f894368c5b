//! disk use of guests counting only their own data, not unified files
//!
//! vdu [-s] [--json] [--shared] PATH...
//!
//! A file counts when all its hard links are inside PATH; see vdu(8).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::unify::vdu;
use vsbox::{Error, Result};

/// Print the disk use (KiB) of each directory below each PATH, counting a
/// file only when all its hard links are inside PATH (unified files are
/// shared with other guests and left out). Stays on one filesystem and
/// follows no symlink.
#[derive(FromArgs)]
struct Args {
    /// print the total of each PATH only
    #[argh(switch, short = 's')]
    summarize: bool,
    /// also print the PATH's share of files linked with others (size /
    /// links, for each link inside), as a second column
    #[argh(switch)]
    shared: bool,
    /// print a JSON array of {"path", "kib", "bytes", "files", "shared_kib",
    /// "shared_bytes", "shared_files"} objects
    #[argh(switch)]
    json: bool,
    /// directories to measure
    #[argh(positional)]
    paths: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("vdu", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    if args.paths.is_empty() {
        return Err(Error::usage("no PATH given"));
    }
    let mut rows = Vec::new();
    for p in &args.paths {
        let usage = vdu::disk_usage(Path::new(p), args.summarize)?;
        if !args.json {
            write_out(&vdu::text(&usage, args.shared))?;
        }
        rows.extend(usage);
    }
    if args.json {
        write_out(&vdu::json(&rows))?;
    }
    Ok(0)
}

fn write_out(text: &str) -> Result<()> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write the disk use", &e))
}
