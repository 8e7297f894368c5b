//! rebootmgr, vreboot and vhalt on real guests (busybox-static trees), and
//! reboot(2) from a guest's init, as root.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{Started, wait_until};
use common::tempdir::TempDir;
use common::vserver::{Setup, monitor_of, text};
use common::{is_root, vsbox_bin};

/// An rc that starts a long-lived service and logs each runlevel.
const RC: &str = "#!/bin/sh\necho \"rc $1\" >> /var/log/rc.log\nif [ \"$1\" != 6 ] && [ \"$1\" != 0 ]; then sleep 300 </dev/null >/dev/null 2>&1 & fi\n";

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A rebootmgr serving `names` of `s`'s configuration root, its pid file
/// and log in a temporary directory; ended by pid (SIGTERM) when dropped.
struct Manager {
    proc: Started,
    dir: TempDir,
}

impl Manager {
    fn start(s: &Setup, names: &[&str]) -> Manager {
        let dir = TempDir::new("rebootmgr");
        let child = manager_command(s, &dir)
            .args(names)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let m = Manager {
            proc: Started(child),
            dir,
        };
        wait_until("rebootmgr's start", || {
            m.log().contains("rebootmgr: started")
        });
        m
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("boot.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.proc.0.id() as i32
    }

    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .is_ok_and(|s| !s.contains(") Z "))
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }
}

fn manager_command(s: &Setup, dir: &TempDir) -> Command {
    let mut cmd = Command::new(vsbox_bin());
    cmd.arg("rebootmgr")
        .arg("--pidfile")
        .arg(dir.path().join("rebootmgr.pid"))
        .arg("--log")
        .arg(dir.path().join("boot.log"))
        .env("VSBOX_CONFIG_ROOT", s.etc.path())
        .env("VSBOX_RUN_DIR", s.run.path());
    cmd
}

fn running(s: &Setup) -> bool {
    s.vserver(&["running"]).status.code() == Some(0)
}

