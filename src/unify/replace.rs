//! Replacing a guest's file without a moment where it is missing: the new
//! inode gets a temporary name in the same directory (`.vunify.` and 8 hex
//! digits), then renameat moves it over the old name in one step. Stale
//! temporary names from an interrupted run are removed when the directory is
//! visited again.

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags, Timestamps};

use crate::attr::{self, InodeFlags};
use crate::sys::errno::Errno;
use crate::sys::fsflags;

/// The prefix of every temporary name.
pub const TEMP_PREFIX: &str = ".vunify.";

/// Whether a directory entry is one of our temporary names.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.len() == TEMP_PREFIX.len() + 8
        && name.starts_with(TEMP_PREFIX.as_bytes())
        && name[TEMP_PREFIX.len()..]
            .iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

thread_local! {
    static SEED: Cell<u64> = const { Cell::new(0) };
}

/// A fresh temporary name (xorshift seeded from the pid and the clock; a
/// collision only means one more try).
fn temp_name() -> String {
    SEED.with(|seed| {
        let mut x = seed.get();
        if x == 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            x = now ^ (u64::from(std::process::id()) << 32) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seed.set(x);
        format!("{TEMP_PREFIX}{:08x}", x as u32)
    })
}

const EEXIST: Errno = Errno::from_raw(linux_raw_sys::errno::EEXIST as i32);
const EPERM: Errno = Errno::from_raw(linux_raw_sys::errno::EPERM as i32);
const ENOENT: Errno = Errno::from_raw(linux_raw_sys::errno::ENOENT as i32);

/// Makes a new hard link to the open file `file` under a temporary name in
/// `dir` and returns the name. The link is made to the descriptor's inode
/// itself (AT_EMPTY_PATH, or /proc/self/fd without CAP_DAC_READ_SEARCH), so
/// a name swapped meanwhile cannot redirect it.
pub fn link_temp(file: BorrowedFd<'_>, dir: BorrowedFd<'_>) -> Result<String, Errno> {
    loop {
        let name = temp_name();
        let r = rustix::fs::linkat(file, "", dir, name.as_str(), AtFlags::EMPTY_PATH)
            .map_err(Errno::from);
        let r = match r {
            Err(e) if e == ENOENT => {
                let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc.as_str(),
                    dir,
                    name.as_str(),
                    AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(Errno::from)
            }
            r => r,
        };
        match r {
            Ok(()) => return Ok(name),
            Err(e) if e == EEXIST => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Moves temporary `temp` over `name` in `dir`; on failure the temporary
/// name is removed and the old file stays.
pub fn rename_over(dir: BorrowedFd<'_>, temp: &str, name: &str) -> Result<(), Errno> {
    rustix::fs::renameat(dir, temp, dir, name).map_err(|e| {
        let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
        Errno::from(e)
    })
}

/// Removes a temporary name (after a failure before the rename).
pub fn remove_temp(dir: BorrowedFd<'_>, temp: &str) {
    let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
}

/// Creates an independent copy of `src` (size `stat.st_size`) under a
/// temporary name in `dir`, with the same content, mode, owner, extended
/// attributes and times. On failure nothing is left behind.
pub fn copy_temp(
    src: BorrowedFd<'_>,
    stat: &rustix::fs::Stat,
    dir: BorrowedFd<'_>,
) -> Result<String, Errno> {
    let (name, fd) = loop {
        let name = temp_name();
        match rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => break (name, fd),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(Errno::from(e)),
        }
    };
    match fill(src, stat, &fd) {
        Ok(()) => Ok(name),
        Err(e) => {
            remove_temp(dir, &name);
            Err(e)
        }
    }
}

// st_*_nsec is u64 on some targets and i64 on others.
#[allow(clippy::unnecessary_cast)]
fn fill(src: BorrowedFd<'_>, stat: &rustix::fs::Stat, dst: &OwnedFd) -> Result<(), Errno> {
    copy_data(src, dst.as_fd(), stat.st_size as u64)?;
    let xattrs = super::compare::xattrs(src)?;
    rustix::fs::fchown(
        dst,
        Some(rustix::fs::Uid::from_raw(stat.st_uid)),
        Some(rustix::fs::Gid::from_raw(stat.st_gid)),
    )?;
    // After chown, which clears set-id bits.
    rustix::fs::fchmod(dst, Mode::from_raw_mode(stat.st_mode & 0o7777))?;
    super::compare::set_xattrs(dst, &xattrs)?;
    let ts = |s: i64, ns: u64| rustix::fs::Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    rustix::fs::futimens(
        dst,
        &Timestamps {
            last_access: ts(stat.st_atime, stat.st_atime_nsec as u64),
            last_modification: ts(stat.st_mtime, stat.st_mtime_nsec as u64),
        },
    )?;
    Ok(())
}

/// Copies `len` bytes: copy_file_range (in-kernel, may share extents on
/// btrfs and xfs, which is still an independent copy), else read and write.
fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64) -> Result<(), Errno> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = done;
        let mut off_out = done;
        match rustix::fs::copy_file_range(
            src,
            Some(&mut off_in),
            dst,
            Some(&mut off_out),
            (len - done).min(1 << 30) as usize,
        ) {
            Ok(0) => return Err(Errno::from_raw(linux_raw_sys::errno::EIO as i32)),
            Ok(n) => done += n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP,
            ) => return copy_slow(src, dst, done, len),
            Err(e) => return Err(Errno::from(e)),
        }
    }
    Ok(())
}

