//! Files of a guest that vsbox opens from inside the guest's mount
//! namespace (its /etc/passwd, /etc/mtab, /var/run/utmp, /etc/inittab)
//! while it still holds the host's privileges.
//!
//! The guest owns these paths: any of them may be a FIFO (an open for
//! reading would wait forever for a writer, and a host tool or the boot-time
//! `vservers start` with it), a device node, a symbolic link, or endless.
//! So a path is first opened with O_PATH|O_NOFOLLOW, which never blocks and
//! has no side effect whatever the inode is; only a regular file is then
//! reopened for reading or writing, through /proc/self/fd, which reopens that
//! very inode (a guest process swapping the name in between changes
//! nothing). A new file is created with O_EXCL, so it cannot be anything but
//! a new regular file. Reads are bounded.
//!
//! The host's run state (runstate) is read the same way: one bad entry there
//! must neither hang nor break the tools for every other guest.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::Context;
use crate::{Error, Result};

/// Reads the guest's regular file `path`, refusing anything else and any
/// file larger than `limit` bytes.
pub fn read(path: &str, limit: u64) -> Result<Vec<u8>> {
    let what = || format!("cannot read the guest's {path}");
    read_regular(Path::new(path), limit, what)?.ok_or_else(|| {
        Error::sys(
            what(),
            crate::sys::errno::Errno::from(rustix::io::Errno::NOENT),
        )
    })
}

/// Reads the regular file `path` (None: there is none), refusing anything
/// else and any file larger than `limit` bytes; `what` says what was read.
pub fn read_regular(path: &Path, limit: u64, what: impl Fn() -> String) -> Result<Option<Vec<u8>>> {
    let Some(pinned) = pin(path, &what)? else {
        return Ok(None);
    };
    let file = reopen(&pinned, OFlags::RDONLY).context(&what)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .context(&what)?;
    if bytes.len() as u64 > limit {
        return Err(Error::failure(format!(
            "{}: it is larger than {limit} bytes",
            what()
        )));
    }
    Ok(Some(bytes))
}

/// Opens the guest's `path` for writing, emptied: an existing regular file
/// (nothing else), or a new one with `mode`.
pub fn open_for_write(path: &str, mode: u32) -> Result<File> {
    let what = || format!("cannot write the guest's {path}");
    let access = OFlags::WRONLY | OFlags::TRUNC;
    match pin(Path::new(path), what)? {
        Some(pinned) => reopen(&pinned, access).context(what),
        None => rustix::fs::open(
            path,
            access | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map(File::from)
        .context(what),
    }
}

/// An O_PATH descriptor of `path` itself (a symbolic link is not followed)
/// if it is a regular file; None if there is no such file.
fn pin(path: &Path, what: impl Fn() -> String) -> Result<Option<OwnedFd>> {
    let fd = match rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).context(what),
    };
    let st = rustix::fs::fstat(&fd).context(&what)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(Some(fd)),
        other => Err(Error::failure(format!(
            "{}: it is {}, not a regular file",
            what(),
            type_name(other)
        ))),
    }
}

/// Opens the inode behind `pinned` anew with `access`.
fn reopen(pinned: &OwnedFd, access: OFlags) -> rustix::io::Result<File> {
    let path = format!("/proc/self/fd/{}", pinned.as_raw_fd());
    rustix::fs::open(
        path.as_str(),
        access | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
}

/// What a file that is not a regular one is, for messages ("a FIFO").
pub(crate) fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Socket => "a socket",
        _ => "of an unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vsbox-guestfile-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn only_regular_files_are_read_and_nothing_blocks() {
        let dir = temp("read");
        let file = dir.join("passwd");
        std::fs::write(&file, "root:x:0:0::/root:/bin/sh\n").unwrap();
        assert_eq!(read(file.to_str().unwrap(), 100).unwrap().len(), 26);
        let big = read(file.to_str().unwrap(), 10).unwrap_err();
        assert!(big.to_string().ends_with("larger than 10 bytes"), "{big}");
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/null"), "a character device"),
            (link.as_path(), "a symbolic link"),
        ] {
            let e = read(path.to_str().unwrap(), 100).unwrap_err();
            assert!(
                e.to_string()
                    .ends_with(&format!("it is {kind}, not a regular file")),
                "{e}"
            );
            let e = open_for_write(path.to_str().unwrap(), 0o600).unwrap_err();
            assert!(e.to_string().contains(kind), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_truncate_or_create() {
        use std::io::Write as _;
        let dir = temp("write");
        let path = dir.join("mtab");
        let p = path.to_str().unwrap();
        open_for_write(p, 0o640)
            .unwrap()
            .write_all(b"one\n")
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions();
        let bits = std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777;
        assert_eq!(
            bits & !0o640,
            0,
            "created with at most the mode asked: {bits:o}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        open_for_write(p, 0o600).unwrap().write_all(b"3\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
