//! A started guest's console. /dev/console in the guest is a pty of its own
//! devpts, and the guest's init has it as stdin, stdout and stderr, as on a
//! booted machine. The master is held on the host by the guest's monitor
//! (`spawn::monitor`), which keeps all that is written there in a log of
//! the host's (RUN/NAME.console, then NAME.console.1: `vserver NAME log`),
//! and relays it to one admin at a time attached on a socket of the host's
//! (RUN/NAME.console.sock, root only: `vserver NAME console`).
//!
//! Nothing here is in the guest tree: a read-only tree keeps its log, and
//! the guest cannot aim the monitor's writes anywhere. The monitor reads
//! the guest's output without ever blocking on it; what an attached admin
//! types goes to the guest when it takes it, else it is dropped.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::pty;
use super::runstate::RunDir;
use crate::error::Context;
use crate::{Error, Result};

/// The log is moved to NAME.console.1 when it passes this size.
const LOG_LIMIT: u64 = 1 << 20;
/// The key that detaches an admin from the console (Ctrl-]), as telnet's.
pub const DETACH_KEY: u8 = 0x1d;
const CHUNK: usize = 4096;

/// Where guest `name`'s console log is kept.
pub fn log_path(run: &RunDir, name: &str) -> PathBuf {
    run.guest_file_of(name, "console")
}

/// Where the monitor of guest `name` listens for `vserver NAME console`.
pub fn socket_path(run: &RunDir, name: &str) -> PathBuf {
    run.guest_file_of(name, "console.sock")
}

/// In the guest's pid 1, once its /dev is mounted: a pty of the guest's
/// devpts as /dev/console and as this process's standard descriptors (what
/// the guest's init and its scripts write goes there). Returns the master,
/// for the monitor.
pub fn make_in_guest() -> Result<OwnedFd> {
    let (master, slave) = pty::open_in_guest()?;
    let name = rustix::pty::ptsname(&master, Vec::new())
        .context(|| "cannot name the guest console's terminal")?;
    let name = name.to_string_lossy().into_owned();
    std::fs::File::create("/dev/console")
        .map_err(|e| Error::io("cannot create /dev/console", &e))?;
    rustix::mount::mount_bind(name.as_str(), "/dev/console")
        .context(|| format!("cannot bind {name} on /dev/console"))?;
    for dup in [
        rustix::stdio::dup2_stdin,
        rustix::stdio::dup2_stdout,
        rustix::stdio::dup2_stderr,
    ] {
        dup(&slave).context(|| "cannot make /dev/console the init's standard descriptors")?;
    }
    Ok(master)
}

/// The host's end of a guest's console: the master and the log, drained
/// without blocking by whoever holds it (the starter while it waits for
/// the guest to be up, then the monitor), so that the guest never waits
/// on a full console.
pub struct Keeper {
    master: OwnedFd,
    log: Log,
    /// No process of the guest has its console open (EIO, POLLHUP): looked
    /// at again every second, not spun on.
    hung_up: bool,
}

impl Keeper {
    pub fn new(master: OwnedFd, run: &RunDir, name: &str) -> Result<Keeper> {
        Ok(Keeper {
            master,
            log: Log::open(log_path(run, name))?,
            hung_up: false,
        })
    }

    /// The master, to poll for the guest's output; None while no process
    /// of the guest holds the console (poll then with a timeout of at most
    /// `IDLE`).
    pub fn pollable(&self) -> Option<BorrowedFd<'_>> {
        (!self.hung_up).then(|| self.master.as_fd())
    }

    /// Moves what the guest has written to the log (and to `client`, an
    /// attached admin, dropped when it does not keep up).
    pub fn drain(&mut self, client: &mut Option<OwnedFd>) {
        let mut buf = [0u8; CHUNK];
        self.hung_up = false;
        loop {
            match rustix::io::read(&self.master, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    self.log.write(&buf[..n]);
                    if client
                        .as_ref()
                        .is_some_and(|c| write_all_now(c.as_fd(), &buf[..n]).is_err())
                    {
                        *client = None;
                    }
                }
                Err(Errno::INTR) => {}
                // EIO: no process holds the console now.
                Err(Errno::IO) => {
                    self.hung_up = true;
                    return;
                }
                Err(_) => return,
            }
        }
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    pub fn into_master(self) -> OwnedFd {
        self.master
    }
}

