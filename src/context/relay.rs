//! A guest command's standard input, output and error, relayed by the
//! waiting vsbox process: the command never holds a descriptor of the
//! caller's.
//!
//! A descriptor is a capability. Guest root reopens whatever its stdout is
//! through /proc/self/fd/1: a host file (a cron job's log) could be read,
//! overwritten and made setuid; the admin's terminal would let a guest
//! process read what is typed after `enter` returned. So the command gets
//! ends of pipes made here or, for `enter` and `exec -t`, the slave of a pty
//! made inside the guest (see `pty`), and the waiter copies between them
//! and its own stdin, stdout and stderr with poll(2).
//!
//! The waiter's ends are non-blocking. The caller's descriptors are never
//! made so (their open file descriptions are shared with the caller's
//! shell): they are read only when poll says they are ready, and writes to
//! them block, the back-pressure an inherited descriptor had.
//!
//! The wait ends when the command does: what is already in the pipes is
//! copied, then its status is returned. A daemon that a service script left
//! behind holding the pipes does not keep the caller waiting; it gets EPIPE
//! once the waiter is gone.

use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};

use linux_raw_sys::general::{SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGWINCH};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, Signal};
use rustix::stdio::{stderr, stdin, stdout};
use rustix::termios::{OptionalActions, Termios};

use super::pty::{self, MasterReceiver, MasterSender};
use super::spawn::{ExitCode, wait_for};
use crate::error::Context;
use crate::sys::signal::{self, SigSet};
use crate::{Error, Result};

/// Bytes moved per read.
const CHUNK: usize = 64 * 1024;

/// Once the command has ended, at most this many chunks more are copied
/// from each of its outputs: a daemon it left behind may write forever.
const DRAIN_CHUNKS: usize = 16;

/// The terminal's default end-of-file character (VEOF, Ctrl-D): what the
/// end of a caller's non-terminal input becomes on the guest's pty.
const EOT: u8 = 0x04;

/// The command's side of the link, handed to the process that becomes it
/// (or to the context's pid 1).
pub enum GuestEnd {
    /// Read end of its stdin pipe, write ends of its stdout and stderr.
    Pipes([OwnedFd; 3]),
    /// The socket over which the pty's master goes to the waiter.
    Terminal(MasterSender),
}

/// The waiter's side.
pub enum HostEnd {
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Terminal(MasterReceiver),
}

/// What a process holds once `GuestEnd::connect` gave it the command's
/// descriptors.
pub enum Connected {
    Pipes,
    /// The pty's slave, yet to become the controlling terminal.
    Terminal,
}

/// The two sides of a new link: pipes, or (with `terminal`) a pty that the
/// command's side makes inside the guest. Call it on the host, before
/// joining the guest's mount namespace.
pub fn link(terminal: bool) -> Result<(GuestEnd, HostEnd)> {
    open_standard_descriptors()?;
    if terminal {
        let (sender, receiver) = pty::channel()?;
        return Ok((GuestEnd::Terminal(sender), HostEnd::Terminal(receiver)));
    }
    let pipe = || pipe_with(PipeFlags::CLOEXEC).context(|| "cannot create a pipe for the command");
    let (in_read, in_write) = pipe()?;
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    for ours in [&in_write, &out_read, &err_read] {
        rustix::io::ioctl_fionbio(ours, true).context(|| "cannot make a pipe non-blocking")?;
    }
    Ok((
        GuestEnd::Pipes([in_read, out_write, err_write]),
        HostEnd::Pipes {
            stdin: in_write,
            stdout: out_read,
            stderr: err_read,
        },
    ))
}

/// Opens /dev/null on whichever of 0, 1 and 2 the caller left closed:
/// otherwise a pipe made next could take that number and be relayed as if
/// it were the caller's.
fn open_standard_descriptors() -> Result<()> {
    for fd in [stdin(), stdout(), stderr()] {
        if rustix::io::fcntl_getfd(fd) == Err(Errno::BADF) {
            let null = rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::RDWR,
                rustix::fs::Mode::empty(),
            )
            .context(|| "cannot open /dev/null")?;
            // The lowest free number, this one: it stays open as such.
            let _ = null.into_raw_fd();
        }
    }
    Ok(())
}

