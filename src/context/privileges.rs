//! The privilege ceiling of a guest: which capabilities it keeps, the
//! seccomp filter, and its resource limits.
//!
//! `Privileges` says what is wanted (S_CAPS rules, `--secure`, S_FLAGS,
//! ULIMIT, S_NICE). `prepare()` does all the allocating work once: the ceiling
//! mask, the limits in kernel form, the filter program. `Prepared::apply()`
//! then makes only system calls, in the process (thread) that will exec the
//! guest program, so it can run after fork or clone; it never allocates,
//! and its error is a plain `Copy` value.
//!
//! The order in `apply` matters:
//! 0. the nice value (S_NICE), while CAP_SYS_NICE still allows a negative
//!    one (the guest never has that capability);
//! 1. setrlimit, while CAP_SYS_RESOURCE may still allow raising a hard
//!    limit;
//! 2. the seccomp filter, while CAP_SYS_ADMIN is still effective: the kernel
//!    then takes the filter without no_new_privs, so setuid programs in the
//!    guest (su, passwd, ping) keep working. Only a caller that has no
//!    CAP_SYS_ADMIN to begin with (a reducecap inside a guest) gets
//!    no_new_privs, because the kernel accepts a filter no other way;
//! 3. the bounding set, while CAP_SETPCAP is still held: every capability
//!    outside the ceiling is dropped, for good;
//! 4. permitted, effective and inheritable cut to the ceiling;
//! 5. the ambient set emptied.
//!
//! A guest's processes enter a Landlock domain before this, while they
//! still hold CAP_SYS_ADMIN (`context::scope`, done by `context::spawn`,
//! which knows what a guest is): reducecap and the spectator context make
//! no guest.
//!
//! Root in the guest keeps the ceiling across exec: an execve by uid 0
//! gives it its bounding set (now the ceiling) and nothing more.

use std::fmt;

use crate::context::capability::{Capability, CapabilityList, CapabilityRule};
use crate::context::flags::{ContextFlag, ContextFlags};
use crate::context::rlimit::{LimitKind, Resource, Ulimit};
use crate::context::seccomp::{self, Arch, Policy};
use crate::sys::capability as caps;
use crate::sys::errno::Errno;
use crate::sys::seccomp::SockFilter;
use crate::{Error, Result};

/// Whether the default ceiling keeps a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Drop,
}

use Decision::{Drop, Keep};

