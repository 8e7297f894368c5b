//! A sealed in-memory copy of the vsbox binary, for the processes of vsbox
//! that live inside a guest.
//!
//! A guest's pid 1 runs vsbox code for the guest's whole life. Were it the
//! host's binary, a guest root could reach that file through /proc/1/exe and
//! (once nothing runs it) overwrite the host's vsbox: the CVE-2019-5736
//! class. Pid 1 therefore re-executes itself from a memfd copy sealed
//! against every change, so /proc/1/exe leads to that copy only.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};

use crate::Result;
use crate::error::Context;

pub struct SealedBinary(OwnedFd);

impl SealedBinary {
    /// Copies the running binary (/proc/self/exe) into a sealed memfd.
    pub fn of_self() -> Result<Self> {
        let memfd =
            rustix::fs::memfd_create("vsbox", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .context(|| "cannot create a memfd for the guest's copy of vsbox")?;
        let mut exe =
            std::fs::File::open("/proc/self/exe").context(|| "cannot open /proc/self/exe")?;
        let mut out = std::fs::File::from(memfd);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = exe
                .read(&mut buf)
                .context(|| "cannot read /proc/self/exe")?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut out, &buf[..n])
                .context(|| "cannot copy vsbox into a memfd")?;
        }
        let memfd = OwnedFd::from(out);
        rustix::fs::fcntl_add_seals(
            &memfd,
            SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
        )
        .context(|| "cannot seal the guest's copy of vsbox")?;
        Ok(SealedBinary(memfd))
    }

    /// The path that execs the copy (valid while /proc is mounted and this
    /// descriptor open; it is close-on-exec, so nothing inherits it).
    pub fn exec_path(&self) -> String {
        format!("/proc/self/fd/{}", self.0.as_raw_fd())
    }
}
