//! Creating processes in new namespaces (clone3) and joining namespaces
//! through a pidfd (setns), which rustix does not wrap in these forms.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use linux_raw_sys::general::{__NR_clone3, __NR_setns, SIGCHLD, clone_args};

use super::errno::Errno;
use super::syscall::raw;

/// Namespace flags shared by clone3, unshare and setns.
pub mod ns {
    use linux_raw_sys::general as k;
    pub const MOUNT: u64 = k::CLONE_NEWNS as u64;
    pub const PID: u64 = k::CLONE_NEWPID as u64;
    pub const IPC: u64 = k::CLONE_NEWIPC as u64;
    pub const UTS: u64 = k::CLONE_NEWUTS as u64;
    pub const CGROUP: u64 = k::CLONE_NEWCGROUP as u64;
    pub const NET: u64 = k::CLONE_NEWNET as u64;
    pub const USER: u64 = k::CLONE_NEWUSER as u64;
    /// Every namespace flag above: what `unshare_namespaces` accepts.
    pub const ALL: u64 = MOUNT | PID | IPC | UTS | CGROUP | NET | USER;
}

/// Which side of a clone this is.
pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// Number of threads of this process: the entries of /proc/self/task.
/// (Not num_threads of /proc/self/stat: emulators such as qemu-user fake
/// that file and report 0.)
fn thread_count() -> Result<usize, Errno> {
    let entries = std::fs::read_dir("/proc/self/task").map_err(|e| {
        Errno::from_raw(e.raw_os_error().unwrap_or(linux_raw_sys::errno::EIO as i32))
    })?;
    Ok(entries.filter(|e| e.is_ok()).count())
}

/// Proof that this process had one thread when it was made: clone_process
/// needs one. It cannot be sent to another thread (there is none to send it
/// to, and code that starts one must not clone afterwards).
pub struct SingleThreaded(core::marker::PhantomData<*const ()>);

/// Checks that this process has exactly one thread (EDEADLK otherwise).
/// Take it before joining another mount namespace: it reads /proc/self.
pub fn single_threaded() -> Result<SingleThreaded, Errno> {
    if thread_count()? != 1 {
        return Err(Errno::from_raw(linux_raw_sys::errno::EDEADLK as i32));
    }
    Ok(SingleThreaded(core::marker::PhantomData))
}

/// Creates a child process, like fork, in new namespaces `namespaces`
/// (`ns::*` flags), optionally straight into the cgroup v2 directory
/// `cgroup`. The parent gets the child's pid and a pidfd for it.
///
/// The child is a copy of this process; it must only set itself up and then
/// exec or exit. That is sound because the process has a single thread (the
/// `SingleThreaded` proof): no other thread can hold a lock (the
/// allocator's, stdout's) that the child would never see released.
pub fn clone_process(
    _proof: &SingleThreaded,
    namespaces: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Forked, Errno> {
    let mut pidfd: i32 = -1;
    let mut flags = namespaces | linux_raw_sys::general::CLONE_PIDFD as u64;
    let mut args = clone_args {
        flags: 0,
        pidfd: &mut pidfd as *mut i32 as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        flags |= linux_raw_sys::general::CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    args.flags = flags;
    // Without a stack clone3 is a fork: the child continues here with a copy
    // of every value, and no other thread can hold a lock (the proof).
    // SAFETY: `args` and `pidfd` live across the call; see above.
    let ret = unsafe {
        raw(
            __NR_clone3,
            [
                &args as *const clone_args as usize,
                core::mem::size_of::<clone_args>(),
                0,
                0,
                0,
                0,
            ],
        )
    };
    // A guest with the lock flag answers clone3 with ENOSYS (so that libc
    // falls back to clone, whose flags seccomp can see): do the same when
    // clone can express the request.
    let ret = match ret {
        Err(e) if e.name() == Some("ENOSYS") && args.cgroup == 0 => {
            // SAFETY: as above, fork-like (no stack); with CLONE_PIDFD the
            // kernel writes the pidfd through the parent_tid argument (the
            // third on x86_64 and aarch64), which points to `pidfd`.
            unsafe {
                raw(
                    linux_raw_sys::general::__NR_clone,
                    [
                        (flags as usize) | SIGCHLD as usize,
                        0,
                        &mut pidfd as *mut i32 as usize,
                        0,
                        0,
                        0,
                    ],
                )
            }
        }
        other => other,
    }?;
    if ret == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor that
    // nothing else owns in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent {
        pid: ret as i32,
        pidfd,
    })
}