/// The default ceiling (the seed's `--secure`), one row per capability in
/// number order, with the reason. docs/SECURITY.md shows the same table; a
/// test keeps the two in step.
pub const CEILING: [(&str, Decision, &str); 41] = [
    (
        "CHOWN",
        Keep,
        "guest root owns the guest's files; package managers chown",
    ),
    (
        "DAC_OVERRIDE",
        Keep,
        "root semantics on the guest's own files",
    ),
    (
        "DAC_READ_SEARCH",
        Drop,
        "open_by_handle_at escapes any chroot or mount namespace (the 'shocker' exploit); DAC_OVERRIDE already covers file access",
    ),
    ("FOWNER", Keep, "chmod/utime on files of other guest users"),
    ("FSETID", Keep, "keep setuid bits when root edits files"),
    (
        "KILL",
        Keep,
        "guest init and root signal any guest process; the pid namespace hides the host's",
    ),
    ("SETGID", Keep, "login, su, daemons changing group"),
    ("SETUID", Keep, "login, su, daemons changing user"),
    (
        "SETPCAP",
        Keep,
        "lets guest programs drop capabilities further; it cannot add any beyond the bounding set",
    ),
    (
        "LINUX_IMMUTABLE",
        Drop,
        "unified files are immutable; a guest must not clear that and write a file shared with other guests",
    ),
    ("NET_BIND_SERVICE", Keep, "servers bind ports below 1024"),
    ("NET_BROADCAST", Keep, "unused by Linux; harmless"),
    (
        "NET_ADMIN",
        Drop,
        "the network stack is the host's (ipv4root): interfaces, routes, firewall",
    ),
    (
        "NET_RAW",
        Drop,
        "raw sockets forge source addresses past ipv4root; add back with S_CAPS=CAP_NET_RAW for ping",
    ),
    (
        "IPC_LOCK",
        Keep,
        "mlock for databases and key agents; locked memory is charged to the guest's memory cgroup",
    ),
    (
        "IPC_OWNER",
        Keep,
        "SysV IPC is private to the guest (ipc namespace)",
    ),
    ("SYS_MODULE", Drop, "kernel modules run with no limit"),
    (
        "SYS_RAWIO",
        Drop,
        "raw I/O ports, /dev/mem, FIBMAP, SG_IO: host hardware and memory",
    ),
    (
        "SYS_CHROOT",
        Keep,
        "build tools chroot; pivot_root in a private mount namespace makes chroot escapes land in the guest (remove with !CAP_SYS_CHROOT)",
    ),
    (
        "SYS_PTRACE",
        Drop,
        "would let guest root ptrace a host tool entering the guest (vserver enter/exec) before it drops its privileges",
    ),
    ("SYS_PACCT", Drop, "process accounting is host-wide"),
    (
        "SYS_ADMIN",
        Drop,
        "mount, namespaces, quotas, swap, sethostname and most of the kernel's privileged surface",
    ),
    (
        "SYS_BOOT",
        Drop,
        "reboot; outside a pid namespace it reboots the host",
    ),
    (
        "SYS_NICE",
        Drop,
        "real-time scheduling and negative nice let one guest starve the host and the other guests",
    ),
    (
        "SYS_RESOURCE",
        Drop,
        "raising hard rlimits, using reserved disk blocks, overriding quotas",
    ),
    ("SYS_TIME", Drop, "the clock is host-wide"),
    (
        "SYS_TTY_CONFIG",
        Drop,
        "vhangup and console configuration of the host's terminals",
    ),
    (
        "MKNOD",
        Drop,
        "device nodes reach host disks and memory; the guest's /dev is made by the host",
    ),
    ("LEASE", Keep, "file leases (Samba, NFS servers)"),
    (
        "AUDIT_WRITE",
        Keep,
        "login and sshd write audit records; refusing them breaks logins",
    ),
    (
        "AUDIT_CONTROL",
        Drop,
        "audit rules and login uids are host-wide",
    ),
    (
        "SETFCAP",
        Keep,
        "package managers install programs with file capabilities (ping); exec grants them only within the bounding set",
    ),
    ("MAC_OVERRIDE", Drop, "would bypass the host's LSM policy"),
    ("MAC_ADMIN", Drop, "would change the host's LSM policy"),
    (
        "SYSLOG",
        Drop,
        "the kernel log is host-wide and shows kernel addresses",
    ),
    ("WAKE_ALARM", Drop, "host power management"),
    ("BLOCK_SUSPEND", Drop, "host power management"),
    (
        "AUDIT_READ",
        Drop,
        "the audit multicast socket shows every host event",
    ),
    (
        "PERFMON",
        Drop,
        "perf events observe the host and other guests; a large kernel attack surface",
    ),
    (
        "BPF",
        Drop,
        "BPF programs and maps are host-wide; the verifier is a large attack surface",
    ),
    (
        "CHECKPOINT_RESTORE",
        Drop,
        "choosing pids and reading /proc/PID/map_files",
    ),
];

/// The default ceiling as a mask (bit N = capability N).
pub fn secure_ceiling() -> u64 {
    CEILING
        .iter()
        .enumerate()
        .filter(|(_, (_, d, _))| *d == Keep)
        .fold(0, |mask, (n, _)| mask | 1 << n)
}

/// Everything a process may keep: all 64 bits, so that a kernel newer than
/// this build keeps its new capabilities when no `--secure` asked otherwise.
const ALL: u64 = u64::MAX;

/// What privileges a guest (or a reducecap'd command) runs with.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    pub caps: CapabilityList,
    pub secure: bool,
    pub flags: ContextFlags,
    pub ulimit: Ulimit,
    /// S_NICE: the nice value of every process started this way; None
    /// keeps the caller's.
    pub nice: Option<i32>,
    /// S_USERNS: the guest has a user namespace of its own, so its
    /// capabilities reach only its own namespaces: the secure ceiling gets
    /// CAP_SYS_ADMIN (see `ceiling`), and the lock flag lets it make
    /// namespaces nested in its own (see `seccomp::Policy::nest`).
    pub userns: bool,
}

