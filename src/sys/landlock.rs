//! Landlock's two calls that vsbox needs, made raw (rustix has no Landlock
//! API): asking the kernel for its Landlock ABI version, and putting the
//! calling thread in a new domain that only scopes IPC (no filesystem or
//! network access right is handled, so it restricts nothing else).
//!
//! The structure and constants come from linux-raw-sys's `landlock` module
//! (include/uapi/linux/landlock.h).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use linux_raw_sys::general::{__NR_landlock_create_ruleset, __NR_landlock_restrict_self};
use linux_raw_sys::landlock::{LANDLOCK_CREATE_RULESET_VERSION, landlock_ruleset_attr};

use super::errno::Errno;
use super::syscall::raw;

/// `scoped` bit (ABI 6, Linux 6.12): no connect or send to an abstract unix
/// socket bound by a process outside the domain.
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 =
    linux_raw_sys::landlock::LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET as u64;

/// The Landlock ABI version of the running kernel: 1 and up;
/// EOPNOTSUPP when Landlock is built in but not enabled, ENOSYS when the
/// kernel has none.
pub fn abi_version() -> Result<u32, Errno> {
    // SAFETY: with a null attribute, size 0 and the VERSION flag the kernel
    // reads and writes no memory; it only returns the version.
    let version = unsafe {
        raw(
            __NR_landlock_create_ruleset,
            [0, 0, LANDLOCK_CREATE_RULESET_VERSION as usize, 0, 0, 0],
        )
    }?;
    Ok(version as u32)
}

/// Puts the calling thread (and every child it makes from now on) into a
/// new Landlock domain nested in its current one, scoping what `scoped`
/// names and handling no access right. The kernel requires no_new_privs or
/// CAP_SYS_ADMIN (EPERM otherwise), and a kernel whose ABI lacks a `scoped`
/// bit refuses it (EINVAL), or the whole field (E2BIG, before ABI 6).
pub fn restrict_self_scoped(scoped: u64) -> Result<(), Errno> {
    let attr = landlock_ruleset_attr {
        handled_access_fs: 0,
        handled_access_net: 0,
        scoped,
    };
    // SAFETY: `attr` is a live `struct landlock_ruleset_attr` of exactly the
    // size passed; the kernel copies it during the call and keeps no
    // pointer to it.
    let fd = unsafe {
        raw(
            __NR_landlock_create_ruleset,
            [
                &attr as *const landlock_ruleset_attr as usize,
                size_of::<landlock_ruleset_attr>(),
                0,
                0,
                0,
                0,
            ],
        )
    }?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns
    // (it is closed when `ruleset` drops, after the restriction).
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: a descriptor we own and zero flags; no memory is passed.
    unsafe {
        raw(
            __NR_landlock_restrict_self,
            [ruleset.as_raw_fd() as usize, 0, 0, 0, 0, 0],
        )
    }
    .map(|_| ())
}
