//! show the process tree with the guest of each subtree, like pstree
//!
//! vpstree [-a] [NAME]
//!
//! Each subtree that runs in a guest other than its parent's is marked
//! `[NAME ctx N]`; see vpstree(8).

use std::ffi::OsString;
use std::io::Write;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::procfs::ps;

/// Show the process tree of the host and every guest, or of guest NAME
/// only, each guest's subtree marked with its name and context number.
#[derive(FromArgs)]
struct Args {
    /// show command lines instead of process names
    #[argh(switch, short = 'a')]
    arguments: bool,
    /// only this guest's processes (a name, or the guest's directory)
    #[argh(positional)]
    name: Option<String>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let args = match cli::parse::<Args>("vpstree", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let text = ps::vpstree(args.name.as_deref(), args.arguments)?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| vsbox::Error::io("cannot write the process tree", &e))?;
    Ok(0)
}
