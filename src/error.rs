//! The one error type: what was being done, and why it failed.
//!
//! Messages read `cannot mount /proc: Operation not permitted (EPERM)`; the
//! dispatcher prefixes the applet name (`APPLET: what: why`) and, after a
//! bad command line, the hint `(see APPLET --help)`. Usage errors (bad
//! arguments, bad configuration) exit 2, everything else exits 1, but
//! around a command run in a guest: 125 when vsbox failed, 126 when the
//! command could not be run, 127 when it was not found.

use std::fmt;

use crate::sys::errno::Errno;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    kind: Kind,
    errno: Option<Errno>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failure,
    /// A bad command line: the --help of the applet tells how to fix it.
    Usage,
    /// A bad configuration file: exits like a usage error, but --help
    /// would not help.
    Config,
    /// The command to run in a guest could not be run: 126 (found, not
    /// runnable) or 127 (not found), as shells, docker and lxc-attach say.
    NotRun(u8),
    /// vsbox failed around a command run in a guest: 125, so that it is
    /// told from the command's own status 1.
    Runner,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of a system call while doing `what`.
    pub fn sys(what: impl fmt::Display, errno: Errno) -> Self {
        Error {
            message: format!("{what}: {}", errno.describe()),
            kind: Kind::Failure,
            errno: Some(errno),
        }
    }

    /// A failure that has no errno (a check that did not hold).
    pub fn failure(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            kind: Kind::Failure,
            errno: None,
        }
    }

    /// Bad arguments or configuration: exit status 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            kind: Kind::Usage,
            errno: None,
        }
    }

    /// A bad configuration file: exit status 2, no --help hint.
    pub fn config(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            kind: Kind::Config,
            errno: None,
        }
    }

    /// An I/O error from std, kept with its errno when it has one.
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(code) => Error::sys(what, Errno::from_raw(code)),
            None => Error::failure(format!("{what}: {err}")),
        }
    }

    /// The exec(2) of the command to run in a guest failed with `err`.
    pub fn not_run(what: impl fmt::Display, err: &std::io::Error) -> Self {
        let status = if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        Error {
            kind: Kind::NotRun(status),
            ..Error::io(what, err)
        }
    }

    /// An error as the process that made it reported it: its exit status
    /// and message (a guest's pid 1 or a joiner, before its exec).
    pub fn reported(status: u8, message: impl Into<String>) -> Self {
        let kind = match status {
            2 => Kind::Config,
            126 | 127 => Kind::NotRun(status),
            _ => Kind::Failure,
        };
        Error {
            message: message.into(),
            kind,
            errno: None,
        }
    }

    /// For the commands that run a command in a guest (vserver exec,
    /// suexec, enter, service): a failure of vsbox's own exits 125.
    pub fn around_guest_command(self) -> Self {
        match self.kind {
            Kind::Failure => Error {
                kind: Kind::Runner,
                ..self
            },
            _ => self,
        }
    }

    pub fn exit_status(&self) -> u8 {
        match self.kind {
            Kind::Failure => 1,
            Kind::Usage | Kind::Config => 2,
            Kind::NotRun(status) => status,
            Kind::Runner => 125,
        }
    }

    /// Whether the command line was wrong, so that `APPLET --help` helps.
    pub fn is_usage(&self) -> bool {
        self.kind == Kind::Usage
    }

    /// The message as `APPLET: what: why` for stderr, with the --help hint
    /// after a bad command line. Control characters other than the line
    /// breaks of multi-line messages are escaped: a message may quote input
    /// that was never checked, and must not drive the terminal.
    pub fn report(&self, applet: &str) -> String {
        let mut out = format!("{applet}: ");
        for c in self.message.chars() {
            match c {
                '\n' | '\t' => out.push(c),
                c if c.is_control() => out.extend(c.escape_default()),
                c => out.push(c),
            }
        }
        if self.is_usage() {
            out.push_str(&format!(" (see {applet} --help)"));
        }
        out
    }

    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Longest user-supplied value quoted whole in a message.
const SHOWN_MAX: usize = 80;

/// A value the user (or a file) gave, for quoting in a message: control and
/// other unprintable characters escaped, so no escape sequence reaches the
/// terminal, and cut with an ellipsis after 80 characters, so one bad
/// argument does not bury the message.
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().take(SHOWN_MAX) {
        // Quotes and backslashes stay as they are: messages quote values
        // in '...', and a path may hold a backslash.
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if value.chars().nth(SHOWN_MAX).is_some() {
        out.push('…');
    }
    out
}

/// Attaches "what was being done" to a bare errno or I/O error.
pub trait Context<T> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::sys(what(), Errno::from_raw(e.raw_os_error())))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::io(what(), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_error_names_the_errno() {
        let e = Error::sys("cannot mount /proc", Errno::from_raw(1));
        assert_eq!(
            e.to_string(),
            "cannot mount /proc: Operation not permitted (EPERM)"
        );
        assert_eq!(e.exit_status(), 1);
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(Error::usage("bad").exit_status(), 2);
        assert_eq!(Error::failure("bad").exit_status(), 1);
    }

    #[test]
    fn usage_errors_hint_at_help_once_and_config_errors_not() {
        assert_eq!(
            Error::usage("bad").report("vkill"),
            "vkill: bad (see vkill --help)"
        );
        assert_eq!(
            Error::config("x.conf:1: bad").report("vserver"),
            "vserver: x.conf:1: bad"
        );
        assert_eq!(Error::config("x").exit_status(), 2);
    }

    #[test]
    fn reports_escape_control_characters() {
        let e = Error::failure("a\x1b[2Jb\nc");
        assert_eq!(e.report("v"), "v: a\\u{1b}[2Jb\nc");
    }

    #[test]
    fn shown_values_are_escaped_and_cut() {
        assert_eq!(shown("ab\x1b]0;x\x07"), "ab\\u{1b}]0;x\\u{7}");
        let long = "x".repeat(200);
        let s = shown(&long);
        assert_eq!(s.chars().count(), 81);
        assert!(s.ends_with('…'));
        assert_eq!(shown(&"y".repeat(80)), "y".repeat(80));
        assert_eq!(shown("it's a\\b"), "it's a\\b");
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let err = std::fs::read("/nonexistent/vsbox-test").unwrap_err();
        let e = Error::io("cannot read /nonexistent/vsbox-test", &err);
        assert_eq!(e.errno(), Some(Errno::from_raw(2)));
        assert!(
            e.to_string()
                .ends_with("No such file or directory (ENOENT)"),
            "{e}"
        );
    }
}
