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
    fn unknown_capability_is_an_error() {
        let err = CapabilityList::parse("CAP_NET_RAW CAP_FLY").unwrap_err();
        assert!(err.contains("unknown capability 'CAP_FLY'"), "{err}");
        assert!(CapabilityList::parse("!").is_err());
        assert!(CapabilityList::parse("CAP_").is_err());
    }
}
