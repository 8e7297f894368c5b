//! A pseudo-terminal for tests of what a command does on a terminal: the
//! command gets the terminal side, the test types and reads on the other.

use std::fs::File;
use std::process::Command;

pub struct Pty {
    /// The test's side, non-blocking.
    pub master: File,
    path: String,
}

impl Pty {
    pub fn new() -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let path = ptsname(&master, Vec::new()).unwrap().into_string().unwrap();
        rustix::fs::fcntl_setfl(&master, rustix::fs::OFlags::NONBLOCK).unwrap();
        Pty {
            master: File::from(master),
            path,
        }
    }

    /// The terminal side's path (/dev/pts/N of the host).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Gives `cmd` the terminal as its standard input, output and error.
    pub fn attach<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let tty = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.path)
                .unwrap()
        };
        cmd.stdin(tty()).stdout(tty()).stderr(tty())
    }
}
