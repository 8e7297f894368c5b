//! show the inode flags of files (immutable, iunlink, append, ...), like lsattr
//!
//! showattr [--letters] [--json] FILE...
//!
//! One line per file: the flag names separated by commas (`-` for none), a
//! space, the path. A directory is shown itself, not its contents. A final
//! symbolic link is not followed.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use argh::FromArgs;
use vsbox::attr::{AttrFile, InodeFlags};
use vsbox::cli::{self, Parsed};

/// Show the inode flags of each FILE: `immutable,iunlink,extents PATH`.
#[derive(FromArgs)]
struct Args {
    /// print lsattr-style letters (one column per flag) instead of names
    #[argh(switch)]
    letters: bool,
    /// print a JSON array of {"path", "flags", "value"} objects
    #[argh(switch)]
    json: bool,
    /// the files (options go before them)
    #[argh(positional, greedy)]
    files: Vec<String>,
}

pub fn run(args: &[OsString]) -> vsbox::Result<u8> {
    let (args, files) = match cli::parse_with_command::<Args>("showattr", args, |a| a.files.len())?
    {
        Parsed::Run(r) => r,
        Parsed::Exit(code) => return Ok(code),
    };
    if files.is_empty() {
        return Err(vsbox::Error::usage(
            "showattr needs at least one FILE",
        ));
    }
    let mut out = std::io::stdout().lock();
    let mut status = 0;
    let mut first = true;
    if args.json {
        write(&mut out, b"[")?;
    }
    for file in &files {
        let path = Path::new(file);
        let flags = match AttrFile::open(path).and_then(|f| f.flags()) {
            Ok(flags) => flags,
            Err(e) => {
                let _ = out.flush();
                eprintln!("{}", e.report("showattr"));
                status = 1;
                continue;
            }
        };
        let line = if args.json {
            json_line(path, flags, first)
        } else {
            let mut line = if args.letters {
                flags.letters()
            } else {
                flags.to_string()
            }
            .into_bytes();
            line.push(b' ');
            line.extend_from_slice(file.as_bytes());
            line.push(b'\n');
            line
        };
        first = false;
        write(&mut out, &line)?;
    }
    if args.json {
        write(&mut out, if first { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()
        .map_err(|e| vsbox::Error::io("cannot write the flags", &e))?;
    Ok(status)
}

fn write(out: &mut impl Write, bytes: &[u8]) -> vsbox::Result<()> {
    out.write_all(bytes)
        .map_err(|e| vsbox::Error::io("cannot write the flags", &e))
}

/// One object of the array, streamed as each file is read (the layout of
/// `vsbox::json::list`).
fn json_line(path: &Path, flags: InodeFlags, first: bool) -> Vec<u8> {
    let object = vsbox::json::Object::new()
        .str("path", path.as_os_str().as_bytes())
        .strs("flags", flags.names())
        .num("value", flags.bits());
    format!("{}\n  {}", if first { "" } else { "," }, object.finish()).into_bytes()
}
