//! query the package database of a guest (dpkg or rpm) from the host
//!
//! distrib-info GUEST kind|list|pkgversion PKG...|files PKG|conffiles PKG|md5sums PKG
//!
//! GUEST is a configured guest or a directory (an argument with a '/');
//! the database is read as untrusted input: see distrib-info(8).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;

use argh::FromArgs;
use vsbox::cli::{self, Parsed};
use vsbox::unify::guestfs::GuestFs;
use vsbox::unify::pkgdb::{self, Package};
use vsbox::{Error, Result};

/// Query the package database of GUEST: kind (dpkg or rpm), list (NAME
/// VERSION ARCH lines), pkgversion PKG..., files PKG, conffiles PKG,
/// md5sums PKG (DIGEST  PATH lines).
#[derive(FromArgs)]
struct Args {
    /// a configured guest, or a directory (a path with a '/')
    #[argh(positional)]
    guest: String,
    /// kind, list, pkgversion, files, conffiles or md5sums
    #[argh(positional)]
    command: String,
    /// package names (NAME or NAME:ARCH)
    #[argh(positional)]
    packages: Vec<String>,
}

pub fn run(args: &[OsString]) -> Result<u8> {
    let args = match cli::parse::<Args>("distrib-info", args)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    let cmd = args.command.as_str();
    let want = match cmd {
        "kind" | "list" => 0,
        "pkgversion" => usize::MAX,
        "files" | "conffiles" | "md5sums" => 1,
        _ => {
            return Err(Error::usage(format!("unknown command '{}'", vsbox::error::shown(cmd)
            )));
        }
    };
    let n = args.packages.len();
    if (want == usize::MAX && n == 0) || (want != usize::MAX && n != want) {
        return Err(Error::usage(match want {
            0 => format!("{cmd} takes no package"),
            1 => format!("{cmd} takes one package"),
            _ => format!("{cmd} needs at least one package"),
        }));
    }
    let fs = GuestFs::open_guest(&args.guest)?;
    let mut out = String::new();
    match cmd {
        "kind" => {
            let kind = pkgdb::detect(&fs).ok_or_else(|| {
                Error::failure(format!("{}: no package database", fs.path().display()))
            })?;
            out = format!("{kind}\n");
        }
        "list" => {
            for p in pkgdb::installed(&fs)?.1 {
                let _ = writeln!(out, "{} {} {}", p.name, p.version, p.arch);
            }
        }
        _ => {
            for name in &args.packages {
                let pkgs = pkgdb::package(&fs, name)?;
                if pkgs.is_empty() {
                    return Err(Error::failure(format!(
                        "package {name} is not installed in {}",
                        fs.path().display()
                    )));
                }
                pkgs.iter().for_each(|p| print_package(&mut out, cmd, p));
            }
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Error::io("cannot write to standard output", &e))?;
    Ok(0)
}

fn print_package(out: &mut String, cmd: &str, p: &Package) {
    match cmd {
        "pkgversion" => {
            let _ = writeln!(out, "{}", p.version);
        }
        "files" => p.files.iter().for_each(|f| {
            let _ = writeln!(out, "{f}");
        }),
        "conffiles" => p.conffiles.iter().for_each(|f| {
            let _ = writeln!(out, "{f}");
        }),
        _ => p.digests.iter().for_each(|(f, d)| {
            let _ = writeln!(out, "{}  {f}", d.to_hex());
        }),
    }
}
