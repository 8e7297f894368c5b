//! vapt / vrpm (U8): the package manager run for guests, inside each
//! guest's context (joined when it runs, a one-shot context otherwise, so
//! maintainer scripts act on the guest, never on the host), then, with
//! `--unify REF`, the packages that changed shared again with REF by the
//! vunify applet (which never touches /etc, /var/log or conffiles).
//!
//! REF is updated first (its new package versions are what the guests'
//! new versions are compared with), then every other guest in turn, each
//! unified as soon as its own run is done. A package "changed" when it is
//! new or its version or architecture differs from before the run.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use super::guestfs::GuestFs;
use super::pkgdb;
use crate::cli::{self, Parsed};
use crate::conf::ConfigRoot;
use crate::context::spawn::Entry;
use crate::vserver::all;
use crate::vserver::guest::{Guest, Options};
use crate::{Error, Result};

/// Which package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Rpm,
}

impl Manager {
    pub fn applet(self) -> &'static str {
        match self {
            Manager::Apt => "vapt",
            Manager::Rpm => "vrpm",
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            Manager::Apt => "apt-get",
            Manager::Rpm => "rpm",
        }
    }
}

/// Run the package manager (vapt: apt-get, vrpm: rpm) with ARGS in each
/// GUEST (ALL: every configured guest), inside its context; with --unify
/// REF, REF first, then share the packages that changed in each guest with
/// REF (vunify; never /etc, /var/log or conffiles).
#[derive(argh::FromArgs)]
struct Args {
    /// the reference guest (a name or a directory): updated first, then the
    /// changed packages of every other guest are unified with it
    #[argh(option)]
    unify: Option<String>,
    /// guest names, or ALL
    #[argh(positional)]
    guests: Vec<String>,
}

/// The applets: `[--unify REF] GUEST...|ALL -- ARGS` (the `--` is required:
/// everything after it goes to the package manager byte for byte).
pub fn main(manager: Manager, args: &[OsString]) -> Result<u8> {
    let (own, rest) = match args.iter().position(|a| a == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[][..]),
    };
    let parsed = match cli::parse::<Args>(manager.applet(), own)? {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return Ok(code),
    };
    if own.len() == args.len() {
        return Err(Error::usage(format!(
            "no '--' before the {} arguments: {} GUEST...|ALL -- ARGS",
            manager.program(),
            manager.applet()
        )));
    }
    if parsed.guests.is_empty() {
        return Err(Error::usage("no guest given (a name, or ALL)"));
    }
    run(manager, &parsed.guests, parsed.unify.as_deref(), rest)
}

/// The installed (name, arch, version) of a guest tree.
pub fn installed(root: &Path) -> Result<BTreeSet<(String, String, String)>> {
    let fs = GuestFs::open(root)?;
    let (_, pkgs) = pkgdb::read_packages(&fs)?;
    Ok(pkgs
        .into_iter()
        .map(|p| (p.name, p.arch, p.version))
        .collect())
}

/// Names of the packages that are in `after` and not in `before` (new, or
/// another version or architecture), sorted, once each.
pub fn changed(
    before: &BTreeSet<(String, String, String)>,
    after: &BTreeSet<(String, String, String)>,
) -> Vec<String> {
    let names: BTreeSet<&String> = after.difference(before).map(|(n, _, _)| n).collect();
    names.into_iter().cloned().collect()
}

