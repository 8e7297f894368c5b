//! Landlock scoping of a guest's abstract unix sockets.
//!
//! Guests share the host's network namespace (ipv4root confines their
//! addresses), and abstract unix socket names live in the network
//! namespace: without more, every guest could connect to every abstract
//! socket of the host and of the other guests, and the host side would see
//! its peer as uid 0 (CVE-2020-15257, containerd-shim). Each guest process
//! is therefore put in a Landlock domain with
//! LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (ABI 6, Linux 6.12): it can connect
//! only to abstract sockets bound inside its own domain (or domains nested
//! in it). The domain handles no filesystem or network access right, so it
//! restricts nothing else.
//!
//! A guest's pid 1 enters its domain before it starts anything, so the
//! main command, vinit, the rc scripts and all they start share it. Each
//! joined command (vserver exec, enter, chcontext --ctx N) gets a domain of
//! its own, a sibling of the guest's (Landlock cannot join an existing
//! domain): a joined command and the rest of the guest cannot reach each
//! other's abstract sockets, and, as across any two Landlock domains, they
//! cannot ptrace each other or read each other's /proc/PID/{environ,mem,fd,
//! exe}, whatever their capabilities.
//!
//! Signals are not scoped: with LANDLOCK_SCOPE_SIGNAL, `vserver NAME exec
//! kill PID` of a daemon the guest's rc started fails with EPERM, and so
//! does the guest's stop script killing a daemon that a joined command
//! started (both seen on 6.18); the guest's pid namespace already keeps
//! host processes out of its reach.
//!
//! On an older kernel (or with Landlock disabled) the guest still starts;
//! `vserver start` and chcontext say that the host's abstract sockets stay
//! reachable.

use crate::sys::errno::Errno;
use crate::sys::landlock;

/// The first Landlock ABI with LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET.
const ABI_SCOPE: u32 = 6;

/// Whether the running kernel can scope abstract unix sockets.
pub fn available() -> bool {
    landlock::abi_version().is_ok_and(|abi| abi >= ABI_SCOPE)
}

/// The start-time warning on a kernel that cannot scope, None otherwise.
pub fn warning() -> Option<&'static str> {
    (!available()).then_some(
        "this kernel has no Landlock scoping (ABI 6, Linux 6.12): the host's abstract unix sockets stay reachable from the guest",
    )
}

/// Puts the calling thread in a new domain that scopes abstract unix
/// sockets. Needs CAP_SYS_ADMIN (or no_new_privs): call it before the
/// capability drop. No allocation: it may run between clone and exec.
pub fn restrict() -> Result<(), Errno> {
    landlock::restrict_self_scoped(landlock::SCOPE_ABSTRACT_UNIX_SOCKET)
}
