//! The reboot manager (seed 0.3, 0.18, 0.26; P4): a unix socket at
//! dev/reboot in every guest tree; a guest asks for "reboot" or "halt" on
//! it (vreboot, vhalt), and the manager, knowing the guest by the socket the
//! connection came in on, runs `vserver NAME restart` or `vserver NAME stop`
//! as a child, its output and a result line appended to the log.
//!
//! One thread, one epoll loop: the listening sockets, the open connections,
//! a signalfd (SIGHUP reloads the guest list, SIGTERM and SIGINT end the
//! manager) and a pidfd per running action. The loop sleeps without a
//! timeout unless a connection is open (its deadline). A guest gets at most
//! `PER_GUEST` open connections, each may send `MAX_REQUEST` bytes within
//! `TIMEOUT`, and accept never blocks: floods, garbage and guests that
//! vanish cost a closed descriptor, nothing more.
//!
//! The socket is made without following the guest's symlinks: the guest's
//! dev directory is opened with openat2 RESOLVE_IN_ROOT (a dev -> /etc
//! symlink means the guest's own /etc), and the socket is bound through
//! /proc/self/fd/N/reboot of that descriptor.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::event::epoll;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::conf::ConfigRoot;
use crate::error::Context;
use crate::sys::process::{Forked, clone_process, single_threaded};
use crate::sys::signal::{self, SigSet};
use crate::{Error, Result};

pub const DEFAULT_PIDFILE: &str = "/run/rebootmgr.pid";
pub const DEFAULT_LOG: &str = "/var/log/boot.log";
/// Where vreboot and vhalt find the manager, inside the guest.
pub const SOCKET: &str = "/dev/reboot";

/// The longest request line read (with its newline).
pub const MAX_REQUEST: usize = 64;
/// Open connections a guest may hold at once; more are closed at accept.
pub const PER_GUEST: usize = 4;
/// Open connections in all.
const MAX_CONNECTIONS: usize = 512;
/// How long a connection may take to send its request.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What a guest may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reboot,
    Halt,
}

impl Request {
    pub fn word(self) -> &'static str {
        match self {
            Request::Reboot => "reboot",
            Request::Halt => "halt",
        }
    }

    /// The vserver command that carries it out.
    fn command(self) -> &'static str {
        match self {
            Request::Reboot => "restart",
            Request::Halt => "stop",
        }
    }

    fn parse(line: &[u8]) -> Option<Request> {
        match line.trim_ascii() {
            b"reboot" => Some(Request::Reboot),
            b"halt" => Some(Request::Halt),
            _ => None,
        }
    }
}

/// The manager's settings.
pub struct Config {
    pub root: ConfigRoot,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    /// The guests served; empty: every configured guest.
    pub names: Vec<String>,
}

/// One guest's socket: the listening socket, the guest's dev directory it
/// was bound in, and the inode it got there (to remove only our own).
struct Listener {
    name: String,
    sock: OwnedFd,
    dev: OwnedFd,
    ino: u64,
}

struct Conn {
    guest: String,
    fd: OwnedFd,
    buf: [u8; MAX_REQUEST],
    len: usize,
    deadline: Instant,
}

/// A running `vserver NAME restart|stop`.
struct Action {
    guest: String,
    request: Request,
    pid: i32,
    pidfd: OwnedFd,
}

const SIGNALS: u64 = u64::MAX;
const LISTENER: u64 = 1 << 32;
const CONN: u64 = 2 << 32;
const ACTION: u64 = 3 << 32;

struct Manager {
    config: Config,
    epoll: OwnedFd,
    listeners: Vec<Listener>,
    conns: Vec<Option<Conn>>,
    actions: Vec<Option<Action>>,
    /// Bad requests are logged at most once a second (a guest could fill
    /// the host's disk otherwise); the others are counted.
    last_complaint: Option<Instant>,
    quiet: u32,
}