/// The guests to run for, in order: REF first when unifying (if it is a
/// configured guest), then the named guests (`ALL`: every configured guest,
/// by priority), each once.
pub fn targets(root: &ConfigRoot, names: &[String], reference: Option<&str>) -> Result<Vec<Guest>> {
    let opts = Options {
        silent: true,
        ..Options::default()
    };
    let mut wanted: Vec<String> = Vec::new();
    if let Some(r) = reference.filter(|r| !r.contains('/')) {
        wanted.push(r.to_string());
    }
    for n in names {
        if n == "ALL" {
            let (guests, errors) = all::guests(root, opts)?;
            if let Some(e) = errors.into_iter().next() {
                return Err(e);
            }
            wanted.extend(guests.into_iter().map(|g| g.config.name));
        } else if n.contains('/') {
            return Err(Error::usage(format!(
                "{n}: a directory has no context to run the package manager in \
                 (its scripts would run as the host's root): configure it as a guest"
            )));
        } else {
            wanted.push(n.clone());
        }
    }
    let mut seen = BTreeSet::new();
    wanted.retain(|n| seen.insert(n.clone()));
    wanted
        .iter()
        .map(|n| Guest::load(root, n, None, opts))
        .collect()
}

/// Runs `PROGRAM ARGS` in every target, unifying with `reference` after
/// each run when given. Goes on past a failing guest; the status is the
/// last non-zero one (or 1 for an error).
pub fn run(
    manager: Manager,
    names: &[String],
    reference: Option<&str>,
    args: &[OsString],
) -> Result<u8> {
    let root = ConfigRoot::select(None);
    let guests = targets(&root, names, reference)?;
    if guests.is_empty() {
        return Err(Error::usage("no guest given (a name, or ALL)"));
    }
    let ref_root = match reference {
        Some(r) if r.contains('/') => Some(std::path::PathBuf::from(r)),
        Some(r) => Some(crate::conf::load(&root, r, None)?.vserver_dir),
        None => None,
    };
    let mut command = vec![OsString::from(manager.program())];
    command.extend(args.iter().cloned());
    let mut status = 0;
    for g in &guests {
        let name = g.name();
        let dir = &g.config.vserver_dir;
        let before = match &ref_root {
            Some(_) => Some(installed(dir)?),
            None => None,
        };
        eprintln!("{}: {name}: {}", manager.applet(), command_line(&command));
        match g.run(&Entry::command(&command)) {
            Ok(0) => {}
            Ok(code) => {
                eprintln!(
                    "{}: {name}: {} exited with status {code}",
                    manager.applet(),
                    manager.program()
                );
                status = code;
            }
            Err(e) => {
                eprintln!("{}: {name}: {e}", manager.applet());
                status = 1;
            }
        }
        let (Some(r), Some(before)) = (&ref_root, before) else {
            continue;
        };
        if same_dir(r, dir) {
            continue;
        }
        let pkgs = changed(&before, &installed(dir)?);
        if pkgs.is_empty() {
            continue;
        }
        eprintln!(
            "{}: {name}: unifying {} changed package(s) with {}",
            manager.applet(),
            pkgs.len(),
            r.display()
        );
        if let Err(e) = vunify(r, dir, &pkgs) {
            eprintln!("{}: {name}: {e}", manager.applet());
            status = 1;
        }
    }
    Ok(status)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `vsbox vunify REF GUEST -- PKG...`, by this very binary.
fn vunify(reference: &Path, guest: &Path, pkgs: &[String]) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find vsbox itself", &e))?;
    let status = Command::new(&exe)
        .arg("vunify")
        .arg(reference)
        .arg(guest)
        .arg("--")
        .args(pkgs)
        .status()
        .map_err(|e| Error::io(format!("cannot run {} vunify", exe.display()), &e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::failure(format!(
            "vunify of {} with {} failed ({status})",
            guest.display(),
            reference.display()
        )))
    }
}

fn command_line(cmd: &[OsString]) -> String {
    cmd.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[(&str, &str)]) -> BTreeSet<(String, String, String)> {
        v.iter()
            .map(|(n, ver)| (n.to_string(), "amd64".to_string(), ver.to_string()))
            .collect()
    }

    #[test]
    fn changed_packages_are_new_or_other_versions() {
        let before = set(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let after = set(&[("a", "1"), ("b", "2"), ("d", "1")]);
        assert_eq!(changed(&before, &after), ["b", "d"]);
        assert!(changed(&after, &after).is_empty());
    }
}
