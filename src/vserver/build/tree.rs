//! Changes inside a guest tree under construction, by directory descriptor
//! and never through a symlink: a cloned or bootstrapped tree holds symlinks
//! the build did not choose (/etc/mtab -> /proc/self/mounts, or worse), and
//! an absolute one would resolve on the host.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::Context;
use crate::{Error, Result};

/// The device nodes every guest gets, whatever its source had; /dev/ptmx
/// is a symlink to the guest's own devpts instance (pts/ptmx).
pub const DEV_NODES: [(&str, u32, u32, u32); 6] = [
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
];

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// "/etc/hosts" for messages.
pub fn shown(rel: &Path) -> String {
    format!("/{}", rel.display())
}

pub fn open_dir_path(path: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty())
        .context(|| format!("cannot open {}", path.display()))
}

pub fn open_dir_at(dir: impl AsFd, name: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
}

/// Opens `rel` below `root`, making missing directories with `mode`. None
/// when a component exists but is not a directory (a symlink included):
/// the guest has its own layout there, which the build leaves alone.
pub fn ensure_dir(root: &OwnedFd, rel: &Path, mode: u32) -> Result<Option<OwnedFd>> {
    let mut dir = rustix::io::dup(root).context(|| "cannot duplicate a descriptor")?;
    let mut so_far = std::path::PathBuf::new();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        so_far.push(name);
        match open_dir_at(&dir, Path::new(name)) {
            Ok(fd) => dir = fd,
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700))
                    .context(|| format!("cannot create {}", shown(&so_far)))?;
                let fd = open_dir_at(&dir, Path::new(name))
                    .context(|| format!("cannot open {}", shown(&so_far)))?;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                    .context(|| format!("cannot set the mode of {}", shown(&so_far)))?;
                dir = fd;
            }
            Err(Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(e).context(|| format!("cannot open {}", shown(&so_far))),
        }
    }
    Ok(Some(dir))
}

/// The parent directory of `rel` and its last component.
fn parent_of<'a>(root: &OwnedFd, rel: &'a Path) -> Result<(OwnedFd, &'a std::ffi::OsStr)> {
    let name = rel
        .file_name()
        .ok_or_else(|| Error::failure(format!("{} has no file name", shown(rel))))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = ensure_dir(root, parent, 0o755)?.ok_or_else(|| {
        Error::failure(format!(
            "cannot write {}: {} is not a directory in the guest",
            shown(rel),
            shown(parent)
        ))
    })?;
    Ok((dir, name))
}

/// Replaces `rel` with a new file holding `text`: whatever was there (a
/// symlink, a hard link shared with another guest) is unlinked, never
/// written through.
pub fn write_file(root: &OwnedFd, rel: &Path, text: &[u8], mode: u32) -> Result<OwnedFd> {
    let (dir, name) = parent_of(root, rel)?;
    match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e).context(|| format!("cannot replace {}", shown(rel))),
    }
    let fd = rustix::fs::openat(
        &dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .context(|| format!("cannot create {}", shown(rel)))?;
    write_all(&fd, text).context(|| format!("cannot write {}", shown(rel)))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
        .context(|| format!("cannot set the mode of {}", shown(rel)))?;
    Ok(fd)
}

pub fn write_all(fd: &OwnedFd, mut text: &[u8]) -> rustix::io::Result<()> {
    while !text.is_empty() {
        match rustix::io::write(fd, text) {
            Ok(n) => text = &text[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads `rel` if it is a regular file (not through a symlink), with its
/// owner and mode. At most 4 MiB.
pub fn read_file(root: &OwnedFd, rel: &Path) -> Result<Option<(Vec<u8>, rustix::fs::Stat)>> {
    let Some(parent) = ensure_existing(root, rel.parent().unwrap_or(Path::new("")))? else {
        return Ok(None);
    };
    let Some(name) = rel.file_name() else {
        return Ok(None);
    };
    let fd = match rustix::fs::openat(
        &parent,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
        Err(e) => return Err(e).context(|| format!("cannot open {}", shown(rel))),
    };
    let st = rustix::fs::fstat(&fd).context(|| format!("cannot stat {}", shown(rel)))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size > 4 << 20 {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match rustix::io::read(&fd, &mut buf[..]) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e).context(|| format!("cannot read {}", shown(rel))),
        }
    }
    Ok(Some((out, st)))
}

/// Opens the existing directory `rel` without following symlinks; None if
/// it is missing or not a directory.
pub fn ensure_existing(root: &OwnedFd, rel: &Path) -> Result<Option<OwnedFd>> {
    let mut dir = rustix::io::dup(root).context(|| "cannot duplicate a descriptor")?;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        match open_dir_at(&dir, Path::new(name)) {
            Ok(fd) => dir = fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(e).context(|| format!("cannot open {}", shown(rel))),
        }
    }
    Ok(Some(dir))
}

/// Removes the non-directory entries of directory `rel` whose name
/// `matches`; returns how many.
pub fn remove_entries(root: &OwnedFd, rel: &Path, matches: impl Fn(&str) -> bool) -> Result<u64> {
    let Some(dir) = ensure_existing(root, rel)? else {
        return Ok(0);
    };
    let what = || format!("cannot list {}", shown(rel));
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir).context(what)? {
        let entry = entry.context(what)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type() != FileType::Directory && matches(&name) {
            names.push(name);
        }
    }
    for name in &names {
        rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty())
            .context(|| format!("cannot remove {}", shown(&rel.join(name))))?;
    }
    Ok(names.len() as u64)
}

/// /dev from the fixed list; nodes already there (debootstrap makes its
/// own) are kept.
pub fn make_dev(root: &OwnedFd) -> Result<u64> {
    let dev = ensure_dir(root, Path::new("dev"), 0o755)?
        .ok_or_else(|| Error::failure("/dev is not a directory in the guest"))?;
    let mut made = 0;
    for (name, major, minor, mode) in DEV_NODES {
        match rustix::fs::mknodat(
            &dev,
            name,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            rustix::fs::makedev(major, minor),
        ) {
            Ok(()) => made += 1,
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e).context(|| format!("cannot create /dev/{name}")),
        }
        rustix::fs::chmodat(&dev, name, Mode::from_raw_mode(mode), AtFlags::empty())
            .context(|| format!("cannot set the mode of /dev/{name}"))?;
    }
    match rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx") {
        Ok(()) => made += 1,
        Err(Errno::EXIST) => {}
        Err(e) => return Err(e).context(|| "cannot create /dev/ptmx"),
    }
    ensure_dir(root, Path::new("dev/pts"), 0o755)?;
    ensure_dir(root, Path::new("dev/shm"), 0o1777)?;
    Ok(made)
}

/// rename(2) that never replaces: a guest directory made meanwhile wins.
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(|e| {
        if e == Errno::EXIST || e == Errno::NOTEMPTY {
            Error::failure(format!("{} already exists", to.display()))
        } else {
            Error::sys(
                format!("cannot rename {} to {}", from.display(), to.display()),
                crate::sys::errno::Errno::from(e),
            )
        }
    })
}
