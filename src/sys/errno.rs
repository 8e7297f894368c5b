//! Errno values with their symbolic names, so every error a user sees says
//! both the text and the name (`Operation not permitted (EPERM)`).

use linux_raw_sys::errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

macro_rules! errno_names {
    ($($name:ident),* $(,)?) => {
        /// Every errno Linux defines, aliases (EWOULDBLOCK, EDEADLOCK) left out
        /// so that a value maps to its usual name.
        static NAMES: &[(u32, &str)] = &[$((errno::$name, stringify!($name))),*];
    };
}

errno_names![
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    ENOTBLK,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    EDOM,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOLCK,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENOMSG,
    EIDRM,
    ECHRNG,
    EL2NSYNC,
    EL3HLT,
    EL3RST,
    ELNRNG,
    EUNATCH,
    ENOCSI,
    EL2HLT,
    EBADE,
    EBADR,
    EXFULL,
    ENOANO,
    EBADRQC,
    EBADSLT,
    EBFONT,
    ENOSTR,
    ENODATA,
    ETIME,
    ENOSR,
    ENONET,
    ENOPKG,
    EREMOTE,
    ENOLINK,
    EADV,
    ESRMNT,
    ECOMM,
    EPROTO,
    EMULTIHOP,
    EDOTDOT,
    EBADMSG,
    EOVERFLOW,
    ENOTUNIQ,
    EBADFD,
    EREMCHG,
    ELIBACC,
    ELIBBAD,
    ELIBSCN,
    ELIBMAX,
    ELIBEXEC,
    EILSEQ,
    ERESTART,
    ESTRPIPE,
    EUSERS,
    ENOTSOCK,
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    ESOCKTNOSUPPORT,
    EOPNOTSUPP,
    EPFNOSUPPORT,
    EAFNOSUPPORT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETDOWN,
    ENETUNREACH,
    ENETRESET,
    ECONNABORTED,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ESHUTDOWN,
    ETOOMANYREFS,
    ETIMEDOUT,
    ECONNREFUSED,
    EHOSTDOWN,
    EHOSTUNREACH,
    EALREADY,
    EINPROGRESS,
    ESTALE,
    EUCLEAN,
    ENOTNAM,
    ENAVAIL,
    EISNAM,
    EREMOTEIO,
    EDQUOT,
    ENOMEDIUM,
    EMEDIUMTYPE,
    ECANCELED,
    ENOKEY,
    EKEYEXPIRED,
    EKEYREVOKED,
    EKEYREJECTED,
    EOWNERDEAD,
    ENOTRECOVERABLE,
    ERFKILL,
    EHWPOISON,
];

impl Errno {
    pub const fn from_raw(code: i32) -> Self {
        Errno(code)
    }

    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The symbolic name, e.g. `EPERM`; None for a value Linux does not define.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(v, _)| *v as i32 == self.0)
            .map(|(_, n)| *n)
    }

    /// `Operation not permitted (EPERM)`.
    pub fn describe(self) -> String {
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        // std appends " (os error N)"; the name says the same more usefully.
        let text = match text.rfind(" (os error ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        match self.name() {
            Some(name) => format!("{text} ({name})"),
            None => format!("{text} (errno {})", self.0),
        }
    }
}

impl From<rustix::io::Errno> for Errno {
    fn from(e: rustix::io::Errno) -> Self {
        Errno(e.raw_os_error())
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_common_errnos() {
        assert_eq!(Errno::from_raw(1).name(), Some("EPERM"));
        assert_eq!(Errno::from_raw(11).name(), Some("EAGAIN"));
        assert_eq!(Errno::from_raw(95).name(), Some("EOPNOTSUPP"));
        assert_eq!(Errno::from_raw(133).name(), Some("EHWPOISON"));
        assert_eq!(Errno::from_raw(9999).name(), None);
    }

    #[test]
    fn describe_has_text_and_name() {
        assert_eq!(
            Errno::from_raw(2).describe(),
            "No such file or directory (ENOENT)"
        );
        assert!(Errno::from_raw(9999).describe().ends_with("(errno 9999)"));
    }
}
