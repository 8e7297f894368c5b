//! A guest's lifecycle against what else is on the host: another guest on
//! the same root, an init that dies at once, a stop during the start, bad
//! entries in the run state, and the same name under another
//! configuration root (issue 14: D1, W1-W4, W7).

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::guest::GuestRoot;
use common::process::{Started, wait_until};
use common::tempdir::TempDir;
use common::vsbox_bin;
use common::vserver::{Setup, text};

/// An rc that starts a long-lived service.
const RC: &str = "#!/bin/sh\nif [ \"$1\" != 6 ]; then sleep 300 </dev/null >/dev/null 2>&1 & fi\n";

/// `setup`'s vserver command with the run state `run` (another guest's).
fn vserver_in(setup: &Setup, run: &Path, args: &[&str]) -> Output {
    setup
        .command(args)
        .env("VSBOX_RUN_DIR", run)
        .output()
        .unwrap()
}

/// Stops a guest that was given another guest's run state, pass or fail.
struct StopIn<'a>(&'a Setup, &'a Path);

impl Drop for StopIn<'_> {
    fn drop(&mut self) {
        let _ = vserver_in(self.0, self.1, &["stop"]);
    }
}

/// Runs `cmd`, killing it (by its pid) if it has not ended within ten
/// seconds: a run-state file that blocks an open must not hang the tools.
fn bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Started(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            child
                .0
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut stdout)
                .unwrap();
            child
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_end(&mut stderr)
                .unwrap();
            return Output {
                status,
                stdout,
                stderr,
            };
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} hangs (killed after 10 s)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn contexts_left(run: &Path) -> Vec<String> {
    std::fs::read_dir(run.join("contexts"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// D1: a guest whose VSERVERDIR is (a link to) a running guest's root
/// neither starts nor runs a one-shot command there: its start would clear
/// the running guest's /var/run.
#[test]
fn a_running_guests_root_is_not_shared() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let a = Setup::new("owner", "", RC);
    a.ok(&["start"]);
    a.ok(&["exec", "touch", "/var/run/owner.pid"]);
    let links = TempDir::new("rootlink");
    let link = links.path().join("root");
    std::os::unix::fs::symlink(a.guest.path(), &link).unwrap();
    for dir in [a.guest.path(), link.as_path()] {
        let b = Setup::new("sharer", &format!("VSERVERDIR={}\n", dir.display()), RC);
        let _stop = StopIn(&b, a.run.path());
        for args in [&["start"][..], &["exec", "true"]] {
            let out = vserver_in(&b, a.run.path(), args);
            let err = text(&out.stderr);
            // exec: vsbox failed around the command, 125.
            let want = if args[0] == "exec" { 125 } else { 1 };
            assert_eq!(out.status.code(), Some(want), "{args:?} via {dir:?}: {err}");
            assert!(
                err.contains(&a.name) && err.contains("root"),
                "the refusal names the other guest: {err}"
            );
        }
        assert!(b.cgroup_gone(), "cgroup left by a refused start");
    }
    assert!(
        a.guest.join("var/run/owner.pid").exists(),
        "the running guest's /var/run was cleared"
    );
    assert_eq!(a.vserver(&["running"]).status.code(), Some(0));
    a.ok(&["stop"]);
}

/// W1: an init that cannot run (no file descriptors at all) is a failed
/// start, which leaves no cgroup and no run state.
#[test]
fn a_start_whose_init_dies_fails_and_leaves_nothing() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("noinit", "ULIMIT=\"-n 0\"\n", RC);
    let out = s.vserver(&["start"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("is running"), "{stdout}");
    assert!(stderr.contains("init"), "the error says why: {stderr}");
    assert!(s.cgroup_gone(), "cgroup left by a failed start");
    assert_eq!(contexts_left(s.run.path()), Vec::<String>::new());
    assert_eq!(s.vserver(&["running"]).status.code(), Some(1));
}

/// W2: a stop while the start scripts still run: the start must not say
/// that the (stopped) guest runs.
#[test]
fn a_start_stopped_meanwhile_says_so() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rc = "#!/bin/sh\n[ \"$1\" = 6 ] || sleep 3\n";
    let s = Setup::new("stopped", "", rc);
    let start = s
        .command(&["start"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut start = Started(start);
    wait_until("the guest's init", || s.init_pid().is_some());
    s.ok(&["stop"]);
    let status = start.0.wait().unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    start
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    start
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("is running"), "{stdout}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert_eq!(s.vserver(&["running"]).status.code(), Some(1));
    assert!(s.cgroup_gone());
}

/// W3, W4: a directory, random bytes, a FIFO and a symbolic link among the
/// run-state records break nothing for the guests: every tool skips them
/// (a warning at most) and none waits on the FIFO.
#[test]
fn bad_run_state_entries_are_skipped() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("badrun", "", RC);
    let contexts = s.run.path().join("contexts");
    std::fs::create_dir_all(contexts.join("49152")).unwrap();
    std::fs::write(contexts.join("49153"), b"\xff\x00\x9c random\n").unwrap();
    let fifo = contexts.join("49154");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/etc/passwd", contexts.join("49155")).unwrap();
    let tool = |applet: &str, args: &[&str]| {
        bounded(
            Command::new(vsbox_bin())
                .arg(applet)
                .args(args)
                .env("VSBOX_RUN_DIR", s.run.path())
                .env("VSBOX_CONFIG_ROOT", s.etc.path()),
        )
    };
    let ok = |out: Output, what: &str| {
        assert!(
            out.status.success(),
            "{what}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let started = ok(bounded(&mut s.command(&["start"])), "start");
    assert!(started.contains("is running"), "{started}");
    let status = ok(bounded(&mut s.command(&["status"])), "status");
    assert!(status.contains("is running"), "{status}");
    ok(bounded(&mut s.command(&["exec", "true"])), "exec");
    let stat = ok(tool("vserver-stat", &[]), "vserver-stat");
    assert!(stat.contains(&s.name), "{stat}");
    let ps = ok(tool("vps", &["ax"]), "vps");
    assert!(ps.contains(&s.name), "{ps}");
    ok(tool("vkill", &["-0", "--guest", &s.name]), "vkill");
    ok(bounded(&mut s.command(&["stop"])), "stop");
    assert!(s.cgroup_gone());
    // The bad entries are not the tools' to remove.
    assert!(contexts.join("49152").is_dir() && contexts.join("49153").exists());
}

/// W7: guest NAME under another configuration root is another guest: its
/// commands neither see, stop nor enter the NAME that runs from the first.
#[test]
fn configuration_roots_keep_their_guests_apart() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let a = Setup::new("rootone", "", RC);
    a.ok(&["start"]);
    std::fs::write(a.guest.join("which"), "first\n").unwrap();
    let other = TempDir::new("otherroot");
    let other_tree = GuestRoot::new("othertree");
    std::fs::write(other_tree.join("which"), "other\n").unwrap();
    other.write(
        &format!("vservers/{}.conf", a.name),
        &format!(
            "VSERVERDIR={}\nVSERVERS_ROOT={}\n",
            other_tree.path().display(),
            other.path().join("vservers-root").display()
        ),
    );
    let under_other = |args: &[&str]| {
        bounded(
            Command::new(vsbox_bin())
                .args(["vserver", "--config-root"])
                .arg(other.path())
                .arg(&a.name)
                .args(args)
                .env("VSBOX_RUN_DIR", a.run.path())
                .env_remove("VSBOX_CONFIG_ROOT"),
        )
    };
    let status = under_other(&["status"]);
    assert!(
        !text(&status.stdout).contains("is running") && !status.status.success(),
        "{}{}",
        text(&status.stdout),
        text(&status.stderr)
    );
    let exec = under_other(&["exec", "cat", "/which"]);
    assert!(
        !text(&exec.stdout).contains("first"),
        "exec entered the other root's guest: {}",
        text(&exec.stdout)
    );
    let stop = under_other(&["stop"]);
    assert!(
        !text(&stop.stdout).contains("is stopped"),
        "{}",
        text(&stop.stdout)
    );
    assert_eq!(
        a.vserver(&["running"]).status.code(),
        Some(0),
        "the other root's stop stopped the guest: {}",
        text(&stop.stderr)
    );
    assert_eq!(a.ok(&["exec", "cat", "/which"]), "first\n");
    a.ok(&["stop"]);
    assert!(a.cgroup_gone());
}