/// include/uapi/linux/close_range.h (not in linux-raw-sys).
const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;

/// Marks every descriptor from `first` up close-on-exec, so that none of
/// them (whatever the caller inherited) reaches the next program.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it closes none, so no owner loses its descriptor.
    unsafe {
        raw(
            linux_raw_sys::general::__NR_close_range,
            [
                first as usize,
                u32::MAX as usize,
                CLOSE_RANGE_CLOEXEC,
                0,
                0,
                0,
            ],
        )
    }
    .map(|_| ())
}

/// Takes ownership of descriptor `fd`, inherited from the process that
/// executed this one and named on the command line (vinit --ready-fd), and
/// marks it close-on-exec so nothing started from here inherits it.
/// None if no such descriptor is open.
pub fn take_inherited_fd(fd: i32) -> Option<OwnedFd> {
    if fd < 3 {
        return None;
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor number; a closed
    // number answers EBADF.
    let open = unsafe {
        raw(
            linux_raw_sys::general::__NR_fcntl,
            [
                fd as usize,
                linux_raw_sys::general::F_GETFD as usize,
                0,
                0,
                0,
                0,
            ],
        )
    };
    open.ok()?;
    // SAFETY: the descriptor is open (checked above) and was handed to this
    // process by its parent for it alone; nothing else here owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).ok()?;
    Some(owned)
}

/// Lets descriptor `fd` survive the next exec (it is handed on).
pub fn keep_across_exec(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(Errno::from)
}

/// Moves this thread into the namespaces `namespaces` (`ns::*` flags) of
/// the process that `pidfd` refers to, all in one step (Linux 5.8+).
pub fn setns_pidfd(pidfd: BorrowedFd<'_>, namespaces: u64) -> Result<(), Errno> {
    // SAFETY: setns takes a descriptor and a flag word; it touches no memory
    // of ours.
    unsafe {
        raw(
            __NR_setns,
            [pidfd.as_raw_fd() as usize, namespaces as usize, 0, 0, 0, 0],
        )
    }
    .map(|_| ())
}

/// Moves this process into new namespaces `namespaces` (`ns::*` flags
/// only; anything else is EINVAL). A new user namespace needs a process with
/// one thread; the kernel checks that.
pub fn unshare_namespaces(namespaces: u64) -> Result<(), Errno> {
    if namespaces & !ns::ALL != 0 {
        return Err(Errno::from_raw(linux_raw_sys::errno::EINVAL as i32));
    }
    // Only namespace flags (checked above): none splits the descriptor
    // table (CLONE_FILES), and the root and cwd a new mount namespace gives
    // this thread are referred to by no Rust value.
    // SAFETY: a flag word only; the kernel touches no memory of ours.
    unsafe {
        raw(
            linux_raw_sys::general::__NR_unshare,
            [namespaces as usize, 0, 0, 0, 0, 0],
        )
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_process_counts_its_threads() {
        // The test harness runs tests on threads: at least the main one.
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn a_threaded_process_gets_no_proof() {
        // The harness itself has several threads when tests run in parallel,
        // and this test spawns one to be sure.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        let err = single_threaded().err().expect("refused while threaded");
        assert_eq!(err.name(), Some("EDEADLK"));
        tx.send(()).unwrap();
        t.join().unwrap().unwrap();
    }
}