/// The longest a holder of a `Keeper` may sleep without draining it.
pub const IDLE: Duration = Duration::from_secs(1);

/// Waits until one of `fds` has input or `deadline` passes, draining
/// `keeper` meanwhile (the guest's output must not stall it while a start
/// waits on it). Which of `fds` are readable; none: the deadline passed.
pub fn wait_input(
    fds: &[BorrowedFd<'_>],
    deadline: std::time::Instant,
    mut keeper: Option<&mut Keeper>,
) -> Result<Vec<bool>> {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(vec![false; fds.len()]);
        }
        let master = keeper.as_ref().and_then(|k| k.pollable());
        let left = match (&keeper, master) {
            (Some(_), None) => left.min(IDLE),
            _ => left,
        };
        let wait = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .chain(master.iter())
            .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
            .collect();
        match rustix::event::poll(&mut polled, Some(&wait)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e).context(|| "cannot wait for the guest"),
        }
        let ready: Vec<bool> = polled[..fds.len()]
            .iter()
            .map(|p| !p.revents().is_empty())
            .collect();
        drop(polled);
        if let Some(k) = keeper.as_deref_mut() {
            k.drain(&mut None);
        }
        if ready.contains(&true) {
            return Ok(ready);
        }
    }
}

/// The monitor's side: until `child` (a pidfd of the guest's pid 1) ends,
/// the guest's output goes to the log and to the attached admin, the
/// admin's keys to the guest.
pub fn serve(mut keeper: Keeper, run: &RunDir, name: &str, child: BorrowedFd<'_>) -> Result<()> {
    let socket = socket_path(run, name);
    let listener = listen(&socket)?;
    let mut client: Option<OwnedFd> = None;
    let idle = Timespec {
        tv_sec: IDLE.as_secs() as i64,
        tv_nsec: 0,
    };
    loop {
        let master = keeper.pollable();
        let mut fds = vec![
            PollFd::new(&child, PollFlags::IN),
            PollFd::new(&listener, PollFlags::IN),
        ];
        if let Some(m) = master {
            fds.push(PollFd::from_borrowed_fd(m, PollFlags::IN));
        }
        let client_at = fds.len();
        if let Some(c) = &client {
            fds.push(PollFd::new(c, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, master.is_none().then_some(&idle)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e).context(|| "cannot wait on the guest's console"),
        }
        let ready: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        // The guest's output, all of it when the guest has ended.
        keeper.drain(&mut client);
        if ready[0].contains(PollFlags::IN) {
            let _ = std::fs::remove_file(&socket);
            return Ok(());
        }
        if ready[1].contains(PollFlags::IN) {
            if let Ok(new) = rustix::net::accept_with(&listener, SocketFlags::CLOEXEC) {
                // One admin at a time: the newest takes over.
                client = Some(new);
            }
        }
        if ready.get(client_at).is_some_and(|f| !f.is_empty()) {
            client = client.and_then(|c| forward_keys(&c, keeper.master()).then_some(c));
        }
    }
}

/// What the attached admin typed, to the guest's console; false once the
/// admin has gone.
fn forward_keys(client: &OwnedFd, master: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; CHUNK];
    match rustix::io::read(client, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            // A guest that takes no input loses it rather than stall the
            // monitor.
            let _ = rustix::io::write(master, &buf[..n]);
            true
        }
    }
}

