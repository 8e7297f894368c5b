//! Hostile guests against the host tools (issue 12): a guest's kill(0)
//! must reach only the guest; FIFOs where a host tool expects a file and
//! start scripts that never end must not hang vserver; the guest gets a
//! clean environment, never the caller's.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::is_root;
use common::process::{Started, wait_until};
use common::tempdir::TempDir;
use common::vserver::{Setup, monitor_of, text};

/// An rc that only logs.
const RC: &str = "#!/bin/sh\necho \"rc $1\" >> /var/log/rc.log\n";

/// What a bounded run gave: its status, stdout and stderr.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` (stdin /dev/null, output into files) for at most `limit`;
/// None when it was still running then: it is killed, by its pid.
fn bounded(cmd: &mut Command, limit: Duration) -> Option<Ran> {
    let out = TempDir::new("bounded");
    let (o, e) = (out.path().join("out"), out.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(Ran {
                status,
                stdout: std::fs::read_to_string(&o).unwrap(),
                stderr: std::fs::read_to_string(&e).unwrap(),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A generous bound for commands that take well under a second here
/// (minutes in the test VM, where qemu has no KVM).
fn limit() -> Duration {
    if std::env::var_os("VSBOX_TEST_VM").is_some() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(20)
    }
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn kill_zero_in_a_guest_command_reaches_only_the_guest() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("kill0", "", RC);
    s.ok(&["start"]);
    // A host process in the process group vserver runs in, as a cron
    // job's other processes would be.
    let sentinel = Started(
        Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let group = sentinel.0.id() as i32;
    for (state, guest_args) in [
        ("running", ["exec", "sh", "-c", "kill -KILL 0; sleep 5"]),
        ("stopped", ["exec", "sh", "-c", "kill -KILL 0; sleep 5"]),
    ] {
        if state == "stopped" {
            s.ok(&["stop"]);
        }
        let ran = bounded(s.command(&guest_args).process_group(group), limit())
            .unwrap_or_else(|| panic!("{state} guest: vserver exec hung"));
        assert_eq!(
            ran.status.code(),
            Some(137),
            "{state} guest: the command is killed, vserver reports it ({:?}, {})",
            ran.status,
            ran.stderr
        );
        assert!(
            Path::new(&format!("/proc/{group}")).exists()
                && !std::fs::read_to_string(format!("/proc/{group}/stat"))
                    .unwrap()
                    .contains(") Z "),
            "{state} guest: the guest's kill(0) killed a host process of the caller's group"
        );
    }
}

#[test]
fn kill_zero_in_the_start_scripts_spares_the_monitor() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rc =
        "#!/bin/sh\necho \"rc $1\" >> /var/log/rc.log\n[ \"$1\" = 3 ] && kill -KILL 0\nexit 0\n";
    let s = Setup::new("kill0rc", "", rc);
    let ran = bounded(&mut s.command(&["start"]), limit()).expect("start hung");
    assert!(ran.status.success(), "{}", ran.stderr);
    let init = s.init_pid().expect("the guest runs");
    let monitor = monitor_of(init);
    wait_until("the guest's monitor", || {
        std::fs::read_to_string(format!("/proc/{monitor}/comm"))
            .is_ok_and(|c| c == "vsbox-monitor\n")
    });
    // The guest's processes and its init share no process group or session
    // with the monitor.
    let stat = |pid: i32| -> Vec<String> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &s[s.rfind(')').unwrap() + 2..];
        after.split(' ').map(str::to_string).collect()
    };
    let (init_stat, monitor_stat) = (stat(init), stat(monitor));
    // Fields after the command: state ppid pgrp session.
    assert_ne!(init_stat[2], monitor_stat[2], "same process group");
    assert_ne!(init_stat[3], monitor_stat[3], "same session");
    s.ok(&["stop"]);
}

#[test]
fn fifos_in_the_guest_do_not_hang_exec_suexec_enter_or_start() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("fifo", "", RC);
    mkfifo(&s.guest.join("etc/mtab"));
    mkfifo(&s.guest.join("var/log/boot.log"));
    mkfifo(&s.guest.join("var/run/utmp"));

    // GENERATEMTAB writes /etc/mtab at start and before each exec: a FIFO
    // there is left alone.
    let ran = bounded(&mut s.command(&["exec", "true"]), limit()).expect("exec (stopped) hung");
    assert!(ran.status.success(), "{}", ran.stderr);
    let ran = bounded(&mut s.command(&["start"]), limit()).expect("start hung");
    assert!(ran.status.success(), "{}", ran.stderr);
    let ran = bounded(&mut s.command(&["exec", "true"]), limit()).expect("exec (running) hung");
    assert!(ran.status.success(), "{}", ran.stderr);
    for f in ["etc/mtab", "var/log/boot.log"] {
        assert!(is_fifo(&s.guest.join(f)), "{f} was replaced");
    }

    // The user comes from the guest's /etc/passwd: a FIFO there is refused
    // with a clear error, at once.
    mkfifo(&s.guest.join("etc/passwd"));
    for state in ["running", "stopped"] {
        if state == "stopped" {
            s.ok(&["stop"]);
        }
        for args in [&["suexec", "guest", "true"][..], &["enter"][..]] {
            let ran = bounded(&mut s.command(args), limit())
                .unwrap_or_else(|| panic!("{state} guest: vserver {args:?} hung"));
            // vsbox failed around the command: 125 (as docker exec).
            assert_eq!(
                ran.status.code(),
                Some(125),
                "{state}: {args:?}: {}",
                ran.stderr
            );
            assert!(
                ran.stderr
                    .contains("/etc/passwd: it is a FIFO, not a regular file"),
                "{state}: {args:?}: {}",
                ran.stderr
            );
        }
    }
    assert!(s.cgroup_gone());
}

#[test]
fn start_scripts_that_never_end_time_out() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rc = "#!/bin/sh\n[ \"$1\" = 3 ] && exec sleep 1000\nexit 0\n";
    let s = Setup::new("hang", "S_START_TIMEOUT=2\n", rc);
    let started = Instant::now();
    let ran = bounded(&mut s.command(&["start"]), limit()).expect("start hung");
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("did not finish within 2 s (S_START_TIMEOUT)"),
        "{}",
        ran.stderr
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    // Nothing half-done: not running, no cgroup, no run state.
    assert_eq!(s.vserver(&["running"]).status.code(), Some(1));
    assert!(s.cgroup_gone());
    assert_eq!(s.init_pid(), None);
}

