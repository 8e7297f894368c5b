//! What vdu, vfiles and vbuild share: a descriptor-relative walk of a guest
//! tree that never follows a symlink and never leaves the filesystem of its
//! starting directory, guest arguments given as a name or a directory, and
//! how paths are printed.

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::conf::{self, ConfigRoot};
use crate::error::Context;
use crate::{Error, Result};

/// The deepest directory walked: two descriptors per level stay open, and
/// a hostile nesting must not exhaust them or the stack.
pub const MAX_DEPTH: usize = 200;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The directory of a guest argument: a path when it contains a '/', else
/// the VSERVERDIR of the configured guest NAME.
pub fn guest_dir(arg: &str) -> Result<PathBuf> {
    if arg.contains('/') {
        return Ok(PathBuf::from(arg));
    }
    let config = conf::load(&ConfigRoot::select(None), arg, None).map_err(|e| {
        Error::failure(format!(
            "{arg}: not a configured guest ({e}); give a directory as a path with a '/'"
        ))
    })?;
    Ok(config.vserver_dir)
}

/// Opens a directory named by the host (the caller chose it), without
/// following a final symlink.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty())
        .context(|| format!("cannot open the directory {}", path.display()))
}

/// Opens the subdirectory `name` of `dir` without following a symlink.
pub fn open_subdir(dir: &OwnedFd, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
}

/// What a walk reports.
pub trait Visitor {
    /// A directory on the walk's filesystem, before its entries; `false`
    /// skips its contents. `parent` is None for the top directory.
    fn enter(
        &mut self,
        _parent: Option<&OwnedFd>,
        _name: &CStr,
        _rel: &Path,
        _st: &Stat,
    ) -> Result<bool> {
        Ok(true)
    }
    /// After the entries of a directory that was entered.
    fn leave(&mut self, _rel: &Path) -> Result<()> {
        Ok(())
    }
    /// Any other entry (regular file, symlink, device, FIFO, socket) on the
    /// walk's filesystem, in directory `dir` under `name`.
    fn entry(&mut self, dir: &OwnedFd, name: &CStr, rel: &Path, st: &Stat) -> Result<()>;
    /// A directory on another filesystem (a mount point): not entered.
    fn mount_point(&mut self, _rel: &Path, _st: &Stat) -> Result<()> {
        Ok(())
    }
}

/// Walks the tree below the open directory `top` in name order; `rel`
/// paths are relative to it ("" for `top` itself).
pub fn walk(top: &OwnedFd, visitor: &mut dyn Visitor) -> Result<()> {
    let st = rustix::fs::fstat(top).context(|| "cannot stat the top directory")?;
    let mut rel = PathBuf::new();
    if visitor.enter(None, c".", &rel, &st)? {
        dir_entries(top, st.st_dev, &mut rel, visitor)?;
        visitor.leave(&rel)?;
    }
    Ok(())
}

fn dir_entries(dir: &OwnedFd, dev: u64, rel: &mut PathBuf, v: &mut dyn Visitor) -> Result<()> {
    let what = |rel: &Path| format!("cannot list {}", shown(rel));
    let mut names: Vec<CString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).context(|| what(rel))? {
        let entry = entry.context(|| what(rel))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    // sort(), as vserver build's walk: one instantiation for both.
    names.sort();
    for name in names {
        rel.push(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let r = one(dir, &name, dev, rel, v);
        rel.pop();
        r?;
    }
    Ok(())
}

fn one(dir: &OwnedFd, name: &CStr, dev: u64, rel: &mut PathBuf, v: &mut dyn Visitor) -> Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        // Gone meanwhile (a running guest): nothing to report.
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e).context(|| format!("cannot stat {}", shown(rel))),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        if st.st_dev == dev {
            v.entry(dir, name, rel, &st)?;
        }
        return Ok(());
    }
    if st.st_dev != dev {
        return v.mount_point(rel, &st);
    }
    if !v.enter(Some(dir), name, rel, &st)? {
        return Ok(());
    }
    if rel.components().count() > MAX_DEPTH {
        return Err(Error::failure(format!(
            "{} is nested deeper than {MAX_DEPTH} directories",
            shown(rel)
        )));
    }
    let child = match open_subdir(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return v.leave(rel),
        Err(e) => return Err(e).context(|| format!("cannot open {}", shown(rel))),
    };
    // Checked on the descriptor: the entry may have been swapped for a
    // directory elsewhere (a mount point) meanwhile.
    let now = rustix::fs::fstat(&child).context(|| format!("cannot stat {}", shown(rel)))?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Error::failure(format!(
            "{} changed while it was read",
            shown(rel)
        )));
    }
    dir_entries(&child, dev, rel, v)?;
    v.leave(rel)
}

/// "/usr/bin/ls" for a walk-relative path, escaped for one line.
pub fn shown(rel: &Path) -> String {
    let mut out = String::from("/");
    escape_into(&mut out, rel.as_os_str().as_bytes());
    out
}

/// Appends `bytes` with control characters, backslashes and invalid UTF-8
/// escaped (`\n`, `\t`, `\\`, `\ooo` octal: what GNU tar's -T unquotes), so
/// one name is always one line.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut b = [0; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        out.push_str(&format!("\\{byte:03o}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\{byte:03o}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_line_and_reversible() {
        let mut s = String::new();
        escape_into(&mut s, b"a b\nc\td\\e\x01\xff\xc3\xa9");
        assert_eq!(s, "a b\\nc\\td\\\\e\\001\\377\u{e9}");
        assert_eq!(shown(Path::new("usr/bin")), "/usr/bin");
        assert_eq!(shown(Path::new("")), "/");
    }
}
