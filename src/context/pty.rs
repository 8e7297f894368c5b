//! The pseudo-terminal of `vserver NAME enter` and `exec -t`: made inside
//! the guest, from the guest's own devpts instance, as lxc-attach and
//! machinectl shell do. The command gets its slave as controlling
//! terminal; the master travels to the waiting vsbox process over a socket
//! (SCM_RIGHTS), which relays it to the caller's terminal (see `relay`).
//! The admin's own terminal never enters the guest.
//!
//! The guest tree is hostile: its /dev/ptmx or /dev/pts may be a symbolic
//! link, a FIFO or a renamed directory. The master is opened without
//! following any symbolic link and must prove to be the ptmx device of a
//! devpts filesystem; the slave comes from the master itself
//! (TIOCGPTPEER), never from a path.

use std::os::fd::OwnedFd;

use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::pty::OpenptFlags;

use super::fdpass::{self, FdReceiver, FdSender};

use crate::error::Context;
use crate::{Error, Result};

/// The multiplexer of the devpts instance mounted on the guest's /dev/pts.
const PTMX: &str = "/dev/pts/ptmx";

/// Device number of every devpts instance's ptmx node: 5:2.
const PTMX_MAJOR: u32 = 5;
const PTMX_MINOR: u32 = 2;

/// The guest-side end of the socket that carries the master to the waiter.
pub struct MasterSender(FdSender);

/// The waiter's end.
pub struct MasterReceiver(FdReceiver);

/// What the channel carries, for its errors.
const MASTER: &str = "the guest's terminal";

/// A connected pair: the sender goes to the child that makes the pty, the
/// receiver stays with the waiting process.
pub fn channel() -> Result<(MasterSender, MasterReceiver)> {
    let (sender, receiver) = fdpass::channel(MASTER)?;
    Ok((MasterSender(sender), MasterReceiver(receiver)))
}

/// A pty of the guest's devpts: (master, slave). Call it inside the guest
/// (its mounts and root), before anything of the guest runs in this
/// process. The master is non-blocking (it is the relay's end).
pub fn open_in_guest() -> Result<(OwnedFd, OwnedFd)> {
    let what = || format!("cannot open the guest's {PTMX}");
    let master = rustix::fs::openat2(
        CWD,
        PTMX,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .context(what)?;
    let fs = rustix::fs::fstatfs(&master).context(what)?;
    let st = rustix::fs::fstat(&master).context(what)?;
    let is_ptmx = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && rustix::fs::major(st.st_rdev) == PTMX_MAJOR
        && rustix::fs::minor(st.st_rdev) == PTMX_MINOR;
    if fs.f_type as u64 != u64::from(linux_raw_sys::general::DEVPTS_SUPER_MAGIC) || !is_ptmx {
        return Err(Error::failure(format!(
            "{}: not the ptmx device of a devpts filesystem",
            what()
        )));
    }
    rustix::pty::unlockpt(&master).context(|| "cannot unlock the guest's pseudo-terminal")?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .context(|| "cannot open the guest pseudo-terminal's slave")?;
    Ok((master, slave))
}

impl MasterSender {
    /// Hands `master` to the waiting process.
    pub fn send(self, master: &OwnedFd) -> Result<()> {
        self.0.send(master, MASTER)
    }
}

impl MasterReceiver {
    /// The master the child sent; call it once the child has exec'd (it
    /// sends before), so it is waiting and this does not block.
    pub fn receive(self) -> Result<OwnedFd> {
        self.0.receive(MASTER)
    }
}

/// Makes the terminal on standard input the controlling terminal of the
/// session this process leads (every guest command starts one), so that
/// the guest's shell has job control and Ctrl-C reaches its foreground job.
/// Last thing before exec.
pub fn take_controlling_terminal() -> Result<()> {
    rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())
        .context(|| "cannot make the guest's pseudo-terminal the controlling terminal")
}
