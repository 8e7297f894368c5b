//! A detached tmux session to type into and read back: the real terminal
//! for tests of full-screen tools and shell completion.

use std::process::Command;

/// A tmux session, killed when dropped.
pub struct Tmux(pub String);

impl Tmux {
    /// Whether tmux can run here (test.sh installs it; the VM may lack it).
    pub fn available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok()
    }

    /// Starts `sh -c script` in a new session named after `tag` and this
    /// test process, on a `width` x `height` terminal.
    pub fn start(tag: &str, width: u32, height: u32, script: &str) -> Self {
        let session = Tmux(format!("vsbox-{tag}-{}", std::process::id()));
        let out = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session.0])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        session
    }

    /// What the pane shows.
    pub fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `command` (shell text) on a terminal of its own and returns
    /// the screen once it ended: its output, then `exit STATUS` on a line
    /// of its own (a line left open by the command would carry it).
    pub fn run(tag: &str, command: &str) -> String {
        let session = Tmux::start(
            tag,
            160,
            40,
            &format!("{command}; echo \"exit $?\"; sleep 600"),
        );
        let mut screen = String::new();
        super::process::wait_until("the command in tmux to end", || {
            screen = session.capture();
            screen.lines().any(|l| l.contains("exit "))
        });
        screen
    }

    /// Types `keys` (tmux key names: "Tab", "Enter", or literal text).
    pub fn send_keys(&self, keys: &[&str]) {
        let out = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}
