//! Removing a stopped guest's tree for `vserver NAME delete`, without ever
//! acting outside it: every step is relative to a directory descriptor
//! (openat/unlinkat with O_NOFOLLOW), so a symbolic link the guest planted
//! is removed as a link, never followed; a directory on another mount (a
//! bind mount of host files left in the tree) is not entered.
//!
//! Inode flags: the guest's own files and directories lose their
//! immutable, immutable-unlink and append-only flags so they can go. A
//! file with links outside the tree (vunify shares one inode between
//! guests) keeps its flags and content: only this guest's name is
//! unlinked, which the kernel allows when the inode has the
//! immutable-unlink flag (kernel/ patch). Without it an immutable shared
//! inode cannot lose a name unless its flag is cleared for every guest
//! that shares it, which would let a running guest's root write to the
//! file every guest runs meanwhile; such files are kept, counted, and the
//! removal fails with a message saying how to finish ('vunify --undo'
//! gives the guest its own copies first).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Statx, StatxFlags};

use crate::attr::{self, InodeFlags};
use crate::error::Context;
use crate::sys::fsflags;
use crate::{Error, Result};

/// The flags that keep an inode from losing a name.
const LOCKS: InodeFlags = InodeFlags::IMMUTABLE
    .union(InodeFlags::IUNLINK)
    .union(InodeFlags::APPEND);

/// Removes directory `name` of `parent` and everything in it.
pub fn remove_tree(parent: BorrowedFd<'_>, name: &str, shown: &Path) -> Result<()> {
    let top = open_dir(parent, name).context(|| format!("cannot open {}", shown.display()))?;
    let st = rustix::fs::statx(&top, "", AtFlags::EMPTY_PATH, WANTED)
        .context(|| format!("cannot stat {}", shown.display()))?;
    let mut walk = Walk {
        mount: st.stx_mnt_id,
        links: HashMap::new(),
        kept: 0,
    };
    walk.count(top.as_fd(), shown)?;
    walk.empty(top.as_fd(), shown)?;
    drop(top);
    if walk.kept > 0 {
        return Err(Error::failure(format!(
            "{}: {} files shared with other guests are immutable and this kernel lacks \
             the immutable-unlink flag, so they were kept (their flags are not cleared \
             for the other guests); 'vunify --undo' on this guest gives it its own \
             copies, then delete again",
            shown.display(),
            walk.kept
        )));
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
        .context(|| format!("cannot remove {}", shown.display()))
}

const WANTED: StatxFlags = StatxFlags::BASIC_STATS.union(StatxFlags::MNT_ID);

struct Walk {
    /// The tree's mount: directories on another are not entered.
    mount: u64,
    /// Inodes with more than one link: how many of their links are still
    /// in the tree.
    links: HashMap<u64, u32>,
    /// Shared immutable files left in place.
    kept: u64,
}

/// One directory entry, with its statx (not following a final link).
struct Entry {
    name: CString,
    st: Statx,
}

impl Entry {
    fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.st.stx_mode.into())
    }

    fn shown(&self, dir: &Path) -> PathBuf {
        dir.join(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(self.name.as_bytes()),
        )
    }
}

