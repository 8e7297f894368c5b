//! A socket pair that carries open descriptors from one process to another
//! (SCM_RIGHTS), one per message: the guest's terminal to the waiting
//! vsbox (`pty`), the idmapped guest root to the guest's pid 1 (`userns`).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::error::Context;
use crate::{Error, Result};

/// The sending end.
pub struct FdSender(OwnedFd);

/// The receiving end.
pub struct FdReceiver(OwnedFd);

/// A connected pair; `what` names the descriptors in errors.
pub fn channel(what: &str) -> Result<(FdSender, FdReceiver)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context(|| format!("cannot create a socket pair for {what}"))?;
    Ok((FdSender(a), FdReceiver(b)))
}

impl FdSender {
    /// Sends `fd` (a copy: the caller keeps its own); `what` names it in
    /// errors.
    pub fn send(&self, fd: &OwnedFd, what: &str) -> Result<()> {
        let fds = [fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &self.0,
            &[IoSlice::new(b"f")],
            &mut control,
            SendFlags::empty(),
        )
        .context(|| format!("cannot hand on {what}"))?;
        Ok(())
    }
}

impl FdReceiver {
    /// The next descriptor sent, close-on-exec. It must have been sent
    /// already (the caller knows it was): this does not wait.
    pub fn receive(&self, what: &str) -> Result<OwnedFd> {
        let what = || format!("cannot receive {what}");
        let mut byte = [0u8; 1];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &self.0,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        )
        .context(what)?;
        control
            .drain()
            .find_map(|msg| match msg {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .ok_or_else(|| Error::failure(what()))
    }
}