/// Writes all of `bytes` to the admin's socket, waiting at most a second
/// for room: an admin who reads nothing is dropped, the guest never waits.
fn write_all_now(to: BorrowedFd<'_>, mut bytes: &[u8]) -> std::result::Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(to, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::from_borrowed_fd(to, PollFlags::OUT)];
                let second = Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                if rustix::event::poll(&mut fds, Some(&second))? == 0 {
                    return Err(Errno::AGAIN);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The socket the monitor listens on, root's only: a stale one (a monitor
/// that was killed) is replaced.
fn listen(path: &Path) -> Result<OwnedFd> {
    let what = || format!("cannot listen on {}", path.display());
    let _ = std::fs::remove_file(path);
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .context(what)?;
    let addr = SocketAddrUnix::new(path).context(what)?;
    rustix::net::bind(&socket, &addr).context(what)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600)).context(what)?;
    rustix::net::listen(&socket, 1).context(what)?;
    Ok(socket)
}

/// The console log: appended to, moved aside at `LOG_LIMIT`. A write that
/// fails is dropped (a full disk must not stop the guest's console).
struct Log {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
}

impl Log {
    fn open(path: PathBuf) -> Result<Log> {
        let file = Self::open_file(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), &e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Log {
            path,
            file: Some(file),
            size,
        })
    }

    fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.size >= LOG_LIMIT {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            let _ = std::fs::rename(&self.path, old);
            self.file = Self::open_file(&self.path).ok();
            self.size = 0;
        }
        if let Some(f) = &mut self.file {
            if f.write_all(bytes).is_ok() {
                self.size += bytes.len() as u64;
            }
        }
    }
}

/// `vserver NAME console`: attaches the caller's terminal to the guest's
/// console until Ctrl-] (or the guest's end).
pub fn attach(run: &RunDir, name: &str) -> Result<()> {
    use std::os::unix::net::UnixStream;
    let path = socket_path(run, name);
    // The monitor listens once it has exec'd, just after `start` returns,
    // or again after a reboot: give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let stream = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(e)
                if std::time::Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(Error::io(
                    format!("cannot reach the console of {name} (is it running?)"),
                    &e,
                ));
            }
        }
    };
    eprintln!("Connected to the console of {name}; Ctrl-] detaches.\r");
    let sock = OwnedFd::from(stream);
    let _raw = super::relay::RawMode::enter()?;
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let mut buf = [0u8; CHUNK];
    loop {
        let mut fds = [
            PollFd::from_borrowed_fd(stdin, PollFlags::IN),
            PollFd::new(&sock, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e).context(|| "cannot wait on the console"),
        }
        let (keys, output) = (fds[0].revents(), fds[1].revents());
        if !output.is_empty() {
            match rustix::io::read(&sock, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => write_all_now(stdout, &buf[..n])
                    .map_err(|e| Error::sys("cannot write the console's output", e.into()))?,
            }
        }
        if !keys.is_empty() {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let typed = &buf[..n];
                    let end = typed.iter().position(|b| *b == DETACH_KEY);
                    let send = &typed[..end.unwrap_or(n)];
                    if !send.is_empty() && write_all_now(sock.as_fd(), send).is_err() {
                        break;
                    }
                    if end.is_some() {
                        break;
                    }
                }
            }
        }
    }
    drop(_raw);
    eprintln!("\r\nDetached from the console of {name}.");
    Ok(())
}

/// `vserver NAME log [-f]`: the console log to standard output; with
/// `follow`, then what comes, until interrupted.
pub fn print_log(run: &RunDir, name: &str, follow: bool) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let path = log_path(run, name);
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
    };
    let mut file = match open() {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::failure(format!(
                "{name} has no console log yet (it is made when the guest starts)"
            )));
        }
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), &e)),
    };
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        if let Some(f) = &mut file {
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
                if n == 0 {
                    break;
                }
                offset += n as u64;
                out.write_all(&buf[..n])
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::io("cannot write the log", &e))?;
            }
        }
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
        // Moved aside (LOG_LIMIT) or made anew by a restart: start over.
        let now = std::fs::metadata(&path).map(|m| m.len()).ok();
        if file.is_none() || now.is_some_and(|len| len < offset) {
            file = open().ok();
            offset = 0;
            if let Some(f) = &mut file {
                let _ = f.seek(SeekFrom::Start(0));
            }
        }
    }
}