/// Runs the manager until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<u8> {
    let pidfile = PidFile::take(&config.pidfile)?;
    raise_fd_limit();
    use linux_raw_sys::general::{SIGHUP, SIGINT, SIGTERM};
    let signals = [SIGHUP, SIGTERM, SIGINT];
    let set = signals.iter().fold(SigSet::EMPTY, |set, &s| set.with(s));
    let old_mask = signal::block(set).context(|| "cannot block signals")?;
    let sigfd = crate::sys::pidfd::signalfd(&signals).context(|| "cannot create a signalfd")?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).context(|| "cannot create an epoll")?;
    epoll::add(
        &ep,
        &sigfd,
        epoll::EventData::new_u64(SIGNALS),
        epoll::EventFlags::IN,
    )
    .context(|| "cannot watch the signalfd")?;
    let mut m = Manager {
        config,
        epoll: ep,
        listeners: Vec::new(),
        conns: Vec::new(),
        actions: Vec::new(),
        last_complaint: None,
        quiet: 0,
    };
    m.load_guests();
    m.log_line(&format!(
        "rebootmgr: started (pid {}), serving {} guests",
        std::process::id(),
        m.listeners.len()
    ));
    let result = m.serve(&sigfd);
    m.remove_sockets();
    m.log_line("rebootmgr: stopped");
    drop(pidfile);
    let _ = signal::set_mask(old_mask);
    result.map(|()| 0)
}

