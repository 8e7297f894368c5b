//! One cgroup per guest: limits, membership, freeze, kill and accounting, on
//! pure cgroup v2 hosts and on hybrid hosts (v1 controllers plus a v2
//! hierarchy with no or few controllers, usually at /sys/fs/cgroup/unified).
//!
//! # Where a guest's cgroup lives
//!
//! A guest `NAME` always gets a v2 directory `<v2 mount>/vsbox/NAME`: it
//! holds the limits and the ipv4root BPF programs (`BPF_PROG_ATTACH`, with
//! BPF_F_ALLOW_MULTI, so they hold for every cgroup below it), and every
//! process is a member of the v2 hierarchy whether or not controllers are
//! bound to it. Each controller vsbox limits with (pids, memory, cpu) is
//! taken from v2 when the v2 root lists it in `cgroup.controllers`, else
//! from the v1 hierarchy that has it mounted. On a hybrid host the guest
//! also gets `<v1 mount>/vsbox/NAME` in EVERY v1 hierarchy mounted, those
//! with a controller vsbox does not use (cpuset, devices, blkio, ...) and
//! named ones (name=systemd) included: see the next section. The freezer
//! and cgroup.kill are core v2 features (no controller), so the v1 freezer
//! is only used when the v2 directory has no `cgroup.freeze` (Linux < 5.2),
//! and v1 cpuacct only when v2 has no `cpu.stat`. A host with no v2 mount
//! at all (pure v1) is refused.
//!
//! On v2, the controllers used are enabled in `cgroup.subtree_control` of the
//! v2 root, of `vsbox/` and of `vsbox/NAME`. `vsbox/` never holds processes
//! itself (the v2 "no internal processes" rule would otherwise stop it from
//! delegating controllers), is shared by all guests and is never removed:
//! removing it would race with another guest being created. Enabled
//! controllers are left enabled. A v1 cpuset directory gets its parent's
//! cpuset.cpus and cpuset.mems when made (a task cannot join an empty one).
//!
//! # The guest's own view: one level below its limits
//!
//! The guest's processes never live in `vsbox/NAME` itself but in its leaf
//! `vsbox/NAME/guest` (`LEAF`), in every hierarchy: pid 1 and every joiner
//! are cloned into the v2 leaf (`leaf_dir_fd`, clone3 CLONE_INTO_CGROUP)
//! and moved into the v1 leaves (`add_process_v1`) by the parent before
//! they run. Pid 1 then makes the guest's cgroup namespace, so its root is
//! the leaf in every hierarchy (joiners setns into it). A guest that can
//! make user namespaces (no `lock` flag) may mount any cgroup hierarchy,
//! but it sees only its leaf and what is below: it can make sub-cgroups
//! there and write their limits (and the leaf's), all under the limits in
//! `vsbox/NAME`, which it cannot name. A v1 hierarchy it was not moved into
//! would show it the host's root, hence every v1 hierarchy.
//!
//! # Limits and how they map
//!
//! | `CgroupLimits` | v2 file                | v1 file                                   |
//! |----------------|------------------------|-------------------------------------------|
//! | `pids_max`     | pids.max               | pids.max                                  |
//! | `memory_max`   | memory.max             | memory.limit_in_bytes                     |
//! | `cpu_weight`   | cpu.weight (1..=10000) | cpu.shares = weight * 1024 / 100, rounded |
//! | `cpu_max`      | cpu.max "QUOTA PERIOD" | cpu.cfs_period_us, then cpu.cfs_quota_us  |
//!
//! The weight-to-shares rule is the kernel's own (a v2 weight of 100 and v1
//! shares of 1024 are both the scheduler weight of one nice-0 task), clamped
//! to the v1 range 2..=262144. The kernel checks `cpu_max` (quota at least
//! 1000 us, period 1000..=1000000 us) and refuses what it does not accept.
//! The seed's `sched` flag ("the whole guest weighs as one") is what any
//! guest cgroup gives: the CPU scheduler shares time between cgroups first,
//! by weight, and only then between the tasks inside; `cpu_weight` sets how
//! much the guest weighs (default 100, one task's worth).
//!
//! `memory_max` limits RAM (v2 also lets the guest use swap beyond it; v1
//! `memory.memsw.*` is not touched). A configured guest always has a
//! `pids_max` (`DEFAULT_PIDS_MAX` unless set; see `spawn::Setup::for_guest`).
//!
//! # A name that already exists
//!
//! `Cgroup::create` refuses a name whose directories (or any cgroup below
//! them) hold processes (a guest that is running). Directories that exist
//! but hold none are a leftover from a guest that was not stopped cleanly:
//! they are removed (with the leaf, any sub-cgroups the guest made, and with
//! them any BPF programs still attached) and made afresh, so no stale limit
//! or program survives into the new guest.
//!
//! # Safety against confusing paths
//!
//! Mount points come from /proc/self/mountinfo of the caller (the host's
//! mount namespace). Below them every directory and control file is opened
//! relative to its parent's descriptor with O_NOFOLLOW, so a symlink is never
//! followed; /proc/PID/cgroup paths are only parsed, never opened.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno as RawErrno;
use rustix::process::{Pid, Signal};

use crate::context::rlimit::{LimitValue, Resource, Ulimit};
use crate::error::{Context, Error, Result};
use crate::sys::errno::Errno;

/// The directory under each hierarchy's root that holds the guests' cgroups.
pub const PARENT: &str = "vsbox";

/// How long `kill_all` waits for a cgroup to empty, and `freeze` for the
/// kernel to report it frozen.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `remove` retries a directory the kernel still calls busy.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(5);

/// The controllers vsbox puts guests in. cpuacct and freezer are only used on
/// v1, and only when v2 cannot stand in for them.
const PIDS: &str = "pids";
const MEMORY: &str = "memory";
const CPU: &str = "cpu";
const CPUACCT: &str = "cpuacct";
const FREEZER: &str = "freezer";
const CPUSET: &str = "cpuset";

/// The cgroup below each of a guest's directories that holds its processes
/// and is the root of its cgroup namespace: see "The guest's own view" in
/// the module documentation.
pub const LEAF: &str = "guest";

