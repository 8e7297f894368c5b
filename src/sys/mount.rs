//! mount_setattr(2), which rustix 1.1 lacks: the mount attributes of a
//! detached tree (open_tree OPEN_TREE_CLONE), set before it is attached.

use std::os::fd::{AsRawFd, BorrowedFd};

use linux_raw_sys::general::{
    __NR_mount_setattr, AT_EMPTY_PATH, AT_RECURSIVE, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, mount_attr,
};

use super::errno::Errno;
use super::syscall::raw;

/// Sets `attr` (and, with `userns`, the id mapping of that user namespace)
/// on the mount `tree` refers to, and with `recursive` on every mount
/// below it.
fn set_attr(
    tree: BorrowedFd<'_>,
    attr: u64,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> Result<(), Errno> {
    let args = mount_attr {
        attr_set: attr,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: a descriptor, an empty NUL-terminated path, the flags, and a
    // pointer to `args` with its exact size; the kernel only reads `args`
    // during the call.
    unsafe {
        raw(
            __NR_mount_setattr,
            [
                tree.as_raw_fd() as usize,
                c"".as_ptr() as usize,
                flags as usize,
                &args as *const mount_attr as usize,
                core::mem::size_of::<mount_attr>(),
                0,
            ],
        )
    }
    .map(|_| ())
}

/// Makes the detached mount `tree` (not the mounts below it) show the ids
/// of its file system through user namespace `userns`: a file owned by id
/// N on disk is owned by whatever N maps to in `userns`, and back on write.
/// EINVAL: the file system cannot be idmapped; ENOSYS: the kernel has no
/// mount_setattr (before 5.12).
pub fn idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> Result<(), Errno> {
    set_attr(tree, u64::from(MOUNT_ATTR_IDMAP), Some(userns), false)
}

/// Makes the detached tree `tree` read-only, nosuid, nodev and noexec,
/// every mount in it.
pub fn seal_read_only(tree: BorrowedFd<'_>) -> Result<(), Errno> {
    let attr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    set_attr(tree, u64::from(attr), None, true)
}
