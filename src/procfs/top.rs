//! vtop: a live, top-like view of every process with its context and
//! guest, on a plain terminal.
//!
//! The terminal is put in non-canonical mode without echo (ISIG stays on:
//! Ctrl-C is a SIGINT) and restored by a guard on every way out. SIGINT,
//! SIGTERM, SIGHUP, SIGQUIT, SIGTSTP and SIGWINCH are blocked and read from
//! a signalfd in the same poll as the keyboard and the refresh timeout, so
//! no handler runs and no busy loop polls: the first four end vtop cleanly,
//! SIGWINCH redraws at the new size, SIGTSTP is ignored (a stopped vtop
//! would leave the terminal raw). Screens are drawn with ANSI clear-screen
//! and cursor-home only.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, Termios};

use super::ps::{format_clock, write_command};
use super::{CLK_TCK, Table, Users, Want, escape};
use crate::error::Context;
use crate::sys::signal::{SigSet, block};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Cpu,
    Memory,
}

#[derive(Debug, Clone)]
pub struct TopOptions {
    pub delay: Duration,
    pub sort: SortBy,
    /// Stop after this many screens.
    pub iterations: Option<u64>,
    /// Print screens one after another, no terminal control (also when
    /// standard input or output is not a terminal).
    pub batch: bool,
}

/// CPU ticks of each process at the previous screen, by pid and start.
struct Sampler {
    last: Vec<(i32, u64, u64)>,
    last_uptime: u64,
    users: Users,
}

struct Row {
    index: usize,
    /// Tenths of a percent of one CPU.
    cpu: u64,
}

impl Sampler {
    fn sample(&mut self, sort: SortBy) -> Result<(Table, Vec<Row>)> {
        let table = super::scan(Want {
            cmdline: true,
            uid: true,
        })?;
        let elapsed = table.uptime.saturating_sub(self.last_uptime).max(1);
        let mut rows: Vec<Row> = table
            .procs
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let now = p.utime + p.stime;
                // The first screen (and a process new since the last one)
                // shows the average over the process's life, as ps does.
                let before = self
                    .last
                    .binary_search_by_key(&p.pid, |x| x.0)
                    .ok()
                    .map(|i| self.last[i])
                    .filter(|x| x.1 == p.start && self.last_uptime > 0);
                let cpu = match before {
                    Some(b) => now.saturating_sub(b.2) * 1000 / elapsed,
                    None => now * 1000 / table.uptime.saturating_sub(p.start).max(1),
                };
                Row { index, cpu }
            })
            .collect();
        match sort {
            SortBy::Cpu => {
                rows.sort_by_key(|r| (std::cmp::Reverse(r.cpu), table.procs[r.index].pid))
            }
            SortBy::Memory => rows.sort_by_key(|r| {
                (
                    std::cmp::Reverse(table.procs[r.index].rss),
                    table.procs[r.index].pid,
                )
            }),
        }
        self.last = table
            .procs
            .iter()
            .map(|p| (p.pid, p.start, p.utime + p.stime))
            .collect();
        self.last_uptime = table.uptime;
        Ok((table, rows))
    }
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()?
            * 1024,
    )
}

/// One screen, `height` lines of at most `width` characters.
fn render(
    table: &Table,
    rows: &[Row],
    users: &Users,
    sort: SortBy,
    width: usize,
    height: usize,
) -> String {
    let mut lines: Vec<String> = Vec::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let running = table.guests.iter().filter(|g| g.number.is_some()).count();
    lines.push(format!(
        "vtop - up {}, {} processes, {} guests, load average: {}",
        format_clock(table.uptime / CLK_TCK),
        table.procs.len(),
        running,
        load.join(" ")
    ));
    let size = super::stat::format_size;
    lines.push(format!(
        "Mem: {} total, {} available; sorted by {} (P: CPU, M: memory, q: quit)",
        size(meminfo("MemTotal:").unwrap_or(0)),
        size(meminfo("MemAvailable:").unwrap_or(0)),
        if sort == SortBy::Cpu { "CPU" } else { "memory" },
    ));
    lines.push(String::new());
    let name_width = table
        .guests
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0)
        .clamp(7, 20);
    lines.push(format!(
        "{:>7} {:>7} {:<name_width$} {:<8} S {:>5} {:>7} {:>8} COMMAND",
        "PID", "CONTEXT", "VSERVER", "USER", "%CPU", "RSS", "TIME"
    ));
    for r in rows.iter().take(height.saturating_sub(lines.len())) {
        let p = &table.procs[r.index];
        let mut line = String::new();
        let ctx = table.context(p).map_or("?".to_string(), |c| c.to_string());
        let mut name = String::new();
        match table.guest(p) {
            Some(g) => escape(g.name.as_bytes(), &mut name, name_width),
            None => name.push_str("MAIN"),
        }
        let mut user = String::new();
        users.write(p.uid, p.guest.is_none(), &mut user);
        user.truncate(user.char_indices().nth(8).map_or(user.len(), |(i, _)| i));
        let _ = write!(
            line,
            "{:>7} {ctx:>7} {name:<name_width$} {user:<8} {} {:>3}.{} {:>7} {:>8} ",
            p.pid,
            p.state as char,
            r.cpu / 10,
            r.cpu % 10,
            super::stat::format_size(p.rss),
            format_clock((p.utime + p.stime) / CLK_TCK),
        );
        let used = line.chars().count();
        write_command(table, p, &mut line, width.saturating_sub(used));
        lines.push(line);
    }
    let mut out = String::new();
    for l in lines.iter().take(height) {
        let cut = l.char_indices().nth(width).map_or(l.len(), |(i, _)| i);
        out.push_str(&l[..cut]);
        out.push('\n');
    }
    out
}

