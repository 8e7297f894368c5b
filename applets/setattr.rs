//! set or clear inode flags (immutable, iunlink, append, ...) on files
//!
//! setattr [-v] [--FLAG | --!FLAG | --~FLAG | --no-FLAG]... [--] FILE...
//!
//! `--FLAG` sets a flag, `--!FLAG` (or `--~FLAG`, `--no-FLAG`, which need no
//! quoting in an interactive shell) clears it; other flags stay. Every FILE
//! is tried; the exit status is 1 if any failed.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use vsbox::attr::{AttrFile, FLAGS, FlagChange};
use vsbox::{Error, Result};

const USAGE: &str = "\
usage: setattr [-v] [--FLAG | --!FLAG]... [--] FILE...

Sets (--FLAG) or clears (--!FLAG, --~FLAG, --no-FLAG) inode flags on each
FILE; flags not named stay as they are. A final symbolic link is not followed.

  -v, --verbose   print the resulting flags of each FILE, as showattr does
  -h, --help      show this help

Flags:";

pub fn run(args: &[OsString]) -> Result<u8> {
    let mut change = FlagChange::default();
    let mut verbose = false;
    let mut files = Vec::new();
    let mut options_done = false;
    for arg in args {
        if options_done {
            files.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            files.push(arg);
            continue;
        };
        match text {
            "--" => options_done = true,
            "-h" | "--help" => {
                println!("{}", help());
                return Ok(0);
            }
            "-v" | "--verbose" => verbose = true,
            _ => match change.parse_option(text) {
                Some(parsed) => parsed?,
                None if text.starts_with('-') && text.len() > 1 => {
                    return Err(Error::usage(format!("unknown option '{}'", vsbox::error::shown(text)
                    )));
                }
                None => files.push(arg),
            },
        }
    }
    if change.is_empty() {
        return Err(Error::usage(
            "no flag to set or clear",
        ));
    }
    if files.is_empty() {
        return Err(Error::usage("no FILE"));
    }
    let mut status = 0;
    for file in files {
        let path = Path::new(file);
        match AttrFile::open(path).and_then(|f| f.change(&change)) {
            Ok(changed) if verbose => println!("{} {}", changed.new, path.display()),
            Ok(_) => {}
            Err(e) => {
                eprintln!("{}", e.report("setattr"));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn help() -> String {
    let mut text = String::from(USAGE);
    let width = FLAGS.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for flag in FLAGS.iter().filter(|f| f.settable) {
        let _ = write!(text, "\n  --{:width$}  {}", flag.name, flag.about);
    }
    text.push_str("\n\nshowattr(8) also shows the flags only the filesystem sets.");
    text
}