impl Manager {
    fn serve(&mut self, sigfd: &OwnedFd) -> Result<()> {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        loop {
            let timeout = self.next_deadline().map(|d| {
                // A millisecond more: epoll rounds down, and an early wake
                // would find nothing expired and wait again.
                let left = d.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
                rustix::event::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                }
            });
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e).context(|| "cannot wait for events"),
            }
            for ev in &events {
                let token = ev.data.u64();
                let index = (token & 0xffff_ffff) as usize;
                match token {
                    SIGNALS => {
                        while let Some(signo) = crate::sys::pidfd::read_signal(sigfd.as_fd()) {
                            if signo == linux_raw_sys::general::SIGHUP {
                                self.log_line("rebootmgr: SIGHUP: reloading the guest list");
                                self.load_guests();
                            } else {
                                return Ok(());
                            }
                        }
                    }
                    t if t & !0xffff_ffff == LISTENER => self.accept(index),
                    t if t & !0xffff_ffff == CONN => self.read(index),
                    t if t & !0xffff_ffff == ACTION => self.finish(index),
                    _ => {}
                }
            }
            self.expire();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().map(|c| c.deadline).min()
    }

    /// (Re)makes every guest's socket. Old listeners are closed first;
    /// connections already open stay.
    fn load_guests(&mut self) {
        self.remove_sockets();
        self.listeners.clear();
        let names = if self.config.names.is_empty() {
            match super::all::guest_names(&self.config.root) {
                Ok(n) => n,
                Err(e) => {
                    self.log_line(&format!("rebootmgr: {e}"));
                    Vec::new()
                }
            }
        } else {
            self.config.names.clone()
        };
        for name in names {
            let made = crate::conf::load(&self.config.root, &name, None)
                .map_err(Error::from)
                .and_then(|c| Listener::bind(&name, &c.vserver_dir));
            match made {
                Ok(l) => {
                    let token = LISTENER | self.listeners.len() as u64;
                    match epoll::add(
                        &self.epoll,
                        &l.sock,
                        epoll::EventData::new_u64(token),
                        epoll::EventFlags::IN,
                    ) {
                        Ok(()) => self.listeners.push(l),
                        Err(e) => self.log_line(&format!("rebootmgr: {name}: cannot watch: {e}")),
                    }
                }
                Err(e) => self.log_line(&format!("rebootmgr: {name}: {e}")),
            }
        }
    }

    fn remove_sockets(&self) {
        for l in &self.listeners {
            l.remove();
        }
    }

    fn accept(&mut self, index: usize) {
        let Some(l) = self.listeners.get(index) else {
            return;
        };
        let name = l.name.clone();
        loop {
            let fd = match rustix::net::accept_with(
                &self.listeners[index].sock,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
                Err(rustix::io::Errno::AGAIN) => return,
                Err(e) => {
                    // EMFILE and the like: drop what waits rather than spin
                    // on a listener that stays readable.
                    self.complain(&format!("{name}: cannot accept: {e}"));
                    self.reset_listener(index);
                    return;
                }
            };
            let open = self.conns.iter().flatten().count();
            let mine = self
                .conns
                .iter()
                .flatten()
                .filter(|c| c.guest == name)
                .count();
            if mine >= PER_GUEST || open >= MAX_CONNECTIONS {
                answer(&fd, b"error: too many requests at once\n");
                continue;
            }
            let slot = match self.conns.iter().position(Option::is_none) {
                Some(s) => s,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            if epoll::add(
                &self.epoll,
                &fd,
                epoll::EventData::new_u64(CONN | slot as u64),
                epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
            )
            .is_err()
            {
                continue;
            }
            self.conns[slot] = Some(Conn {
                guest: name.clone(),
                fd,
                buf: [0; MAX_REQUEST],
                len: 0,
                deadline: Instant::now() + TIMEOUT,
            });
        }
    }

    /// A listener that cannot accept: its pending connections are dropped
    /// by closing and remaking its socket.
    fn reset_listener(&mut self, index: usize) {
        let l = self.listeners.swap_remove(index);
        l.remove();
        let dir = l.name.clone();
        drop(l);
        // The swapped-in listener changed its index: re-register it.
        if let Some(moved) = self.listeners.get(index) {
            let _ = epoll::modify(
                &self.epoll,
                &moved.sock,
                epoll::EventData::new_u64(LISTENER | index as u64),
                epoll::EventFlags::IN,
            );
        }
        self.log_line(&format!(
            "rebootmgr: {dir}: socket closed after an accept failure (SIGHUP remakes it)"
        ));
    }

    fn read(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut eof = false;
        loop {
            if conn.len == MAX_REQUEST {
                break;
            }
            match rustix::io::read(&conn.fd, &mut conn.buf[conn.len..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => conn.len += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(_) => {
                    self.conns[slot] = None;
                    return;
                }
            }
        }
        let line_end = conn.buf[..conn.len].iter().position(|&b| b == b'\n');
        let line = match line_end {
            Some(end) => end,
            None if eof && conn.len == 0 => {
                self.conns[slot] = None;
                return;
            }
            None if eof => conn.len,
            None if conn.len == MAX_REQUEST => {
                answer(&conn.fd, b"error: request too long\n");
                let guest = conn.guest.clone();
                self.conns[slot] = None;
                self.complain(&format!("{guest}: request too long"));
                return;
            }
            None => return,
        };
        let conn = self.conns[slot].take().expect("checked above");
        let request = Request::parse(&conn.buf[..line]);
        let Some(request) = request else {
            answer(&conn.fd, b"error: unknown request (reboot or halt)\n");
            let shown = escape(&conn.buf[..line]);
            self.complain(&format!("{}: unknown request \"{shown}\"", conn.guest));
            return;
        };
        if self.actions.iter().flatten().any(|a| a.guest == conn.guest) {
            answer(
                &conn.fd,
                b"error: a restart or stop of this guest is under way\n",
            );
            return;
        }
        answer(&conn.fd, b"ok\n");
        drop(conn.fd);
        self.start_action(conn.guest, request);
    }

    fn start_action(&mut self, guest: String, request: Request) {
        match spawn_vserver(&guest, request, &self.config.log) {
            Ok((pid, pidfd)) => {
                let slot = match self.actions.iter().position(Option::is_none) {
                    Some(s) => s,
                    None => {
                        self.actions.push(None);
                        self.actions.len() - 1
                    }
                };
                let _ = epoll::add(
                    &self.epoll,
                    &pidfd,
                    epoll::EventData::new_u64(ACTION | slot as u64),
                    epoll::EventFlags::IN,
                );
                self.log_line(&format!(
                    "{guest} {}: running vserver {guest} {} (pid {pid})",
                    request.word(),
                    request.command()
                ));
                self.actions[slot] = Some(Action {
                    guest,
                    request,
                    pid,
                    pidfd,
                });
            }
            Err(e) => self.log_line(&format!("{guest} {}: failed: {e}", request.word())),
        }
    }

    fn finish(&mut self, slot: usize) {
        let Some(action) = self.actions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let pid = rustix::process::Pid::from_raw(action.pid);
        let status = loop {
            match rustix::process::waitpid(pid, rustix::process::WaitOptions::NOHANG) {
                Ok(Some((_, status))) => break Some(status),
                Ok(None) => {
                    // Not ended after all: keep watching.
                    self.actions[slot] = Some(action);
                    return;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break None,
            }
        };
        let result = match status.map(crate::context::init::exit_code) {
            Some(0) => "done".to_string(),
            Some(code) => format!("failed (exit status {code})"),
            None => "ended (status unknown)".to_string(),
        };
        drop(action.pidfd);
        self.log_line(&format!(
            "{} {}: {result}",
            action.guest,
            action.request.word()
        ));
    }

    fn expire(&mut self) {
        let now = Instant::now();
        for slot in self.conns.iter_mut() {
            if slot.as_ref().is_some_and(|c| c.deadline <= now) {
                let c = slot.take().expect("checked");
                answer(&c.fd, b"error: timeout\n");
            }
        }
    }

    fn complain(&mut self, text: &str) {
        let now = Instant::now();
        if self
            .last_complaint
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.quiet += 1;
            return;
        }
        self.last_complaint = Some(now);
        let quiet = std::mem::take(&mut self.quiet);
        if quiet > 0 {
            self.log_line(&format!(
                "rebootmgr: {text} (and {quiet} more bad requests not logged)"
            ));
        } else {
            self.log_line(&format!("rebootmgr: {text}"));
        }
    }

    fn log_line(&self, text: &str) {
        log_to(&self.config.log, text);
    }
}

/// Sends a short answer; never blocks, never raises SIGPIPE (the client may
/// be gone already).
fn answer(fd: &OwnedFd, text: &[u8]) {
    let _ = rustix::net::send(
        fd,
        text,
        rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT,
    );
}

/// Appends "DATE TIME TEXT" to the log (opened each time, so a rotated log
/// is followed); stderr when the log cannot be opened.
fn log_to(log: &Path, text: &str) {
    let line = format!("{} {text}\n", timestamp(SystemTime::now()));
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(linux_raw_sys::general::O_CLOEXEC as i32)
        .open(log);
    match opened {
        Ok(mut f) => {
            let _ = f.write_all(line.as_bytes());
        }
        Err(e) => eprint!("rebootmgr: cannot write {}: {e}: {line}", log.display()),
    }
}

/// Control characters and non-ASCII of a guest's request, escaped.
fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

impl Listener {
    /// Makes dev/reboot in guest tree `root`, mode 0600, replacing what was
    /// there (a stale socket of an earlier run).
    fn bind(name: &str, root: &Path) -> Result<Listener> {
        let at = |what: &str| format!("{}/dev{what}", root.display());
        let top = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("cannot open the guest tree {}", root.display()))?;
        let dev = rustix::fs::openat2(
            &top,
            "dev",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .context(|| format!("cannot open {} inside the guest", at("")))?;
        match rustix::fs::statat(&dev, "reboot", AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(Error::failure(format!("{} is a directory", at("/reboot"))));
            }
            Ok(_) => rustix::fs::unlinkat(&dev, "reboot", AtFlags::empty())
                .context(|| format!("cannot remove the old {}", at("/reboot")))?,
            Err(_) => {}
        }
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .context(|| "cannot create a unix socket")?;
        let path = format!("/proc/self/fd/{}/reboot", dev.as_raw_fd());
        let addr = SocketAddrUnix::new(path.as_str()).context(|| "socket path too long")?;
        // Only root (the guest's root) may connect: the socket file is made
        // 0600 by the umask, never by a chmod that a swapped-in symlink
        // could redirect.
        let old = rustix::process::umask(Mode::from_raw_mode(0o177));
        let bound = rustix::net::bind(&sock, &addr);
        rustix::process::umask(old);
        bound.context(|| format!("cannot bind {}", at("/reboot")))?;
        rustix::net::listen(&sock, 16).context(|| format!("cannot listen on {}", at("/reboot")))?;
        let ino = rustix::fs::statat(&dev, "reboot", AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| st.st_ino)
            .unwrap_or(0);
        Ok(Listener {
            name: name.to_string(),
            sock,
            dev,
            ino,
        })
    }

    /// Removes the socket file, if it is still ours.
    fn remove(&self) {
        if let Ok(st) = rustix::fs::statat(&self.dev, "reboot", AtFlags::SYMLINK_NOFOLLOW) {
            if st.st_ino == self.ino && FileType::from_raw_mode(st.st_mode) == FileType::Socket {
                let _ = rustix::fs::unlinkat(&self.dev, "reboot", AtFlags::empty());
            }
        }
    }
}

