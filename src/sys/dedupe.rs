//! FIDEDUPERANGE: ask the filesystem to share the extents of two ranges that
//! hold the same bytes. The kernel locks both files, compares the ranges and
//! shares them only if they are equal, so a file that changes meanwhile is
//! never corrupted. Filesystems with shared extents (btrfs, xfs with reflink)
//! implement it; others answer EOPNOTSUPP or EINVAL.
//!
//! rustix has no wrapper for this ioctl (its argument ends in a flexible
//! array), so the request with exactly one destination is built here.

use std::os::fd::{AsFd, AsRawFd};

use linux_raw_sys::general::{__NR_ioctl, FILE_DEDUPE_RANGE_DIFFERS, FILE_DEDUPE_RANGE_SAME};
use linux_raw_sys::ioctl::FIDEDUPERANGE;

use super::errno::Errno;
use super::syscall::raw;

/// `struct file_dedupe_range` followed by one `struct file_dedupe_range_info`.
#[repr(C)]
struct Request {
    src_offset: u64,
    src_length: u64,
    dest_count: u16,
    reserved1: u16,
    reserved2: u32,
    dest_fd: i64,
    dest_offset: u64,
    bytes_deduped: u64,
    status: i32,
    reserved: u32,
}

/// What the filesystem did with one range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The ranges were equal; this many bytes (from the start of the range)
    /// now share extents. It may be less than asked: call again for the rest.
    Same(u64),
    /// The ranges differ: nothing was shared.
    Differs,
}

/// Shares `len` bytes of `src` at `src_offset` with `dest` at
/// `dest_offset` if they are equal. `src` must be open for reading; `dest`
/// for writing, or owned by the caller, or the caller has CAP_SYS_ADMIN.
pub fn dedupe_range(
    src: impl AsFd,
    src_offset: u64,
    len: u64,
    dest: impl AsFd,
    dest_offset: u64,
) -> Result<Outcome, Errno> {
    let mut req = Request {
        src_offset,
        src_length: len,
        dest_count: 1,
        reserved1: 0,
        reserved2: 0,
        dest_fd: i64::from(dest.as_fd().as_raw_fd()),
        dest_offset,
        bytes_deduped: 0,
        status: 0,
        reserved: 0,
    };
    let fd = src.as_fd().as_raw_fd();
    // FIDEDUPERANGE reads a `file_dedupe_range` header and `dest_count` (1)
    // `file_dedupe_range_info` entries that follow it, and writes back
    // `bytes_deduped` and `status` of that entry.
    // SAFETY: `Request` is exactly that layout (repr(C), 24 + 32 bytes),
    // alive and exclusively borrowed for the call; both fds are open.
    unsafe {
        raw(
            __NR_ioctl,
            [
                fd as usize,
                FIDEDUPERANGE as usize,
                &mut req as *mut Request as usize,
                0,
                0,
                0,
            ],
        )
    }?;
    match req.status {
        s if s == FILE_DEDUPE_RANGE_SAME as i32 => Ok(Outcome::Same(req.bytes_deduped)),
        s if s == FILE_DEDUPE_RANGE_DIFFERS as i32 => Ok(Outcome::Differs),
        s if s < 0 => Err(Errno::from_raw(-s)),
        _ => Err(Errno::from_raw(linux_raw_sys::errno::EIO as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_the_uapi() {
        use linux_raw_sys::general::{file_dedupe_range, file_dedupe_range_info};
        assert_eq!(
            std::mem::size_of::<Request>(),
            std::mem::size_of::<file_dedupe_range>()
                + std::mem::size_of::<file_dedupe_range_info>()
        );
        assert_eq!(std::mem::offset_of!(Request, dest_fd), 24);
        assert_eq!(std::mem::offset_of!(Request, status), 48);
    }

    #[test]
    fn a_file_that_is_not_on_a_sharing_filesystem_is_an_error_not_a_crash() {
        let file = std::fs::File::open("Cargo.toml").unwrap();
        // Whatever the filesystem of the checkout, a pipe is never one.
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(dedupe_range(&file, 0, 1, &r, 0).is_err());
    }
}
