//! Signal masks and synchronous waiting, for the guest's pid 1: it blocks
//! every signal and takes them one at a time with sigtimedwait, so its loop
//! needs no handler and no allocation. A signalfd does the same for a loop
//! that also polls descriptors (the stdio relay).

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use linux_raw_sys::general::{
    __NR_rt_sigprocmask, __NR_rt_sigtimedwait, __NR_signalfd4, O_CLOEXEC, O_NONBLOCK, SIG_BLOCK,
    SIG_SETMASK,
};

use super::errno::Errno;
use super::syscall::raw;

/// A kernel signal set (64 signals on x86_64 and aarch64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigSet(u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);

    /// Every signal but the ones that report faults of this very process:
    /// blocking those would hang it instead of ending it.
    pub fn all_but_faults() -> SigSet {
        use linux_raw_sys::general::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP};
        let mut set = SigSet(!0);
        for s in [SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP] {
            set.0 &= !(1u64 << (s - 1));
        }
        set
    }

    /// This set and signal `signo`.
    pub fn with(self, signo: u32) -> SigSet {
        if (1..=64).contains(&signo) {
            SigSet(self.0 | 1u64 << (signo - 1))
        } else {
            self
        }
    }

    pub fn contains(self, signo: u32) -> bool {
        (1..=64).contains(&signo) && self.0 & (1u64 << (signo - 1)) != 0
    }
}

fn sigprocmask(how: u32, set: SigSet) -> Result<SigSet, Errno> {
    let mut old: u64 = 0;
    // SAFETY: both pointers refer to live u64 signal sets of the size passed
    // (8 bytes, the kernel's sigset size on these architectures).
    unsafe {
        raw(
            __NR_rt_sigprocmask,
            [
                how as usize,
                &set.0 as *const u64 as usize,
                &mut old as *mut u64 as usize,
                8,
                0,
                0,
            ],
        )
    }?;
    Ok(SigSet(old))
}

/// Adds `set` to the blocked signals; returns the previous mask.
pub fn block(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_BLOCK, set)
}

/// Replaces the blocked signals with `set` (EMPTY before exec: a blocked
/// mask survives exec and would confuse the next program).
pub fn set_mask(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_SETMASK, set)
}

/// Restores the default action of SIGPIPE (end the process quietly), as
/// every C program has it. Rust starts programs with SIGPIPE ignored, so
/// `vsbox --list | head` would get EPIPE on stdout and abort in println!.
pub fn default_sigpipe() -> Result<(), Errno> {
    // struct kernel_sigaction: handler, flags, restorer, mask. All zero is
    // SIG_DFL with no flags and an empty mask.
    let action = [0usize; 4];
    // SAFETY: `action` is a live kernel_sigaction of the size the kernel
    // reads; SIG_DFL installs no handler code; the old action is not asked
    // for (null).
    unsafe {
        raw(
            linux_raw_sys::general::__NR_rt_sigaction,
            [
                linux_raw_sys::general::SIGPIPE as usize,
                action.as_ptr() as usize,
                0,
                8,
                0,
                0,
            ],
        )
    }
    .map(|_| ())
}

/// Whether signal `signo` is ignored (SIG_IGN), as nohup or a shell's
/// background job leaves SIGHUP or SIGINT.
pub fn is_ignored(signo: u32) -> Result<bool, Errno> {
    // struct kernel_sigaction: the handler first (then flags, restorer on
    // x86_64, mask): 4 words hold it on every architecture here.
    let mut old = [0usize; 4];
    // SAFETY: no new action (null) is installed; the kernel writes the
    // current one into `old`, which is large enough and lives across the
    // call.
    unsafe {
        raw(
            linux_raw_sys::general::__NR_rt_sigaction,
            [signo as usize, 0, old.as_mut_ptr() as usize, 8, 0, 0],
        )
    }?;
    // SIG_IGN is 1.
    Ok(old[0] == 1)
}

/// A signal taken by `wait`: its number and the pid that sent it (or, for
/// SIGCHLD, the child that changed state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signo: u32,
    pub pid: i32,
}

/// Waits for one of the (blocked) signals in `set`.
pub fn wait(set: SigSet) -> Result<Received, Errno> {
    loop {
        match sigtimedwait(set, None) {
            Err(e) if e.name() == Some("EINTR") => continue,
            taken => return taken,
        }
    }
}

/// Waits at most `timeout` for one of the (blocked) signals in `set`; None
/// when none came in time (or the wait was interrupted: the caller, which
/// has a deadline of its own, looks again).
pub fn wait_for(set: SigSet, timeout: std::time::Duration) -> Result<Option<Received>, Errno> {
    match sigtimedwait(set, Some(timeout)) {
        Ok(got) => Ok(Some(got)),
        Err(e) if matches!(e.name(), Some("EAGAIN" | "EINTR")) => Ok(None),
        Err(e) => Err(e),
    }
}

