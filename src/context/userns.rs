//! User namespaces for guests (S_USERNS): the guest's ids 0..65535 are
//! host ids BASE..BASE+65535, a range of its own, so that root in the guest
//! is an unprivileged user on the host. Its capabilities (CAP_SYS_ADMIN
//! too) then reach only the namespaces its user namespace owns: its mount,
//! pid, ipc, uts and cgroup namespaces, never the host's network or files.
//!
//! The guest tree keeps host ids on disk: the guest's root is an idmapped
//! mount of the tree (mount_setattr MOUNT_ATTR_IDMAP with the guest's user
//! namespace), so a file owned by host uid 0 on disk is owned by the guest's
//! root inside, and a file guest root creates is owned by uid 0 on disk:
//! unified files stay shared with the other guests and the host's tools
//! read the tree as before. Only the tree's own mount is idmapped: a mount
//! the host has made inside the tree keeps its ids unmapped in the guest
//! (nobody), so guest root has no power over its root-owned files.
//!
//! Ranges: slot N is BASE = 2^30 + N * 65536, far above the ids of host
//! users and of /etc/subuid ranges (which start at 100000), allocated under
//! a lock in the run state as the lowest slot no live context holds, and
//! kept in the context's record (`ContextRecord::userns`).
//!
//! The host side is done by the parent before the guest's pid 1 runs
//! (`HostSide::prepare`): the id maps, the guest's cgroup leaf handed to its
//! root (systemd inside manages its own cgroups: delegation), the idmapped
//! tree, and a read-only copy of the host's /sys (a user namespace cannot
//! mount sysfs for a network namespace it does not own, and guests share the
//! host's). Both trees go to pid 1 over a socket (`fdpass`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Gid, Uid};
use rustix::mount::{OpenTreeFlags, open_tree};

use super::fdpass::{self, FdReceiver, FdSender};
use super::runstate::{ContextRecord, RunDir};
use crate::error::Context;
use crate::sys::process::{ns, setns_pidfd};
use crate::{Error, Result};

/// Ids per guest: 0 to 65535, what a distribution's users and groups use.
pub const IDS: u32 = 65536;

/// The first host id of slot 0: 2^30.
const FIRST: u32 = 1 << 30;

/// Slots up to 2^31: every base and every id of a range fits in a positive
/// 32-bit id, far from (uid_t)-1.
const SLOTS: u32 = (1 << 30) / IDS;

/// The files of the guest's cgroup leaf its root must own to manage it
/// (the kernel's cgroup-v2 delegation: the directory, and the files that
/// move processes and enable controllers below; v1 has `tasks` and no
/// threads or subtree_control). The leaf's limit files stay the host's.
const DELEGATED: [&str; 5] = [
    "",
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "tasks",
];

/// The descriptors the channel carries to pid 1, for errors.
const TREES: &str = "the guest's idmapped root and /sys";

/// The first host id of slot `slot`.
fn base_of(slot: u32) -> u32 {
    FIRST + slot * IDS
}

/// The lowest slot whose base is not in `used`.
fn free_slot(used: &[u32]) -> Option<u32> {
    (0..SLOTS).find(|&s| !used.contains(&base_of(s)))
}

/// Gives `record` (claimed, not yet running) a range no other live context
/// has, and writes it to the run state: the base of its range.
pub fn allocate(run: &RunDir, record: &mut ContextRecord) -> Result<u32> {
    run.locked("userns", || {
        let used: Vec<u32> = run
            .list()?
            .iter()
            .filter(|r| r.number != record.number)
            .filter_map(|r| r.userns)
            .collect();
        let slot = free_slot(&used).ok_or_else(|| {
            Error::failure("no free user id range for the guest: every slot is in use")
        })?;
        record.userns = Some(base_of(slot));
        run.update(record)?;
        Ok(base_of(slot))
    })
}

/// The channel between the host side of a start and the guest's pid 1.
pub struct Handoff {
    sender: FdSender,
    receiver: FdReceiver,
}

/// What pid 1 gets from the host: the idmapped guest tree and the host's
/// /sys, read-only, both detached.
pub struct Trees {
    pub root: OwnedFd,
    pub sys: OwnedFd,
}

impl Handoff {
    pub fn new() -> Result<Self> {
        let (sender, receiver) = fdpass::channel(TREES)?;
        Ok(Handoff { sender, receiver })
    }

    /// In the parent, once pid 1 (`pid`) exists and before it goes on: its
    /// id maps to `base`, its cgroup leaves (every hierarchy's) given to its
    /// root, and the trees made and sent. A failure leaves nothing mounted.
    pub fn prepare(&self, pid: i32, base: u32, root: &Path, leaves: &[OwnedFd]) -> Result<()> {
        write_maps(pid, base)?;
        for leaf in leaves {
            delegate(leaf.as_fd(), base)?;
        }
        let userns = rustix::fs::open(
            format!("/proc/{pid}/ns/user"),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .context(|| "cannot open the guest's user namespace")?;
        let tree = idmapped_tree(root, userns.as_fd())?;
        let sys = read_only_sys()?;
        self.sender.send(&tree, TREES)?;
        self.sender.send(&sys, TREES)
    }

    /// In pid 1, after the parent's go: becomes the guest's root (its
    /// credentials are still the host root's, which the guest's user
    /// namespace does not map: files it made would fail with EOVERFLOW),
    /// and takes what `prepare` sent.
    pub fn enter(&self) -> Result<Trees> {
        become_root()?;
        Ok(Trees {
            root: self.receiver.receive(TREES)?,
            sys: self.receiver.receive(TREES)?,
        })
    }
}

/// uid_map and gid_map of pid 1: 0..65535 inside are base.. outside.
/// Written by the parent, privileged in the parent user namespace, so the
/// guest keeps setgroups(2) (its login and su need it).
fn write_maps(pid: i32, base: u32) -> Result<()> {
    let map = format!("0 {base} {IDS}\n");
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &map).map_err(|e| Error::io(format!("cannot write {path}"), &e))?;
    }
    Ok(())
}

