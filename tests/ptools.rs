//! The process tools against real guests, as root: vps, vpstree,
//! vserver-stat, vkill and vtop (under tmux).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::process::wait_until;
use common::tmux::Tmux;
use common::vsbox_bin;
use common::vserver::{Setup, text};
use vsbox::context::cgroup::Cgroup;

/// A guest whose rc leaves `busybox sleep 1000` running, plus a shell whose
/// command line holds a newline and an escape sequence.
const RC: &str = "#!/bin/sh\nif [ \"$1\" != 6 ]; then\n  busybox sleep 1000 </dev/null >/dev/null 2>&1 &\n  busybox sh -c 'busybox sleep 1001; true' \"$(printf 'x\\ny\\033[2J')\" </dev/null >/dev/null 2>&1 &\nfi\n";

/// `vsbox APPLET ARGS` with `s`'s configuration root and run state `run`.
fn tool(s: &Setup, run: &Path, applet: &str, args: &[&str]) -> Output {
    Command::new(vsbox_bin())
        .arg(applet)
        .args(args)
        .env("VSBOX_CONFIG_ROOT", s.etc.path())
        .env("VSBOX_RUN_DIR", run)
        .output()
        .unwrap()
}

fn ok(s: &Setup, run: &Path, applet: &str, args: &[&str]) -> String {
    let out = tool(s, run, applet, args);
    assert!(
        out.status.success(),
        "{applet} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A second guest started in another guest's run state directory (so one
/// vps sees both), stopped with it when dropped.
struct Second<'a> {
    setup: Setup,
    run: &'a Path,
}

impl<'a> Second<'a> {
    fn start(tag: &str, run: &'a Path) -> Self {
        let setup = Setup::new(tag, "", RC);
        let out = setup
            .command(&["start"])
            .env("VSBOX_RUN_DIR", run)
            .output()
            .unwrap();
        assert!(out.status.success(), "start: {}", text(&out.stderr));
        Second { setup, run }
    }
}

impl Drop for Second<'_> {
    fn drop(&mut self) {
        let _ = self
            .setup
            .command(&["stop"])
            .env("VSBOX_RUN_DIR", self.run)
            .output();
    }
}

/// The context number of running guest `name` in run state `run`.
fn context_of(run: &Path, name: &str) -> u32 {
    for e in std::fs::read_dir(run.join("contexts")).unwrap().flatten() {
        let t = std::fs::read_to_string(e.path()).unwrap_or_default();
        if t.lines().any(|l| l == format!("name={name}")) {
            return e.file_name().to_str().unwrap().parse().unwrap();
        }
    }
    panic!("no context record for {name}");
}

fn procs(name: &str) -> Vec<i32> {
    let mut p: Vec<i32> = Cgroup::open(name)
        .unwrap()
        .processes()
        .unwrap()
        .iter()
        .map(|p| p.as_raw_nonzero().get())
        .collect();
    p.sort();
    p
}

/// Whether `pid` is one of the guest's `busybox sleep`s.
fn is_sleep(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"busybox\0sleep\0"))
}

/// Waits until the guest's processes are all there (init, two sleeps, the
/// shell) and returns them.
fn settled(name: &str) -> Vec<i32> {
    let mut p = Vec::new();
    wait_until("the guest's sleeps", || {
        p = procs(name);
        p.iter().filter(|&&pid| is_sleep(pid)).count() == 2
    });
    p
}