impl Privileges {
    pub fn new(caps: CapabilityList, secure: bool, flags: ContextFlags, ulimit: Ulimit) -> Self {
        Privileges {
            caps,
            secure,
            flags,
            ulimit,
            nice: None,
            userns: false,
        }
    }

    /// A guest's privileges from its configuration: always the secure
    /// ceiling, then S_CAPS, S_FLAGS, ULIMIT and S_NICE.
    pub fn for_guest(guest: &crate::conf::guest::GuestConfig) -> Self {
        // CAP_SYS_BOOT on top of the secure ceiling, before the guest's own
        // S_CAPS (`!CAP_SYS_BOOT` there takes it away): a guest always has
        // its own pid namespace, where reboot(2) only ends the guest (the
        // monitor restarts or stops it), and kexec is denied by the seccomp
        // filter. The guest's own init needs it for reboot and poweroff.
        // The secure ceiling itself stays without it: reducecap lowers host
        // processes, for which reboot(2) is the host's.
        let mut caps = vec![CapabilityRule {
            cap: Capability::from_name("SYS_BOOT").expect("a Linux capability"),
            remove: false,
        }];
        caps.extend(guest.caps.0.iter().cloned());
        Privileges {
            nice: guest.nice,
            userns: guest.userns,
            ..Privileges::new(
                CapabilityList(caps),
                true,
                guest.flags.clone(),
                guest.ulimit.clone(),
            )
        }
    }

    /// From command-line options (chcontext, reducecap): `--cap` values (CAP
    /// or !CAP) and `--flag` values; a bad name is a usage error.
    pub fn from_options(secure: bool, caps: &[String], flags: &[String]) -> Result<Self> {
        let caps = CapabilityList::parse(&caps.join(" ")).map_err(Error::usage)?;
        let flags = ContextFlags::parse(&flags.join(" ")).map_err(Error::usage)?;
        Ok(Privileges::new(caps, secure, flags, Ulimit::default()))
    }

    /// These privileges for a context that has (or has not) a user
    /// namespace of its own: a joiner follows the running context's run
    /// state, never a configuration edited since its start.
    pub fn in_userns(&self, userns: bool) -> Self {
        Privileges {
            userns,
            ..self.clone()
        }
    }

    /// The capabilities kept: the default ceiling with `secure` (all of
    /// them without), then each S_CAPS rule in order: `CAP` adds, `!CAP`
    /// removes. In a user namespace of its own the secure ceiling has
    /// CAP_SYS_ADMIN too: it then reaches only the namespaces the guest's
    /// user namespace owns (mounts and namespaces of its own, which
    /// systemd's unit sandboxing makes), never the host's. The other
    /// capabilities the secure ceiling drops stay dropped: the kernel checks
    /// most of them in the host's namespaces, where they would be useless,
    /// and the rest (CAP_SYS_PTRACE...) are not needed.
    pub fn ceiling(&self) -> u64 {
        let mut mask = match (self.secure, self.userns) {
            (false, _) => ALL,
            (true, false) => secure_ceiling(),
            (true, true) => secure_ceiling() | 1 << CAP_SYS_ADMIN,
        };
        for rule in &self.caps.0 {
            if let Some(n) = rule.cap.number() {
                if rule.remove {
                    mask &= !(1 << n);
                } else {
                    mask |= 1 << n;
                }
            }
        }
        mask
    }

    /// What the seccomp filter enforces: the deny list in a secure context
    /// (io_uring in it unless the io_uring flag), the namespace rules with
    /// the lock flag.
    pub fn policy(&self) -> Policy {
        Policy {
            deny: self.secure,
            lock: self.flags.contains(ContextFlag::Lock),
            nest: self.userns,
            io_uring: self.flags.contains(ContextFlag::IoUring),
        }
    }