/// Makes `fds` this process's standard input, output and error.
fn install_stdio(fds: [BorrowedFd<'_>; 3]) -> Result<()> {
    let what = || "cannot set up the standard descriptors";
    rustix::stdio::dup2_stdin(fds[0]).context(what)?;
    rustix::stdio::dup2_stdout(fds[1]).context(what)?;
    rustix::stdio::dup2_stderr(fds[2]).context(what)
}

/// Points 0, 1 and 2 at the host's /dev/null: a process that outlives its
/// caller (a guest's monitor, a detached guest's pid 1) keeps none of the
/// caller's descriptors.
pub fn standard_to_null() -> Result<()> {
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .context(|| "cannot open /dev/null")?;
    install_stdio([null.as_fd(), null.as_fd(), null.as_fd()])
}

impl GuestEnd {
    /// Inside the guest (its mounts, with the guest's devpts), before
    /// anything of the guest runs in this process: replaces this process's
    /// standard descriptors (the caller's until now) with the command's.
    pub fn connect(self) -> Result<Connected> {
        match self {
            GuestEnd::Pipes([input, output, errors]) => {
                install_stdio([input.as_fd(), output.as_fd(), errors.as_fd()])?;
                Ok(Connected::Pipes)
            }
            GuestEnd::Terminal(sender) => {
                // Taken while stdin is still the caller's: the command starts
                // with the right size instead of getting a SIGWINCH later.
                let size = rustix::termios::tcgetwinsize(stdin()).ok();
                let (master, slave) = pty::open_in_guest()?;
                if let Some(size) = size {
                    let _ = rustix::termios::tcsetwinsize(&master, size);
                }
                sender.send(&master)?;
                drop(master);
                install_stdio([slave.as_fd(); 3])?;
                Ok(Connected::Terminal)
            }
        }
    }
}

impl Connected {
    /// In the command's own process, last thing before its exec.
    pub fn before_exec(&self) -> Result<()> {
        match self {
            Connected::Pipes => Ok(()),
            Connected::Terminal => pty::take_controlling_terminal(),
        }
    }
}

/// Which signals the waiter passes on, and to whom.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// To a context's pid 1: every signal that would end the waiter.
    Context,
    /// To a command joined to a context: terminate and hangup. Interrupt
    /// and quit go to its process group when its stdio is relayed (it is
    /// not on the caller's terminal); a command on the caller's own
    /// terminal gets them from the terminal, and the waiter ignores them.
    JoinedCommand,
}

/// Waits for the process `pid` (`pidfd`) while passing on the signals that
/// would end the waiter (so the waiter lives on to clean up) and, with
/// `host`, relaying its standard descriptors; returns its exit status. If
/// the relay cannot be set up, the process is killed.
pub fn wait(
    pid: i32,
    pidfd: &OwnedFd,
    forward: Forward,
    host: Option<HostEnd>,
) -> Result<ExitCode> {
    let set = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGWINCH]
        .into_iter()
        .fold(SigSet::EMPTY, SigSet::with);
    let old = signal::block(set).context(|| "cannot block signals")?;
    let result = Waiter::new(pid, pidfd, forward, set, host)
        .inspect_err(|_| {
            let _ = rustix::process::pidfd_send_signal(pidfd, Signal::KILL);
            let _ = wait_for(pid);
        })
        .and_then(|mut waiter| {
            let code = waiter.run();
            // Signals that came meanwhile were passed on already: none of
            // them may end this process when they are unblocked.
            while let Ok(Some(_)) = signal::read_signalfd(waiter.signals.as_fd()) {}
            code
        });
    let _ = signal::set_mask(old);
    result
}

struct Waiter<'a> {
    pid: i32,
    pidfd: &'a OwnedFd,
    forward: Forward,
    signals: OwnedFd,
    streams: Option<Streams>,
}

