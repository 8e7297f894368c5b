//! The guest's filesystem view, set up by its pid 1 in a fresh mount
//! namespace: private propagation, pivot_root into the guest root (never a
//! plain chroot), a procfs of the guest's pid namespace with the dangerous
//! files masked or read-only, and a private devpts instance.
//!
//! Nothing of the guest runs while this happens, but the guest tree is
//! attacker-made: every mount point is checked to be a real directory (not a
//! symlink that would aim the mount somewhere else), and mounts are made
//! after pivot_root, where any path resolves inside the guest.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{CWD, FileType};
use rustix::mount::{
    MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags, mount,
    mount_bind, mount_bind_recursive, mount_change, mount_remount, move_mount, open_tree, unmount,
};

use super::guestfile;
use crate::error::Context;
use crate::{Error, Result};

/// /proc files hidden behind /dev/null: kernel memory, keys, addresses and
/// timing information about the whole host.
const MASKED: &[&str] = &[
    "kcore",
    "keys",
    "kallsyms",
    "timer_list",
    "sched_debug",
    "latency_stats",
];

/// /proc entries made read-only: host-wide settings and triggers.
const READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "bus", "fs", "irq"];

/// Mount options of the guest's devpts: its own instance, so the guest sees
/// only its own terminals; ptmx usable by everyone, as /dev/ptmx is.
const DEVPTS_OPTIONS: &std::ffi::CStr = c"newinstance,ptmxmode=0666,mode=0620,gid=5";

/// The device nodes a guest's /dev gets (name, major, minor): the harmless
/// ones every program expects. Nothing else (disks, /dev/mem, consoles) is
/// there, whatever nodes the guest tree has in its own /dev: the guest's
/// /dev is a fresh tmpfs. They are nodes of the guest's own, made there,
/// not binds of the host's: guest root (CAP_FOWNER, CAP_CHOWN) could chmod
/// or chown a bound host inode, the host's /dev/null itself.
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Links every /dev has.
const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Stops mounts made here from reaching the host, and the host's from
/// reaching here.
pub fn make_private() -> Result<()> {
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .context(|| "cannot make the mounts private")
}

/// Detached copies of /dev/null, one per masked /proc file: in a guest, of
/// its own /dev/null (`mount_dev` first), so that guest root changing a
/// masked file's mode changes only its own node; without a guest root, of
/// the host's (the context has the host's files anyway).
pub struct Masks(Vec<OwnedFd>);

impl Masks {
    pub fn take() -> Result<Self> {
        let mut fds = Vec::with_capacity(MASKED.len());
        for _ in MASKED {
            let fd = open_tree(
                CWD,
                "/dev/null",
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .context(|| "cannot clone /dev/null to mask /proc files")?;
            fds.push(fd);
        }
        Ok(Masks(fds))
    }
}

/// Detached copies of the host's nodes of `DEVICES`, for a guest in a user
/// namespace of its own: it can make no device node (no CAP_MKNOD over the
/// host's devices, and its tmpfs is nodev), so the host's are bound. Guest
/// root cannot chmod or chown them: their owner is not mapped in its
/// namespace. Taken before pivot_root.
pub struct HostDevices(Vec<OwnedFd>);

impl HostDevices {
    pub fn take() -> Result<Self> {
        DEVICES
            .iter()
            .map(|(name, _, _)| {
                let path = format!("/dev/{name}");
                open_tree(
                    CWD,
                    path.as_str(),
                    OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
                )
                .context(|| format!("cannot clone the host's {path} for the guest's /dev"))
            })
            .collect::<Result<_>>()
            .map(HostDevices)
    }
}

/// Makes `root` the root of this mount namespace and detaches the old one,
/// so nothing of the host stays reachable by path.
pub fn pivot_into(root: &Path) -> Result<()> {
    let what = || format!("cannot use {} as the guest root", root.display());
    require_directory(root).map_err(|e| Error::failure(format!("{}: {e}", what())))?;
    // pivot_root needs the new root to be a mount point.
    mount_bind_recursive(root, root).context(what)?;
    pivot_here(root)
}

/// A guest in a user namespace of its own: attaches `tree` (the guest tree,
/// idmapped, made by the host: see `userns`) on `root`, mounts the guest's
/// procfs in it, then makes it the root. The procfs comes first: in a user
/// namespace the kernel mounts a procfs only while a fully visible one (the
/// host's, detached by the pivot) is in the mount namespace.
pub fn pivot_into_idmapped(root: &Path, tree: OwnedFd, masks: Masks) -> Result<()> {
    let what = || format!("cannot use {} as the guest root", root.display());
    require_directory(root).map_err(|e| Error::failure(format!("{}: {e}", what())))?;
    move_mount(
        &tree,
        "",
        CWD,
        root,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .context(what)?;
    let proc = root.join("proc");
    let proc = proc
        .to_str()
        .ok_or_else(|| Error::failure(format!("{}: not UTF-8", what())))?;
    mount_proc(proc, masks)?;
    pivot_here(root)
}

/// pivot_root into `root`, a mount point.
fn pivot_here(root: &Path) -> Result<()> {
    rustix::process::chdir(root)
        .context(|| format!("cannot use {} as the guest root", root.display()))?;
    // With new root and put_old both ".", the old root ends up stacked on
    // top of the new one, and a lazy unmount of "." takes it away.
    rustix::process::pivot_root(".", ".")
        .context(|| format!("cannot pivot_root into {}", root.display()))?;
    unmount(".", UnmountFlags::DETACH).context(|| "cannot detach the host's root")?;
    rustix::process::chdir("/").context(|| "cannot change to the guest root")?;
    Ok(())
}

/// Mounts the procfs of this pid namespace on `target` (an absolute path in
/// the current root) and masks or freezes the host-wide files.
pub fn mount_proc(target: &str, masks: Masks) -> Result<()> {
    require_directory(Path::new(target))
        .map_err(|e| Error::failure(format!("cannot mount {target}: {e}")))?;
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount("proc", target, "proc", flags, None).context(|| format!("cannot mount {target}"))?;
    for (name, null) in MASKED.iter().zip(masks.0) {
        let path = format!("{target}/{name}");
        match move_mount(
            &null,
            "",
            CWD,
            path.as_str(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        ) {
            // Not every kernel has every file (keys needs CONFIG_KEYS).
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).context(|| format!("cannot mask {path}")),
        }
    }
    for name in READ_ONLY {
        let path = format!("{target}/{name}");
        match mount_bind(path.as_str(), path.as_str()) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e).context(|| format!("cannot protect {path}")),
        }
        mount_remount(
            path.as_str(),
            MountFlags::BIND | MountFlags::RDONLY | flags,
            "",
        )
        .context(|| format!("cannot make {path} read-only"))?;
    }
    Ok(())
}