/// The v1 controller names a cgroup mount's options may carry; anything else
/// in the options (rw, name=systemd, xattr, ...) is not a controller.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Resource limits of a guest's cgroup; `None` leaves the kernel's default
/// (no limit, weight 100). See the module documentation for the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Most tasks (processes and threads) the guest may hold at once.
    pub pids_max: Option<u64>,
    /// Most bytes of memory the guest may use.
    pub memory_max: Option<u64>,
    /// Relative CPU weight, 1..=10000, 100 being one task's worth.
    pub cpu_weight: Option<u32>,
    /// CPU bandwidth: at most `quota` microseconds of CPU time in every
    /// `period` microseconds (quota > period allows more than one CPU).
    pub cpu_max: Option<(u64, u64)>,
}

impl CgroupLimits {
    pub fn is_empty(&self) -> bool {
        *self == CgroupLimits::default()
    }

    /// The ULIMIT -u value that a guest gets as its guest-wide
    /// `pids_max`: the last one (soft or hard alike), `None` when it sets
    /// none.
    pub fn pids_from_ulimit(ulimit: &Ulimit) -> Option<LimitValue> {
        ulimit
            .limits
            .iter()
            .rev()
            .find(|l| l.resource == Resource::Processes)
            .map(|l| l.value)
    }
}

/// The `pids_max` of a configured guest that sets neither S_PIDS_MAX nor
/// ULIMIT -u: room for a busy guest, far below what exhausts the host's
/// pid space (pid_max 32768 to 4194304) or its memory.
pub const DEFAULT_PIDS_MAX: u64 = 4096;

/// The v1 cpu.shares that weighs what v2 cpu.weight `weight` weighs.
pub fn weight_to_shares(weight: u32) -> u64 {
    ((u64::from(weight) * 1024 + 50) / 100).clamp(2, 262_144)
}

/// What the cgroup layout of a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup v2 (the test VM, current distributions).
    Unified,
    /// v2 plus v1 controller hierarchies (the dev and CI machines).
    Hybrid,
    /// Only v1: not supported (no CLONE_INTO_CGROUP, no cgroup BPF).
    Legacy,
}

/// A mounted v1 hierarchy: the controllers bound to it, or the name of a
/// named one (`name=systemd`), which has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
    /// X of a `name=X` mount option.
    pub name: Option<String>,
}

/// The cgroup hierarchies mounted in the caller's mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// The (first) cgroup2 mount.
    pub v2: Option<PathBuf>,
    /// Controllers listed in the v2 root's cgroup.controllers.
    pub v2_controllers: Vec<String>,
    /// Every v1 hierarchy, those with controllers and named ones such as
    /// name=systemd, the first mount of each.
    pub v1: Vec<V1Hierarchy>,
}

impl Hierarchies {
    /// Reads /proc/self/mountinfo and the v2 root's cgroup.controllers.
    pub fn detect() -> Result<Self> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .context(|| "cannot read /proc/self/mountinfo")?;
        let mut h = parse_mountinfo(&text);
        if let Some(v2) = &h.v2 {
            let path = v2.join("cgroup.controllers");
            let text = std::fs::read_to_string(&path)
                .context(|| format!("cannot read {}", path.display()))?;
            h.v2_controllers = text.split_whitespace().map(str::to_string).collect();
        }
        Ok(h)
    }

    /// A named v1 hierarchy alone (no controller on v1) leaves a host
    /// unified.
    pub fn layout(&self) -> Layout {
        let v1_controllers = self.v1.iter().any(|h| !h.controllers.is_empty());
        match (&self.v2, v1_controllers) {
            (Some(_), false) => Layout::Unified,
            (Some(_), true) => Layout::Hybrid,
            (None, _) => Layout::Legacy,
        }
    }

    fn on_v2(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|c| c == controller)
    }

    fn v1_for(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }
}

/// Finds the cgroup mounts in /proc/PID/mountinfo text.
pub fn parse_mountinfo(text: &str) -> Hierarchies {
    let mut h = Hierarchies::default();
    for line in text.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some(fstype), Some(_source), Some(options)) =
            (right.next(), right.next(), right.next())
        else {
            continue;
        };
        let mount = PathBuf::from(unescape_mount(mount));
        match fstype {
            "cgroup2" if h.v2.is_none() => h.v2 = Some(mount),
            "cgroup" => {
                let controllers: Vec<String> = options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o))
                    .map(str::to_string)
                    .collect();
                let name = options
                    .split(',')
                    .find_map(|o| o.strip_prefix("name="))
                    .map(str::to_string);
                let known =
                    h.v1.iter()
                        .any(|m| m.controllers == controllers && m.name == name);
                if (!controllers.is_empty() || name.is_some()) && !known {
                    h.v1.push(V1Hierarchy {
                        mount,
                        controllers,
                        name,
                    });
                }
            }
            _ => {}
        }
    }
    h
}

/// mountinfo writes space, tab, newline and backslash in paths as \ooo.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A process's cgroups as /proc/PID/cgroup lists them (paths relative to the
/// reader's cgroup namespace root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroup {
    /// The v2 path (the `0::PATH` line).
    pub v2: Option<String>,
    /// Each v1 hierarchy's controllers (named ones as `name=X`) and path.
    pub v1: Vec<(Vec<String>, String)>,
}

impl ProcCgroup {
    /// The guest whose cgroup (or a sub-cgroup of it) holds the process,
    /// from the v2 path, or from the v1 pids or memory path when there is no
    /// v2 line.
    pub fn guest(&self) -> Option<&str> {
        let path = self.v2.as_deref().or_else(|| {
            self.v1
                .iter()
                .find(|(c, _)| c.iter().any(|c| c == PIDS || c == MEMORY))
                .map(|(_, p)| p.as_str())
        })?;
        let rest = path
            .strip_prefix('/')?
            .strip_prefix(PARENT)?
            .strip_prefix('/')?;
        let name = rest.split('/').next()?;
        check_name(name).ok().map(|()| name)
    }
}