/// Hands the guest's cgroup leaf to its root (host uid and gid `base`): it
/// may then make sub-cgroups and move its processes among them, within the
/// limits set above the leaf, which stay the host's.
fn delegate(leaf: BorrowedFd<'_>, base: u32) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(base), Gid::from_raw(base));
    for name in DELEGATED {
        let flags = if name.is_empty() {
            AtFlags::EMPTY_PATH
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        match rustix::fs::chownat(leaf, name, Some(uid), Some(gid), flags) {
            // Not every file is in every hierarchy.
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => {
                return Err(e).context(|| {
                    format!("cannot delegate the guest's cgroup to its root ({name:?} of its leaf)")
                });
            }
        }
    }
    Ok(())
}

/// A detached copy of the guest tree `root`, its own mount idmapped through
/// `userns` (the mounts below it keep their ids: see the module comment).
fn idmapped_tree(root: &Path, userns: BorrowedFd<'_>) -> Result<OwnedFd> {
    let what = || format!("cannot make an idmapped mount of {}", root.display());
    let tree = open_tree(
        CWD,
        root,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .context(what)?;
    crate::sys::mount::idmap(tree.as_fd(), userns).map_err(|e| {
        let fs = fs_type(root).unwrap_or_else(|| "unknown".into());
        Error::failure(no_idmap_message(root, &fs, e))
    })?;
    Ok(tree)
}

/// Why the tree cannot be idmapped, naming the missing feature and the
/// file system (its type, `fs`).
fn no_idmap_message(root: &Path, fs: &str, e: crate::sys::errno::Errno) -> String {
    let why = match e.name() {
        Some("ENOSYS") => {
            "this kernel has no idmapped mounts (mount_setattr, Linux 5.12 and later)".to_string()
        }
        Some("EINVAL") => format!(
            "its file system ({fs}) does not support idmapped mounts (MOUNT_ATTR_IDMAP) on this kernel"
        ),
        _ => format!("{} (file system {fs})", e.describe()),
    };
    format!(
        "cannot give guest root {} as an idmapped mount (S_USERNS=yes): {why}",
        root.display()
    )
}

/// The file system type of the mount `path` is on, from mountinfo.
fn fs_type(path: &Path) -> Option<String> {
    let st = rustix::fs::statx(CWD, path, AtFlags::empty(), rustix::fs::StatxFlags::MNT_ID).ok()?;
    let id = st.stx_mnt_id.to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = info.lines().find(|l| l.split(' ').next() == Some(&id))?;
    let (_, right) = line.split_once(" - ")?;
    right.split(' ').next().map(str::to_string)
}

/// A detached, read-only (nosuid, nodev, noexec) copy of the host's sysfs
/// mount, without the mounts below it (the host's cgroup file systems,
/// debugfs, securityfs...): the guest mounts its own cgroup2 on its
/// /sys/fs/cgroup. Its files belong to host root, unmapped in the guest.
fn read_only_sys() -> Result<OwnedFd> {
    let what = || "cannot make a copy of the host's /sys for the guest";
    let sys = open_tree(
        CWD,
        "/sys",
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .context(what)?;
    crate::sys::mount::seal_read_only(sys.as_fd()).context(what)?;
    Ok(sys)
}

/// In a joiner's child, after it has joined the guest's other namespaces
/// (as host root, which may still be cloned into the guest's cgroup):
/// enters the user namespace of the guest whose pid 1 is `pidfd`, and
/// becomes its root, as every guest process is.
pub fn enter(pidfd: BorrowedFd<'_>) -> Result<()> {
    setns_pidfd(pidfd, ns::USER).context(|| "cannot enter the guest's user namespace")?;
    become_root()
}

/// Becomes uid and gid 0 of the user namespace this process is in, with no
/// supplementary groups; it has every capability there, so it may.
fn become_root() -> Result<()> {
    rustix::thread::set_thread_groups(&[]).context(|| "cannot clear the supplementary groups")?;
    rustix::thread::set_thread_gid(Gid::ROOT).context(|| "cannot become the guest's root group")?;
    rustix::thread::set_thread_uid(Uid::ROOT).context(|| "cannot become the guest's root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_high_disjoint_and_fit_in_32_bits() {
        assert_eq!(base_of(0), 1 << 30);
        assert_eq!(base_of(1) - base_of(0), IDS);
        let last = base_of(SLOTS - 1) + (IDS - 1);
        assert!(last <= i32::MAX as u32, "{last}");
        assert_eq!(free_slot(&[]), Some(0));
        assert_eq!(free_slot(&[base_of(0), base_of(2)]), Some(1));
        let all: Vec<u32> = (0..SLOTS).map(base_of).collect();
        assert_eq!(free_slot(&all), None);
    }

    #[test]
    fn the_missing_idmap_error_names_the_feature_and_the_file_system() {
        let einval = crate::sys::errno::Errno::from_raw(linux_raw_sys::errno::EINVAL as i32);
        let text = no_idmap_message(Path::new("/srv/g"), "proc", einval);
        assert!(
            text.contains("idmapped mounts (MOUNT_ATTR_IDMAP)"),
            "{text}"
        );
        assert!(text.contains("(proc)"), "{text}");
        let enosys = crate::sys::errno::Errno::from_raw(linux_raw_sys::errno::ENOSYS as i32);
        let text = no_idmap_message(Path::new("/srv/g"), "ext4", enosys);
        assert!(text.contains("no idmapped mounts (mount_setattr"), "{text}");
    }
}