    /// Things worth telling the user that are not errors.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.caps.0.iter().any(|r| r.cap == Capability::Quotactl) {
            out.push(
                "CAP_QUOTACTL: mainline Linux has no such capability (quota control needs \
                 CAP_SYS_ADMIN, which stays out of a guest); ignored"
                    .to_owned(),
            );
        }
        out
    }

    /// Does the allocating work: after this, `apply` only makes calls.
    pub fn prepare(&self) -> Prepared {
        let policy = self.policy();
        let filter = (!policy.is_empty()).then(|| seccomp::build(&Arch::NATIVE, policy));
        let limits = self
            .ulimit
            .limits
            .iter()
            .map(|l| PreparedLimit {
                resource: l.resource,
                kind: self.ulimit.kind,
                value: match l.rlim() {
                    u64::MAX => None,
                    v => Some(v),
                },
            })
            .collect();
        Prepared {
            ceiling: self.ceiling(),
            nice: self.nice,
            limits,
            filter,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PreparedLimit {
    resource: Resource,
    kind: LimitKind,
    /// None is RLIM_INFINITY.
    value: Option<u64>,
}

/// Privileges ready to apply.
#[derive(Debug, Clone)]
pub struct Prepared {
    ceiling: u64,
    nice: Option<i32>,
    limits: Vec<PreparedLimit>,
    filter: Option<Vec<SockFilter>>,
}

/// The step of `Prepared::apply` that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SetNice(i32),
    SetLimit(Resource),
    ReadCapabilities,
    NoNewPrivs,
    Seccomp,
    ReadBounding(u8),
    DropBounding(u8),
    SetCapabilities,
    ClearAmbient,
}

/// A failure of `Prepared::apply`: which step, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyError {
    pub step: Step,
    pub errno: Errno,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Step::SetNice(n) => write!(f, "cannot set the nice value to {n} (S_NICE)"),
            Step::SetLimit(r) => write!(f, "cannot set the limit ulimit -{}", r.letter()),
            Step::ReadCapabilities => f.write_str("cannot read the capability sets"),
            Step::NoNewPrivs => f.write_str("cannot set no_new_privs"),
            Step::Seccomp => f.write_str("cannot install the seccomp filter"),
            Step::ReadBounding(n) => write!(f, "cannot read {} in the bounding set", cap_name(n)),
            Step::DropBounding(n) => write!(
                f,
                "cannot drop {} from the bounding set (dropping needs CAP_SETPCAP)",
                cap_name(n)
            ),
            Step::SetCapabilities => f.write_str("cannot set the capability sets"),
            Step::ClearAmbient => f.write_str("cannot clear the ambient capabilities"),
        }
    }
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Self {
        Error::sys(e.step, e.errno)
    }
}

const CAP_SYS_ADMIN: u8 = linux_raw_sys::general::CAP_SYS_ADMIN as u8;

impl Prepared {
    pub fn ceiling(&self) -> u64 {
        self.ceiling
    }

    /// The seccomp program, if the policy has one.
    pub fn filter(&self) -> Option<&[SockFilter]> {
        self.filter.as_deref()
    }

    /// Applies the limits, the filter and the ceiling to the calling thread
    /// (see the module comment for the order). Only system calls; nothing
    /// allocates.
    pub fn apply(&self) -> std::result::Result<(), ApplyError> {
        let fail = |step| move |errno| ApplyError { step, errno };
        if let Some(nice) = self.nice {
            rustix::process::setpriority_process(None, nice)
                .map_err(|e| fail(Step::SetNice(nice))(e.into()))?;
        }
        for limit in &self.limits {
            let resource = rustix_resource(limit.resource);
            let current = rustix::process::getrlimit(resource);
            let new = match limit.kind {
                LimitKind::Both => rustix::process::Rlimit {
                    current: limit.value,
                    maximum: limit.value,
                },
                // A lower hard limit pulls the soft one down with it, as the
                // kernel refuses a soft limit above the hard one.
                LimitKind::Hard => rustix::process::Rlimit {
                    current: min_limit(current.current, limit.value),
                    maximum: limit.value,
                },
                LimitKind::Soft => rustix::process::Rlimit {
                    current: limit.value,
                    maximum: current.maximum,
                },
            };
            rustix::process::setrlimit(resource, new)
                .map_err(|e| fail(Step::SetLimit(limit.resource))(e.into()))?;
        }

        let sets = caps::get().map_err(fail(Step::ReadCapabilities))?;
        if let Some(filter) = &self.filter {
            if sets.effective & (1 << CAP_SYS_ADMIN) == 0 {
                caps::set_no_new_privs().map_err(fail(Step::NoNewPrivs))?;
            }
            crate::sys::seccomp::install(filter).map_err(fail(Step::Seccomp))?;
        }

        let mut bounding = 0u64;
        for cap in 0..=caps::MAX_CAP {
            match caps::bounding_has(cap).map_err(fail(Step::ReadBounding(cap)))? {
                None => break,
                Some(false) => {}
                Some(true) if self.ceiling & (1 << cap) != 0 => bounding |= 1 << cap,
                Some(true) => caps::bounding_drop(cap).map_err(fail(Step::DropBounding(cap)))?,
            }
        }

        let permitted = sets.permitted & self.ceiling;
        caps::set(caps::Sets {
            effective: sets.effective & permitted,
            permitted,
            inheritable: (sets.inheritable | permitted) & bounding,
        })
        .map_err(fail(Step::SetCapabilities))?;
        caps::ambient_clear_all().map_err(fail(Step::ClearAmbient))?;
        Ok(())
    }
}

fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

fn rustix_resource(r: Resource) -> rustix::process::Resource {
    use rustix::process::Resource as R;
    match r {
        Resource::Core => R::Core,
        Resource::Data => R::Data,
        Resource::FileSize => R::Fsize,
        Resource::Locked => R::Memlock,
        Resource::Rss => R::Rss,
        Resource::Files => R::Nofile,
        Resource::Stack => R::Stack,
        Resource::CpuTime => R::Cpu,
        Resource::Processes => R::Nproc,
        Resource::AddressSpace => R::As,
    }
}

/// `CAP_NAME`, or `cap_N` for a capability newer than this build.
fn cap_name(n: u8) -> String {
    if (n as usize) < CEILING.len() {
        Capability::Linux(n).to_string()
    } else {
        format!("cap_{n}")
    }
}

/// Capability names of a mask, space separated; `(none)` when empty.
pub fn mask_names(mask: u64) -> String {
    let names: Vec<String> = (0..64u8)
        .filter(|n| mask & (1 << n) != 0)
        .map(cap_name)
        .collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(" ")
    }
}

/// The calling thread's privileges as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub bounding: u64,
    pub sets: caps::Sets,
    pub ambient: u64,
    pub no_new_privs: bool,
    pub seccomp_filter: bool,
}

