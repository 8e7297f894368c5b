//! verify guests' package files against a trusted reference's database
//!
//! vcheck --verify REF GUEST...  |  vcheck --diffpkgs REF GUEST
//!
//! Exit status 0: nothing found, 1: findings, 2: usage or errors; see
//! vcheck(8).

use std::ffi::OsString;
use std::io::{BufWriter, Write};

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::unify::{scan, vcheck};
use vsbox::{Error, Result};

/// Check guests from the host with the package database of a trusted
/// reference guest: --verify lists changed, missing and unexpected package
/// files and unverifiable packages; --diffpkgs lists packages that differ.
/// Exit status: 0 nothing found, 1 something found, 2 usage or errors.
#[derive(FromArgs)]
struct Args {
    /// verify the package files of each GUEST
    #[argh(switch)]
    verify: bool,
    /// compare the package lists of REF and GUEST
    #[argh(switch)]
    diffpkgs: bool,
    /// the trusted reference guest (a name, or a directory with a '/')
    #[argh(positional)]
    reference: String,
    /// the guests to check
    #[argh(positional)]
    guests: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("vcheck", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    if args.verify == args.diffpkgs {
        return Err(Error::usage("give one of --verify and --diffpkgs"));
    }
    if args.guests.is_empty() || (args.diffpkgs && args.guests.len() != 1) {
        return Err(Error::usage(if args.diffpkgs {
            "--diffpkgs takes REF and one GUEST"
        } else {
            "no GUEST given"
        }));
    }
    match check(&args) {
        Ok(0) => Ok(0),
        Ok(_) => Ok(1),
        Err(e) => {
            eprintln!("{}", e.report("vcheck"));
            Ok(2)
        }
    }
}

fn check(args: &Args) -> Result<u64> {
    let reference = scan::guest_dir(&args.reference)?;
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let failed = |e: std::io::Error| Error::io("cannot write the findings", &e);
    let mut found = 0;
    if args.diffpkgs {
        let guest = scan::guest_dir(&args.guests[0])?;
        for f in vcheck::diff_packages(&reference, &guest)? {
            writeln!(w, "{f}").map_err(failed)?;
            found += 1;
        }
    } else {
        let refdb = vcheck::load_reference(&reference)?;
        let prefix = args.guests.len() > 1;
        for name in &args.guests {
            let guest = scan::guest_dir(name)?;
            found += vcheck::verify(&refdb, &guest, &mut |f| {
                if prefix {
                    write!(w, "{name}: ").map_err(failed)?;
                }
                writeln!(w, "{f}").map_err(failed)
            })?;
        }
    }
    w.flush().map_err(failed)?;
    Ok(found)
}
