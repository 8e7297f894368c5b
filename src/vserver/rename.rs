//! `vserver NAME rename NEW`: the configuration, the companion script and
//! the tree (when it is the default VSERVERS_ROOT/NAME) take the new name.
//!
//! Each move is one rename(2) that refuses to replace anything
//! (RENAME_NOREPLACE), so NEW's files are never overwritten even if they
//! appear meanwhile; a move that fails undoes the ones before it. A tree
//! that the configuration places explicitly (VSERVERDIR) stays where it is
//! and the configuration is left as it was: it still names that tree.

use std::path::{Path, PathBuf};

use rustix::fs::{CWD, RenameFlags};

use super::guest::Guest;
use crate::conf::guest::check_name;
use crate::context::runstate::RunDir;
use crate::error::Context;
use crate::{Error, Result};

/// Renames `guest` to `new` (see the module comment).
pub fn rename(guest: &Guest, new: &str) -> Result<()> {
    let name = guest.name();
    check_name(new).map_err(Error::usage)?;
    if guest.context()?.is_some() {
        return Err(Error::failure(format!(
            "{name} is running: stop it before renaming it"
        )));
    }
    let run = RunDir::from_env();
    if run.find(new)?.is_some() {
        return Err(Error::failure(format!("a guest named {new} is running")));
    }
    let dir = guest.root.guests_dir();
    let mut moves = vec![(guest.root.guest_file(name), guest.root.guest_file(new))];
    let script = dir.join(format!("{name}.sh"));
    if present(&script)? {
        moves.push((script, dir.join(format!("{new}.sh"))));
    }
    let c = &guest.config;
    let default_tree = c.vservers_root.join(name);
    if c.vars.get("VSERVERDIR").is_none()
        && c.vserver_dir == default_tree
        && present(&default_tree)?
    {
        moves.push((default_tree, c.vservers_root.join(new)));
    }
    for to in [
        guest.root.guest_file(new),
        dir.join(format!("{new}.sh")),
        c.vservers_root.join(new),
    ] {
        if present(&to)? {
            return Err(Error::failure(format!(
                "{} exists: {new} is taken",
                to.display()
            )));
        }
    }
    let mut done: Vec<&(PathBuf, PathBuf)> = Vec::new();
    for m in &moves {
        if let Err(e) = move_noreplace(&m.0, &m.1) {
            for back in done.iter().rev() {
                let _ = move_noreplace(&back.1, &back.0);
            }
            return Err(e);
        }
        done.push(m);
    }
    // A stale record of the last run (the guest does not run).
    let _ = std::fs::remove_file(run.guest_file(name));
    Ok(())
}

fn move_noreplace(from: &Path, to: &Path) -> Result<()> {
    rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE)
        .context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

/// Whether a name exists (a dangling symbolic link counts).
fn present(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).context(|| format!("cannot stat {}", path.display())),
    }
}