fn copy_slow(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, from: u64, len: u64) -> Result<(), Errno> {
    let mut buf = vec![0u8; super::compare::CHUNK];
    let mut done = from;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        let n = match rustix::io::pread(src, &mut buf[..want], done) {
            Ok(0) => return Err(Errno::from_raw(linux_raw_sys::errno::EIO as i32)),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Errno::from(e)),
        };
        let mut w = 0;
        while w < n {
            w += rustix::io::pwrite(dst, &buf[w..n], done + w as u64)?;
        }
        done += n as u64;
    }
    Ok(())
}

/// Removes stale temporary names from a directory (`dir` may be an O_PATH
/// descriptor). A stale name that is an immutable inode (a shared file whose
/// flags a later run set again) has its flags cleared for the unlink and put
/// back, since the other names of the inode still need them. Returns how many
/// were removed.
pub fn clean_stale(dir: BorrowedFd<'_>) -> Result<u64, Errno> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut stale = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if is_temp_name(name) {
            stale.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    let mut removed = 0;
    for name in stale {
        match rustix::fs::unlinkat(dir, name.as_str(), AtFlags::empty()).map_err(Errno::from) {
            Ok(()) => removed += 1,
            Err(e) if e == EPERM => {
                unlink_flagged(dir, &name)?;
                removed += 1;
            }
            Err(e) if e == ENOENT => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

fn unlink_flagged(dir: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(EPERM);
    }
    let old = attr::flags_of(fd.as_fd())?;
    let open = old.difference(InodeFlags::IMMUTABLE.union(InodeFlags::IUNLINK));
    fsflags::set(&fd, open.bits())?;
    let r = rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Errno::from);
    if rustix::fs::fstat(&fd)?.st_nlink > 0 {
        fsflags::set(&fd, old.bits())?;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_match_their_pattern() {
        for _ in 0..100 {
            let n = temp_name();
            assert!(is_temp_name(n.as_bytes()), "{n}");
        }
        assert!(!is_temp_name(b".vunify.1234567"));
        assert!(!is_temp_name(b".vunify.123456789"));
        assert!(!is_temp_name(b".vunify.ABCDEF12"));
        assert!(!is_temp_name(b"vunify.12345678"));
        assert_ne!(temp_name(), temp_name());
    }
}
