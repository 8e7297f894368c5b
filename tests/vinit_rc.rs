//! Guests run by vinit (`vinit --rc`, no init of their own) that have no rc
//! script either (Debian minbase: update-rc.d made /etc/rcN.d links, sysv-rc
//! is not installed): vinit runs the links itself, as Debian's rc would. And
//! at stop, after the stop scripts, the seed's grace: SIGTERM to every
//! process left, up to five seconds for them to end, then SIGKILL.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::distro::{DistroGuest, Tree, http_status_line};
use common::guest::GuestRoot;
use common::process::{Started, wait_until};
use common::tempdir::TempDir;
use common::vsbox_bin;
use common::vserver::{Setup, text};

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn link(target: impl AsRef<Path>, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

/// A Setup guest whose /etc/init.d/rc is removed: vinit finds no rc script.
fn guest_without_rc(tag: &str) -> Setup {
    let s = Setup::new(tag, "", "");
    std::fs::remove_file(s.guest.join("etc/init.d/rc")).unwrap();
    s
}

/// Debian bookworm minbase with nginx-light, as `vserver build --method
/// debootstrap` and `vapt install nginx-light` leave it: /etc/rc3.d/S01nginx,
/// no /etc/init.d/rc. nginx answers on the guest's address after start, and
/// again after restart (rc6.d/K01nginx stops it, rc3.d/S01nginx starts it).
#[test]
fn a_minbase_guest_serves_nginx_after_start_and_after_restart() {
    const ADDR: &str = "127.0.0.203:80";
    let Some(g) = DistroGuest::new(Tree::Rcd, "rcd-nginx", "IPROOT=127.0.0.203\n") else {
        return;
    };
    assert!(
        !g.root.join("etc/init.d/rc").exists() && g.root.join("etc/rc3.d/S01nginx").exists(),
        "the tree is not the minbase layout this test is about"
    );

    let timed = |what: &str| {
        let begun = Instant::now();
        g.ok(&[what]);
        eprintln!("{what} took {:?}", begun.elapsed());
    };
    timed("start");
    let within = Duration::from_secs(30);
    let answer = http_status_line(ADDR, within);
    assert!(
        answer.as_deref().is_some_and(|l| l.contains(" 200 ")),
        "nginx after start: {answer:?}"
    );
    timed("restart");
    let answer = http_status_line(ADDR, within);
    assert!(
        answer.as_deref().is_some_and(|l| l.contains(" 200 ")),
        "nginx after restart: {answer:?}"
    );
    timed("stop");
    assert_eq!(
        http_status_line(ADDR, Duration::ZERO),
        None,
        "nginx still answers after stop"
    );
}

/// The links run in name order, each with RUNLEVEL and PREVLEVEL: at start
/// the S links of the runlevel with `start`; at stop the K links of
/// runlevel 6 with `stop`, then its S links with `stop` (Debian's rc does
/// so in runlevels 0 and 6). Links resolve inside the guest; what is not an
/// executable regular file there is skipped, and nothing hangs on it.
#[test]
fn rcd_links_run_in_order_inside_the_guest() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = guest_without_rc("rcd-order");
    let g = |p: &str| s.guest.join(p);
    script(
        &g("etc/init.d/svc"),
        "#!/bin/sh\necho \"$0 $1 RUNLEVEL=$RUNLEVEL PREVLEVEL=$PREVLEVEL\" >> /var/log/rc.log\n",
    );
    link("../init.d/svc", &g("etc/rc3.d/S20b"));
    // Absolute: it names the guest's file only once resolved in the guest.
    link("/etc/init.d/svc", &g("etc/rc3.d/S10a"));
    link("../init.d/svc", &g("etc/rc3.d/K50notatboot"));
    // Hostile or broken entries, all sorted before the real ones.
    std::fs::create_dir_all(g("etc/rc3.d/S01dir")).unwrap();
    let fifo = g("etc/rc3.d/S02fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        g("etc/rc3.d/S03notexec"),
        "#!/bin/sh\necho notexec >> /var/log/rc.log\n",
    )
    .unwrap();
    link("/nonexistent", &g("etc/rc3.d/S04dangling"));
    // A script that exists only on the host, named by its host path.
    let host_only = s.etc.path().join("host-only");
    script(&host_only, "#!/bin/sh\necho ESCAPED >> /var/log/rc.log\n");
    link(&host_only, &g("etc/rc3.d/S05hostpath"));
    link("../init.d/svc", &g("etc/rc6.d/K20y"));
    link("../init.d/svc", &g("etc/rc6.d/K10x"));
    link("../init.d/svc", &g("etc/rc6.d/S90last"));

    s.ok(&["start"]);
    let log = g("var/log/rc.log");
    let started = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        started,
        "/etc/rc3.d/S10a start RUNLEVEL=3 PREVLEVEL=N\n\
         /etc/rc3.d/S20b start RUNLEVEL=3 PREVLEVEL=N\n",
        "start ran the S links of runlevel 3, nothing else"
    );
    s.ok(&["stop"]);
    let stopped = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        stopped.strip_prefix(started.as_str()).unwrap_or(&stopped),
        "/etc/rc6.d/K10x stop RUNLEVEL=6 PREVLEVEL=3\n\
         /etc/rc6.d/K20y stop RUNLEVEL=6 PREVLEVEL=3\n\
         /etc/rc6.d/S90last stop RUNLEVEL=6 PREVLEVEL=3\n",
        "stop ran runlevel 6's K links, then its S links, with `stop`"
    );
    assert!(s.cgroup_gone());
}

