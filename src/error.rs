//! The one error type: what was being done, and why it failed.
//!
//! Messages read `cannot mount /proc: Operation not permitted (EPERM)`; the
//! dispatcher prefixes the applet name. Usage errors (bad arguments, bad
//! configuration) exit 2, everything else exits 1.

use std::fmt;

use crate::sys::errno::Errno;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    usage: bool,
    errno: Option<Errno>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of a system call while doing `what`.
    pub fn sys(what: impl fmt::Display, errno: Errno) -> Self {
        Error {
            message: format!("{what}: {}", errno.describe()),
            usage: false,
            errno: Some(errno),
        }
    }

    /// A failure that has no errno (a check that did not hold).
    pub fn failure(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            usage: false,
            errno: None,
        }
    }

    /// Bad arguments or configuration: exit status 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            usage: true,
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

    pub fn exit_status(&self) -> u8 {
        if self.usage { 2 } else { 1 }
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