#[test]
fn the_guest_gets_a_clean_environment() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rc = "#!/bin/sh\n[ \"$1\" = 3 ] && env > /var/log/rc.env\nexit 0\n";
    let s = Setup::new("env", "S_ENV=\"LANG=C.UTF-8 APP_MODE=prod\"\n", rc);
    let secret = "VSBOX_TEST_SECRET";
    let with_secret = |args: &[&str]| {
        let mut cmd = s.command(args);
        cmd.env(secret, "hunter2").env("TERM", "xterm-256color");
        let ran = bounded(&mut cmd, limit()).expect("vserver hung");
        assert!(ran.status.success(), "{args:?}: {}", ran.stderr);
        ran.stdout
    };
    let check = |what: &str, env: &str| {
        let vars: Vec<&str> = env.lines().collect();
        assert!(
            !env.contains("hunter2"),
            "{what}: the caller's variable leaked: {env}"
        );
        for want in [
            "container=vsbox",
            "APP_MODE=prod",
            "LANG=C.UTF-8",
            "TERM=xterm-256color",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ] {
            assert!(vars.contains(&want), "{what}: no {want}: {env}");
        }
    };
    check("exec in a stopped guest", &with_secret(&["exec", "env"]));
    with_secret(&["start"]);
    let rc_env = std::fs::read_to_string(s.guest.join("var/log/rc.env")).unwrap();
    check("the start scripts", &rc_env);
    for want in ["RUNLEVEL=3", "PREVLEVEL=N"] {
        assert!(rc_env.lines().any(|l| l == want), "no {want}: {rc_env}");
    }
    check("exec", &with_secret(&["exec", "env"]));
    let su = with_secret(&["suexec", "guest", "env"]);
    check("suexec", &su);
    assert!(su.lines().any(|l| l == "HOME=/tmp"), "{su}");
    s.ok(&["stop"]);
}

#[test]
fn s_env_is_checked() {
    let s = Setup::new("envbad", "S_ENV=\"1X=2\"\n", RC);
    let out = s.vserver(&["exec", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("S_ENV") && err.contains("'1X' is not a variable name"),
        "{err}"
    );
}