/// Started detached: a daemon that flushes for a second on SIGTERM, then
/// writes /var/log/polite and exits.
const POLITE: &str = "setsid sh -c 'trap \"sleep 1; echo flushed > /var/log/polite; exit 0\" TERM; \
echo $$ > /var/run/polite.pid; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &\n";

/// Started detached: a daemon that ignores SIGTERM (the ignore survives
/// exec).
const STUBBORN: &str = "setsid sh -c 'trap \"\" TERM; echo $$ > /var/run/stubborn.pid; \
exec sleep 1000' </dev/null >/dev/null 2>&1 &\n";

/// An rc script that starts `daemons` in runlevel 3 and stops nothing: the
/// grace alone ends them. (An rc script, not rcN.d links, so that these
/// tests check the grace only.)
fn rc_starting(daemons: &[&str]) -> String {
    format!("#!/bin/sh\n[ \"$1\" = 3 ] || exit 0\n{}", daemons.concat())
}

/// `vserver stop`: the daemon gets SIGTERM once the stop scripts are done
/// and the time to flush, and the stop ends as soon as it has, not after
/// the whole grace.
#[test]
fn stop_gives_daemons_sigterm_and_time_to_flush() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("grace-polite", "", &rc_starting(&[POLITE]));
    s.ok(&["start"]);
    wait_until("the polite daemon to run", || {
        s.guest.join("var/run/polite.pid").exists()
    });
    let begun = Instant::now();
    let out = s.vserver(&["--verbose", "stop"]);
    let took = begun.elapsed();
    eprintln!("stop took {took:?}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!said.contains("killed"), "the stop was not clean: {said}");
    assert_eq!(
        std::fs::read_to_string(s.guest.join("var/log/polite"))
            .ok()
            .as_deref(),
        Some("flushed\n"),
        "the daemon had no SIGTERM or no time to flush before it was killed"
    );
    assert!(s.cgroup_gone());
}

/// A daemon that ignores SIGTERM holds pid 1 for the grace (about five
/// seconds), is then killed, and pid 1 ends with the stop's status. Run
/// with chcontext, which waits for pid 1 without a limit of its own, so the
/// time measured is vinit's.
#[test]
fn a_daemon_ignoring_sigterm_is_killed_after_the_grace() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let guest = GuestRoot::new("grace-stubborn");
    std::fs::create_dir_all(guest.join("var/log")).unwrap();
    script(
        &guest.join("etc/init.d/rc"),
        &rc_starting(&[POLITE, STUBBORN]),
    );
    let run = TempDir::new("grace-stubborn-run");
    let mut child = Started(
        Command::new(vsbox_bin())
            .args([
                "chcontext",
                "--ctx",
                "4613",
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
    wait_until("the daemons to run", || {
        guest.join("var/run/stubborn.pid").exists() && guest.join("var/run/polite.pid").exists()
    });
    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    let begun = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let limit = Duration::from_secs(60);
    let mut status = None;
    while status.is_none() && begun.elapsed() < limit {
        status = child.0.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = begun.elapsed();
    eprintln!("stop took {took:?}");
    let status = status.expect("pid 1 did not end within a minute of the stop");
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(4500),
        "pid 1 ended {took:?} after the stop: no grace for the daemons"
    );
    assert_eq!(
        std::fs::read_to_string(guest.join("var/log/polite"))
            .ok()
            .as_deref(),
        Some("flushed\n"),
        "the polite daemon had no SIGTERM or no time to flush"
    );
}
