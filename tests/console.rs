//! A started guest's /dev/console: a pty of its own whose host end the
//! monitor keeps, in a log on the host (`vserver NAME log [-f]`) and for an
//! admin who attaches (`vserver NAME console`, through tmux here). Busybox
//! guests, as root.

mod common;

use std::time::{Duration, Instant};

use common::process::wait_until;
use common::tmux::Tmux;
use common::vserver::{Setup, text};

/// An rc that says which runlevel it runs on the console, and at start
/// leaves a reader on the console that writes what it gets to a file.
const RC: &str = "#!/bin/sh\n\
echo \"rc $1 on $(readlink /proc/$$/fd/1)\"\n\
case \"$1\" in 0|6) exit 0;; esac\n\
(read line; echo \"got:$line\" > /var/log/typed) </dev/console &\n";

fn skip_unless_root() -> bool {
    if common::is_root() {
        return false;
    }
    eprintln!("skipped: needs root");
    true
}

fn log_of(s: &Setup) -> String {
    let out = s.vserver(&["log"]);
    assert!(out.status.success(), "log: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_init_writes_to_dev_console_and_the_host_keeps_it() {
    if skip_unless_root() {
        return;
    }
    let s = Setup::new("console-log", "", RC);
    // No log before the first start: said so.
    let out = s.vserver(&["log"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no console log"),
        "{}",
        text(&out.stderr)
    );
    s.ok(&["start"]);
    // The rc's stdout is the guest's console, a pty of its own devpts.
    let log = log_of(&s);
    assert!(log.contains("rc 3 on /dev/pts/0"), "{log:?}");
    let console = s.vserver(&["exec", "ls", "-l", "/dev/console"]);
    assert!(
        text(&console.stdout).starts_with('c'),
        "{}",
        text(&console.stdout)
    );
    // Nothing of it is in the guest tree.
    assert!(!s.guest.join("var/log/boot.log").exists());

    // log -f follows what comes.
    let mut follow = common::process::Started(
        s.command(&["log", "-f"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    s.ok(&[
        "exec",
        "sh",
        "-c",
        "echo later on the console > /dev/console",
    ]);
    let out = follow.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("later on the console"))
    });
    let t = Instant::now();
    while !reader.is_finished() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(follow); // kills `log -f`, which ends the reader
    assert!(reader.join().unwrap().is_some(), "log -f did not follow");

    // The log stays after the stop, with the stop scripts' output.
    s.ok(&["stop"]);
    assert!(log_of(&s).contains("rc 6 on /dev/pts/0"));
    assert!(
        !s.run
            .path()
            .join(format!("{}.console.sock", s.name))
            .exists(),
        "the console socket is left"
    );
}

#[test]
fn an_admin_attaches_types_to_the_guest_and_detaches() {
    if skip_unless_root() {
        return;
    }
    if !Tmux::available() {
        eprintln!("skipped: no tmux");
        return;
    }
    let s = Setup::new("console-attach", "", RC);
    s.ok(&["start"]);
    let cmd = format!(
        "VSBOX_CONFIG_ROOT={} VSBOX_RUN_DIR={} {} vserver {} console; echo \"exit $?\"; sleep 600",
        s.etc.path().display(),
        s.run.path().display(),
        common::vsbox_bin().display(),
        s.name
    );
    let tmux = Tmux::start("console", 120, 30, &cmd);
    wait_until("the console to attach", || {
        tmux.capture().contains("Ctrl-] detaches")
    });
    tmux.send_keys(&["hello from the admin", "Enter"]);
    let typed = s.guest.join("var/log/typed");
    wait_until("the guest to read the line", || typed.exists());
    assert_eq!(
        std::fs::read_to_string(&typed).unwrap(),
        "got:hello from the admin\n"
    );
    // What the guest writes reaches the admin.
    s.ok(&["exec", "sh", "-c", "echo shown to the admin > /dev/console"]);
    wait_until("the guest's output on the admin's terminal", || {
        tmux.capture().contains("shown to the admin")
    });
    tmux.send_keys(&["C-]"]);
    wait_until("the detach", || tmux.capture().contains("exit 0"));
    assert!(tmux.capture().contains("Detached from the console"));
    // The guest runs on.
    assert_eq!(s.vserver(&["running"]).status.code(), Some(0));
    s.ok(&["stop"]);
    // Not running: no console to attach to.
    let out = s.vserver(&["console"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
}

/// A guest that floods its console never waits on it: the start returns
/// (the starter drains the console while the rc runs), and the host keeps
/// at most about 2 MiB of it (the log and one older part).
#[test]
fn a_flood_on_the_console_neither_blocks_the_guest_nor_fills_the_host() {
    if skip_unless_root() {
        return;
    }
    // 8 MiB written by the rc at start, before it says it is done.
    let rc = "#!/bin/sh\ncase \"$1\" in 0|6) exit 0;; esac\n\
              dd if=/dev/zero bs=1024 count=8192 2>/dev/null | tr '\\0' x\necho flood done\n";
    let s = Setup::new("console-flood", "S_START_TIMEOUT=60\n", rc);
    let t = Instant::now();
    s.ok(&["start"]);
    eprintln!("start with an 8 MiB flood: {:?}", t.elapsed());
    let log = s.run.path().join(format!("{}.console", s.name));
    let older = s.run.path().join(format!("{}.console.1", s.name));
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(size(&log) <= (1 << 20) + 4096, "{} bytes", size(&log));
    assert!(size(&older) <= (1 << 20) + 4096, "{} bytes", size(&older));
    assert!(log_of(&s).contains("flood done"));
    s.ok(&["stop"]);
}
