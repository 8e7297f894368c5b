//! SysV message queues: enough to make and remove one, so tests can prove a
//! guest cannot see the host's IPC objects.

use linux_raw_sys::general::{__NR_msgctl, __NR_msgget};

use super::errno::Errno;
use super::syscall::raw;

// include/uapi/linux/ipc.h (not in linux-raw-sys).
const IPC_CREAT: u32 = 0o1000;
const IPC_RMID: u32 = 0;

/// Creates (or opens) the message queue with `key`, mode 0600; returns its id.
pub fn msgget(key: i32) -> Result<i32, Errno> {
    // SAFETY: msgget takes two integers and touches no memory of ours.
    unsafe {
        raw(
            __NR_msgget,
            [key as usize, (IPC_CREAT | 0o600) as usize, 0, 0, 0, 0],
        )
    }
    .map(|id| id as i32)
}

/// Removes message queue `id`.
pub fn msg_remove(id: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID ignores the buffer argument, passed as null.
    unsafe { raw(__NR_msgctl, [id as usize, IPC_RMID as usize, 0, 0, 0, 0]) }.map(|_| ())
}
