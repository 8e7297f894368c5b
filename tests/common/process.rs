//! Processes a test starts (killed by pid when the test ends, pass or fail)
//! and waiting for a condition with a bound.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process of the test, ended and reaped on drop: SIGTERM first
/// (chcontext then ends its context and removes its cgroup), SIGKILL if it
/// is still there after five seconds.
pub struct Started(pub Child);

impl Drop for Started {
    fn drop(&mut self) {
        // Already reaped (by the test's own wait): its pid may be reused.
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `cond` until it holds; fails the test after ten seconds, or a
/// minute in the test VM (qemu without KVM runs many times slower).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let limit = if std::env::var_os("VSBOX_TEST_VM").is_some() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(10)
    };
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A probe running in the background, read line by line.
pub struct Probe {
    lines: Lines<BufReader<ChildStdout>>,
    _child: Started,
}

impl Probe {
    pub fn spawn(cmd: &mut Command) -> Probe {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        Probe {
            lines: BufReader::new(stdout).lines(),
            _child: Started(child),
        }
    }

    pub fn line(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(line)) => line,
            other => panic!("the probe ended without a line: {other:?}"),
        }
    }
}