/// The file systems a modern init expects, which the guest tree does not
/// bring, besides /dev (`mount_dev`): a boot id of its own, /run as a tmpfs
/// with /run/lock, and /sys read-only with the guest's own cgroup2
/// hierarchy on /sys/fs/cgroup. Call it inside the guest, after pivot_root
/// and with /proc mounted. `sys`: a guest in a user namespace gets the
/// host's /sys as a read-only copy made by the host (`userns`), since it
/// may not mount a sysfs.
///
/// The cgroup2 mount is made in the guest's cgroup namespace, so its root
/// is the guest's leaf: the guest's init may make sub-cgroups and move its
/// processes among them (systemd needs that), while the limits, set on the
/// directory above the leaf, stay out of its sight and reach.
pub fn mount_run_and_sys(sys: Option<OwnedFd>) -> Result<()> {
    give_boot_id()?;
    let run = MountFlags::NOSUID | MountFlags::NODEV;
    if mount_on("tmpfs", "/run", "tmpfs", run, c"mode=755,size=20%")? {
        // Its own mount, as on a booted host: systemd mounts it otherwise,
        // which a guest may not do.
        make_dir("/run/lock", 0o755)?;
        mount_on(
            "tmpfs",
            "/run/lock",
            "tmpfs",
            run | MountFlags::NOEXEC,
            c"mode=1777,size=5m",
        )?;
        // What systemd and others read to know whose container they are in
        // (besides $container).
        make_dir("/run/host", 0o755)?;
        std::fs::write("/run/host/container-manager", "vsbox\n")
            .map_err(|e| Error::io("cannot write /run/host/container-manager", &e))?;
    }
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let has_sys = match sys {
        Some(tree) => attach_on(tree, "/sys")?,
        None => mount_on("sysfs", "/sys", "sysfs", flags | MountFlags::RDONLY, c"")?,
    };
    if has_sys {
        mount_on("cgroup2", "/sys/fs/cgroup", "cgroup2", flags, c"")?;
    }
    Ok(())
}

/// Each start of a guest is a boot of its own, with its own boot id (the
/// journal and `last` tell boots apart by it): a random UUID over the
/// kernel's host-wide /proc/sys/kernel/random/boot_id, from a file made on
/// the guest's fresh /dev and unlinked once bound.
fn give_boot_id() -> Result<()> {
    const TARGET: &str = "/proc/sys/kernel/random/boot_id";
    const SOURCE: &str = "/dev/.vsbox-boot-id";
    let mut b = [0u8; 16];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .context(|| "cannot make a boot id")?;
    // A version 4 (random) UUID, as the kernel makes its own.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}\n",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    std::fs::write(SOURCE, uuid).map_err(|e| Error::io(format!("cannot write {SOURCE}"), &e))?;
    mount_bind(SOURCE, TARGET).context(|| format!("cannot give the guest its {TARGET}"))?;
    mount_remount(TARGET, MountFlags::BIND | MountFlags::RDONLY, "")
        .context(|| format!("cannot make {TARGET} read-only"))?;
    std::fs::remove_file(SOURCE).map_err(|e| Error::io(format!("cannot remove {SOURCE}"), &e))
}