/// Parses /proc/PID/cgroup: `ID:CONTROLLERS:PATH` lines, ID 0 with empty
/// controllers being v2. The path may itself hold ':'.
pub fn parse_proc_cgroup(text: &str) -> ProcCgroup {
    let mut pc = ProcCgroup::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            pc.v2 = Some(path.to_string());
        } else {
            let list = controllers.split(',').map(str::to_string).collect();
            pc.v1.push((list, path.to_string()));
        }
    }
    pc
}

/// The cgroups of process `pid`.
pub fn current_cgroup(pid: Pid) -> Result<ProcCgroup> {
    let path = format!("/proc/{}/cgroup", pid.as_raw_nonzero());
    let text = std::fs::read_to_string(&path).context(|| format!("cannot read {path}"))?;
    Ok(parse_proc_cgroup(&text))
}

/// A cgroup name: the guest name rule (1 to 64 letters, digits, '.', '_' or
/// '-', starting with a letter or digit), so it is one path component and
/// never "." or "..". A name equal to a control file of `vsbox/` (such as
/// "pids.max") passes, and creating it fails with EEXIST.
pub fn check_name(name: &str) -> Result<()> {
    crate::conf::guest::check_name(name).map_err(Error::usage)
}

/// Usage counters of a guest's cgroup, `None` where the host has no
/// controller to count with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Tasks (processes and threads): pids.current.
    pub pids_current: Option<u64>,
    /// Bytes: v2 memory.current, v1 memory.usage_in_bytes.
    pub memory_current: Option<u64>,
    /// CPU time used, microseconds: v2 cpu.stat usage_usec, v1 cpuacct.usage.
    pub cpu_usage_usec: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// One directory of the guest: the v2 one or one per v1 hierarchy used.
#[derive(Debug)]
struct Dir {
    version: Version,
    /// For v1, the hierarchy's controllers.
    controllers: Vec<String>,
    /// The `vsbox` directory above it.
    parent: OwnedFd,
    path: PathBuf,
    fd: OwnedFd,
}

impl Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A guest's cgroup: its v2 directory and the v1 directories of the
/// controllers that live on v1. Dropping it closes the directories; the
/// cgroup stays (it outlives the process that made it) until `remove`.
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    /// The v2 directory first, then the v1 ones.
    dirs: Vec<Dir>,
    /// Controllers enabled for the guest on v2.
    v2_controllers: Vec<String>,
}

/// Which controllers a guest uses and where.
struct Plan {
    v2_mount: PathBuf,
    v2_controllers: Vec<String>,
    v1: Vec<V1Hierarchy>,
}

fn plan(h: &Hierarchies, limits: &CgroupLimits, name: &str) -> Result<Plan> {
    let Some(v2_mount) = h.v2.clone() else {
        return Err(Error::failure(format!(
            "cannot make a cgroup for {name}: no cgroup2 file system is mounted (vsbox needs a pure v2 or a hybrid cgroup layout)"
        )));
    };
    let mut v2_controllers = Vec::new();
    let wanted = [
        (PIDS, limits.pids_max.is_some(), "limit its processes"),
        (MEMORY, limits.memory_max.is_some(), "limit its memory"),
        (
            CPU,
            limits.cpu_weight.is_some() || limits.cpu_max.is_some(),
            "limit its CPU",
        ),
    ];
    for (controller, needed, why) in wanted {
        if h.on_v2(controller) {
            v2_controllers.push(controller.to_string());
        } else if needed && h.v1_for(controller).is_none() {
            return Err(Error::failure(format!(
                "cannot {why}: guest {name}: the {controller} cgroup controller is not available on this host"
            )));
        }
    }
    Ok(Plan {
        v2_mount,
        v2_controllers,
        // Every v1 hierarchy, not only those with a controller vsbox uses:
        // see "The guest's own view" in the module documentation.
        v1: h.v1.clone(),
    })
}

fn open_dir_path(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .context(|| format!("cannot open {}", path.display()))
}

fn open_dir_at(parent: &OwnedFd, name: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

/// Opens (making it if missing) `<mount>/vsbox`; `cpuset`: the mount is a
/// v1 cpuset hierarchy.
fn open_parent(mount: &Path, cpuset: bool) -> Result<OwnedFd> {
    let root = open_dir_path(mount)?;
    let path = mount.join(PARENT);
    match rustix::fs::mkdirat(&root, PARENT, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(RawErrno::EXIST) => {}
        Err(e) => return Err(e).context(|| format!("cannot create {}", path.display())),
    }
    let fd = open_dir_at(&root, PARENT).context(|| format!("cannot open {}", path.display()))?;
    if cpuset {
        // Also when it existed: another guest's create may have made it a
        // moment ago and not given it its CPUs yet.
        inherit_cpuset((&root, mount), (&fd, &path))?;
    }
    Ok(fd)
}

/// Makes and opens the cgroup `name` under `parent` (whose path is
/// `ppath`); removes it again when it cannot be opened.
fn make_dir(parent: &OwnedFd, ppath: &Path, name: &str) -> Result<OwnedFd> {
    let path = ppath.join(name);
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755))
        .context(|| format!("cannot create {}", path.display()))?;
    open_dir_at(parent, name).or_else(|e| {
        let _ = rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR);
        Err(e).context(|| format!("cannot open {}", path.display()))
    })
}

/// A new v1 cpuset cgroup has no CPUs and no memory nodes, and no task can
/// join it until it has some: it gets its parent's, as
/// `cgroup.clone_children` would have given it (set on vsbox's own
/// directories only, never on the host's root).
fn inherit_cpuset(parent: (&OwnedFd, &Path), dir: (&OwnedFd, &Path)) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read_at(dir.0, file, dir.1)?.trim().is_empty() {
            let value = read_at(parent.0, file, parent.1)?;
            write_at(dir.0, file, dir.1, value.trim())?;
        }
    }
    Ok(())
}

