//! Safe access to a guest tree from the host.
//!
//! A guest tree is attacker-controlled: its symlinks may point anywhere.
//! Every path is resolved by `openat2` relative to a descriptor of the guest
//! root with `RESOLVE_IN_ROOT` (an absolute symlink or `..` stays inside the
//! guest: `etc -> /etc` is the guest's /etc, merged-/usr `bin -> usr/bin`
//! works), `RESOLVE_NO_MAGICLINKS` (no /proc/PID/fd escape) and
//! `RESOLVE_NO_XDEV` (never onto another filesystem mounted in the guest).
//! Only the parent directory is resolved that way; the final component is
//! never followed (`*at` calls with `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`).
//!
//! Guest paths are `/`-separated, absolute or relative to the guest root;
//! `.` and repeated slashes are ignored; `..`, NUL and paths longer than
//! PATH_MAX are refused.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno as RErrno;

use crate::error::Context;
use crate::error::shown;
use crate::{Error, Result};

pub use rustix::fs::Stat;

/// The longest guest path accepted (PATH_MAX, including the NUL).
pub const PATH_MAX: usize = 4096;

/// An open guest root directory.
#[derive(Debug)]
pub struct GuestFs {
    root: OwnedFd,
    path: PathBuf,
}

/// The flags every in-guest resolution uses.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// Splits a guest path into its normalized components (no empty, `.`).
pub fn components(guest_path: &str) -> Result<Vec<&str>> {
    if guest_path.len() >= PATH_MAX {
        return Err(Error::failure(format!(
            "guest path '{}' is longer than {} bytes",
            shown(guest_path),
            PATH_MAX - 1
        )));
    }
    if guest_path.contains('\0') {
        return Err(Error::failure(format!(
            "guest path '{}' contains a NUL byte",
            shown(guest_path)
        )));
    }
    let parts: Vec<&str> = guest_path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(Error::failure(format!(
            "guest path '{}' has a '..' component",
            shown(guest_path)
        )));
    }
    Ok(parts)
}

fn is_missing(e: RErrno) -> bool {
    e == RErrno::NOENT || e == RErrno::NOTDIR
}

