//! The calling thread's capability sets: capget/capset (version 3, 64 bits
//! per set), the bounding set and the ambient set through prctl, and
//! no_new_privs.
//!
//! rustix has all of these behind its `thread` feature, so this module holds
//! no `unsafe`; it only turns rustix's types into plain `u64` masks (bit N is
//! capability N) so that capabilities newer than this build survive a
//! read-modify-write, and its errors into our `Errno`.
//!
//! Credentials belong to a thread: everything here changes the calling
//! thread only. Call it in the single thread that will exec the guest
//! program (execve keeps only that thread).

use rustix::thread::{self as rt, CapabilitySet, CapabilitySets};

use super::errno::Errno;

/// The highest capability number a set can hold (two 32-bit words).
pub const MAX_CAP: u8 = 63;

/// The effective, permitted and inheritable sets of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// Reads the calling thread's sets (capget).
pub fn get() -> Result<Sets, Errno> {
    let sets = rt::capabilities(None).map_err(Errno::from)?;
    Ok(Sets {
        effective: sets.effective.bits(),
        permitted: sets.permitted.bits(),
        inheritable: sets.inheritable.bits(),
    })
}

/// Replaces the calling thread's sets (capset). The kernel refuses (EPERM)
/// to add to the permitted set, to make effective larger than permitted, or
/// to add to inheritable what is neither permitted nor in the bounding set.
pub fn set(sets: Sets) -> Result<(), Errno> {
    rt::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::from_bits_retain(sets.effective),
            permitted: CapabilitySet::from_bits_retain(sets.permitted),
            inheritable: CapabilitySet::from_bits_retain(sets.inheritable),
        },
    )
    .map_err(Errno::from)
}

fn one(cap: u8) -> Result<CapabilitySet, Errno> {
    if cap > MAX_CAP {
        return Err(Errno::from_raw(linux_raw_sys::errno::EINVAL as i32));
    }
    Ok(CapabilitySet::from_bits_retain(1 << cap))
}

/// Whether `cap` is in the calling thread's bounding set; None when the
/// running kernel does not know `cap` (it is above its CAP_LAST_CAP).
pub fn bounding_has(cap: u8) -> Result<Option<bool>, Errno> {
    match rt::capability_is_in_bounding_set(one(cap)?) {
        Ok(has) => Ok(Some(has)),
        Err(rustix::io::Errno::INVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `cap` from the calling thread's bounding set for good: no program
/// it executes, even a setuid-root one, can gain it. Needs CAP_SETPCAP.
pub fn bounding_drop(cap: u8) -> Result<(), Errno> {
    rt::remove_capability_from_bounding_set(one(cap)?).map_err(Errno::from)
}

/// The bounding set as a mask, read one capability at a time up to the
/// kernel's last one.
pub fn bounding() -> Result<u64, Errno> {
    let mut mask = 0;
    for cap in 0..=MAX_CAP {
        match bounding_has(cap)? {
            Some(true) => mask |= 1 << cap,
            Some(false) => {}
            None => break,
        }
    }
    Ok(mask)
}

/// The ambient set as a mask.
pub fn ambient() -> Result<u64, Errno> {
    let mut mask = 0;
    for cap in 0..=MAX_CAP {
        match rt::capability_is_in_ambient_set(one(cap)?) {
            Ok(true) => mask |= 1 << cap,
            Ok(false) => {}
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(mask)
}

/// Raises `cap` in the ambient set (it must be permitted and inheritable).
pub fn ambient_raise(cap: u8) -> Result<(), Errno> {
    rt::configure_capability_in_ambient_set(one(cap)?, true).map_err(Errno::from)
}

/// Empties the ambient set, so that a non-root program executed later gets
/// no capability it was not given by its own file capabilities.
pub fn ambient_clear_all() -> Result<(), Errno> {
    rt::clear_ambient_capability_set().map_err(Errno::from)
}

/// Sets no_new_privs: from now on execve never grants privileges (setuid
/// bits and file capabilities are ignored). There is no way back.
pub fn set_no_new_privs() -> Result<(), Errno> {
    rt::set_no_new_privs(true).map_err(Errno::from)
}

/// Whether no_new_privs is set for the calling thread.
pub fn no_new_privs() -> Result<bool, Errno> {
    rt::no_new_privs().map_err(Errno::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_consistent_with_proc_status() {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let field = |name: &str| {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in /proc/thread-self/status"));
            u64::from_str_radix(line.trim(), 16).unwrap()
        };
        let sets = get().unwrap();
        assert_eq!(sets.effective, field("CapEff:"));
        assert_eq!(sets.permitted, field("CapPrm:"));
        assert_eq!(sets.inheritable, field("CapInh:"));
        assert_eq!(bounding().unwrap(), field("CapBnd:"));
        assert_eq!(ambient().unwrap(), field("CapAmb:"));
    }

    #[test]
    fn unknown_capabilities_read_as_none() {
        assert_eq!(bounding_has(63).unwrap(), None);
        assert!(bounding_has(64).is_err());
        assert!(bounding_has(0).unwrap().is_some());
    }

    #[test]
    fn setting_the_same_sets_is_allowed() {
        set(get().unwrap()).unwrap();
    }
}