/// rt_sigtimedwait(2): `timeout` None waits without limit.
fn sigtimedwait(set: SigSet, timeout: Option<std::time::Duration>) -> Result<Received, Errno> {
    // siginfo_t is 128 bytes: si_signo at offset 0, si_pid at offset 16.
    let mut info = [0u8; 128];
    // struct timespec: seconds and nanoseconds, two longs.
    let spec: Option<[i64; 2]> = timeout.map(|t| {
        [
            i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            i64::from(t.subsec_nanos()),
        ]
    });
    let spec_ptr = spec.as_ref().map_or(0, |s| s.as_ptr() as usize);
    // SAFETY: `set` is an 8-byte sigset, `info` a 128-byte siginfo_t
    // buffer, `spec_ptr` null (no limit) or a timespec that lives across
    // the call; the kernel only reads the set and the timespec.
    unsafe {
        raw(
            __NR_rt_sigtimedwait,
            [
                &set.0 as *const u64 as usize,
                info.as_mut_ptr() as usize,
                spec_ptr,
                8,
                0,
                0,
            ],
        )
    }?;
    let signo = u32::from_ne_bytes(info[0..4].try_into().unwrap());
    let pid = i32::from_ne_bytes(info[16..20].try_into().unwrap());
    Ok(Received { signo, pid })
}

/// A close-on-exec, non-blocking descriptor that reads the signals of
/// `set` (which must be blocked) instead of having them delivered, so that
/// poll(2) can wait for them next to other descriptors.
pub fn signalfd(set: SigSet) -> Result<OwnedFd, Errno> {
    // SFD_CLOEXEC and SFD_NONBLOCK are O_CLOEXEC and O_NONBLOCK.
    let flags = (O_CLOEXEC | O_NONBLOCK) as usize;
    // SAFETY: -1 asks for a new descriptor; `set` is a live 8-byte sigset
    // read during the call only.
    let fd = unsafe {
        raw(
            __NR_signalfd4,
            [usize::MAX, &set.0 as *const u64 as usize, 8, flags, 0, 0],
        )
    }?;
    // SAFETY: signalfd4 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The next signal waiting on a `signalfd` descriptor, None if there is
/// none.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> Result<Option<u32>, Errno> {
    // struct signalfd_siginfo: 128 bytes, ssi_signo (u32) first.
    let mut info = [0u8; 128];
    match rustix::io::read(fd, &mut info) {
        Ok(128) => Ok(Some(u32::from_ne_bytes(info[0..4].try_into().unwrap()))),
        Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(e) => Err(Errno::from(e)),
    }
}

/// The kernel's first real-time signal (glibc's SIGRTMIN is 34: it keeps
/// 32 and 33 for itself; so does musl).
const SIGRTMIN: i32 = 34;

/// Real-time signal SIGRTMIN+`n`, as glibc programs (systemd) number them,
/// for sending to another process.
pub fn realtime(n: u8) -> rustix::process::Signal {
    let sig = SIGRTMIN + i32::from(n.min(30));
    // SAFETY: 34..=64 are valid signal numbers; vsbox has no libc that
    // reserves any of them, and the signal is only sent to another process.
    unsafe { rustix::process::Signal::from_raw_unchecked(sig) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::general::{SIGKILL, SIGSEGV, SIGTERM, SIGUSR1};

    #[test]
    fn fault_signals_stay_unblocked() {
        let set = SigSet::all_but_faults();
        assert!(set.contains(SIGTERM));
        assert!(
            set.contains(SIGKILL),
            "in the set, though the kernel never blocks it"
        );
        assert!(!set.contains(SIGSEGV));
        assert!(!set.contains(0) && !set.contains(65));
    }

    #[test]
    fn a_blocked_signal_is_taken_by_wait() {
        // Signals sent with tgkill to this thread only, so the test harness's
        // other threads are not involved.
        let mut set = SigSet::EMPTY;
        set.0 |= 1 << (SIGUSR1 - 1);
        let old = block(set).unwrap();
        let tid = rustix::thread::gettid();
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        // SAFETY: tgkill takes three integers.
        unsafe {
            raw(
                linux_raw_sys::general::__NR_tgkill,
                [
                    pid as usize,
                    tid.as_raw_nonzero().get() as usize,
                    SIGUSR1 as usize,
                    0,
                    0,
                    0,
                ],
            )
        }
        .unwrap();
        let got = wait(set).unwrap();
        assert_eq!(got.signo, SIGUSR1);
        assert_eq!(got.pid, pid);
        set_mask(old).unwrap();
    }

    #[test]
    fn wait_for_gives_up_after_its_timeout() {
        use linux_raw_sys::general::SIGUSR2;
        // Blocked in this thread only; nothing sends it.
        let set = SigSet::EMPTY.with(SIGUSR2);
        let old = block(set).unwrap();
        let begun = std::time::Instant::now();
        let got = wait_for(set, std::time::Duration::from_millis(100)).unwrap();
        assert_eq!(got, None);
        assert!(begun.elapsed() >= std::time::Duration::from_millis(90));
        set_mask(old).unwrap();
    }
}
