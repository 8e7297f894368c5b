//! The vserver command on real guests (busybox-static trees), as root.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::guest::GuestRoot;
use common::pty::Pty;
use common::tempdir::TempDir;
use common::vsbox_bin;
use common::vserver::{Setup, text};

/// An rc that starts a long-lived service and logs each runlevel.
const RC: &str = "#!/bin/sh\necho \"rc $1\" >> /var/log/rc.log\nif [ \"$1\" != 6 ]; then sleep 300 </dev/null >/dev/null 2>&1 & fi\n";

#[test]
fn start_status_exec_stop() {
    let s = Setup::new("life", "S_HOSTNAME=lifeguest\n", RC);
    assert_eq!(s.vserver(&["running"]).status.code(), Some(1));
    let out = s.ok(&["start"]);
    assert!(
        out.starts_with(&format!("Server {} is running in context ", s.name)),
        "{out}"
    );
    assert_eq!(s.vserver(&["running"]).status.code(), Some(0));
    let status = s.ok(&["status"]);
    assert!(
        status.starts_with(&format!("Server {} is running\n", s.name)),
        "{status}"
    );
    assert!(
        status.contains("processes running") && status.contains("Vserver uptime: 0:0"),
        "{status}"
    );
    let json = s.ok(&["status", "--json"]);
    assert!(
        json.contains("\"running\": true") && json.contains("\"processes\": "),
        "{json}"
    );

    // exec: the guest's processes only, its hostname, status passed back.
    let ps = s.ok(&["exec", "ps", "ax"]);
    assert!(
        ps.contains("vinit --rc") && ps.contains("sleep 300"),
        "{ps}"
    );
    assert!(
        !ps.contains("cargo") && !ps.contains("vserver"),
        "host processes visible: {ps}"
    );
    assert_eq!(s.ok(&["exec", "hostname"]), "lifeguest\n");
    assert_eq!(
        s.vserver(&["exec", "sh", "-c", "exit 9"]).status.code(),
        Some(9)
    );

    let again = s.vserver(&["start"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("is already running"));

    let out = s.ok(&["stop"]);
    assert_eq!(out, format!("Server {} is stopped\n", s.name));
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/rc.log")).unwrap(),
        "rc 3\nrc 6\n"
    );
    assert!(s.cgroup_gone());
    assert_eq!(s.vserver(&["status"]).status.code(), Some(3));
    assert!(
        std::fs::read_dir(s.run.path().join("contexts"))
            .unwrap()
            .next()
            .is_none(),
        "run state left"
    );
}

#[test]
fn arguments_keep_their_topology() {
    let s = Setup::new("args", "", RC);
    // On a stopped guest too: exec runs in a context of its own.
    let out = s.ok(&[
        "exec",
        "sh",
        "-c",
        "printf '[%s]' \"$@\"",
        "sh",
        "a b",
        "",
        "'q'",
        "$HOME",
        "--silent",
    ]);
    assert_eq!(out, "[a b][]['q'][$HOME][--silent]");
    s.ok(&["start"]);
    let out = s.ok(&[
        "exec",
        "sh",
        "-c",
        "printf '[%s]' \"$@\"",
        "sh",
        "a b",
        "",
        "\"x\"",
    ]);
    assert_eq!(out, "[a b][][\"x\"]");
}

