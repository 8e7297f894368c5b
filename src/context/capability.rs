//! Linux capability names, as written in S_CAPS and on command lines.

use std::fmt;

/// Capability names indexed by number (include/uapi/linux/capability.h),
/// without the CAP_ prefix.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability name as configured. The seed's vs1.00 kernels had a
/// CAP_QUOTACTL of their own; mainline has none (quota needs SYS_ADMIN), so
/// the name is accepted and kept apart for the runtime to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    Linux(u8),
    Quotactl,
}

impl Capability {
    /// Every Linux capability, in number order.
    pub fn all() -> impl Iterator<Item = Capability> {
        (0..NAMES.len() as u8).map(Capability::Linux)
    }

    /// `CAP_NET_RAW`, `NET_RAW` and `net_raw` all name the same capability.
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if bare == "QUOTACTL" {
            return Some(Capability::Quotactl);
        }
        NAMES
            .iter()
            .position(|n| *n == bare)
            .map(|i| Capability::Linux(i as u8))
    }

    /// The kernel's number, None for the seed-only CAP_QUOTACTL.
    pub fn number(self) -> Option<u8> {
        match self {
            Capability::Linux(n) => Some(n),
            Capability::Quotactl => None,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Linux(n) => write!(f, "CAP_{}", NAMES[*n as usize]),
            Capability::Quotactl => f.write_str("CAP_QUOTACTL"),
        }
    }
}

/// One S_CAPS entry: a capability to grant, or with `!` to take away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilityRule {
    pub cap: Capability,
    pub remove: bool,
}

/// S_CAPS: rules applied in order to the default ceiling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityList(pub Vec<CapabilityRule>);

impl CapabilityList {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for word in text.split_whitespace() {
            let (remove, name) = match word.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            let cap = Capability::from_name(name).ok_or_else(|| {
                format!("unknown capability '{name}' (expected a name such as CAP_NET_RAW or NET_RAW, '!' before it to remove it)")
            })?;
            rules.push(CapabilityRule { cap, remove });
        }
        Ok(CapabilityList(rules))
    }
}

/// Capabilities that make a guest's root the host's root, with the way
/// they do it, despite the guest's own pid, mount and ipc namespaces.
/// S_CAPS refuses them unless the guest's file also sets
/// S_CAPS_HOST_ROOT="yes". Not here, though dropped by default:
/// SYS_BOOT (reboot(2) in a guest's pid namespace only ends the guest, and
/// kexec_load is denied by the seccomp filter; a guest's own init needs
/// it), PERFMON (perf_event_open is denied by the filter, and alone it
/// observes, it does not write), NET_ADMIN, SYS_TIME, SYS_NICE and the
/// like (host-wide settings and denial of service, not code or files of
/// the host).
pub const HOST_ROOT: [(&str, &str); 7] = [
    (
        "DAC_READ_SEARCH",
        "open_by_handle_at opens any file of the host by its handle, past the guest's root (the 'shocker' exploit)",
    ),
    ("SYS_MODULE", "it loads code into the host's kernel"),
    (
        "SYS_RAWIO",
        "/dev/mem, I/O ports and SG_IO reach the host's memory and disks",
    ),
    (
        "SYS_PTRACE",
        "it lets guest root ptrace host tools that enter the guest (vserver enter, exec) while they still hold every capability",
    ),
    (
        "SYS_ADMIN",
        "mount, namespaces and most of the kernel's privileged interface: the host's root in all but name",
    ),
    (
        "MKNOD",
        "guests have no device filter: a device node of a host disk reaches every host file",
    ),
    (
        "BPF",
        "BPF tracing programs read the memory of the kernel and of every host process; the seccomp filter would be the only barrier left",
    ),
];

impl CapabilityList {
    /// The capabilities of `HOST_ROOT` these rules grant (the last rule
    /// that names one decides), each with the reason it is host root.
    pub fn host_root(&self) -> Vec<(Capability, &'static str)> {
        HOST_ROOT
            .iter()
            .filter_map(|(name, why)| {
                let cap = Capability::from_name(name)?;
                let last = self.0.iter().rev().find(|r| r.cap == cap)?;
                (!last.remove).then_some((cap, *why))
            })
            .collect()
    }
}

impl fmt::Display for CapabilityList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let bang = if rule.remove { "!" } else { "" };
            write!(f, "{sep}{bang}{}", rule.cap)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::general as k;

    #[test]
    fn numbers_match_the_kernel_headers() {
        let check = [
            ("CAP_CHOWN", k::CAP_CHOWN),
            ("CAP_LINUX_IMMUTABLE", k::CAP_LINUX_IMMUTABLE),
            ("CAP_NET_RAW", k::CAP_NET_RAW),
            ("CAP_SYS_ADMIN", k::CAP_SYS_ADMIN),
            ("CAP_MKNOD", k::CAP_MKNOD),
            ("CAP_AUDIT_READ", k::CAP_AUDIT_READ),
            ("CAP_BPF", k::CAP_BPF),
            ("CAP_CHECKPOINT_RESTORE", k::CAP_CHECKPOINT_RESTORE),
        ];
        for (name, number) in check {
            assert_eq!(
                Capability::from_name(name).unwrap().number(),
                Some(number as u8),
                "{name}"
            );
        }
        assert_eq!(NAMES.len() as u32, k::CAP_LAST_CAP + 1);
    }

    #[test]
    fn every_name_round_trips_with_and_without_prefix() {
        for cap in Capability::all() {
            let full = cap.to_string();
            assert_eq!(Capability::from_name(&full), Some(cap));
            assert_eq!(Capability::from_name(&full[4..]), Some(cap));
            assert_eq!(Capability::from_name(&full.to_lowercase()), Some(cap));
        }
    }

    #[test]
    fn s_caps_with_negation_and_quotactl() {
        let list =
            CapabilityList::parse("CAP_NET_RAW  !CAP_CHOWN\n SYS_TIME CAP_QUOTACTL").unwrap();
        assert_eq!(
            list.to_string(),
            "CAP_NET_RAW !CAP_CHOWN CAP_SYS_TIME CAP_QUOTACTL"
        );
        assert!(list.0[1].remove);
        assert_eq!(list.0[3].cap.number(), None);
    }

    #[test]
    fn host_root_capabilities_are_found_by_their_last_rule() {
        let names = |text: &str| -> Vec<String> {
            CapabilityList::parse(text)
                .unwrap()
                .host_root()
                .iter()
                .map(|(c, _)| c.to_string())
                .collect()
        };
        assert_eq!(names("CAP_SYS_ADMIN"), ["CAP_SYS_ADMIN"]);
        assert_eq!(
            names("mknod NET_RAW CAP_SYS_MODULE"),
            ["CAP_SYS_MODULE", "CAP_MKNOD"]
        );
        assert!(names("CAP_SYS_ADMIN !CAP_SYS_ADMIN").is_empty());
        assert_eq!(names("!SYS_PTRACE SYS_PTRACE"), ["CAP_SYS_PTRACE"]);
        assert!(names("CAP_NET_RAW CAP_SYS_BOOT !CAP_CHOWN").is_empty());
        for (name, why) in HOST_ROOT {
            assert!(Capability::from_name(name).is_some(), "{name}");
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn unknown_capability_is_an_error() {
        let err = CapabilityList::parse("CAP_NET_RAW CAP_FLY").unwrap_err();
        assert!(err.contains("unknown capability 'CAP_FLY'"), "{err}");
        assert!(CapabilityList::parse("!").is_err());
        assert!(CapabilityList::parse("CAP_").is_err());
    }
}
