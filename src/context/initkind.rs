//! Which init is a guest's pid 1, and how it is asked to shut down: each
//! init has its own request, and the wrong one is worse than none (systemd
//! takes SIGTERM as "re-execute yourself", sysvinit ignores it).

use rustix::process::Signal;

use super::flags::{ContextFlag, ContextFlags};

/// The guest's pid 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitKind {
    /// vsbox's own init running the guest's runlevel scripts (a guest
    /// without fakeinit and without systemd), or the supervisor of a
    /// one-shot command.
    #[default]
    Vinit,
    /// systemd: shuts down on SIGRTMIN+3 (what `poweroff` sends it).
    Systemd,
    /// sysvinit (inittab, telinit): shuts down by `telinit 0`, run inside
    /// the guest.
    Sysvinit,
    /// Another init of the guest's own (fakeinit: busybox init...): SIGTERM,
    /// as the seed sent.
    Other,
}

impl InitKind {
    pub fn name(self) -> &'static str {
        match self {
            InitKind::Vinit => "vinit",
            InitKind::Systemd => "systemd",
            InitKind::Sysvinit => "sysvinit",
            InitKind::Other => "init",
        }
    }

    /// The name as `name` gives it; an unknown one (a record written by an
    /// older vsbox) is vinit's, which is what those records ran or what
    /// SIGTERM suits.
    pub fn from_name(name: &str) -> InitKind {
        [InitKind::Systemd, InitKind::Sysvinit, InitKind::Other]
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or_default()
    }

    /// The signal that asks this init to shut the guest down; None for
    /// sysvinit, which is asked by `telinit 0` inside the guest.
    pub fn halt_signal(self) -> Option<Signal> {
        match self {
            InitKind::Systemd => Some(crate::sys::signal::realtime(3)),
            InitKind::Sysvinit => None,
            InitKind::Vinit | InitKind::Other => Some(Signal::TERM),
        }
    }

    /// A context made by chcontext: fakeinit runs the command as pid 1.
    pub fn from_flags(flags: &ContextFlags) -> InitKind {
        if flags.contains(ContextFlag::Fakeinit) {
            InitKind::Other
        } else {
            InitKind::Vinit
        }
    }

    /// Whether the guest's own /sbin/init is pid 1 (not vinit).
    pub fn is_guest_init(self) -> bool {
        self != InitKind::Vinit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_old_records_are_vinit() {
        for k in [
            InitKind::Vinit,
            InitKind::Systemd,
            InitKind::Sysvinit,
            InitKind::Other,
        ] {
            assert_eq!(InitKind::from_name(k.name()), k);
        }
        assert_eq!(InitKind::from_name(""), InitKind::Vinit);
    }

    #[test]
    fn systemd_is_asked_by_sigrtmin_plus_3() {
        assert_eq!(
            InitKind::Systemd.halt_signal().map(|s| s.as_raw()),
            Some(37)
        );
        assert_eq!(InitKind::Vinit.halt_signal(), Some(Signal::TERM));
        assert_eq!(InitKind::Sysvinit.halt_signal(), None);
    }
}