/// The descriptors being copied.
struct Streams {
    /// Where the caller's input goes (the stdin pipe or the pty master);
    /// None once closed.
    to_guest: Option<OwnedFd>,
    /// Read from the caller's stdin, not yet taken by the command.
    pending: Vec<u8>,
    /// The caller's stdin has ended (or failed).
    input_done: bool,
    /// The caller's stdin is spliced into the command's pipe (see
    /// `read_input`); not with a pty, nor once the kernel refused.
    splice_input: bool,
    /// The command's output and where it goes: stdout and stderr pipes to
    /// the caller's stdout and stderr, or the pty master to stdout. None
    /// once ended.
    outputs: Vec<Option<Output>>,
    /// The pty master (for window sizes), with the caller's terminal in
    /// raw mode while it is relayed (restored on drop).
    terminal: Option<(OwnedFd, Option<RawMode>)>,
}

/// One of the command's outputs and the caller's descriptor it goes to.
struct Output {
    from: OwnedFd,
    to: BorrowedFd<'static>,
    /// splice(2) moves the bytes in the kernel while the caller's side
    /// takes it (a pipe, a file, /dev/null); a terminal or an O_APPEND file
    /// does not (EINVAL), and the copy goes through a buffer from then on.
    splice: bool,
}

impl Output {
    fn new(from: OwnedFd, to: BorrowedFd<'static>) -> Option<Self> {
        Some(Output {
            from,
            to,
            splice: true,
        })
    }

    /// Moves one chunk: Ok(n) bytes moved (0 at the end), Err(AGAIN) when
    /// the command has written nothing more for now.
    fn move_chunk(&mut self, buf: &mut [u8]) -> std::result::Result<usize, Errno> {
        loop {
            if !self.splice {
                return match rustix::io::read(&self.from, &mut *buf) {
                    Ok(n) => write_all(self.to, &buf[..n]).map(|()| n),
                    Err(Errno::INTR) => continue,
                    Err(e) => Err(e),
                };
            }
            let flags = rustix::pipe::SpliceFlags::empty();
            match rustix::pipe::splice(&self.from, None, self.to, None, CHUNK, flags) {
                Err(Errno::INTR) => {}
                // The kernel makes the whole splice non-blocking, as our end
                // is: EAGAIN with bytes waiting means the caller's pipe is
                // full, and this waits as a write to it would.
                Err(Errno::AGAIN) if rustix::io::ioctl_fionread(&self.from).unwrap_or(0) > 0 => {
                    let mut ready = [PollFd::from_borrowed_fd(self.to, PollFlags::OUT)];
                    let _ = rustix::event::poll(&mut ready, None);
                }
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => self.splice = false,
                other => return other,
            }
        }
    }
}

/// Which descriptor a poll entry watches.
#[derive(Clone, Copy)]
enum Slot {
    Signals,
    Exit,
    CallerInput,
    ToGuest,
    Output(usize),
}

impl<'a> Waiter<'a> {
    fn new(
        pid: i32,
        pidfd: &'a OwnedFd,
        forward: Forward,
        set: SigSet,
        host: Option<HostEnd>,
    ) -> Result<Self> {
        let signals =
            signal::signalfd(set).map_err(|e| Error::sys("cannot watch for signals", e))?;
        let streams = host.map(Streams::new).transpose()?;
        Ok(Waiter {
            pid,
            pidfd,
            forward,
            signals,
            streams,
        })
    }