#[test]
fn suexec_uses_the_guests_own_users() {
    // "guest" (uid 1000) exists only in the guest's /etc/passwd.
    let s = Setup::new("suexec", "", RC);
    assert!(
        std::fs::read_to_string("/etc/passwd").map_or(true, |p| !p.contains("\nguest:x:1000:"))
    );
    s.ok(&["start"]);
    assert_eq!(s.ok(&["suexec", "guest", "id", "-u"]), "1000\n");
    assert_eq!(
        s.ok(&["suexec", "guest", "sh", "-c", "echo $HOME $USER"]),
        "/tmp guest\n"
    );
    let out = s.vserver(&["suexec", "nosuchuser", "id"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("no user nosuchuser in the guest's /etc/passwd"),
        "{}",
        text(&out.stderr)
    );
}

/// Piped input (an admin's script) is typed into the shell's terminal; the
/// end of the input is Ctrl-D.
#[test]
fn enter_gives_a_root_login_shell() {
    let s = Setup::new("enter", "", RC);
    s.ok(&["start"]);
    let mut child = s
        .command(&["enter"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo \"$HOME $(id -u) $0\"; pwd; exit 4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    // The shell runs on a pty of the guest even when vserver's stdin is a
    // pipe: the output has the terminal's line ends, the typed line's echo
    // and the prompt around it.
    let shown = text(&out.stdout);
    assert!(shown.contains("/root 0 -sh\r\n/root\r\n"), "{shown}");
}

#[test]
fn service_runs_the_guests_init_script() {
    let s = Setup::new("service", "", RC);
    s.guest.script(
        "etc/init.d/web",
        "#!/bin/sh\necho \"web $1 in $(hostname)\"\n",
    );
    s.ok(&["start"]);
    assert!(
        s.ok(&["service", "web", "restart"])
            .starts_with("web restart in ")
    );
    assert_eq!(
        s.vserver(&["service", "../../bin/sh", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn service_finds_red_hat_scripts_and_says_when_there_is_none() {
    let s = Setup::new("rhservice", "", RC);
    // The Red Hat layout: no /etc/init.d/db, /etc/rc.d/init.d/db.
    std::fs::create_dir_all(s.guest.join("etc/rc.d/init.d")).unwrap();
    s.guest
        .script("etc/rc.d/init.d/db", "#!/bin/sh\necho \"db $1\"\n");
    assert_eq!(s.ok(&["service", "db", "status"]), "db status\n");
    // /etc/init.d wins when both have it.
    s.guest
        .script("etc/init.d/db", "#!/bin/sh\necho \"init.d db $1\"\n");
    assert_eq!(s.ok(&["service", "db", "start"]), "init.d db start\n");

    // Neither: a clear error, not the shell's "not found".
    let out = s.vserver(&["service", "nosuch", "start"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(
        err.contains("no service nosuch") && err.contains("/etc/rc.d/init.d/nosuch"),
        "{err}"
    );

    // A guest symlink is resolved inside the guest: /etc/rc.d -> a host
    // directory that has init.d/outside finds nothing.
    let host = TempDir::new("rhservice-host");
    host.write("init.d/outside", "#!/bin/sh\necho host script\n");
    std::fs::set_permissions(
        host.path().join("init.d/outside"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::remove_dir_all(s.guest.join("etc/rc.d")).unwrap();
    std::os::unix::fs::symlink(host.path(), s.guest.join("etc/rc.d")).unwrap();
    let out = s.vserver(&["service", "outside", "start"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("no service outside"));
}

#[test]
fn companion_script_phases_in_order_with_profile() {
    let conf = "PROFILE=${PROFILE:-prod}\ncase $PROFILE in\nprod) S_HOSTNAME=p-prod;;\nbackup) S_HOSTNAME=p-backup;;\nesac\n";
    let rc = "#!/bin/sh\necho \"rc $1 $PROFILE\" >> /var/log/rc.log\n";
    let s = Setup::new("companion", conf, rc);
    s.ok(&["--profile", "backup", "start"]);
    // The running guest keeps the profile it started with; its rc scripts
    // and commands are told which.
    assert_eq!(s.ok(&["exec", "hostname"]), "p-backup\n");
    assert_eq!(s.ok(&["exec", "sh", "-c", "echo $PROFILE"]), "backup\n");
    s.ok(&["stop"]);
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/rc.log")).unwrap(),
        "rc 3 backup\nrc 6 backup\n"
    );
    let n = &s.name;
    assert_eq!(
        s.companion_log(),
        format!(
            "pre-start {n} PROFILE=backup\npost-start {n} PROFILE=backup\npre-stop {n} PROFILE=backup\npost-stop {n} PROFILE=backup\n"
        )
    );
    s.ok(&["start"]);
    assert_eq!(s.ok(&["exec", "hostname"]), "p-prod\n");
}

#[test]
fn a_guest_that_ignores_sigterm_is_killed_after_the_grace_time() {
    let rc = "#!/bin/sh\nif [ \"$1\" != 6 ]; then sh -c 'trap \"\" TERM; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 & else sleep 30; fi\n";
    let s = Setup::new("stubborn", "", rc);
    s.ok(&["start"]);
    let started = std::time::Instant::now();
    s.ok(&["stop"]);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(5),
        "stop waited the grace time: {took:?}"
    );
    assert!(
        s.cgroup_gone(),
        "every process was killed and the cgroup removed"
    );
}

#[test]
fn a_start_that_fails_half_way_leaves_nothing() {
    let s = Setup::new("halfway", "", RC);
    // The guest's /proc is a symlink: pid 1 refuses to mount there.
    std::fs::remove_dir(s.guest.join("proc")).unwrap();
    std::os::unix::fs::symlink("/etc", s.guest.join("proc")).unwrap();
    let out = s.vserver(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/proc is a symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert!(s.cgroup_gone());
    assert!(
        std::fs::read_dir(s.run.path().join("contexts"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(!s.run.path().join(format!("{}.ctx", s.name)).exists());
    // A failing pre-start stops the start before anything is made.
    std::fs::remove_file(s.guest.join("proc")).unwrap();
    std::fs::create_dir(s.guest.join("proc")).unwrap();
    s.etc.write(
        &format!("vservers/{}.sh", s.name),
        "[ \"$1\" = pre-start ] && exit 1; exit 0\n",
    );
    assert_eq!(s.vserver(&["start"]).status.code(), Some(1));
    assert!(s.cgroup_gone());
}

#[test]
fn stop_of_a_stopped_guest_cleans_up_and_runs_post_stop() {
    let s = Setup::new("stopped", "", RC);
    assert_eq!(
        s.ok(&["stop"]),
        format!("Server {} is not running\n", s.name)
    );
    assert_eq!(
        s.companion_log(),
        format!("post-stop {} PROFILE=\n", s.name)
    );
}

#[test]
fn fifty_start_stop_cycles_leave_nothing_behind() {
    let s = Setup::new("cycles", "", RC);
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    for i in 0..50 {
        s.ok(&["--silent", "start"]);
        s.ok(&["--silent", "stop"]);
        assert!(s.cgroup_gone(), "cycle {i}: cgroup left");
    }
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert_eq!(mounts_before, mounts_after, "mounts left on the host");
    assert!(
        std::fs::read_dir(s.run.path().join("contexts"))
            .unwrap()
            .next()
            .is_none()
    );
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/rc.log"))
            .unwrap()
            .lines()
            .count(),
        100
    );
}

#[test]
fn bad_names_and_missing_configs_change_nothing() {
    let s = Setup::new("bad", "", RC);
    let out = Command::new(vsbox_bin())
        .args(["vserver", "no-such-guest", "start"])
        .env("VSBOX_CONFIG_ROOT", s.etc.path())
        .env("VSBOX_RUN_DIR", s.run.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-guest.conf: No such file or directory"));
    let out = s.vserver(&["fly"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown command 'fly'"));
    assert!(
        !Path::new(&s.run.path().join("contexts")).exists()
            || std::fs::read_dir(s.run.path().join("contexts"))
                .unwrap()
                .next()
                .is_none()
    );
}

/// vservers start: ONBOOT guests only, lower PRIORITY first; stop: every
/// running guest, in reverse order.
#[test]
fn vservers_starts_onboot_guests_by_priority_and_stops_in_reverse() {
    let etc = TempDir::new("etc-all");
    let run = TempDir::new("run-all");
    let log = etc.path().join("order.log");
    let vroot = etc.path().join("vservers-root");
    etc.write(
        "vservers.conf",
        &format!("VSERVERS_ROOT={}\n", vroot.display()),
    );
    let tag = std::process::id();
    let specs = [
        ("late", "yes", 20),
        ("early", "yes", 10),
        ("manual", "no", 0),
    ];
    let mut roots = Vec::new();
    for (what, onboot, prio) in specs {
        let name = format!("va{tag}-{what}");
        let guest = GuestRoot::new(&format!("all-{what}"));
        etc.write(
            &format!("vservers/{name}.conf"),
            &format!(
                "source /etc/vservers.conf\nVSERVERDIR={}\nONBOOT={onboot}\nPRIORITY={prio}\n",
                guest.path().display()
            ),
        );
        etc.write(
            &format!("vservers/{name}.sh"),
            &format!("echo \"$1 {what}\" >> {}\n", log.display()),
        );
        roots.push(guest);
    }
    let vservers = |action: &str| {
        let out = Command::new(vsbox_bin())
            .args(["vservers", "--silent", action])
            .env("VSBOX_CONFIG_ROOT", etc.path())
            .env("VSBOX_RUN_DIR", run.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vservers {action}: {}",
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    };
    // An open VSERVERS_ROOT is warned about once, whatever the number of
    // guests.
    std::fs::create_dir_all(&vroot).unwrap();
    std::fs::set_permissions(&vroot, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, warnings) = vservers("start");
    assert_eq!(warnings.matches("has mode 0755").count(), 1, "{warnings}");
    let (status, _) = vservers("status");
    assert!(
        status.contains(&format!("va{tag}-early")) && status.matches("running").count() == 2,
        "{status}"
    );
    vservers("stop");
    let order: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("pre-"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        order,
        [
            "pre-start early",
            "pre-start late",
            "pre-stop late",
            "pre-stop early"
        ]
    );
    assert!(vservers("status").0.matches("stopped").count() == 3);
}

/// S_FLAGS nproc: ULIMIT -u becomes the guest-wide pids.max; a fork bomb
/// stops there and the host is not affected.
#[test]
fn nproc_limits_the_whole_guest() {
    let s = Setup::new(
        "nproc",
        "S_FLAGS=\"lock nproc\"\nULIMIT=\"-HS -u 20\"\n",
        RC,
    );
    s.ok(&["start"]);
    let bomb =
        "i=0; while [ $i -lt 60 ]; do sleep 30 </dev/null >/dev/null 2>&1 & i=$((i+1)); done";
    let out = s.vserver(&["exec", "sh", "-c", bomb]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("can't fork"),
        "the bomb hit the limit: {}",
        text(&out.stderr)
    );
    let cgroup = vsbox::context::cgroup::Cgroup::open(&s.name).unwrap();
    let n = cgroup.processes().unwrap().len();
    assert!(
        (10..=20).contains(&n),
        "{n} processes in a guest limited to 20"
    );
    // The host still forks.
    assert!(Command::new("/bin/true").status().unwrap().success());
    s.ok(&["stop"]);
    assert!(s.cgroup_gone());
}

/// `vserver NAME build` on a terminal with no options asks for them.
#[test]
fn build_on_a_terminal_asks() {
    use std::io::{Read, Write};
    let etc = TempDir::new("etc-ask");
    let vroot = etc.path().join("vservers-root");
    etc.write(
        "vservers.conf",
        &format!("VSERVERS_ROOT={}\n", vroot.display()),
    );
    let name = format!("vq{}", std::process::id());

    let pty = Pty::new();
    let mut child = pty
        .attach(
            Command::new(vsbox_bin())
                .args(["vserver", &name, "build"])
                .env("VSBOX_CONFIG_ROOT", etc.path()),
        )
        .spawn()
        .unwrap();
    let mut term = &pty.master;
    term.write_all(b"skeleton\nasked-host\n127.0.0.8\nAsked for\n")
        .unwrap();
    let status = child.wait().unwrap();
    // Read what the command printed (the prompts); the side does not block.
    let mut shown = Vec::new();
    let _ = term.read_to_end(&mut shown);
    let shown = text(&shown);
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("Build method")
            && shown.contains("Host name [")
            && shown.contains("Description ["),
        "{shown}"
    );
    let conf = std::fs::read_to_string(etc.path().join(format!("vservers/{name}.conf"))).unwrap();
    assert!(
        conf.contains("S_HOSTNAME=asked-host") || conf.contains("S_HOSTNAME=\"asked-host\""),
        "{conf}"
    );
    assert!(
        conf.contains("127.0.0.8") && conf.contains("# Description: Asked for"),
        "{conf}"
    );
    assert!(
        !vroot.join(&name).join("bin/busybox").exists(),
        "skeleton, not busybox"
    );
    // The tree is under a mode 000 VSERVERS_ROOT; remove it.
    let _ = std::fs::remove_dir_all(&vroot);
}

/// `vserver NAME enter` from a terminal: Ctrl-C interrupts the guest's
/// foreground job, not the shell and not vserver.
#[test]
fn enter_on_a_terminal_ctrl_c_reaches_the_guest_job() {
    use std::io::{Read, Write};
    let s = Setup::new("ctrlc", "", RC);
    s.ok(&["start"]);
    let pty = Pty::new();
    // setsid -c: a session of its own with the terminal as its controlling
    // terminal, as a login has.
    let mut child = pty
        .attach(
            Command::new("setsid")
                .arg("-c")
                .arg(vsbox_bin())
                .args(["vserver", &s.name, "enter"])
                .env("VSBOX_CONFIG_ROOT", s.etc.path())
                .env("VSBOX_RUN_DIR", s.run.path()),
        )
        .spawn()
        .unwrap();
    let mut term = &pty.master;
    let mut seen = String::new();
    let mut read_until = |mut term: &std::fs::File, want: &str| {
        let start = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        while !seen.contains(want) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "no {want:?} in {seen:?}"
            );
            match term.read(&mut buf) {
                Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    };
    term.write_all(b"echo READY\n").unwrap();
    read_until(term, "READY\r\n");
    term.write_all(b"sleep 100\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    term.write_all(b"\x03").unwrap();
    // The shell is still there (the sleep was interrupted, with 128+SIGINT).
    term.write_all(b"echo AFTER=$?\n").unwrap();
    read_until(term, "AFTER=130");
    term.write_all(b"exit 5\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(5),
        "the shell, not vserver, was interrupted: {seen}"
    );
}

/// exec, suexec, enter and service end with the command's status, as
/// docker exec and lxc-attach do: 127 when the command is not in the
/// guest, 126 when it cannot run, 125 when vsbox itself failed; 1 stays the
/// command's own. In a running guest and in a stopped one.
#[test]
fn commands_in_the_guest_exit_with_125_126_127_or_their_own_status() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("exitcodes", "", RC);
    let code = |args: &[&str]| s.vserver(args).status.code();
    for state in ["stopped", "running"] {
        if state == "running" {
            s.ok(&["start"]);
        }
        assert_eq!(code(&["exec", "/no/such/command"]), Some(127), "{state}");
        assert_eq!(code(&["exec", "/etc/passwd"]), Some(126), "{state}");
        assert_eq!(code(&["exec", "sh", "-c", "exit 1"]), Some(1), "{state}");
        assert_eq!(code(&["exec", "sh", "-c", "exit 7"]), Some(7), "{state}");
        // No such user in the guest: vsbox failed, not the command.
        let out = s.vserver(&["suexec", "nobody-here", "true"]);
        assert_eq!(
            out.status.code(),
            Some(125),
            "{state}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            code(&["service", "no-such-service", "start"]),
            Some(125),
            "{state}"
        );
    }
    s.ok(&["stop"]);
}
