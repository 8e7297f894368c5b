//! The start of a systemd guest waits until systemd says it has booted, as
//! it tells any service manager: READY=1 on the datagram socket named by
//! $NOTIFY_SOCKET (sd_notify(3)). The socket is made by the guest's pid 1
//! on the guest's fresh /run before it execs systemd, and handed to the
//! starter, which reads it until READY=1, the end of pid 1, or
//! S_START_TIMEOUT, then closes it: nothing of the host stays listening in
//! the guest. What the guest sends there is read bounded and only looked
//! at for that line.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, RecvFlags, SocketAddrUnix, SocketFlags, SocketType};

use super::console::{Keeper, wait_input};

use crate::error::Context;
use crate::{Error, Result};

/// Where the guest's systemd finds the socket (its $NOTIFY_SOCKET), on the
/// /run that vsbox mounts, next to /run/host/container-manager.
pub const SOCKET_PATH: &str = "/run/host/notify";

/// Makes the socket, bound at `SOCKET_PATH`. Call it inside the guest,
/// once its /run is mounted.
pub fn bind_in_guest() -> Result<OwnedFd> {
    let what = || format!("cannot make {SOCKET_PATH} for systemd's readiness");
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .context(what)?;
    let addr = SocketAddrUnix::new(SOCKET_PATH).context(what)?;
    rustix::net::bind(&socket, &addr).context(what)?;
    Ok(socket)
}

/// Waits until a datagram on `socket` has the line READY=1, at most
/// `timeout`; fails when the guest's init (`pidfd`) ends first.
pub fn wait_ready(
    socket: &OwnedFd,
    pidfd: BorrowedFd<'_>,
    timeout: Duration,
    mut keeper: Option<&mut Keeper>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let input = wait_input(&[socket.as_fd(), pidfd], deadline, keeper.as_deref_mut())?;
        if input == [false, false] {
            return Err(Error::failure(format!(
                "the guest's systemd did not finish booting within {} s (S_START_TIMEOUT): the guest was stopped",
                timeout.as_secs()
            )));
        }
        if input == [false, true] {
            return Err(Error::failure(
                "the guest's systemd ended while it booted (see `vserver NAME log`)",
            ));
        }
        loop {
            match rustix::net::recv(socket.as_fd(), &mut buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) if says_ready(&buf[..n.min(buf.len())]) => return Ok(()),
                Ok(_) => continue,
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => break,
                Err(e) => return Err(e).context(|| "cannot read the guest's systemd"),
            }
        }
    }
}

/// Whether a notification message (newline-separated assignments) says
/// READY=1.
fn says_ready(message: &[u8]) -> bool {
    message
        .split(|b| *b == b'\n')
        .any(|line| line == b"READY=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_a_whole_line() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=Startup finished\nREADY=1\n"));
        assert!(!says_ready(b"READY=10"));
        assert!(!says_ready(b"STATUS=READY=1"));
        assert!(!says_ready(b""));
    }
}