fn read_at(dir: impl AsFd, file: &str, path: &Path) -> Result<String> {
    let what = || format!("cannot read {}", path.join(file).display());
    let fd = rustix::fs::openat(
        dir,
        file,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .context(what)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&fd, &mut buf[..]) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(RawErrno::INTR) => continue,
            Err(e) => return Err(e).context(what),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Writes a control file in one write(2), as cgroupfs wants.
fn write_at(dir: impl AsFd, file: &str, path: &Path, value: &str) -> Result<()> {
    let what = || format!("cannot write '{value}' to {}", path.join(file).display());
    let fd = rustix::fs::openat(
        dir,
        file,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .context(what)?;
    let n = rustix::io::write(&fd, value.as_bytes()).context(what)?;
    if n != value.len() {
        return Err(Error::failure(format!("{}: short write", what())));
    }
    Ok(())
}

fn exists_at(dir: impl AsFd, file: &str) -> bool {
    rustix::fs::statat(dir, file, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// The sub-directories (child cgroups) of an open cgroup directory.
fn child_dirs(fd: &OwnedFd, path: &Path) -> Result<Vec<String>> {
    let what = || format!("cannot list {}", path.display());
    let dir = rustix::fs::Dir::read_from(fd).context(what)?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.context(what)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type() == FileType::Directory && name != "." && name != ".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn parse_pids(text: &str, out: &mut Vec<Pid>) {
    out.extend(
        text.split_whitespace()
            .filter_map(|w| w.parse::<i32>().ok())
            .filter_map(Pid::from_raw),
    );
}

/// The processes in the cgroup at `fd` and every cgroup below it.
fn procs_tree(fd: &OwnedFd, path: &Path, out: &mut Vec<Pid>) -> Result<()> {
    parse_pids(&read_at(fd, "cgroup.procs", path)?, out);
    for child in child_dirs(fd, path)? {
        let child_path = path.join(&child);
        match open_dir_at(fd, &child) {
            Ok(cfd) => match procs_tree(&cfd, &child_path, out) {
                // Removed meanwhile (a guest's own sub-cgroup).
                Err(e) if gone(&e) => {}
                other => other?,
            },
            Err(RawErrno::NOENT | RawErrno::NODEV) => {}
            Err(e) => return Err(e).context(|| format!("cannot open {}", child_path.display())),
        }
    }
    Ok(())
}

/// Opens the `LEAF` below a guest directory.
fn leaf_of(d: &Dir) -> Result<OwnedFd> {
    open_dir_at(&d.fd, LEAF).context(|| format!("cannot open {}", d.path.join(LEAF).display()))
}

/// Writes `pid` into cgroup.procs of the `LEAF` of each of `dirs`.
fn join_leaves<'a>(dirs: impl Iterator<Item = &'a Dir>, pid: Pid) -> Result<()> {
    let text = pid.as_raw_nonzero().to_string();
    for d in dirs {
        write_at(leaf_of(d)?, "cgroup.procs", &d.path.join(LEAF), &text)?;
    }
    Ok(())
}

/// Whether an error says the cgroup went away while being read.
fn gone(e: &Error) -> bool {
    let raw = e.errno().map(Errno::raw);
    raw == Some(RawErrno::NOENT.raw_os_error()) || raw == Some(RawErrno::NODEV.raw_os_error())
}

/// The value of `key` in a flat keyed file (cgroup.events, cpu.stat).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Removes the cgroup `name` under `parent` and every cgroup below it,
/// retrying while the kernel still reports it busy (tasks that were killed
/// but have not finished leaving).
fn rmdir_tree(parent: &OwnedFd, name: &str, path: &Path) -> Result<()> {
    match open_dir_at(parent, name) {
        Ok(fd) => {
            for child in child_dirs(&fd, path)? {
                rmdir_tree(&fd, &child, &path.join(&child))?;
            }
        }
        Err(RawErrno::NOENT) => return Ok(()),
        Err(e) => return Err(e).context(|| format!("cannot open {}", path.display())),
    }
    let deadline = Instant::now() + RMDIR_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(RawErrno::NOENT) => return Ok(()),
            Err(RawErrno::BUSY) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e).context(|| format!("cannot remove {}", path.display())),
        }
    }
}

/// Polls `done` until it says yes or `timeout` passes.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

impl Cgroup {
    /// Makes the cgroup of guest `name` with `limits`: see the module
    /// documentation for where, and for a name that already exists. A
    /// creation that fails removes every directory it made.
    pub fn create(name: &str, limits: &CgroupLimits) -> Result<Cgroup> {
        check_name(name)?;
        if let Some(w) = limits.cpu_weight {
            if !(1..=10_000).contains(&w) {
                return Err(Error::usage(format!(
                    "guest {name}: CPU weight {w} is out of range (1 to 10000)"
                )));
            }
        }
        let h = Hierarchies::detect()?;
        let plan = plan(&h, limits, name)?;

        // Parents first: enabling v2 controllers needs them.
        let v2_parent = open_parent(&plan.v2_mount, false)?;
        let enable: Vec<String> = plan
            .v2_controllers
            .iter()
            .map(|c| format!("+{c}"))
            .collect();
        let enable = enable.join(" ");
        if !enable.is_empty() {
            let root = open_dir_path(&plan.v2_mount)?;
            write_at(&root, "cgroup.subtree_control", &plan.v2_mount, &enable)?;
            write_at(
                &v2_parent,
                "cgroup.subtree_control",
                &plan.v2_mount.join(PARENT),
                &enable,
            )?;
        }
        let mut parents = vec![(
            Version::V2,
            Vec::new(),
            plan.v2_mount.join(PARENT),
            v2_parent,
        )];
        for hier in &plan.v1 {
            parents.push((
                Version::V1,
                hier.controllers.clone(),
                hier.mount.join(PARENT),
                open_parent(&hier.mount, hier.controllers.iter().any(|c| c == CPUSET))?,
            ));
        }

        // A running guest holds processes in one of its directories; a
        // leftover holds none and is cleared before anything is made.
        for (_, _, ppath, pfd) in &parents {
            let path = ppath.join(name);
            match open_dir_at(pfd, name) {
                Ok(fd) => {
                    let mut pids = Vec::new();
                    procs_tree(&fd, &path, &mut pids)?;
                    if !pids.is_empty() {
                        return Err(Error::sys(
                            format!(
                                "cannot create the cgroup of guest {name}: {} holds processes (is the guest running?)",
                                path.display()
                            ),
                            Errno::from(RawErrno::BUSY),
                        ));
                    }
                }
                Err(RawErrno::NOENT) => {}
                Err(e) => return Err(e).context(|| format!("cannot open {}", path.display())),
            }
        }
        for (_, _, ppath, pfd) in &parents {
            rmdir_tree(pfd, name, &ppath.join(name))?;
        }

        let mut cg = Cgroup {
            name: name.to_string(),
            dirs: Vec::new(),
            v2_controllers: plan.v2_controllers,
        };
        let made = (|| {
            for (version, controllers, ppath, pfd) in parents {
                let fd = make_dir(&pfd, &ppath, name)?;
                cg.dirs.push(Dir {
                    version,
                    controllers,
                    parent: pfd,
                    path: ppath.join(name),
                    fd,
                });
                let d = cg.dirs.last().expect("just pushed");
                if d.has(CPUSET) {
                    inherit_cpuset((&d.parent, &ppath), (&d.fd, &d.path))?;
                }
                let leaf = make_dir(&d.fd, &d.path, LEAF)?;
                if d.has(CPUSET) {
                    inherit_cpuset((&d.fd, &d.path), (&leaf, &d.path.join(LEAF)))?;
                }
            }
            // The guest's own sub-cgroups may use (and limit themselves
            // with) the controllers it is limited by.
            if !enable.is_empty() {
                let v2 = cg.v2();
                write_at(&v2.fd, "cgroup.subtree_control", &v2.path, &enable)?;
            }
            cg.set_limits(limits)
        })();
        match made {
            Ok(()) => Ok(cg),
            Err(e) => {
                // Nothing was put in it, so removing the directories is all.
                let _ = cg.remove_dirs();
                Err(e)
            }
        }
    }