    fn run(&mut self) -> Result<ExitCode> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut slots = vec![Slot::Signals, Slot::Exit];
            if let Some(s) = &self.streams {
                if s.pending.is_empty() && !s.input_done {
                    slots.push(Slot::CallerInput);
                }
                if !s.pending.is_empty() && s.to_guest.is_some() {
                    slots.push(Slot::ToGuest);
                }
                slots.extend(
                    (0..s.outputs.len())
                        .filter(|&i| s.outputs[i].is_some())
                        .map(Slot::Output),
                );
            }
            let ready = self.poll(&slots)?;
            // Output first: what the command wrote before it ended is copied
            // before its end is acted on.
            for &slot in &ready {
                match slot {
                    Slot::Signals => self.take_signals(),
                    Slot::CallerInput => self.streams_mut().read_input(&mut buf),
                    Slot::ToGuest => self.streams_mut().write_input(),
                    Slot::Output(i) => {
                        self.streams_mut().copy_output(i, &mut buf);
                    }
                    Slot::Exit => {}
                }
            }
            if ready.iter().any(|slot| matches!(slot, Slot::Exit)) {
                if let Some(s) = &mut self.streams {
                    s.drain(&mut buf);
                }
                return wait_for(self.pid);
            }
        }
    }

    /// Polls the descriptors of `slots`; returns those that are ready.
    fn poll(&self, slots: &[Slot]) -> Result<Vec<Slot>> {
        let mut fds: Vec<PollFd<'_>> = slots
            .iter()
            .map(|slot| {
                let (fd, events) = match *slot {
                    Slot::Signals => (self.signals.as_fd(), PollFlags::IN),
                    Slot::Exit => (self.pidfd.as_fd(), PollFlags::IN),
                    Slot::CallerInput => (stdin(), PollFlags::IN),
                    Slot::ToGuest => (self.streams().to_guest_fd(), PollFlags::OUT),
                    Slot::Output(i) => (self.streams().output_fd(i), PollFlags::IN),
                };
                PollFd::from_borrowed_fd(fd, events)
            })
            .collect();
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e).context(|| "cannot wait for the command"),
        }
        Ok(slots
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(slot, _)| *slot)
            .collect())
    }

    fn streams(&self) -> &Streams {
        self.streams
            .as_ref()
            .expect("slot of a relay without streams")
    }

    fn streams_mut(&mut self) -> &mut Streams {
        self.streams
            .as_mut()
            .expect("slot of a relay without streams")
    }

    fn take_signals(&mut self) {
        while let Ok(Some(signo)) = signal::read_signalfd(self.signals.as_fd()) {
            self.pass_on(signo);
        }
    }

    fn pass_on(&self, signo: u32) {
        let Some(sig) = Signal::from_named_raw(signo as i32) else {
            return;
        };
        let relayed = self.streams.is_some();
        match signo {
            // A reader of the caller's output went away: the write that
            // failed stopped that copy.
            SIGPIPE => {}
            SIGWINCH => {
                if let Some(s) = &self.streams {
                    s.copy_window_size();
                }
            }
            SIGINT | SIGQUIT if self.forward == Forward::JoinedCommand => {
                // The group id is the command's pid, which cannot be reused
                // before this process reaps it.
                if let (true, Some(group)) = (relayed, Pid::from_raw(self.pid)) {
                    let _ = rustix::process::kill_process_group(group, sig);
                }
            }
            _ => {
                let _ = rustix::process::pidfd_send_signal(self.pidfd, sig);
            }
        }
    }
}

impl Streams {
    fn new(host: HostEnd) -> Result<Self> {
        match host {
            HostEnd::Pipes {
                stdin: input,
                stdout: output,
                stderr: errors,
            } => Ok(Streams {
                to_guest: Some(input),
                pending: Vec::new(),
                input_done: false,
                splice_input: true,
                outputs: vec![Output::new(output, stdout()), Output::new(errors, stderr())],
                terminal: None,
            }),
            HostEnd::Terminal(receiver) => {
                let master = receiver.receive()?;
                let dup = || {
                    master
                        .try_clone()
                        .context(|| "cannot duplicate the terminal's descriptor")
                };
                let (to_guest, output) = (dup()?, dup()?);
                let raw = RawMode::enter()?;
                Ok(Streams {
                    to_guest: Some(to_guest),
                    pending: Vec::new(),
                    input_done: false,
                    splice_input: false,
                    outputs: vec![Output::new(output, stdout())],
                    terminal: Some((master, raw)),
                })
            }
        }
    }

