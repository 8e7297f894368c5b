//! pidfd_send_signal with any signal number, 0 (the liveness probe) and the
//! real-time signals included (rustix's typed `Signal` has neither), and the
//! signalfd the event loops wait on.

use std::os::fd::{AsRawFd, BorrowedFd};

use linux_raw_sys::general::__NR_pidfd_send_signal;

use super::errno::Errno;
use super::syscall::raw;

/// Sends signal `signo` (0..=64; 0 only checks that the process still
/// exists) to the process `pidfd` refers to. The pidfd pins the process:
/// a pid reused after it was opened is never signalled.
pub fn send_signal(pidfd: BorrowedFd<'_>, signo: u32) -> Result<(), Errno> {
    // SAFETY: a descriptor, a signal number, a null siginfo (the kernel fills
    // in a default one) and zero flags; no memory of ours is touched.
    unsafe {
        raw(
            __NR_pidfd_send_signal,
            [pidfd.as_raw_fd() as usize, signo as usize, 0, 0, 0, 0],
        )
    }
    .map(|_| ())
}

/// A close-on-exec, non-blocking signalfd for `signals` (numbers 1..=64,
/// which the caller blocks): vtop's and rebootmgr's event loops.
pub fn signalfd(signals: &[u32]) -> Result<std::os::fd::OwnedFd, Errno> {
    use linux_raw_sys::general::{__NR_signalfd4, O_CLOEXEC, O_NONBLOCK};
    use std::os::fd::FromRawFd;
    let mask: u64 = signals
        .iter()
        .filter(|s| (1..=64).contains(*s))
        .fold(0, |m, s| m | 1 << (s - 1));
    // SAFETY: `mask` is a live 8-byte kernel sigset read during the call
    // only; -1 asks for a new descriptor.
    let fd = unsafe {
        raw(
            __NR_signalfd4,
            [
                usize::MAX,
                &mask as *const u64 as usize,
                8,
                (O_CLOEXEC | O_NONBLOCK) as usize,
                0,
                0,
            ],
        )
    }?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// One pending signal's number from signalfd `fd`, None when none is.
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<u32> {
    let mut info = [0u8; 128];
    match rustix::io::read(fd, &mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]])),
        _ => None,
    }
}