    /// Opens the existing cgroup of guest `name` (an error with ENOENT when
    /// there is none).
    pub fn open(name: &str) -> Result<Cgroup> {
        check_name(name)?;
        let h = Hierarchies::detect()?;
        let plan = plan(&h, &CgroupLimits::default(), name)?;
        let mut dirs = Vec::new();
        let mut candidates = vec![(Version::V2, Vec::new(), plan.v2_mount.clone())];
        candidates.extend(
            plan.v1
                .into_iter()
                .map(|h| (Version::V1, h.controllers, h.mount)),
        );
        for (version, controllers, mount) in candidates {
            let root = open_dir_path(&mount)?;
            let ppath = mount.join(PARENT);
            let path = ppath.join(name);
            let parent = match open_dir_at(&root, PARENT) {
                Ok(fd) => fd,
                Err(RawErrno::NOENT) if version == Version::V1 => continue,
                Err(e) => {
                    return Err(e)
                        .context(|| format!("no cgroup for guest {name}: {}", path.display()));
                }
            };
            match open_dir_at(&parent, name) {
                Ok(fd) => dirs.push(Dir {
                    version,
                    controllers,
                    parent,
                    path,
                    fd,
                }),
                // A v1 directory that is missing: that controller just does
                // not see the guest (made on a host laid out differently).
                Err(RawErrno::NOENT) if version == Version::V1 => {}
                Err(e) => {
                    return Err(e)
                        .context(|| format!("no cgroup for guest {name}: {}", path.display()));
                }
            }
        }
        Ok(Cgroup {
            name: name.to_string(),
            dirs,
            v2_controllers: plan.v2_controllers,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The v2 directory, e.g. /sys/fs/cgroup/vsbox/web1.
    pub fn v2_path(&self) -> &Path {
        &self.v2().path
    }

    /// Every directory of the guest: the v2 one first, then one per v1
    /// hierarchy used.
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.path.as_path()).collect()
    }

    /// A new O_RDONLY|O_DIRECTORY|O_CLOEXEC descriptor of the v2 directory
    /// (the one with the limits): what BPF_PROG_ATTACH takes, so that the
    /// programs hold for every cgroup below it.
    pub fn v2_dir_fd(&self) -> Result<OwnedFd> {
        let d = self.v2();
        open_dir_at(&d.parent, &self.name).context(|| format!("cannot open {}", d.path.display()))
    }

    /// A new descriptor (as `v2_dir_fd`) of the v2 `LEAF` directory: what
    /// clone3(CLONE_INTO_CGROUP) takes, for pid 1 (joiners: `joiner_dir_fd`).
    pub fn leaf_dir_fd(&self) -> Result<OwnedFd> {
        leaf_of(self.v2())
    }

    /// A new descriptor of the v2 cgroup a joiner is cloned into: the
    /// `LEAF`, unless the guest has enabled controllers in the leaf's
    /// cgroup.subtree_control for cgroups of its own (systemd does, after
    /// moving itself to init.scope): the v2 "no internal processes" rule
    /// then refuses new members of the leaf (EBUSY), and the joiner goes
    /// to the cgroup of the guest's pid 1 `init` instead, which holds a
    /// process and so may take more. That path, from /proc, must lie below
    /// the leaf; it is walked from the leaf one name at a time (O_NOFOLLOW).
    pub fn joiner_dir_fd(&self, init: Pid) -> Result<OwnedFd> {
        let v2 = self.v2();
        let leaf_path = v2.path.join(LEAF);
        let leaf = leaf_of(v2)?;
        if read_at(&leaf, "cgroup.subtree_control", &leaf_path)?
            .trim()
            .is_empty()
        {
            return Ok(leaf);
        }
        let outside = || {
            Error::failure(format!(
                "guest {}: its pid {init} is not in a cgroup below {}",
                self.name,
                leaf_path.display()
            ))
        };
        let path = current_cgroup(init)?.v2.ok_or_else(outside)?;
        let below = path
            .strip_prefix(&format!("/{PARENT}/{}/{LEAF}", self.name))
            .ok_or_else(outside)?;
        let (mut fd, mut fd_path) = (leaf, leaf_path.clone());
        for name in below.split('/').filter(|n| !n.is_empty()) {
            if name == "." || name == ".." {
                return Err(outside());
            }
            fd_path.push(name);
            fd = open_dir_at(&fd, name).context(|| format!("cannot open {}", fd_path.display()))?;
        }
        Ok(fd)
    }

    /// The guest's leaf in every hierarchy, v2 first: what a guest in a
    /// user namespace is given (`userns`).
    pub fn leaves(&self) -> Result<Vec<OwnedFd>> {
        self.dirs.iter().map(leaf_of).collect()
    }

    fn v2(&self) -> &Dir {
        // Both constructors put the v2 directory first.
        &self.dirs[0]
    }

    fn v1_dirs(&self) -> impl Iterator<Item = &Dir> {
        self.dirs.iter().filter(|d| d.version == Version::V1)
    }

    /// The directory that holds `controller`'s files.
    fn dir_for(&self, controller: &str) -> Option<&Dir> {
        if self.v2_controllers.iter().any(|c| c == controller) {
            Some(self.v2())
        } else {
            self.v1_dirs().find(|d| d.has(controller))
        }
    }

    fn set_limits(&self, limits: &CgroupLimits) -> Result<()> {
        let missing = |c: &str| {
            Error::failure(format!(
                "guest {}: no {c} cgroup directory to set a limit in",
                self.name
            ))
        };
        if let Some(n) = limits.pids_max {
            let d = self.dir_for(PIDS).ok_or_else(|| missing(PIDS))?;
            write_at(&d.fd, "pids.max", &d.path, &n.to_string())?;
        }
        if let Some(bytes) = limits.memory_max {
            let d = self.dir_for(MEMORY).ok_or_else(|| missing(MEMORY))?;
            let file = match d.version {
                Version::V2 => "memory.max",
                Version::V1 => "memory.limit_in_bytes",
            };
            write_at(&d.fd, file, &d.path, &bytes.to_string())?;
        }
        if let Some(weight) = limits.cpu_weight {
            let d = self.dir_for(CPU).ok_or_else(|| missing(CPU))?;
            match d.version {
                Version::V2 => write_at(&d.fd, "cpu.weight", &d.path, &weight.to_string())?,
                Version::V1 => write_at(
                    &d.fd,
                    "cpu.shares",
                    &d.path,
                    &weight_to_shares(weight).to_string(),
                )?,
            }
        }
        if let Some((quota, period)) = limits.cpu_max {
            let d = self.dir_for(CPU).ok_or_else(|| missing(CPU))?;
            match d.version {
                Version::V2 => write_at(&d.fd, "cpu.max", &d.path, &format!("{quota} {period}"))?,
                Version::V1 => {
                    write_at(&d.fd, "cpu.cfs_period_us", &d.path, &period.to_string())?;
                    write_at(&d.fd, "cpu.cfs_quota_us", &d.path, &quota.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` into the guest: the `LEAF` of the v2 directory
    /// and of every v1 one.
    pub fn add_process(&self, pid: Pid) -> Result<()> {
        join_leaves(self.dirs.iter(), pid)
    }

    /// Moves process `pid` into the `LEAF` of the guest's v1 directories
    /// only: for a child that clone3(CLONE_INTO_CGROUP) already put in the
    /// v2 one; the parent does this before the child runs guest code (and
    /// before pid 1 makes its cgroup namespace). Nothing to do on a pure v2
    /// host.
    pub fn add_process_v1(&self, pid: Pid) -> Result<()> {
        join_leaves(self.v1_dirs(), pid)
    }

    /// Every process in the guest (in any of its directories, sub-cgroups
    /// included), sorted.
    pub fn processes(&self) -> Result<Vec<Pid>> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            procs_tree(&d.fd, &d.path, &mut pids)?;
        }
        pids.sort_unstable_by_key(|p| p.as_raw_nonzero());
        pids.dedup();
        Ok(pids)
    }

    /// Whether no process is left in the guest.
    pub fn is_empty(&self) -> Result<bool> {
        let v2 = self.v2();
        let events = read_at(&v2.fd, "cgroup.events", &v2.path)?;
        if keyed_value(&events, "populated") != Some(0) {
            return Ok(false);
        }
        for d in self.v1_dirs() {
            let mut pids = Vec::new();
            procs_tree(&d.fd, &d.path, &mut pids)?;
            if !pids.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Stops every process of the guest (v2 cgroup.freeze, else the v1
    /// freezer) and waits until the kernel reports them stopped.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Lets the processes of a frozen guest run again.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn has_freezer(&self) -> bool {
        exists_at(&self.v2().fd, "cgroup.freeze") || self.v1_dirs().any(|d| d.has(FREEZER))
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let v2 = self.v2();
        if exists_at(&v2.fd, "cgroup.freeze") {
            write_at(
                &v2.fd,
                "cgroup.freeze",
                &v2.path,
                if frozen { "1" } else { "0" },
            )?;
            let want = u64::from(frozen);
            let done = wait_until(FREEZE_TIMEOUT, || {
                let events = read_at(&v2.fd, "cgroup.events", &v2.path)?;
                Ok(keyed_value(&events, "frozen") == Some(want))
            })?;
            return self.timed_out(done, if frozen { "freeze" } else { "thaw" });
        }
        let Some(d) = self.v1_dirs().find(|d| d.has(FREEZER)) else {
            return Err(Error::failure(format!(
                "cannot freeze guest {}: no cgroup freezer on this host",
                self.name
            )));
        };
        let state = if frozen { "FROZEN" } else { "THAWED" };
        write_at(&d.fd, "freezer.state", &d.path, state)?;
        let done = wait_until(FREEZE_TIMEOUT, || {
            Ok(read_at(&d.fd, "freezer.state", &d.path)?.trim() == state)
        })?;
        self.timed_out(done, if frozen { "freeze" } else { "thaw" })
    }

    fn timed_out(&self, done: bool, what: &str) -> Result<()> {
        if done {
            Ok(())
        } else {
            Err(Error::failure(format!(
                "cannot {what} guest {}: the kernel did not finish within {} s",
                self.name,
                FREEZE_TIMEOUT.as_secs()
            )))
        }
    }

    /// Kills every process of the guest and waits (at most `KILL_TIMEOUT`)
    /// until none is left. Uses cgroup.kill where the kernel has it (Linux
    /// 5.14; atomic, forks cannot escape), else `kill_all_by_freezing`.
    pub fn kill_all(&self) -> Result<()> {
        let v2 = self.v2();
        if exists_at(&v2.fd, "cgroup.kill") {
            write_at(&v2.fd, "cgroup.kill", &v2.path, "1")?;
            if self.wait_empty(KILL_TIMEOUT)? {
                return Ok(());
            }
            // A process in a v1 directory only (joined there by hand) is out
            // of cgroup.kill's reach.
        }
        self.kill_all_by_freezing()
    }

    /// The way to kill a guest without cgroup.kill: freeze it so nothing
    /// forks, SIGKILL every process, thaw it so the signals are delivered,
    /// and repeat until it is empty or `KILL_TIMEOUT` passes. Public so the
    /// tests can run it on kernels that have cgroup.kill.
    pub fn kill_all_by_freezing(&self) -> Result<()> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            let pids = self.processes()?;
            if pids.is_empty() && self.is_empty()? {
                return Ok(());
            }
            // Without a freezer, racing forks are caught by the next round.
            // A freeze that times out (a task in uninterruptible sleep) still
            // stops the rest, and is undone below like one that worked.
            let freezer = self.has_freezer();
            if freezer {
                let _ = self.freeze();
            }
            for pid in self.processes()? {
                match rustix::process::kill_process(pid, Signal::KILL) {
                    Ok(()) | Err(RawErrno::SRCH) => {}
                    Err(e) => {
                        let _ = self.thaw();
                        return Err(e).context(|| {
                            format!(
                                "cannot kill process {} of guest {}",
                                pid.as_raw_nonzero(),
                                self.name
                            )
                        });
                    }
                }
            }
            if freezer {
                self.thaw()?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.wait_empty(left.min(Duration::from_millis(500)))? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.still_busy());
            }
        }
    }

    fn wait_empty(&self, timeout: Duration) -> Result<bool> {
        wait_until(timeout, || self.is_empty())
    }

    fn still_busy(&self) -> Error {
        let pids: Vec<String> = self
            .processes()
            .unwrap_or_default()
            .iter()
            .map(|p| p.as_raw_nonzero().to_string())
            .collect();
        Error::failure(format!(
            "cannot stop guest {}: processes still in {} after {} s: {}",
            self.name,
            self.v2_path().display(),
            KILL_TIMEOUT.as_secs(),
            if pids.is_empty() {
                "(exiting)".to_string()
            } else {
                pids.join(" ")
            }
        ))
    }

    /// Kills every process of the guest and removes all its directories
    /// (sub-cgroups included). The `vsbox` parents stay.
    pub fn remove(self) -> Result<()> {
        self.kill_all()?;
        self.remove_dirs()
    }

    /// Removes every directory, reporting the first failure after trying
    /// them all.
    fn remove_dirs(&self) -> Result<()> {
        let mut first = None;
        for d in self.dirs.iter().rev() {
            if let Err(e) = rmdir_tree(&d.parent, &self.name, &d.path) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Usage counters for vserver-stat.
    pub fn stats(&self) -> Result<CgroupStats> {
        let mut s = CgroupStats::default();
        if let Some(d) = self.dir_for(PIDS) {
            s.pids_current = Some(parse_number(
                &read_at(&d.fd, "pids.current", &d.path)?,
                &d.path,
            )?);
        }
        if let Some(d) = self.dir_for(MEMORY) {
            let file = match d.version {
                Version::V2 => "memory.current",
                Version::V1 => "memory.usage_in_bytes",
            };
            s.memory_current = Some(parse_number(&read_at(&d.fd, file, &d.path)?, &d.path)?);
        }
        let v2 = self.v2();
        if exists_at(&v2.fd, "cpu.stat") {
            s.cpu_usage_usec = keyed_value(&read_at(&v2.fd, "cpu.stat", &v2.path)?, "usage_usec");
        } else if let Some(d) = self.v1_dirs().find(|d| d.has(CPUACCT)) {
            let ns = parse_number(&read_at(&d.fd, "cpuacct.usage", &d.path)?, &d.path)?;
            s.cpu_usage_usec = Some(ns / 1000);
        }
        Ok(s)
    }
}

/// A v2 cgroup made inside the caller's own, for a host command that needs
/// cgroup-attached programs (chbind, v_ services): the command stays in its
/// caller's resource accounting and service unit, so a service manager
/// still sees, limits and stops it.
pub struct SubCgroup {
    parent: OwnedFd,
    name: String,
    path: PathBuf,
    dir: OwnedFd,
}

impl SubCgroup {
    /// Creates `vsbox-TAG-PID` under this process's v2 cgroup.
    pub fn create(tag: &str) -> Result<SubCgroup> {
        let h = Hierarchies::detect()?;
        let mount =
            h.v2.ok_or_else(|| Error::failure("no cgroup v2 hierarchy is mounted"))?;
        let own = current_cgroup(rustix::process::getpid())?
            .v2
            .ok_or_else(|| Error::failure("this process has no cgroup v2 path"))?;
        let parent_path = mount.join(own.trim_start_matches('/'));
        let parent = open_dir_path(&parent_path)?;
        let name = format!("vsbox-{tag}-{}", std::process::id());
        let path = parent_path.join(&name);
        rustix::fs::mkdirat(&parent, &*name, Mode::from_raw_mode(0o755))
            .context(|| format!("cannot create {}", path.display()))?;
        match open_dir_at(&parent, &name) {
            Ok(dir) => Ok(SubCgroup {
                parent,
                name,
                path,
                dir,
            }),
            Err(e) => {
                let _ = rustix::fs::unlinkat(&parent, &*name, AtFlags::REMOVEDIR);
                Err(Error::sys(
                    format!("cannot open {}", path.display()),
                    e.into(),
                ))
            }
        }
    }

    /// What clone3(CLONE_INTO_CGROUP) and BPF_PROG_ATTACH take.
    pub fn dir(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the cgroup unless processes are left in it (a daemon the
    /// command started): those keep it, and it goes with the caller's.
    pub fn remove_if_empty(self) -> Result<bool> {
        match rustix::fs::unlinkat(&self.parent, &*self.name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(RawErrno::BUSY) => Ok(false),
            Err(e) => Err(Error::sys(
                format!("cannot remove {}", self.path.display()),
                e.into(),
            )),
        }
    }
}

fn parse_number(text: &str, path: &Path) -> Result<u64> {
    text.trim().parse().map_err(|_| {
        Error::failure(format!(
            "unexpected value '{}' in a control file of {}",
            text.trim(),
            path.display()
        ))
    })
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Unified => "unified (cgroup v2)",
            Layout::Hybrid => "hybrid (cgroup v1 controllers and v2)",
            Layout::Legacy => "legacy (cgroup v1 only)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_hybrid() {
        let h = parse_mountinfo(HYBRID);
        assert_eq!(h.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(h.layout(), Layout::Hybrid);
        let names: Vec<_> = h.v1.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "freezer", "pids", ""]);
        assert_eq!(h.v1[5].name.as_deref(), Some("systemd"));
        assert!(h.v1[..5].iter().all(|m| m.name.is_none()));
        assert_eq!(
            h.v1_for("pids").unwrap().mount,
            Path::new("/sys/fs/cgroup/pids")
        );
        assert!(h.v1_for("systemd").is_none());
    }

    #[test]
    fn mountinfo_unified_with_optional_fields() {
        let text = "\
25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 21 0:23 / /proc rw,nosuid - proc proc rw
";
        let h = parse_mountinfo(text);
        assert_eq!(h.v2, Some(PathBuf::from("/sys/fs/cgroup")));
        assert!(h.v1.is_empty());
        assert_eq!(h.layout(), Layout::Unified);
    }

    #[test]
    fn mountinfo_comounted_and_escaped() {
        let text = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
31 25 0:26 / /mnt/again rw - cgroup cgroup rw,cpu,cpuacct
32 25 0:27 / /mnt/my\\040cgroups rw - cgroup2 none rw
";
        let h = parse_mountinfo(text);
        assert_eq!(h.v1.len(), 1);
        assert_eq!(h.v1[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h.v1_for("cpuacct"), h.v1_for("cpu"));
        assert_eq!(h.v2, Some(PathBuf::from("/mnt/my cgroups")));
        assert_eq!(parse_mountinfo("").layout(), Layout::Legacy);
        // A named hierarchy alone keeps a v2 host unified; mounted twice,
        // it is one hierarchy.
        let named = "\
25 21 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
26 21 0:23 / /run/systemd1 rw - cgroup cgroup rw,xattr,name=systemd
27 21 0:23 / /run/systemd2 rw - cgroup cgroup rw,xattr,name=systemd
";
        let h = parse_mountinfo(named);
        assert_eq!(h.layout(), Layout::Unified);
        assert_eq!(h.v1.len(), 1);
        assert_eq!(h.v1[0].mount, Path::new("/run/systemd1"));
        assert_eq!(parse_mountinfo("garbage\n1 2 3\n").v2, None);
    }

    #[test]
    fn proc_cgroup_hybrid_and_unified() {
        let hybrid = "\
9:name=systemd:/
8:pids:/vsbox/web1
4:memory:/process_api/2c61
2:cpu,cpuacct:/vsbox/web1/sub
0::/vsbox/web1
";
        let pc = parse_proc_cgroup(hybrid);
        assert_eq!(pc.v2.as_deref(), Some("/vsbox/web1"));
        assert_eq!(pc.v1.len(), 4);
        assert_eq!(pc.v1[3].0, ["cpu", "cpuacct"]);
        assert_eq!(pc.v1[3].1, "/vsbox/web1/sub");
        assert_eq!(pc.guest(), Some("web1"));

        let unified = parse_proc_cgroup("0::/vsbox/db.2/init.scope\n");
        assert_eq!(unified.guest(), Some("db.2"));
        assert!(unified.v1.is_empty());
        assert_eq!(parse_proc_cgroup("0::/\n").guest(), None);
        assert_eq!(parse_proc_cgroup("0::/vsboxes/x\n").guest(), None);
        assert_eq!(parse_proc_cgroup("0::/vsbox/..\n").guest(), None);
        // A zombie whose cgroup was removed belongs to no guest.
        assert_eq!(
            parse_proc_cgroup("0::/vsbox/web1 (deleted)\n").guest(),
            None
        );
        assert_eq!(
            parse_proc_cgroup("0::/user.slice/a:b\n").v2.as_deref(),
            Some("/user.slice/a:b")
        );
        // v1 only (no v2 line): the pids path decides.
        assert_eq!(
            parse_proc_cgroup("3:pids:/vsbox/old\n").guest(),
            Some("old")
        );
    }

    #[test]
    fn weight_maps_to_shares_like_the_kernel() {
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(50), 512);
        assert_eq!(weight_to_shares(10_000), 102_400);
        assert_eq!(weight_to_shares(333), 3410);
        assert_eq!(weight_to_shares(0), 2);
        assert_eq!(weight_to_shares(u32::MAX), 262_144);
    }

    #[test]
    fn nproc_from_ulimit() {
        let pids = |t: &str| CgroupLimits::pids_from_ulimit(&Ulimit::parse(t).unwrap());
        assert_eq!(pids("-HS -u 200 -n 1024"), Some(LimitValue::Units(200)));
        assert_eq!(pids("-n 1024"), None);
        assert_eq!(pids("-u unlimited"), Some(LimitValue::Unlimited));
    }

    #[test]
    fn keyed_files() {
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "populated"), Some(1));
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "frozen"), Some(0));
        assert_eq!(
            keyed_value("usage_usec 1234\nuser_usec 3\n", "usage_usec"),
            Some(1234)
        );
        assert_eq!(keyed_value("usage_usec_x 1\n", "usage_usec"), None);
    }

    #[test]
    fn names() {
        assert!(check_name("web1").is_ok());
        assert!(check_name("vsbox-test-123-4").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "-x",
            ".hidden",
            &"x".repeat(65),
            "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