/// Puts the terminal back as it was.
struct Restore(Termios);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.0);
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?25h\n");
        let _ = out.flush();
    }
}

fn write_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write to the terminal", &e))
}

/// Runs vtop until q, a signal, or the last of `iterations` screens.
pub fn run(options: &TopOptions) -> Result<()> {
    let mut sampler = Sampler {
        last: Vec::new(),
        last_uptime: 0,
        users: Users::host(),
    };
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let interactive =
        !options.batch && rustix::termios::isatty(stdin) && rustix::termios::isatty(stdout);
    let mut sort = options.sort;
    let mut count = 0u64;
    if !interactive {
        loop {
            let (table, rows) = sampler.sample(sort)?;
            write_out(&render(
                &table,
                &rows,
                &sampler.users,
                sort,
                usize::MAX,
                usize::MAX,
            ))?;
            count += 1;
            if options.iterations.is_some_and(|n| count >= n) {
                return Ok(());
            }
            write_out("\n")?;
            std::thread::sleep(options.delay);
        }
    }
    use linux_raw_sys::general::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGWINCH};
    let signals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGWINCH]
        .iter()
        .fold(SigSet::EMPTY, |s, &n| s.with(n));
    block(signals).map_err(|e| Error::sys("cannot block signals", e))?;
    let sigfd = crate::sys::pidfd::signalfd(&[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGWINCH])
        .map_err(|e| Error::sys("cannot create a signalfd", e))?;
    let saved =
        rustix::termios::tcgetattr(stdin).context(|| "cannot read the terminal settings")?;
    let mut raw = saved.clone();
    raw.local_modes
        .remove(LocalModes::ICANON | LocalModes::ECHO);
    raw.special_codes[SpecialCodeIndex::VMIN] = 1;
    raw.special_codes[SpecialCodeIndex::VTIME] = 0;
    let _restore = Restore(saved);
    rustix::termios::tcsetattr(stdin, OptionalActions::Now, &raw)
        .context(|| "cannot set the terminal mode")?;
    loop {
        let (width, height) = match rustix::termios::tcgetwinsize(stdout) {
            Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (usize::from(w.ws_col), usize::from(w.ws_row)),
            _ => (80, 24),
        };
        let (table, rows) = sampler.sample(sort)?;
        let mut screen = String::from("\x1b[?25l\x1b[H\x1b[2J");
        let text = render(&table, &rows, &sampler.users, sort, width, height);
        // The last line without its newline, so the screen does not scroll.
        screen.push_str(text.strip_suffix('\n').unwrap_or(&text));
        write_out(&screen)?;
        count += 1;
        if options.iterations.is_some_and(|n| count >= n) {
            return Ok(());
        }
        let deadline = Instant::now() + options.delay;
        'wait: loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let timeout = Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [
                PollFd::new(&stdin, PollFlags::IN),
                PollFd::new(&sigfd, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::sys("cannot wait for input", e.into())),
            }
            let (keys, sig) = (fds[0].revents(), fds[1].revents());
            if !sig.is_empty() {
                while let Some(signo) =
                    crate::sys::pidfd::read_signal(std::os::fd::AsFd::as_fd(&sigfd))
                {
                    match signo {
                        SIGWINCH => break 'wait,
                        SIGTSTP => {}
                        _ => return Ok(()),
                    }
                }
            }
            if !keys.is_empty() {
                let mut buf = [0u8; 64];
                let n = match rustix::io::read(stdin, &mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                    Err(e) => return Err(Error::sys("cannot read the terminal", e.into())),
                };
                for &b in &buf[..n] {
                    match b {
                        b'q' | b'Q' => return Ok(()),
                        b'P' => sort = SortBy::Cpu,
                        b'M' => sort = SortBy::Memory,
                        _ => {}
                    }
                }
                break 'wait;
            }
        }
    }
}
