//! Is a guest's file the same as the reference's? Metadata first (cheap),
//! then extended attributes, then every byte.
//!
//! Bytes are compared by reading both files in large chunks, not by hashing:
//! the reference file is usually in the page cache after the first guest, a
//! memcmp is faster than any digest, and a digest match would still not be a
//! proof. Each pair is read once.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::Stat;

use crate::sys::errno::Errno;

/// The chunk read from each file at a time.
pub const CHUNK: usize = 1 << 20;

/// Why two regular files are not interchangeable, in the order checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    Size,
    Mode,
    Owner,
    Mtime,
    Xattrs,
    Content,
}

/// Compares what a hard link would change for the guest: size, permission
/// bits and type, owner and group, and modification time (to the
/// nanosecond).
pub fn metadata(a: &Stat, b: &Stat) -> Option<Difference> {
    if a.st_size != b.st_size {
        Some(Difference::Size)
    } else if a.st_mode != b.st_mode {
        Some(Difference::Mode)
    } else if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid) {
        Some(Difference::Owner)
    } else if (a.st_mtime, a.st_mtime_nsec) != (b.st_mtime, b.st_mtime_nsec) {
        Some(Difference::Mtime)
    } else {
        None
    }
}

/// Two reusable buffers of [`CHUNK`] bytes (and one more for the end of
/// file probe).
pub struct Buffers {
    a: Vec<u8>,
    b: Vec<u8>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            a: vec![0; CHUNK + 1],
            b: vec![0; CHUNK + 1],
        }
    }
}

impl Buffers {
    /// Whether two open files hold the same `size` bytes. A file that is
    /// shorter or longer than `size` (changed since it was looked at) is
    /// different.
    pub fn same_content(
        &mut self,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
        size: u64,
    ) -> Result<bool, Errno> {
        let mut same = [Ok(true)];
        self.same_content_many(a, &[b], size, &mut same)?;
        let [r] = same;
        r
    }

    /// Compares file `a` with each of `others` (all `size` bytes): `a` is
    /// read once, chunk by chunk, each other file once. `same[i]` starts as
    /// `Ok(true)` and ends false for a file that differs, or with the error
    /// reading it; an error reading `a` is returned.
    pub fn same_content_many(
        &mut self,
        a: BorrowedFd<'_>,
        others: &[BorrowedFd<'_>],
        size: u64,
        same: &mut [Result<bool, Errno>],
    ) -> Result<(), Errno> {
        let mut offset = 0u64;
        loop {
            // The last chunk asks for one byte more: reading it proves the
            // file longer than `size`, a short read that it ends there.
            let rest = size - offset;
            let last = rest <= CHUNK as u64;
            let want = if last { rest as usize } else { CHUNK };
            let ask = want + usize::from(last);
            let got_a = read_chunk(a, &mut self.a[..ask], offset, want)?;
            for (fd, r) in others.iter().zip(same.iter_mut()) {
                if !matches!(r, Ok(true)) {
                    continue;
                }
                *r = match read_chunk(*fd, &mut self.b[..ask], offset, want) {
                    Ok(got_b) => Ok(got_a == want
                        && got_b == want
                        && equal(&self.a[..want], &self.b[..want])),
                    Err(e) => Err(e),
                };
            }
            if got_a != want || last || !same.iter().any(|r| matches!(r, Ok(true))) {
                return Ok(());
            }
            offset += want as u64;
        }
    }
}

/// Reads `buf.len()` bytes at `offset` where `want` bytes are expected
/// (`buf` may be one byte longer, to see the end of the file): one pread
/// in the usual case. A regular file's pread returns less than asked only
/// at its end, so a first read of exactly `want` bytes ends there; anything
/// shorter is read on. Returns the bytes read (`want + 1`: longer).
fn read_chunk(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    offset: u64,
    want: usize,
) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Errno::from(e)),
        }
        if done == want {
            // One byte short of a probe: the end of the file (a file that
            // grows later is caught by nothing here, as any write after
            // the compare).
            break;
        }
    }
    Ok(done)
}

/// Byte equality without the C library's memcmp (musl compares a byte at a
/// time, and the size-optimized build vectorizes nothing): 64-byte blocks
/// as 64-bit words folded with XOR/OR.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |p: &[u8]| <[u8; 8]>::try_from(p).map_or(0, u64::from_ne_bytes);
    let mut ca = a.chunks_exact(64);
    let mut cb = b.chunks_exact(64);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let mut d = 0u64;
        for (p, q) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
            d |= word(p) ^ word(q);
        }
        if d != 0 {
            return false;
        }
    }
    ca.remainder() == cb.remainder()
}

/// Extended attributes: (name, value) pairs.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The extended attributes of an open file, sorted by name (names and
/// values), at most 64 KiB of names and 64 KiB per value, as the kernel
/// allows.
pub fn xattrs(fd: impl AsFd) -> Result<Xattrs, Errno> {
    let fd = fd.as_fd();
    let mut names = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::flistxattr(fd, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < 65536 => names.resize(65536, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(Errno::from(e)),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 256];
        let n = loop {
            match rustix::fs::fgetxattr(fd, cname.as_c_str(), &mut value) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) if value.len() < 65536 => value.resize(65536, 0),
                // Removed meanwhile.
                Err(rustix::io::Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(Errno::from(e)),
            }
        };
        if n != usize::MAX {
            value.truncate(n);
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Copies extended attributes to an open file (after its owner is set:
/// chown drops security.capability).
pub fn set_xattrs(fd: impl AsFd, attrs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Errno> {
    for (name, value) in attrs {
        let Ok(cname) = std::ffi::CString::new(name.as_slice()) else {
            continue;
        };
        rustix::fs::fsetxattr(
            fd.as_fd(),
            cname.as_c_str(),
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(Errno::from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn content_comparison() {
        let dir = std::env::temp_dir().join(format!("vsbox-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, data: &[u8]| {
            let p = dir.join(name);
            std::fs::File::create(&p).unwrap().write_all(data).unwrap();
            std::fs::File::open(p).unwrap()
        };
        let big: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut other = big.clone();
        *other.last_mut().unwrap() ^= 1;
        let a = write("a", &big);
        let b = write("b", &big);
        let c = write("c", &other);
        let short = write("d", &big[..100]);
        let mut bufs = Buffers::default();
        let size = big.len() as u64;
        assert!(bufs.same_content(a.as_fd(), b.as_fd(), size).unwrap());
        assert!(!bufs.same_content(a.as_fd(), c.as_fd(), size).unwrap());
        assert!(!bufs.same_content(a.as_fd(), short.as_fd(), size).unwrap());
        // A file longer than the size looked at is not the same.
        assert!(!bufs.same_content(a.as_fd(), b.as_fd(), 100).unwrap());
        assert!(
            bufs.same_content(short.as_fd(), short.as_fd(), 100)
                .unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