impl Snapshot {
    pub fn current() -> Result<Snapshot> {
        let read = |e| Error::sys("cannot read the capability sets", e);
        Ok(Snapshot {
            bounding: caps::bounding().map_err(read)?,
            sets: caps::get().map_err(read)?,
            ambient: caps::ambient().map_err(read)?,
            no_new_privs: caps::no_new_privs().map_err(read)?,
            seccomp_filter: crate::sys::seccomp::in_filter_mode()
                .map_err(|e| Error::sys("cannot read the seccomp mode", e))?,
        })
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bounding:    {}", mask_names(self.bounding))?;
        writeln!(f, "permitted:   {}", mask_names(self.sets.permitted))?;
        writeln!(f, "effective:   {}", mask_names(self.sets.effective))?;
        writeln!(f, "inheritable: {}", mask_names(self.sets.inheritable))?;
        writeln!(f, "ambient:     {}", mask_names(self.ambient))?;
        writeln!(
            f,
            "no_new_privs: {}",
            if self.no_new_privs { "yes" } else { "no" }
        )?;
        write!(
            f,
            "seccomp:     {}",
            if self.seccomp_filter {
                "filter"
            } else {
                "none"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::capability::Capability;

    fn bit(name: &str) -> u64 {
        1 << Capability::from_name(name).unwrap().number().unwrap()
    }

    #[test]
    fn table_is_in_number_order_and_complete() {
        let all: Vec<Capability> = Capability::all().collect();
        assert_eq!(all.len(), CEILING.len());
        for (cap, (name, _, reason)) in all.iter().zip(CEILING.iter()) {
            assert_eq!(cap.to_string(), format!("CAP_{name}"));
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn secure_ceiling_drops_what_the_seed_dropped() {
        let ceiling = secure_ceiling();
        for name in [
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_TIME",
            "NET_ADMIN",
            "NET_RAW",
            "MKNOD",
            "LINUX_IMMUTABLE",
            "SYS_RESOURCE",
            "MAC_ADMIN",
            "MAC_OVERRIDE",
            "AUDIT_CONTROL",
            "BPF",
            "PERFMON",
            "SYSLOG",
            "SYS_PACCT",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "CHECKPOINT_RESTORE",
            "AUDIT_READ",
            "DAC_READ_SEARCH",
            "SYS_PTRACE",
        ] {
            assert_eq!(ceiling & bit(name), 0, "{name}");
        }
        for name in [
            "CHOWN",
            "SETUID",
            "SETGID",
            "KILL",
            "NET_BIND_SERVICE",
            "SETPCAP",
        ] {
            assert_ne!(ceiling & bit(name), 0, "{name}");
        }
        assert_eq!(ceiling >> 41, 0, "unknown capabilities are dropped");
    }

    #[test]
    fn rules_add_and_remove_in_order() {
        let p = |caps: &str, secure| Privileges {
            caps: CapabilityList::parse(caps).unwrap(),
            secure,
            ..Default::default()
        };
        let c = p("CAP_NET_RAW !CAP_SYS_CHROOT", true).ceiling();
        assert_ne!(c & bit("NET_RAW"), 0);
        assert_eq!(c & bit("SYS_CHROOT"), 0);
        assert_eq!(c, (secure_ceiling() | bit("NET_RAW")) & !bit("SYS_CHROOT"));
        // Later rules win.
        assert_eq!(p("NET_RAW !NET_RAW", true).ceiling() & bit("NET_RAW"), 0);
        assert_ne!(p("!NET_RAW NET_RAW", true).ceiling() & bit("NET_RAW"), 0);
        // Without --secure everything stays but what `!` removes.
        assert_eq!(p("", false).ceiling(), u64::MAX);
        assert_eq!(p("!SYS_CHROOT", false).ceiling(), !bit("SYS_CHROOT"));
        // CAP_QUOTACTL changes nothing and is reported.
        let q = p("CAP_QUOTACTL", true);
        assert_eq!(q.ceiling(), secure_ceiling());
        assert_eq!(q.warnings().len(), 1);
        assert!(q.warnings()[0].contains("no such capability"));
        assert!(p("NET_RAW", true).warnings().is_empty());
    }

    #[test]
    fn policy_follows_secure_and_lock() {
        let mut p = Privileges::default();
        assert!(p.policy().is_empty());
        assert!(p.prepare().filter().is_none());
        p.flags = ContextFlags::parse("lock").unwrap();
        assert_eq!(
            p.policy(),
            Policy {
                deny: false,
                lock: true,
                nest: false,
                io_uring: false
            }
        );
        p.secure = true;
        assert_eq!(
            p.policy(),
            Policy {
                deny: true,
                lock: true,
                nest: false,
                io_uring: false
            }
        );
        assert!(p.prepare().filter().is_some());
    }

    #[test]
    fn prepared_limits_keep_kind_and_infinity() {
        let p = Privileges {
            ulimit: Ulimit::parse("-H -n 64 -c unlimited").unwrap(),
            ..Default::default()
        };
        let prepared = p.prepare();
        assert_eq!(prepared.limits.len(), 2);
        assert_eq!(prepared.limits[0].value, Some(64));
        assert_eq!(prepared.limits[0].kind, LimitKind::Hard);
        assert_eq!(prepared.limits[1].value, None);
        assert_eq!(min_limit(Some(5), None), Some(5));
        assert_eq!(min_limit(None, None), None);
        assert_eq!(min_limit(Some(5), Some(3)), Some(3));
    }

    #[test]
    fn security_md_lists_the_same_ceiling() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/SECURITY.md"))
                .expect("docs/SECURITY.md");
        for (name, decision, _) in CEILING {
            let row = text
                .lines()
                .find(|l| l.starts_with(&format!("| CAP_{name} |")))
                .unwrap_or_else(|| panic!("docs/SECURITY.md has no row for CAP_{name}"));
            let want = match decision {
                Keep => "| kept |",
                Drop => "| dropped |",
            };
            assert!(row.contains(want), "CAP_{name}: {row}");
        }
    }

    #[test]
    fn names_of_masks() {
        assert_eq!(mask_names(0), "(none)");
        assert_eq!(
            mask_names(bit("CHOWN") | bit("NET_RAW")),
            "CAP_CHOWN CAP_NET_RAW"
        );
        assert_eq!(mask_names(1 << 45), "cap_45");
    }
}