    fn to_guest_fd(&self) -> BorrowedFd<'_> {
        self.to_guest
            .as_ref()
            .expect("polled a closed input")
            .as_fd()
    }

    fn output_fd(&self, i: usize) -> BorrowedFd<'_> {
        self.outputs[i]
            .as_ref()
            .expect("polled an ended output")
            .from
            .as_fd()
    }

    fn read_input(&mut self, buf: &mut [u8]) {
        // Straight into the command's pipe while it has room (the kernel
        // moves the bytes); when it is full, or the caller's stdin cannot
        // be spliced (a terminal), through `pending`, whose bytes wait for
        // room.
        if let (Some(to), true) = (&self.to_guest, self.splice_input) {
            let flags = rustix::pipe::SpliceFlags::empty();
            match rustix::pipe::splice(stdin(), None, to, None, CHUNK, flags) {
                Ok(0) => return self.end_of_input(),
                Ok(_) | Err(Errno::INTR) => return,
                Err(Errno::AGAIN) => {}
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => self.splice_input = false,
                Err(_) => return self.end_of_input(),
            }
        }
        match rustix::io::read(stdin(), &mut *buf) {
            Ok(n) if n > 0 => self.pending.extend_from_slice(&buf[..n]),
            Err(Errno::INTR | Errno::AGAIN) => {}
            // The end, or a stdin that cannot be read (closed, hung up).
            _ => self.end_of_input(),
        }
    }

    fn end_of_input(&mut self) {
        self.input_done = true;
        if self.terminal.is_some() {
            // A pty has no end of input but its end-of-file character; a
            // terminal's own Ctrl-D came as a byte.
            self.pending.push(EOT);
        } else if self.pending.is_empty() {
            self.to_guest = None;
        }
    }

    fn write_input(&mut self) {
        let Some(to) = &self.to_guest else { return };
        match rustix::io::write(to, &self.pending) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(Errno::INTR | Errno::AGAIN) => {}
            // The command closed its input: the rest is not wanted.
            Err(_) => {
                self.pending.clear();
                self.input_done = true;
            }
        }
        if self.input_done && self.pending.is_empty() && self.terminal.is_none() {
            // The command sees the end of its input.
            self.to_guest = None;
        }
    }

    /// Copies one chunk of output `i`; false once it has nothing more
    /// (now, or ever).
    fn copy_output(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let Some(output) = &mut self.outputs[i] else {
            return false;
        };
        let copied = match output.move_chunk(buf) {
            Ok(n) => n > 0,
            Err(Errno::AGAIN) => return false,
            // The end (EIO from a master whose slave is closed), or the
            // caller's reader is gone: closing the pipe tells the command
            // so (EPIPE, SIGPIPE), as its own stdout would have.
            Err(_) => false,
        };
        if !copied {
            self.outputs[i] = None;
        }
        copied
    }

    /// After the command ended: what its outputs hold already.
    fn drain(&mut self, buf: &mut [u8]) {
        for i in 0..self.outputs.len() {
            for _ in 0..DRAIN_CHUNKS {
                if !self.copy_output(i, buf) {
                    break;
                }
            }
        }
    }

    /// The caller's window size onto the guest's pty (on SIGWINCH); the
    /// kernel passes the change on to the guest's foreground job.
    fn copy_window_size(&self) {
        if let Some((master, _)) = &self.terminal {
            if let Ok(size) = rustix::termios::tcgetwinsize(stdin()) {
                let _ = rustix::termios::tcsetwinsize(master, size);
            }
        }
    }
}

/// Writes all of `data` to a caller's descriptor, which may block (it is
/// never made non-blocking here) or be non-blocking (the caller's choice).
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut ready = [PollFd::from_borrowed_fd(fd, PollFlags::OUT)];
                let _ = rustix::event::poll(&mut ready, None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The caller's terminal in raw mode while the guest's pty is relayed:
/// every key (Ctrl-C, Ctrl-Z, Ctrl-D) goes to the guest's line discipline,
/// which acts on it for the guest's jobs. Restored on drop, on every way
/// out of the relay. A caller's stdin that is not a terminal is left as it
/// is.
pub(crate) struct RawMode(Termios);

impl RawMode {
    pub(crate) fn enter() -> Result<Option<Self>> {
        if !rustix::termios::isatty(stdin()) {
            return Ok(None);
        }
        let saved = rustix::termios::tcgetattr(stdin()).context(|| "cannot read the terminal")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin(), OptionalActions::Now, &raw)
            .context(|| "cannot put the terminal in raw mode")?;
        Ok(Some(RawMode(saved)))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(stdin(), OptionalActions::Now, &self.0);
    }
}
