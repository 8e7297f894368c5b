//! Context flags (S_FLAGS, chcontext --flag): lock sched nproc private
//! fakeinit io_uring.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextFlag {
    /// No way out: setns, unshare and new namespaces are refused.
    Lock,
    /// The whole guest weighs as one task in CPU scheduling.
    Sched,
    /// ULIMIT -u becomes a guest-wide process limit (pids.max): what vsbox
    /// always does now; accepted for the seed's configurations.
    Nproc,
    /// Host tools may not enter, exec in or kill the guest.
    Private,
    /// The guest's own /sbin/init runs as pid 1.
    Fakeinit,
    /// io_uring stays allowed (the guest's seccomp filter denies it
    /// otherwise).
    IoUring,
}

const ALL: [(ContextFlag, &str); 6] = [
    (ContextFlag::Lock, "lock"),
    (ContextFlag::Sched, "sched"),
    (ContextFlag::Nproc, "nproc"),
    (ContextFlag::Private, "private"),
    (ContextFlag::Fakeinit, "fakeinit"),
    (ContextFlag::IoUring, "io_uring"),
];

impl ContextFlag {
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or_default()
    }
}

/// A set of context flags, kept in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextFlags(Vec<ContextFlag>);

impl ContextFlags {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = ContextFlags::default();
        for word in text.split_whitespace() {
            let flag = ContextFlag::from_name(word).ok_or_else(|| {
                format!("unknown flag '{word}' (expected lock, sched, nproc, private, fakeinit or io_uring)")
            })?;
            set.insert(flag);
        }
        Ok(set)
    }

    pub fn insert(&mut self, flag: ContextFlag) {
        if !self.contains(flag) {
            self.0.push(flag);
        }
    }

    pub fn contains(&self, flag: ContextFlag) -> bool {
        self.0.contains(&flag)
    }
}

impl fmt::Display for ContextFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|f| f.name()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_flags_parse_and_duplicates_fold() {
        let flags =
            ContextFlags::parse("lock sched  nproc\tprivate fakeinit io_uring lock").unwrap();
        assert_eq!(
            flags.to_string(),
            "lock sched nproc private fakeinit io_uring"
        );
        assert!(flags.contains(ContextFlag::Fakeinit));
        assert!(ContextFlags::parse("").unwrap() == ContextFlags::default());
    }

    #[test]
    fn unknown_flag_is_an_error() {
        let err = ContextFlags::parse("lock fast").unwrap_err();
        assert!(err.starts_with("unknown flag 'fast'"), "{err}");
        assert!(
            ContextFlags::parse("LOCK").is_err(),
            "flags are lower case, as in the seed"
        );
    }
}
