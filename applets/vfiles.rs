//! list the files of a guest that are not unified with its reference
//!
//! vfiles [--dirs] [--null] REF GUEST
//!
//! For moving a guest: archive only these; see vfiles(8).

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::unify::{scan, vfiles};
use vsbox::{Error, Result};

/// List the entries of GUEST that are not the same inode as the file at the
/// same path in REF (its own files, symlinks and special files), one
/// guest path a line. REF and GUEST are guest names or directories (with a
/// '/').
#[derive(FromArgs)]
struct Args {
    /// list directories too (for an archiver told not to recurse)
    #[argh(switch)]
    dirs: bool,
    /// end each path with a NUL byte instead of a newline, unescaped
    #[argh(switch, short = '0')]
    null: bool,
    /// the reference guest
    #[argh(positional)]
    reference: String,
    /// the guest to list
    #[argh(positional)]
    guest: String,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("vfiles", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let reference = scan::guest_dir(&args.reference)?;
    let guest = scan::guest_dir(&args.guest)?;
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let failed = |e: std::io::Error| Error::io("cannot write the file list", &e);
    let mut line = String::new();
    vfiles::not_unified(&reference, &guest, args.dirs, &mut |rel| {
        if args.null {
            w.write_all(b"/")
                .and_then(|()| w.write_all(rel.as_os_str().as_bytes()))
                .and_then(|()| w.write_all(b"\0"))
                .map_err(failed)
        } else {
            line.clear();
            line.push_str(&scan::shown(rel));
            line.push('\n');
            w.write_all(line.as_bytes()).map_err(failed)
        }
    })?;
    w.flush().map_err(failed)?;
    Ok(0)
}