/// Starts `vserver NAME restart|stop` (this very binary), its output
/// appended to the log, with no signal blocked.
fn spawn_vserver(guest: &str, request: Request, log: &Path) -> Result<(i32, OwnedFd)> {
    let out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(log)
        .context(|| format!("cannot open {}", log.display()))?;
    let err = out
        .try_clone()
        .context(|| "cannot duplicate a descriptor")?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("vserver")
        .args([OsString::from(guest), OsString::from(request.command())])
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir("/");
    let one = single_threaded().context(|| "cannot start a command from a threaded process")?;
    match clone_process(&one, 0, None).context(|| "cannot start vserver")? {
        Forked::Child => {
            let _ = signal::set_mask(SigSet::EMPTY);
            let e = cmd.exec();
            eprintln!("rebootmgr: cannot run vserver: {e}");
            std::process::exit(127)
        }
        Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
    }
}

/// Raises the soft descriptor limit to the hard one: each guest takes two.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// The pid file, locked (flock) while this manager runs: a second manager
/// finds it locked and refuses to start. Removed when dropped.
struct PidFile {
    path: PathBuf,
    _file: std::fs::File,
}

impl PidFile {
    fn take(path: &Path) -> Result<PidFile> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .context(|| format!("cannot open {}", path.display()))?;
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut text = String::new();
            let _ = (&file).take(32).read_to_string(&mut text);
            return Err(Error::failure(format!(
                "another rebootmgr runs (pid {}, {} is locked)",
                text.trim(),
                path.display()
            )));
        }
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .context(|| format!("cannot write {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// vreboot and vhalt: sends `request` to the manager at `socket` and waits
/// for its answer.
pub fn ask(socket: &Path, request: Request) -> Result<()> {
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .context(|| "cannot create a unix socket")?;
    let addr =
        SocketAddrUnix::new(socket).context(|| format!("{}: path too long", socket.display()))?;
    match rustix::net::connect(&sock, &addr) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::CONNREFUSED) => {
            return Err(Error::failure(format!(
                "no reboot manager listens on {}: ask the host's admin to run rebootmgr",
                socket.display()
            )));
        }
        Err(e) => return Err(e).context(|| format!("cannot connect to {}", socket.display())),
    }
    let _ = rustix::net::sockopt::set_socket_timeout(
        &sock,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(10)),
    );
    let mut file = std::fs::File::from(sock);
    file.write_all(format!("{}\n", request.word()).as_bytes())
        .context(|| format!("cannot send the request to {}", socket.display()))?;
    let mut answer = Vec::new();
    let _ = (&mut file).take(256).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let answer = answer.trim();
    if answer == "ok" {
        Ok(())
    } else if answer.is_empty() {
        Err(Error::failure(format!(
            "the reboot manager on {} did not answer",
            socket.display()
        )))
    } else {
        Err(Error::failure(format!(
            "the reboot manager refused: {}",
            answer
                .strip_prefix("error: ")
                .unwrap_or(answer)
                .escape_debug()
        )))
    }
}

/// "2026-11-23 17:40:01" (UTC) for the log.
fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_two_words() {
        assert_eq!(Request::parse(b"reboot"), Some(Request::Reboot));
        assert_eq!(Request::parse(b" halt\r"), Some(Request::Halt));
        assert_eq!(Request::parse(b"reboot now"), None);
        assert_eq!(Request::parse(b"\x00\xff"), None);
    }

    #[test]
    fn timestamps_are_utc_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_973_401);
        assert_eq!(timestamp(t), "2026-11-29 17:30:01");
        assert_eq!(timestamp(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29 00:00:00");
    }

    #[test]
    fn bad_requests_are_escaped() {
        assert_eq!(escape(b"a\x1b[2J\n"), "a\\x1b[2J\\n");
    }
}
