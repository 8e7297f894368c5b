//! `vserver NAME delete [--force]`: the guest's tree, configuration,
//! companion script and run state go, as lxc-destroy and machinectl
//! remove do.
//!
//! Order, so that a failure leaves a guest that can neither start nor be
//! half-used, and a second `delete` finishes the job: stop (refused for a
//! running guest without --force), rename the tree to a hidden name next
//! to it (one rename(2): from then on the guest has no tree and cannot
//! start), remove the hidden tree (see tree_remove), and only then remove
//! NAME.conf and NAME.sh. A delete that failed half-way is resumed by the
//! next one: it finds the hidden tree by its name.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags, RenameFlags};

use super::all::guest_names;
use super::guest::{Guest, Options};
use super::tree_remove::remove_tree;
use crate::error::Context;
use crate::{Error, Result};

/// Deletes `guest` (see the module comment). `force` stops a running
/// guest first; without it a running guest is refused, untouched.
pub fn delete(guest: &Guest, force: bool) -> Result<()> {
    let name = guest.name();
    if guest.context()?.is_some() && !force {
        return Err(Error::failure(format!(
            "{name} is running: stop it first, or delete --force stops it"
        )));
    }
    let tree = &guest.config.vserver_dir;
    refuse_shared_tree(guest, tree)?;
    // Also what stop leaves when the guest is not running: a cgroup, run
    // files and IP aliases of a guest that died.
    guest.stop()?;
    if guest.context()?.is_some() {
        return Err(Error::failure(format!("{name} still runs after stop")));
    }
    remove_guest_tree(tree, || match guest.context() {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(Error::failure(format!(
            "{name} was started meanwhile: nothing deleted"
        ))),
        Err(e) => Err(e),
    })?;
    for file in [
        guest.root.guest_file(name),
        guest.root.guests_dir().join(format!("{name}.sh")),
    ] {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.context(|| format!("cannot remove {}", file.display()))?,
        }
    }
    Ok(())
}

/// Two guests must never share a root; deleting one's tree would delete
/// the other's. Refused when another configured guest's tree is this one,
/// inside it or around it.
fn refuse_shared_tree(guest: &Guest, tree: &Path) -> Result<()> {
    let options = Options {
        silent: true,
        ..Options::default()
    };
    for other in guest_names(&guest.root)? {
        if other == guest.name() {
            continue;
        }
        let Ok(o) = Guest::load(&guest.root, &other, None, options) else {
            continue;
        };
        let theirs = &o.config.vserver_dir;
        if theirs.starts_with(tree) || tree.starts_with(theirs) {
            return Err(Error::failure(format!(
                "{}'s tree {} is {other}'s tree {} or contains it: nothing deleted",
                guest.name(),
                tree.display(),
                theirs.display()
            )));
        }
    }
    Ok(())
}

/// Hides the tree by renaming it, then removes it; a hidden tree from an
/// earlier delete that failed is removed first. `stopped` is checked once
/// the tree is hidden: a start that raced the stop runs in it, and gets it
/// back untouched.
fn remove_guest_tree(tree: &Path, stopped: impl Fn() -> Result<()>) -> Result<()> {
    let (Some(parent), Some(base)) = (tree.parent(), tree.file_name().and_then(|b| b.to_str()))
    else {
        return Err(Error::failure(format!(
            "{} cannot be a guest tree",
            tree.display()
        )));
    };
    let hidden = format!(".{base}.deleting");
    let hidden_path = parent.join(&hidden);
    // The host side of the path is the admin's configuration, trusted;
    // from the tree on nothing is followed.
    let dir: OwnedFd = rustix::fs::openat(
        CWD,
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("cannot open {}", parent.display()))?;
    if exists(&dir, &hidden, &hidden_path)? {
        remove_tree(dir.as_fd(), &hidden, &hidden_path)?;
    }
    if !exists(&dir, base, tree)? {
        return Ok(());
    }
    let st = rustix::fs::statat(&dir, base, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .context(|| format!("cannot stat {}", tree.display()))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err(Error::failure(format!(
            "{} is not a directory (a symbolic link is not followed): nothing deleted",
            tree.display()
        )));
    }
    rustix::fs::renameat_with(&dir, base, &dir, hidden.as_str(), RenameFlags::NOREPLACE).context(
        || {
            format!(
                "cannot rename {} to {} (a mount point? unmount it)",
                tree.display(),
                hidden_path.display()
            )
        },
    )?;
    if let Err(e) = stopped() {
        let _ =
            rustix::fs::renameat_with(&dir, hidden.as_str(), &dir, base, RenameFlags::NOREPLACE);
        return Err(e);
    }
    remove_tree(dir.as_fd(), &hidden, &hidden_path).map_err(|e| {
        Error::failure(format!(
            "{e} (the configuration is kept: delete again to finish)"
        ))
    })
}

fn exists(dir: &OwnedFd, name: &str, shown: &Path) -> Result<bool> {
    match rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e).context(|| format!("cannot stat {}", shown.display())),
    }
}