#[test]
fn vps_vpstree_and_vserver_stat_see_two_guests() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let a = Setup::new("psa", "", RC);
    a.ok(&["start"]);
    let run = a.run.path();
    let b = Second::start("psb", run);
    let guests = [a.name.as_str(), b.setup.name.as_str()];
    let members: Vec<Vec<i32>> = guests.iter().map(|g| settled(g)).collect();
    let contexts: Vec<u32> = guests.iter().map(|g| context_of(run, g)).collect();

    let table = ok(&a, run, "vps", &["-o", "pid,ctx,vserver,args"]);
    assert!(table.starts_with("    PID CONTEXT VSERVER"), "{table}");
    assert!(
        !table.contains('\x1b'),
        "an escape sequence went through: {table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (i, g) in guests.iter().enumerate() {
        for pid in &members[i] {
            let row = rows
                .iter()
                .find(|r| r[0] == pid.to_string())
                .unwrap_or_else(|| panic!("pid {pid} of {g} missing: {table}"));
            assert_eq!(row[1], contexts[i].to_string(), "{table}");
            assert_eq!(row[2], *g, "{table}");
        }
        let listed: Vec<i32> = rows
            .iter()
            .filter(|r| r[2] == *g)
            .map(|r| r[0].parse().unwrap())
            .collect();
        for pid in listed {
            assert!(
                members[i].contains(&pid) || !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} shown as {g}'s but not in its cgroup: {table}"
            );
        }
    }
    let me = std::process::id().to_string();
    let mine = rows.iter().find(|r| r[0] == me).expect("the test itself");
    assert_eq!(&mine[1..3], ["0", "MAIN"], "{table}");
    // The hostile command line, escaped on one line.
    assert!(
        table.contains("busybox sleep 1001; true x\\ny\\x1b[2J"),
        "{table}"
    );

    // --guest and --ctx narrow the list to one guest.
    let only = ok(
        &a,
        run,
        "vps",
        &["--guest", guests[1], "-o", "pid,vserver", "--no-headers"],
    );
    let pids: Vec<i32> = only
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !pids.is_empty() && pids.iter().all(|p| members[1].contains(p)),
        "{only}"
    );
    let ctx = ok(
        &a,
        run,
        "vps",
        &[
            "--ctx",
            &contexts[0].to_string(),
            "--no-headers",
            "-o",
            "vserver",
        ],
    );
    assert!(ctx.lines().all(|l| l.trim() == guests[0]), "{ctx}");
    let out = tool(&a, run, "vps", &["--guest", "no-such-guest"]);
    assert_eq!(out.status.code(), Some(1));

    // vpstree marks each guest's subtree.
    let tree = ok(&a, run, "vpstree", &[]);
    for (i, g) in guests.iter().enumerate() {
        assert!(
            tree.contains(&format!("[{g} ctx {}]", contexts[i])),
            "{tree}"
        );
    }
    let tree = ok(&a, run, "vpstree", &[guests[0]]);
    assert!(
        tree.lines().count() >= 4 && !tree.contains(guests[1]),
        "{tree}"
    );

    // vserver-stat: one line per guest, process counts from cgroup.procs.
    let stat = ok(&a, run, "vserver-stat", &[]);
    assert!(
        stat.starts_with("CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME"),
        "{stat}"
    );
    assert!(stat.lines().nth(1).unwrap().starts_with("0 "), "{stat}");
    for (i, g) in guests.iter().enumerate() {
        let line = stat
            .lines()
            .find(|l| l.contains(&format!(" {g}")))
            .unwrap_or_else(|| panic!("{g} missing: {stat}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[0], contexts[i].to_string(), "{stat}");
        assert_eq!(cells[1], procs(g).len().to_string(), "{stat}");
        assert_eq!(cells[7], *g, "{stat}");
    }
    assert!(
        stat.contains(&format!("{}  test guest", guests[0])),
        "{stat}"
    );
    let json = ok(&a, run, "vserver-stat", &["--json"]);
    assert!(
        json.contains(&format!(
            "{{\"ctx\": {}, \"name\": \"{}\", \"processes\": {},",
            contexts[0],
            guests[0],
            procs(guests[0]).len()
        )),
        "{json}"
    );
}

#[test]
fn vkill_kills_the_right_process_and_refuses_private_guests() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("vkill", "", RC);
    s.ok(&["start"]);
    let run = s.run.path();
    let members = settled(&s.name);
    let sleep = *members.iter().find(|&&p| is_sleep(p)).unwrap();
    let others: Vec<i32> = members.iter().copied().filter(|&p| p != sleep).collect();
    ok(&s, run, "vkill", &["-s", "KILL", &sleep.to_string()]);
    wait_until("the sleep to end", || !procs(&s.name).contains(&sleep));
    let left = procs(&s.name);
    assert!(
        others.iter().all(|p| left.contains(p)),
        "{others:?} {left:?}"
    );
    // Bad input.
    assert_eq!(
        tool(&s, run, "vkill", &["-s", "NOPE", "1"]).status.code(),
        Some(2)
    );
    assert_eq!(tool(&s, run, "vkill", &["x"]).status.code(), Some(2));
    let gone = tool(&s, run, "vkill", &["-TERM", &sleep.to_string()]);
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone.stderr));

    // --guest with signal 0 (a probe) reaches every process and kills none.
    ok(&s, run, "vkill", &["-0", "--guest", &s.name]);
    assert_eq!(procs(&s.name), left);

    let p = Setup::new("private", "S_FLAGS='lock private'\n", RC);
    p.ok(&["start"]);
    let prun = p.run.path();
    let members = settled(&p.name);
    let sleep = *members.iter().find(|&&pid| is_sleep(pid)).unwrap();
    let out = tool(&p, prun, "vkill", &["-KILL", &sleep.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is private"),
        "{}",
        text(&out.stderr)
    );
    let out = tool(&p, prun, "vkill", &["-KILL", "--guest", &p.name]);
    assert_eq!(out.status.code(), Some(1));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(procs(&p.name), members);
}

#[test]
fn vtop_draws_guests_in_tmux_and_restores_the_terminal() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if !Tmux::available() {
        eprintln!("skipped: no tmux");
        return;
    }
    let s = Setup::new("vtop", "", RC);
    s.ok(&["start"]);
    settled(&s.name);
    let dir = common::tempdir::TempDir::new("vtop");
    let script = format!(
        "stty -g > {d}/before; VSBOX_RUN_DIR={run} VSBOX_CONFIG_ROOT={etc} {bin} vtop -d 0.3; echo $? > {d}/status; stty -g > {d}/after; sleep 600",
        d = dir.path().display(),
        run = s.run.path().display(),
        etc = s.etc.path().display(),
        bin = vsbox_bin().display()
    );
    let session = Tmux::start("vtop", 200, 1000, &script);
    let capture = || session.capture();
    let mut screen = String::new();
    wait_until("vtop's screen with the guest", || {
        screen = capture();
        screen.contains("PID CONTEXT VSERVER")
            && screen
                .lines()
                .any(|l| l.contains(&s.name) && l.contains("sleep"))
    });
    assert!(screen.starts_with("vtop - up "), "{screen}");
    // M sorts by memory; the header says so on the next screen.
    session.send_keys(&["M"]);
    wait_until("the memory sort", || capture().contains("sorted by memory"));
    session.send_keys(&["q"]);
    let status = dir.path().join("status");
    wait_until("vtop to quit", || {
        std::fs::read_to_string(dir.path().join("after")).is_ok_and(|a| !a.is_empty())
    });
    assert_eq!(std::fs::read_to_string(status).unwrap().trim(), "0");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("before")).unwrap(),
        std::fs::read_to_string(dir.path().join("after")).unwrap(),
        "terminal settings not restored"
    );
}