/// Sends `bytes` to the guest's socket from the host and returns the answer.
fn ask_from_host(socket: &Path, bytes: &[u8]) -> String {
    let mut c = UnixStream::connect(socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(bytes);
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer
}

#[test]
fn vreboot_restarts_the_guest_and_vhalt_stops_it() {
    need_root!();
    let s = Setup::new("vreboot", "", RC);
    s.ok(&["start"]);
    let m = Manager::start(&s, &[&s.name]);
    let socket = s.guest.join("dev/reboot");
    assert!(socket.exists());
    // Garbage and a 10,000-connection flood first: vreboot works after.
    let baseline = m.fds();
    let mut held = Vec::new();
    for i in 0..10_000 {
        let mut c = UnixStream::connect(&socket).unwrap();
        let _ = c.write_all(if i % 2 == 0 {
            b"\xff\xfe garbage\n"
        } else {
            b"re"
        });
        held.push(c);
        if held.len() == 100 {
            held.clear();
        }
    }
    drop(held);
    wait_until("the flood's connections to be closed", || {
        m.fds() == baseline
    });
    assert!(m.alive());
    let first = s.init_pid().expect("running");
    let out = s.vserver(&["exec", "/bin/vsbox", "vreboot"]);
    // vreboot is ended with its guest, often before it exits by itself.
    let err = text(&out.stderr);
    assert!(!err.contains("no reboot manager"), "{err}");
    wait_until("the restart", || {
        m.log().contains(&format!("{} reboot: done", s.name))
    });
    let second = s.init_pid().expect("running again after the restart");
    assert_ne!(first, second, "a new init");
    assert!(running(&s));
    let rc = std::fs::read_to_string(s.guest.join("var/log/rc.log")).unwrap();
    assert_eq!(rc.matches("rc 3").count(), 2, "started twice: {rc}");
    assert!(rc.contains("rc 6"), "{rc}");

    let _ = s.vserver(&["exec", "/bin/vsbox", "vhalt"]);
    wait_until("the stop", || {
        m.log().contains(&format!("{} halt: done", s.name))
    });
    assert!(!running(&s));
    assert!(s.cgroup_gone());
    let log = m.log();
    assert!(
        log.contains(&format!(
            "{} reboot: running vserver {} restart",
            s.name, s.name
        )),
        "{log}"
    );
    drop(m);
    assert!(
        !s.guest.join("dev/reboot").exists(),
        "socket removed at exit"
    );
}

#[test]
fn vreboot_without_a_manager_says_so() {
    need_root!();
    let s = Setup::new("nomgr", "", RC);
    s.ok(&["start"]);
    for applet in ["vreboot", "vhalt"] {
        let out = s.vserver(&["exec", "/bin/vsbox", applet]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains(
                "no reboot manager listens on /dev/reboot: ask the host's admin to run rebootmgr"
            ),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(running(&s));
}

#[test]
fn rebootmgr_survives_garbage_and_floods_and_keeps_serving() {
    need_root!();
    // The guest need not run: the manager only needs its dev directory.
    let s = Setup::new("flood", "", RC);
    let m = Manager::start(&s, &[]);
    let socket = s.guest.join("dev/reboot");
    let mode = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let baseline = m.fds();

    assert_eq!(
        ask_from_host(&socket, b"format c:\n"),
        "error: unknown request (reboot or halt)\n"
    );
    assert_eq!(
        ask_from_host(&socket, &[b'x'; 5000]),
        "error: request too long\n"
    );
    assert!(ask_from_host(&socket, b"\x00\xff\x1b[2J\r\n").starts_with("error: unknown"));
    // Silent clients: a guest holds at most 4 connections, each for 2 s.
    let silent: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        ask_from_host(&socket, b"reboot\n"),
        "error: too many requests at once\n"
    );
    let mut answer = String::new();
    let mut first = &silent[0];
    first.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "error: timeout\n", "silent clients are dropped");
    drop(silent);

    // 10,000 connections: connect and close, 200 held at a time, some
    // sending half a request.
    let mut held = Vec::new();
    for i in 0..10_000 {
        let mut c = UnixStream::connect(&socket).unwrap();
        if i % 7 == 0 {
            let _ = c.write_all(b"reb");
        }
        held.push(c);
        if held.len() == 200 {
            held.clear();
        }
    }
    drop(held);
    assert!(m.alive());
    // The manager serves again (a stopped guest: stop only cleans up).
    wait_until("the flood's connections to be closed", || {
        m.fds() == baseline
    });
    assert_eq!(ask_from_host(&socket, b"halt\n"), "ok\n");
    wait_until("the stop", || {
        m.log().contains(&format!("{} halt: done", s.name))
    });
    assert!(m.alive());
    let log = m.log();
    assert!(log.contains("unknown request \"format c:\""), "{log}");
    assert!(
        log.lines().count() < 50,
        "bad requests are not all logged: {log}"
    );

    // The guest's socket vanishes: SIGHUP remakes it.
    std::fs::remove_file(&socket).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(m.pid()).unwrap(),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    wait_until("the socket to be remade", || socket.exists());
    assert_eq!(ask_from_host(&socket, b"halt\n"), "ok\n");
    // Its whole tree vanishes: the manager stays up.
    std::fs::rename(s.guest.path(), s.guest.path().with_extension("gone")).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(m.pid()).unwrap(),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    wait_until("the reload", || m.log().matches("SIGHUP").count() == 2);
    std::fs::rename(s.guest.path().with_extension("gone"), s.guest.path()).unwrap();
    assert!(m.alive());
}

#[test]
fn a_second_manager_is_refused() {
    need_root!();
    let s = Setup::new("pidfile", "", RC);
    let m = Manager::start(&s, &[]);
    let pid = std::fs::read_to_string(m.dir.path().join("rebootmgr.pid")).unwrap();
    assert_eq!(pid.trim(), m.pid().to_string());
    let out = manager_command(&s, &m.dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another rebootmgr runs"),
        "{}",
        text(&out.stderr)
    );
    drop(m.proc);
    assert!(!m.dir.path().join("rebootmgr.pid").exists());
}

#[test]
fn guest_symlinks_are_not_followed_to_the_host() {
    need_root!();
    let host = TempDir::new("hostdir");
    let target = host.write("precious", "keep me\n");
    // dev is a symlink to a host directory, absolute or by "..".
    let a = Setup::new("devlink", "", RC);
    std::fs::remove_dir_all(a.guest.join("dev")).unwrap();
    std::os::unix::fs::symlink(host.path(), a.guest.join("dev")).unwrap();
    let b = Setup::new("dotdot", "", RC);
    std::fs::remove_dir_all(b.guest.join("dev")).unwrap();
    let up = "../".repeat(b.guest.path().components().count() + 2);
    std::os::unix::fs::symlink(
        format!("{up}{}", host.path().display()),
        b.guest.join("dev"),
    )
    .unwrap();
    // dev/reboot is a symlink to a host file: replaced, not followed.
    let c = Setup::new("rebootlink", "", RC);
    std::os::unix::fs::symlink(&target, c.guest.join("dev/reboot")).unwrap();

    let m = Manager::start(&a, &[&a.name]);
    let m2 = Manager::start(&b, &[&b.name]);
    let m3 = Manager::start(&c, &[&c.name]);
    assert!(!host.path().join("reboot").exists());
    for (s, m) in [(&a, &m), (&b, &m2)] {
        let log = m.log();
        assert!(
            log.contains(&format!("{}: cannot open", s.name)) && log.contains("serving 0 guests"),
            "{log}"
        );
    }
    assert!(m3.log().contains("serving 1 guests"), "{}", m3.log());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    let meta = std::fs::symlink_metadata(c.guest.join("dev/reboot")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    drop((m, m2, m3));
    assert!(target.exists());
}

fn new_init(s: &Setup, old: i32) -> impl FnMut() -> bool + '_ {
    move || s.init_pid().is_some_and(|p| p != old) && running(s)
}

#[test]
fn the_monitor_is_small_outside_the_guest_and_holds_nothing_of_it() {
    need_root!();
    let s = Setup::new("monitor", "", RC);
    s.ok(&["start"]);
    let init = s.init_pid().unwrap();
    let m = monitor_of(init);
    // start returns once the monitor has set the guest up; it then execs
    // itself as `vinit --monitor` (dropping all it used on the way) and
    // names itself: a slow machine can look in between.
    wait_until("the monitor's exec and name", || {
        std::fs::read_to_string(format!("/proc/{m}/cmdline"))
            .is_ok_and(|c| c.contains("\0--monitor\0"))
            && std::fs::read_to_string(format!("/proc/{m}/comm"))
                .is_ok_and(|c| c == "vsbox-monitor\n")
    });
    let cgroup = std::fs::read_to_string(format!("/proc/{m}/cgroup")).unwrap();
    assert!(
        !cgroup.contains(&s.name),
        "not in the guest's cgroup: {cgroup}"
    );
    for fd in std::fs::read_dir(format!("/proc/{m}/fd"))
        .unwrap()
        .flatten()
    {
        // A descriptor the monitor had open only for a moment (it reads
        // the run state as it sets up the console) may be gone already.
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        // Besides its pidfd and /dev/null, only the guest's console: the
        // pty master (/dev/pts/ptmx of the guest's devpts), its log in the
        // host's run state and the root-only socket for `vserver console`.
        let console_log = s.run.path().join(format!("{}.console", s.name));
        assert!(
            t == "/dev/null"
                || t == "anon_inode:[pidfd]"
                || t == "/dev/pts/ptmx"
                || t.starts_with("socket:[")
                || target == console_log,
            "fd {t}"
        );
    }
    let stat = std::fs::read_to_string(format!("/proc/{m}/status")).unwrap();
    let rss: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    eprintln!("monitor RSS: {rss} kB");
    // A host stop is not taken for a reboot.
    s.ok(&["stop"]);
    wait_until("the monitor's end", || {
        !Path::new(&format!("/proc/{m}")).exists()
            || std::fs::read_to_string(format!("/proc/{m}/stat")).is_ok_and(|t| t.contains(") Z "))
    });
    assert!(!running(&s));
}

#[test]
fn reboot_and_halt_inside_a_vinit_guest() {
    need_root!();
    let s = Setup::new("bbreboot", "", RC);
    s.ok(&["start"]);
    let first = s.init_pid().unwrap();
    // busybox reboot (without -f) sends pid 1 SIGTERM: vinit runs rc 6.
    let _ = s.vserver(&["exec", "/bin/busybox", "reboot"]);
    wait_until("the restart", new_init(&s, first));
    // The new init is published before its rc 3 is done (the restart's
    // start waits for it): wait for the line too.
    let log = s.guest.join("var/log/rc.log");
    wait_until("the new rc 3", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)
    });
    let rc = std::fs::read_to_string(&log).unwrap();
    assert_eq!(rc, "rc 3\nrc 6\nrc 3\n");
    // busybox halt sends SIGUSR1: runlevel 0, then the guest is stopped.
    let _ = s.vserver(&["exec", "/bin/busybox", "halt"]);
    wait_until("the stop", || !running(&s) && s.cgroup_gone());
    let rc = std::fs::read_to_string(s.guest.join("var/log/rc.log")).unwrap();
    assert_eq!(rc, "rc 3\nrc 6\nrc 3\nrc 0\n");
}

