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

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{AddressFamily, RecvFlags, SocketAddrUnix, SocketFlags, SocketType};

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
pub fn wait_ready(socket: &OwnedFd, pidfd: BorrowedFd<'_>, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::failure(format!(
                "the guest's systemd did not finish booting within {} s (S_START_TIMEOUT): the guest was stopped",
                timeout.as_secs()
            )));
        }
        let wait = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut fds = [
            PollFd::new(socket, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e).context(|| "cannot wait for the guest's systemd"),
        }
        if fds[1].revents().contains(PollFlags::IN) && !fds[0].revents().contains(PollFlags::IN) {
            return Err(Error::failure(
                "the guest's systemd ended while it booted (see the guest's journal)",
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
