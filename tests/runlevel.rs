//! A guest without an init of its own: pid 1 is `vinit --rc`, which clears
//! /var/run, writes utmp, runs the guest's rc script for its runlevel, and
//! runs runlevel 6 when the guest is stopped.

mod common;

use std::process::Command;

use common::guest::GuestRoot;
use common::process::{Started, wait_until};
use common::tempdir::TempDir;
use common::vsbox_bin;

/// Runlevel 2 takes a second after logging: the test's stop arrives while
/// the start scripts still run, and must not be lost.
const RC: &str = "#!/bin/sh\necho \"rc $1 pid=$$\" >> /var/log/rc.log\n[ \"$1\" = 6 ] || sleep 1\n";

#[test]
fn a_guest_without_init_runs_its_runlevel_scripts() {
    let guest = GuestRoot::new("runlevel");
    std::fs::create_dir_all(guest.join("etc/init.d")).unwrap();
    std::fs::create_dir_all(guest.join("var/log")).unwrap();
    std::fs::create_dir_all(guest.join("var/run/keepdir")).unwrap();
    std::fs::write(guest.join("var/run/stale.pid"), "4242\n").unwrap();
    std::fs::write(guest.join("var/run/keepdir/inner.pid"), "4243\n").unwrap();
    std::fs::write(guest.join("etc/inittab"), "# default\nid:2:initdefault:\n").unwrap();
    std::fs::write(guest.join("etc/init.d/rc"), RC).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        guest.join("etc/init.d/rc"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let run = TempDir::new("runlevel-run");
    let mut child = Started(
        Command::new(vsbox_bin())
            .args([
                "chcontext",
                "--ctx",
                "4600",
                "--secure",
                "--silent",
                "--root",
            ])
            .arg(guest.path())
            .arg("--rc")
            .env("VSBOX_RUN_DIR", run.path())
            .spawn()
            .unwrap(),
    );
    let log = guest.join("var/log/rc.log");
    wait_until("rc 2", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("rc 2"))
    });
    assert!(
        !guest.join("var/run/stale.pid").exists(),
        "stale pid file cleared"
    );
    assert!(!guest.join("var/run/keepdir/inner.pid").exists());
    assert!(guest.join("var/run/keepdir").is_dir(), "directories kept");
    let utmp = std::fs::read(guest.join("var/run/utmp")).unwrap();
    assert_eq!(utmp.len(), 2 * 384, "a boot record and a runlevel record");
    assert_eq!(i16::from_ne_bytes([utmp[384], utmp[385]]), 1, "RUN_LVL");
    assert_eq!(utmp[388], b'2', "runlevel 2 from inittab");

    // Stopping: SIGTERM to the starter reaches pid 1, which runs rc 6.
    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut status = None;
    wait_until("the guest to stop", || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        !run.path().join("contexts/4600").exists(),
        "run state removed"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("rc 6"), "stop ran runlevel 6: {text}");
}