/// A fakeinit guest whose init logs each boot and, on the first one, calls
/// reboot(2) (busybox reboot -f). CAP_SYS_BOOT comes from S_CAPS.
fn fakeinit_guest(tag: &str, init: &str) -> Setup {
    let s = Setup::new(
        tag,
        "S_FLAGS=\"lock fakeinit\"\nS_CAPS=\"CAP_SYS_BOOT\"\n",
        RC,
    );
    std::fs::write(s.guest.join("sbin/init"), init).unwrap();
    std::fs::set_permissions(
        s.guest.join("sbin/init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    s
}

#[test]
fn reboot_2_from_a_guest_init_restarts_it_and_halt_stops_it() {
    need_root!();
    let init = "#!/bin/sh\necho boot >> /var/log/init.log\nif [ ! -e /var/log/rebooted ]; then touch /var/log/rebooted; sleep 0.3; busybox reboot -f; fi\nwhile :; do sleep 1; done\n";
    let s = fakeinit_guest("sysreboot", init);
    s.ok(&["start"]);
    wait_until("the reboot and the second boot", || {
        std::fs::read_to_string(s.guest.join("var/log/init.log")).is_ok_and(|t| t == "boot\nboot\n")
    });
    wait_until("the guest to run again", || running(&s));
    let second = s.init_pid().unwrap();
    // halt -f from any process of the guest: reboot(2) ends init by SIGINT.
    let _ = s.vserver(&["exec", "/bin/busybox", "halt", "-f"]);
    wait_until("the stop", || !running(&s) && s.cgroup_gone());
    assert!(!Path::new(&format!("/proc/{second}")).exists());
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/init.log")).unwrap(),
        "boot\nboot\n"
    );
}

#[test]
fn a_host_stop_is_not_a_reboot_even_when_init_reboots_on_sigterm() {
    need_root!();
    // Like busybox init: SIGTERM makes it call reboot(2) (restart).
    let init = "#!/bin/sh\necho boot >> /var/log/init.log\ntrap 'busybox reboot -f' TERM\nwhile :; do sleep 0.1; done\n";
    let s = fakeinit_guest("stopreboot", init);
    s.ok(&["start"]);
    let out = s.ok(&["stop"]);
    assert!(out.contains("is stopped"), "{out}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!running(&s));
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/init.log")).unwrap(),
        "boot\n"
    );
    // vserver restart: one stop, one start.
    s.ok(&["start"]);
    s.ok(&["restart"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(running(&s));
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/init.log")).unwrap(),
        "boot\nboot\nboot\n"
    );
}