impl Walk {
    /// Counts the links of every multi-link inode that are in the tree, so
    /// that an inode all of whose names are here counts as the guest's own.
    fn count(&mut self, dir: BorrowedFd<'_>, shown: &Path) -> Result<()> {
        for e in entries(dir, shown)? {
            match e.file_type() {
                FileType::Directory => {
                    if let Some(sub) = self.enter(dir, &e, shown)? {
                        self.count(sub.as_fd(), &e.shown(shown))?;
                    }
                }
                _ if e.st.stx_nlink > 1 => *self.links.entry(e.st.stx_ino).or_default() += 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes everything in `dir` (its own flags cleared first: a
    /// directory is never shared, and an immutable or append-only one lets
    /// no entry go).
    fn empty(&mut self, dir: BorrowedFd<'_>, shown: &Path) -> Result<()> {
        unlock(dir).context(|| format!("cannot clear the flags of {}", shown.display()))?;
        for e in entries(dir, shown)? {
            let path = e.shown(shown);
            if e.file_type() == FileType::Directory {
                let Some(sub) = self.enter(dir, &e, shown)? else {
                    return Err(Error::failure(format!(
                        "{} is on another mount: not entered; unmount it, then delete again",
                        path.display()
                    )));
                };
                let kept_before = self.kept;
                self.empty(sub.as_fd(), &path)?;
                drop(sub);
                if self.kept == kept_before {
                    rustix::fs::unlinkat(dir, e.name.as_c_str(), AtFlags::REMOVEDIR)
                        .context(|| format!("cannot remove {}", path.display()))?;
                }
            } else {
                self.remove_file(dir, &e, &path)?;
            }
        }
        Ok(())
    }

    /// The subdirectory of entry `e`, or None if it is on another mount.
    fn enter(&self, dir: BorrowedFd<'_>, e: &Entry, shown: &Path) -> Result<Option<OwnedFd>> {
        if e.st.stx_mnt_id != self.mount {
            return Ok(None);
        }
        let what = || format!("cannot open {}", e.shown(shown).display());
        let sub = open_dir(dir, e.name.as_c_str()).context(what)?;
        let st = rustix::fs::statx(&sub, "", AtFlags::EMPTY_PATH, WANTED).context(what)?;
        // Replaced between the listing and the open: nothing may change a
        // stopped guest's tree, so this is someone else at work.
        if st.stx_ino != e.st.stx_ino || st.stx_mnt_id != self.mount {
            return Err(Error::failure(format!(
                "{} changed while it was being removed",
                e.shown(shown).display()
            )));
        }
        Ok(Some(sub))
    }

    fn remove_file(&mut self, dir: BorrowedFd<'_>, e: &Entry, path: &Path) -> Result<()> {
        let what = || format!("cannot remove {}", path.display());
        match rustix::fs::unlinkat(dir, e.name.as_c_str(), AtFlags::empty()) {
            Ok(()) => {
                self.forget_link(e.st.stx_ino, e.st.stx_nlink);
                return Ok(());
            }
            Err(rustix::io::Errno::PERM) if e.file_type() == FileType::RegularFile => {}
            Err(err) => return Err(err).context(what),
        }
        // A locked inode. Opening a regular file reads nothing and has no
        // side effect (O_NONBLOCK, O_NOCTTY, never a device).
        let fd = rustix::fs::openat(
            dir,
            e.name.as_c_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(what)?;
        let now = rustix::fs::fstat(&fd).context(what)?;
        if now.st_ino != e.st.stx_ino {
            return Err(Error::failure(format!(
                "{} changed while it was being removed",
                path.display()
            )));
        }
        let in_tree = self.links.get(&e.st.stx_ino).copied().unwrap_or(1);
        if u64::from(in_tree) < now.st_nlink as u64 {
            // Links outside the tree: another guest's file.
            self.kept += 1;
            return Ok(());
        }
        unlock(fd.as_fd()).context(|| format!("cannot clear the flags of {}", path.display()))?;
        rustix::fs::unlinkat(dir, e.name.as_c_str(), AtFlags::empty()).context(what)?;
        self.forget_link(e.st.stx_ino, e.st.stx_nlink);
        Ok(())
    }

    fn forget_link(&mut self, ino: u64, nlink: u32) {
        if nlink > 1 {
            if let Some(n) = self.links.get_mut(&ino) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// Opens a directory entry that must be a directory, not following a link.
fn open_dir<P: rustix::path::Arg>(dir: BorrowedFd<'_>, name: P) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The entries of `dir` but . and .., each with its statx.
fn entries(dir: BorrowedFd<'_>, shown: &Path) -> Result<Vec<Entry>> {
    let what = || format!("cannot list {}", shown.display());
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).context(what)? {
        let entry = entry.context(what)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, WANTED).context(|| {
            format!(
                "cannot stat {}",
                shown.join(name.to_string_lossy().as_ref()).display()
            )
        })?;
        out.push(Entry {
            name: name.to_owned(),
            st,
        });
    }
    Ok(out)
}

/// Clears the lock flags of an open inode; a filesystem without inode
/// flags has none to clear.
fn unlock(fd: BorrowedFd<'_>) -> std::result::Result<(), crate::sys::errno::Errno> {
    let flags = match attr::flags_of(fd) {
        Ok(f) => f,
        Err(e) if matches!(e.name(), Some("ENOTTY" | "EOPNOTSUPP" | "EINVAL")) => return Ok(()),
        Err(e) => return Err(e),
    };
    if flags.bits() & LOCKS.bits() != 0 {
        fsflags::set(fd, flags.difference(LOCKS).bits())?;
    }
    Ok(())
}