impl GuestFs {
    /// Opens the guest root `path` (a directory; symlinks in `path` itself
    /// are the host's and are followed).
    pub fn open(path: &Path) -> Result<GuestFs> {
        let root = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("cannot open the guest root {}", path.display()))?;
        Ok(GuestFs {
            root,
            path: path.to_path_buf(),
        })
    }

    /// Opens a guest given on a command line: a directory path when `arg`
    /// contains a '/', else the VSERVERDIR of the configured guest NAME.
    pub fn open_guest(arg: &str) -> Result<GuestFs> {
        if arg.contains('/') {
            return GuestFs::open(Path::new(arg));
        }
        let root = crate::conf::ConfigRoot::select(None);
        let config = crate::conf::load(&root, arg, None).map_err(|e| {
            Error::failure(format!(
                "{arg}: not a configured guest ({e}); give a directory as a path with a '/'"
            ))
        })?;
        GuestFs::open(&config.vserver_dir)
    }

    /// The host path the guest was opened from (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory (an `O_PATH` descriptor).
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// "GUESTROOT/guest/path" for messages.
    pub fn display(&self, guest_path: &str) -> String {
        let p = self.path.display().to_string();
        format!(
            "{}/{}",
            p.trim_end_matches('/'),
            guest_path.trim_start_matches('/')
        )
    }

    /// Opens directory `rel` (components joined, "." for the root) inside
    /// the guest with `O_PATH`, following guest symlinks inside the guest.
    fn open_in_root(&self, rel: &str, flags: OFlags) -> std::result::Result<OwnedFd, RErrno> {
        let rel = if rel.is_empty() { "." } else { rel };
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.root,
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                // EAGAIN: a concurrent rename in the guest; retry a little.
                Err(RErrno::AGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    fn resolve_error(&self, guest_path: &str, e: RErrno) -> Error {
        let what = format!(
            "cannot resolve {} inside the guest",
            self.display(guest_path)
        );
        if e == RErrno::XDEV {
            Error::failure(format!(
                "{what}: it crosses a mount point (guest paths never leave the guest's filesystem)"
            ))
        } else {
            Error::sys(what, crate::sys::errno::Errno::from_raw(e.raw_os_error()))
        }
    }

    /// The parent directory of `guest_path` resolved inside the guest (an
    /// `O_PATH` descriptor, usable with every `*at` call) and the final
    /// component, which is not followed. The root itself has no parent.
    pub fn resolve_parent(&self, guest_path: &str) -> Result<(OwnedFd, String)> {
        self.try_resolve_parent(guest_path)?
            .map_err(|e| self.resolve_error(guest_path, e))
    }

    fn try_resolve_parent(
        &self,
        guest_path: &str,
    ) -> Result<std::result::Result<(OwnedFd, String), RErrno>> {
        let parts = components(guest_path)?;
        let Some((name, dirs)) = parts.split_last() else {
            return Err(Error::failure(format!(
                "guest path '{guest_path}' names the guest root, which has no parent"
            )));
        };
        Ok(self
            .open_in_root(&dirs.join("/"), OFlags::PATH | OFlags::DIRECTORY)
            .map(|fd| (fd, (*name).to_string())))
    }

    /// lstat of a guest path; `None` when it (or a parent) does not exist.
    pub fn stat_nofollow(&self, guest_path: &str) -> Result<Option<Stat>> {
        if components(guest_path)?.is_empty() {
            return rustix::fs::fstat(&self.root)
                .map(Some)
                .context(|| format!("cannot stat {}", self.path.display()));
        }
        let (dir, name) = match self.try_resolve_parent(guest_path)? {
            Ok(r) => r,
            Err(e) if is_missing(e) => return Ok(None),
            Err(e) => return Err(self.resolve_error(guest_path, e)),
        };
        match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(e) if is_missing(e) => Ok(None),
            Err(e) => Err(e).context(|| format!("cannot stat {}", self.display(guest_path))),
        }
    }

    /// Opens a regular file read-only without following a final symlink.
    /// Anything but a regular file (directory, device, FIFO, socket,
    /// symlink) is refused before it is opened, and checked again on the
    /// open descriptor (same inode, regular) so a swap in between is caught.
    pub fn open_file(&self, guest_path: &str) -> Result<OwnedFd> {
        let (dir, name) = self.resolve_parent(guest_path)?;
        let shown = || self.display(guest_path);
        let before = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .context(|| format!("cannot open {}", shown()))?;
        check_regular(&before, &shown)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .context(|| format!("cannot open {}", shown()))?;
        let after = rustix::fs::fstat(&fd).context(|| format!("cannot stat {}", shown()))?;
        check_regular(&after, &shown)?;
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) {
            return Err(Error::failure(format!(
                "{} was replaced while it was being opened",
                shown()
            )));
        }
        Ok(fd)
    }

    /// The file name `guest_path` leads to, every symbolic link on the way
    /// followed inside the guest (/sbin/init -> /lib/systemd/systemd gives
    /// "systemd"); None when it leads nowhere.
    pub fn resolved_name(&self, guest_path: &str) -> Result<Option<String>> {
        let rel = components(guest_path)?.join("/");
        let fd = match self.open_in_root(&rel, OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if is_missing(e) || e == RErrno::LOOP => return Ok(None),
            Err(e) => return Err(self.resolve_error(guest_path, e)),
        };
        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let path = std::fs::read_link(&link)
            .map_err(|e| Error::io(format!("cannot resolve {}", self.display(guest_path)), &e))?;
        Ok(path.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Opens a directory of the guest for reading (`getdents`), without
    /// following a final symlink.
    pub fn open_dir(&self, guest_path: &str) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if components(guest_path)?.is_empty() {
            return self
                .open_in_root(".", flags)
                .context(|| format!("cannot open {}", self.path.display()));
        }
        let (dir, name) = self.resolve_parent(guest_path)?;
        rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty())
            .context(|| format!("cannot open the directory {}", self.display(guest_path)))
    }

    /// Reads a whole regular file of at most `max` bytes.
    pub fn read_limited(&self, guest_path: &str, max: u64) -> Result<Vec<u8>> {
        let fd = self.open_file(guest_path)?;
        let too_large = || {
            Error::failure(format!(
                "{} is larger than {max} bytes",
                self.display(guest_path)
            ))
        };
        let size = rustix::fs::fstat(&fd)
            .context(|| format!("cannot stat {}", self.display(guest_path)))?
            .st_size as u64;
        if size > max {
            return Err(too_large());
        }
        let mut data = Vec::with_capacity(size as usize);
        std::fs::File::from(fd)
            .take(max + 1)
            .read_to_end(&mut data)
            .context(|| format!("cannot read {}", self.display(guest_path)))?;
        if data.len() as u64 > max {
            return Err(too_large());
        }
        Ok(data)
    }

    /// Like [`read_limited`](Self::read_limited), `None` when the file (or
    /// a parent directory) does not exist.
    pub fn read_optional(&self, guest_path: &str, max: u64) -> Result<Option<Vec<u8>>> {
        match self.read_limited(guest_path, max) {
            Err(e)
                if e.errno()
                    .is_some_and(|n| is_missing(RErrno::from_raw_os_error(n.raw()))) =>
            {
                Ok(None)
            }
            r => r.map(Some),
        }
    }
}

fn check_regular(st: &Stat, shown: &dyn Fn() -> String) -> Result<()> {
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind.is_file() {
        return Ok(());
    }
    let what = match kind {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "not a regular file",
    };
    Err(Error::failure(format!(
        "{} is {what}, not a regular file",
        shown()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_normalize_and_refuse() {
        assert_eq!(components("/usr//bin/./ls/").unwrap(), ["usr", "bin", "ls"]);
        assert_eq!(components("etc/passwd").unwrap(), ["etc", "passwd"]);
        assert!(components("/").unwrap().is_empty());
        assert!(components("/a/../b").is_err());
        assert!(components("/a\0b").is_err());
        assert!(components(&"a/".repeat(3000)).is_err());
    }
}
