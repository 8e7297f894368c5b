//! Inode flags (the chattr flags) through FS_IOC_GETFLAGS / FS_IOC_SETFLAGS,
//! and dropping CAP_LINUX_IMMUTABLE, the capability that guards the
//! immutable, append-only and immutable-unlink flags.
//!
//! The ioctls come from rustix; this module only adds the flag that mainline
//! lacks and keeps the values plain `u32`s so that bits this build does not
//! know survive a read-modify-write. The capability drop needs capget/capset
//! and prctl, which rustix has only behind its `thread` feature.

use std::os::fd::AsFd;

use linux_raw_sys::general::{
    __NR_capget, __NR_capset, __NR_prctl, __user_cap_data_struct, __user_cap_header_struct,
    _LINUX_CAPABILITY_VERSION_3,
};

use super::errno::Errno;
use super::syscall::raw;

/// Immutable-unlink: an immutable non-directory with this flag may be
/// unlinked, renamed, renamed over and hard-linked, while its content and
/// attributes stay frozen. Linux-VServer's value; mainline does not define it
/// and needs the kernel/ patch. An unpatched kernel refuses to set it with
/// EOPNOTSUPP.
pub const FS_IXUNLINK_FL: u32 = 0x0800_0000;

/// The capability needed to change FS_IMMUTABLE_FL, FS_APPEND_FL and (with the
/// kernel/ patch) FS_IXUNLINK_FL.
pub const CAP_LINUX_IMMUTABLE: u32 = linux_raw_sys::general::CAP_LINUX_IMMUTABLE;

/// prctl option: remove a capability from the calling thread's bounding set
/// (`linux_raw_sys::prctl`, a feature this crate does not enable).
const PR_CAPBSET_DROP: usize = 24;

/// Reads the inode flags of an open file.
pub fn get(fd: impl AsFd) -> Result<u32, Errno> {
    rustix::fs::ioctl_getflags(fd)
        .map(|f| f.bits())
        .map_err(Errno::from)
}

/// Replaces the inode flags of an open file. A read-only descriptor is
/// enough; the kernel checks ownership (or CAP_FOWNER) and, for the guarded
/// flags, CAP_LINUX_IMMUTABLE.
pub fn set(fd: impl AsFd, flags: u32) -> Result<(), Errno> {
    rustix::fs::ioctl_setflags(fd, rustix::fs::IFlags::from_bits_retain(flags)).map_err(Errno::from)
}

/// Removes CAP_LINUX_IMMUTABLE from the calling thread's bounding, effective,
/// permitted and inheritable sets, for good: neither this thread nor any
/// program it starts (even as root) can get it back. This is what a guest
/// looks like to the immutable flags.
///
/// Credentials belong to a thread, so other threads of the process keep their
/// capabilities; run this in a thread (or process) made for the purpose.
pub fn drop_linux_immutable() -> Result<(), Errno> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers; it
    // only changes the calling thread's credentials.
    let bounding = unsafe {
        raw(
            __NR_prctl,
            [PR_CAPBSET_DROP, CAP_LINUX_IMMUTABLE as usize, 0, 0, 0, 0],
        )
    };
    let mut data = capget()?;
    let (word, bit) = split(CAP_LINUX_IMMUTABLE);
    data[word].effective &= !bit;
    data[word].permitted &= !bit;
    data[word].inheritable &= !bit;
    let header = __user_cap_header_struct {
        version: _LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Removing a capability from the calling thread breaks no invariant.
    // SAFETY: capset (version 3) reads the header and two live
    // `__user_cap_data_struct`s, valid for the whole call.
    unsafe {
        raw(
            __NR_capset,
            [
                &header as *const _ as usize,
                data.as_ptr() as usize,
                0,
                0,
                0,
                0,
            ],
        )
    }?;
    // Without CAP_SETPCAP the bounding set cannot shrink: then a root program
    // started from here would get the capability back.
    bounding.map(|_| ())
}

/// Whether the calling thread has a capability in its effective set.
pub fn has_effective_capability(cap: u32) -> Result<bool, Errno> {
    if cap >= 64 {
        return Ok(false);
    }
    let (word, bit) = split(cap);
    Ok(capget()?[word].effective & bit != 0)
}

/// The index of a capability's 32-bit word and its bit in that word.
fn split(cap: u32) -> (usize, u32) {
    ((cap / 32) as usize, 1 << (cap % 32))
}

/// The calling thread's capability sets (version 3: two 32-bit words each).
fn capget() -> Result<[__user_cap_data_struct; 2], Errno> {
    let mut header = __user_cap_header_struct {
        version: _LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [__user_cap_data_struct {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget with version 3 writes two `__user_cap_data_struct`s to
    // the data pointer, which points to an array of exactly two; the header is
    // a live value of the type the kernel expects (it may rewrite `version`).
    unsafe {
        raw(
            __NR_capget,
            [
                &mut header as *mut _ as usize,
                data.as_mut_ptr() as usize,
                0,
                0,
                0,
                0,
            ],
        )
    }?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ixunlink_is_free_in_the_uapi_flags() {
        use linux_raw_sys::general::*;
        let known = [
            FS_SECRM_FL,
            FS_UNRM_FL,
            FS_COMPR_FL,
            FS_SYNC_FL,
            FS_IMMUTABLE_FL,
            FS_APPEND_FL,
            FS_NODUMP_FL,
            FS_NOATIME_FL,
            FS_DIRTY_FL,
            FS_COMPRBLK_FL,
            FS_NOCOMP_FL,
            FS_ENCRYPT_FL,
            FS_INDEX_FL,
            FS_IMAGIC_FL,
            FS_JOURNAL_DATA_FL,
            FS_NOTAIL_FL,
            FS_DIRSYNC_FL,
            FS_TOPDIR_FL,
            FS_HUGE_FILE_FL,
            FS_EXTENT_FL,
            FS_VERITY_FL,
            FS_EA_INODE_FL,
            FS_EOFBLOCKS_FL,
            FS_NOCOW_FL,
            FS_DAX_FL,
            FS_INLINE_DATA_FL,
            FS_PROJINHERIT_FL,
            FS_CASEFOLD_FL,
            FS_RESERVED_FL,
        ];
        assert!(known.iter().all(|&f| f & FS_IXUNLINK_FL == 0));
    }

    #[test]
    fn drop_only_affects_the_calling_thread() {
        let before = has_effective_capability(CAP_LINUX_IMMUTABLE).unwrap();
        let dropped = std::thread::spawn(|| {
            drop_linux_immutable().map(|()| has_effective_capability(CAP_LINUX_IMMUTABLE))
        })
        .join()
        .unwrap();
        match dropped {
            Ok(after) => assert!(!after.unwrap()),
            // Not root: the capability was never there to drop.
            Err(e) => assert!(!before, "drop failed with the capability held: {e}"),
        }
        assert_eq!(
            has_effective_capability(CAP_LINUX_IMMUTABLE).unwrap(),
            before
        );
    }

    #[test]
    fn get_on_a_regular_file() {
        // /proc files do not support the ioctl; the crate's own source is on
        // whatever filesystem the checkout is on, which may not either.
        let file = std::fs::File::open(file!()).or_else(|_| std::fs::File::open("Cargo.toml"));
        if let Ok(file) = file {
            match get(&file) {
                Ok(_) => {}
                Err(e) => assert!(
                    matches!(e.name(), Some("ENOTTY" | "EOPNOTSUPP" | "EINVAL")),
                    "{e}"
                ),
            }
        }
    }
}
