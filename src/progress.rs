//! A sign of life on stderr for work that takes seconds to minutes
//! (vunify, vbuild, `vserver NAME build`).
//!
//! On a terminal: one status line, `APPLET: PHASE: COUNTS`, rewritten in
//! place (`\r`, then erase to the end of the line) at most every
//! [`TERMINAL_EVERY`], and ended by a newline after the final counts. Not
//! on a terminal: nothing, unless asked (`--progress`), and then plain
//! lines, one when a phase starts, one every [`LINES_EVERY`] and the final
//! one; never a `\r` or an escape sequence, so a log file stays readable.
//!
//! The work loops call [`Progress::tick`] once per item, from any thread:
//! an atomic increment, and a look at the clock only every
//! [`CHECK_EVERY`] items, so no timer thread is needed and the cost is
//! nothing next to a stat.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    #[default]
    Off,
    /// One line rewritten in place (stderr is a terminal).
    Terminal,
    /// Plain lines (`--progress` with stderr not a terminal).
    Lines,
}

impl Style {
    /// The style for the options `--progress` and `--no-progress` (or
    /// `--silent`): the status line when stderr is a terminal, unless
    /// turned off; plain lines elsewhere only when asked.
    pub fn choose(progress: bool, off: bool) -> Style {
        if off {
            Style::Off
        } else if std::io::stderr().is_terminal() {
            Style::Terminal
        } else if progress {
            Style::Lines
        } else {
            Style::Off
        }
    }
}

/// At most ten redraws a second on a terminal.
const TERMINAL_EVERY: Duration = Duration::from_millis(100);
/// Plain lines are a log: one every few seconds is enough.
const LINES_EVERY: Duration = Duration::from_secs(5);
/// Items between two looks at the clock.
const CHECK_EVERY: u64 = 64;

pub struct Progress {
    style: Style,
    applet: String,
    items: AtomicU64,
    state: Mutex<State>,
}

struct State {
    phase: &'static str,
    last: Instant,
    /// A status line is on the terminal and not yet ended.
    open: bool,
}

impl Progress {
    pub fn new(applet: &str, style: Style) -> Self {
        Progress {
            style,
            applet: applet.to_string(),
            items: AtomicU64::new(0),
            state: Mutex::new(State {
                phase: "",
                last: Instant::now(),
                open: false,
            }),
        }
    }

    /// No progress at all (library callers, tests).
    pub fn off() -> Self {
        Progress::new("", Style::Off)
    }

    /// A new phase starts: shown at once with its first counts (a phase
    /// is rare, and the line must say what the work is doing now).
    pub fn phase(&self, phase: &'static str, counts: &str) {
        if self.style == Style::Off {
            return;
        }
        if let Ok(mut st) = self.state.lock() {
            st.phase = phase;
            self.show(&mut st, counts);
        }
    }

    /// One item done; `counts` (called only when a line is due) says how
    /// far the phase is.
    pub fn tick(&self, counts: impl FnOnce() -> String) {
        if self.style == Style::Off
            || !self
                .items
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(CHECK_EVERY)
        {
            return;
        }
        let every = match self.style {
            Style::Terminal => TERMINAL_EVERY,
            _ => LINES_EVERY,
        };
        // Another thread drawing now: this tick is not needed.
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        if st.last.elapsed() >= every {
            self.show(&mut st, &counts());
        }
    }

    /// Erases an open status line, so that a message can be printed in
    /// its place (the next tick draws it again).
    pub fn clear(&self) {
        if let Ok(mut st) = self.state.lock()
            && st.open
        {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
            st.open = false;
        }
    }

    /// The final counts, ending the status line with a newline.
    pub fn finish(&self, counts: &str) {
        if self.style == Style::Off {
            return;
        }
        if let Ok(mut st) = self.state.lock() {
            st.phase = "done";
            self.show(&mut st, counts);
            if st.open {
                let _ = std::io::stderr().write_all(b"\n");
                st.open = false;
            }
        }
    }

    fn show(&self, st: &mut State, counts: &str) {
        let mut line = format!("{}: {}", self.applet, st.phase);
        if !counts.is_empty() {
            line.push_str(": ");
            line.push_str(counts);
        }
        let text = match self.style {
            Style::Terminal => {
                st.open = true;
                // A line longer than the terminal would wrap, and `\r`
                // goes back to the start of its last row only. A terminal
                // of unknown size (0 columns) is taken as 80 wide.
                let width = rustix::termios::tcgetwinsize(std::io::stderr())
                    .ok()
                    .filter(|w| w.ws_col > 1)
                    .map_or(80, |w| usize::from(w.ws_col));
                let shown: String = line.chars().take(width - 1).collect();
                format!("\r{shown}\x1b[K")
            }
            _ => format!("{line}\n"),
        };
        // Progress is a courtesy: a closed stderr must not stop the work.
        let _ = std::io::stderr().write_all(text.as_bytes());
        st.last = Instant::now();
    }
}

impl Drop for Progress {
    /// A run that failed half-way leaves no open status line in front of
    /// its error message.
    fn drop(&mut self) {
        if let Ok(st) = self.state.get_mut()
            && st.open
        {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}

/// A byte count for a status line: "512 B", "3.4 MB", "1.2 GB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}
