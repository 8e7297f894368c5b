//! Processes a test starts (killed by pid when the test ends, pass or fail)
//! and waiting for a condition with a bound.

use std::process::Child;
use std::time::{Duration, Instant};

/// A child process of the test, killed and reaped on drop.
pub struct Started(pub Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `cond` until it holds; fails the test after ten seconds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