/// A tmpfs on /dev with the nodes of `DEVICES`, the usual links, a private
/// devpts (`mount_devpts`), /dev/shm and the guest's own POSIX message
/// queues (its ipc namespace's). Call it inside the guest, after
/// pivot_root, before anything of the guest runs (it needs CAP_MKNOD).
/// `host`: in a user namespace, the host's nodes to bind instead.
pub fn mount_dev(host: Option<HostDevices>) -> Result<()> {
    require_directory(Path::new("/dev"))
        .map_err(|e| Error::failure(format!("cannot set up /dev: {e}")))?;
    // Before the tmpfs hides it.
    let tree_dev = open_tree(
        CWD,
        "/dev",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context(|| "cannot keep the guest tree's /dev for rebootmgr")?;
    mount_on(
        "tmpfs",
        "/dev",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        c"mode=755,size=1m,nr_inodes=4096",
    )?;
    match host {
        None => make_devices()?,
        Some(devices) => bind_devices(devices)?,
    }
    keep_tree_dev(tree_dev)?;
    for (name, target) in DEV_LINKS {
        rustix::fs::symlink(target, format!("/dev/{name}"))
            .context(|| format!("cannot create /dev/{name}"))?;
    }
    make_dir("/dev/shm", 0o1777)?;
    make_dir("/dev/mqueue", 0o755)?;
    mount_on(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=1777,size=50%",
    )?;
    mount_on(
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        c"",
    )?;
    mount_devpts()
}

/// The nodes of `DEVICES`, made on the guest's /dev, mode 0666.
fn make_devices() -> Result<()> {
    for (name, major, minor) in DEVICES {
        let path = format!("/dev/{name}");
        let what = || format!("cannot make {path}");
        rustix::fs::mknodat(
            CWD,
            path.as_str(),
            FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(major, minor),
        )
        .context(what)?;
        // mknod honours the umask.
        rustix::fs::chmod(path.as_str(), rustix::fs::Mode::from_raw_mode(0o666)).context(what)?;
    }
    Ok(())
}

/// The host's nodes, bound on empty files of the guest's /dev.
fn bind_devices(devices: HostDevices) -> Result<()> {
    for ((name, _, _), node) in DEVICES.iter().zip(devices.0) {
        let path = format!("/dev/{name}");
        std::fs::File::create(&path).map_err(|e| Error::io(format!("cannot create {path}"), &e))?;
        move_mount(
            &node,
            "",
            CWD,
            path.as_str(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .context(|| format!("cannot bind the host's {path} into the guest"))?;
    }
    Ok(())
}

/// Where the guest tree's own /dev stays reachable, inert (nodev, nosuid,
/// noexec): rebootmgr binds its socket at dev/reboot in the tree, from the
/// host, at any time (before or after the guest starts), and the guest's
/// /dev/reboot is a link to it. Device nodes the tree has there cannot be
/// used.
const TREE_DEV: &str = "/dev/.tree";

fn keep_tree_dev(tree_dev: OwnedFd) -> Result<()> {
    make_dir(TREE_DEV, 0o755)?;
    move_mount(
        &tree_dev,
        "",
        CWD,
        TREE_DEV,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .context(|| format!("cannot mount the guest tree's /dev on {TREE_DEV}"))?;
    mount_remount(
        TREE_DEV,
        MountFlags::BIND | MountFlags::NODEV | MountFlags::NOSUID | MountFlags::NOEXEC,
        "",
    )
    .context(|| format!("cannot make {TREE_DEV} inert"))?;
    rustix::fs::symlink(".tree/reboot", "/dev/reboot").context(|| "cannot create /dev/reboot")
}

/// Mounts file system `fstype` on `target`, which must be a directory of
/// the guest (not a symbolic link to one). A guest tree without it (an old
/// or minimal one) goes without: false, nothing mounted.
fn mount_on(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MountFlags,
    data: &std::ffi::CStr,
) -> Result<bool> {
    if rustix::fs::lstat(target).is_err_and(|e| e == rustix::io::Errno::NOENT) {
        return Ok(false);
    }
    require_directory(Path::new(target))
        .map_err(|e| Error::failure(format!("cannot mount {target}: {e}")))?;
    mount(source, target, fstype, flags, data).context(|| format!("cannot mount {target}"))?;
    Ok(true)
}

/// Attaches the detached mount `tree` on `target`, which must be a
/// directory of the guest; false, nothing attached, for a guest tree
/// without it (as `mount_on`).
fn attach_on(tree: OwnedFd, target: &str) -> Result<bool> {
    if rustix::fs::lstat(target).is_err_and(|e| e == rustix::io::Errno::NOENT) {
        return Ok(false);
    }
    require_directory(Path::new(target))
        .map_err(|e| Error::failure(format!("cannot mount {target}: {e}")))?;
    move_mount(
        &tree,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .context(|| format!("cannot mount {target}"))?;
    Ok(true)
}

/// Makes directory `path` with `mode` unless it exists.
fn make_dir(path: &str, mode: u32) -> Result<()> {
    match rustix::fs::mkdir(path, rustix::fs::Mode::from_raw_mode(mode)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(e).context(|| format!("cannot create {path}")),
    }
}

/// A private devpts instance on /dev/pts, and /dev/ptmx leading to it.
pub fn mount_devpts() -> Result<()> {
    require_directory(Path::new("/dev"))
        .map_err(|e| Error::failure(format!("cannot set up /dev/pts: {e}")))?;
    match rustix::fs::mkdir("/dev/pts", rustix::fs::Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e).context(|| "cannot create /dev/pts"),
    }
    require_directory(Path::new("/dev/pts"))
        .map_err(|e| Error::failure(format!("cannot mount /dev/pts: {e}")))?;
    mount(
        "devpts",
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        DEVPTS_OPTIONS,
    )
    .context(|| "cannot mount /dev/pts")?;
    match rustix::fs::lstat("/dev/ptmx").map(|st| FileType::from_raw_mode(st.st_mode)) {
        // A symlink resolves inside the guest root: pts/ptmx is ours now.
        Ok(FileType::Symlink) => Ok(()),
        Ok(_) => mount_bind("/dev/pts/ptmx", "/dev/ptmx")
            .context(|| "cannot bind /dev/pts/ptmx on /dev/ptmx"),
        Err(rustix::io::Errno::NOENT) => {
            rustix::fs::symlink("pts/ptmx", "/dev/ptmx").context(|| "cannot create /dev/ptmx")
        }
        Err(e) => Err(e).context(|| "cannot stat /dev/ptmx"),
    }
}

/// Writes the guest's /etc/mtab from its mounts (GENERATEMTAB): every
/// mount the guest sees, with dummy devices /dev/hdv1, /dev/hdv2... for the
/// host's block devices (the guest has no such devices) and network mounts
/// as they are. Call it inside the guest. A /etc/mtab that is a symbolic
/// link (to /proc/self/mounts, as modern guests have) is left alone. Best
/// effort: a guest without a writable /etc still starts.
pub fn generate_mtab() {
    use std::io::Write;
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    // A symbolic link, a FIFO or a device is refused here and left alone.
    if let Ok(mut f) = guestfile::open_for_write("/etc/mtab", 0o644) {
        let _ = f.write_all(mtab_text(&mounts).as_bytes());
    }
}

/// /proc/self/mounts with block devices renamed /dev/hdvN, in order.
pub fn mtab_text(mounts: &str) -> String {
    let mut out = String::new();
    let mut devices: Vec<&str> = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.splitn(2, ' ');
        let (Some(dev), Some(rest)) = (fields.next(), fields.next()) else {
            continue;
        };
        if dev.starts_with("/dev/") {
            let n = match devices.iter().position(|d| *d == dev) {
                Some(i) => i + 1,
                None => {
                    devices.push(dev);
                    devices.len()
                }
            };
            out.push_str(&format!("/dev/hdv{n} {rest}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A mount point must be a directory itself, not a symlink to one.
fn require_directory(path: &Path) -> std::result::Result<(), String> {
    match rustix::fs::lstat(path) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Err(format!(
            "{} is a symbolic link, not a directory",
            path.display()
        )),
        Ok(_) => Err(format!("{} is not a directory", path.display())),
        Err(e) => Err(format!(
            "{}: {}",
            path.display(),
            crate::sys::errno::Errno::from(e).describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtab_renames_block_devices_and_keeps_the_rest() {
        let mounts = "/dev/vda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/vdb /srv ext4 ro 0 0\n/dev/vda1 /var ext4 rw 0 0\nsrv:/export /nfs nfs rw 0 0\n";
        assert_eq!(
            mtab_text(mounts),
            "/dev/hdv1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/hdv2 /srv ext4 ro 0 0\n/dev/hdv1 /var ext4 rw 0 0\nsrv:/export /nfs nfs rw 0 0\n"
        );
    }
}
