//! Guest commands never get a descriptor of the caller's: exec, suexec and
//! service run on pipes that vserver relays, enter and exec -t on a
//! pseudo-terminal of the guest's own devpts (issue 12, findings 1 and 2).

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::Started;
use common::pty::Pty;
use common::rng::Rng;
use common::tempdir::TempDir;
use common::vserver::{Setup, text};

/// An rc that starts nothing.
const RC: &str = "#!/bin/sh\necho \"rc $1\" >> /var/log/rc.log\n";

/// A host file the caller hands the guest command as a standard
/// descriptor: a root-owned log, mode 0644.
fn host_file(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, "host log\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// Finding 1 from inside the guest: the command reopens its stdout, stdin
/// and stderr through /proc/self/fd, truncates them with its own "program"
/// and makes them setuid. With the caller's own descriptors that rewrites
/// and chmods the host's files; with relayed pipes the guest only reaches
/// its pipes.
fn reopen_attack(s: &Setup) {
    let dir = TempDir::new("stdio-host");
    let attack = |fd: u32| {
        format!(
            "echo printed; readlink /proc/self/fd/{fd} >&2; printf PROG >/proc/self/fd/{fd}; \
             chmod 4755 /proc/self/fd/{fd} 2>/dev/null; exit 0"
        )
    };

    // stdout: a log opened for append, as a cron job's `>> host.log`.
    let log = host_file(&dir, "out.log");
    let out = File::options().append(true).open(&log).unwrap();
    let run = s
        .command(&["exec", "sh", "-c", &attack(1)])
        .stdout(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).starts_with("pipe:"),
        "{}",
        text(&run.stderr)
    );
    let content = std::fs::read_to_string(&log).unwrap();
    assert!(
        content.starts_with("host log\nprinted\n"),
        "the guest rewrote the host's log through /proc/self/fd/1: {content:?}"
    );
    assert_eq!(mode(&log), 0o644, "the guest changed the host log's mode");

    // stdin: a host file the guest must not be able to write.
    let input = host_file(&dir, "in.txt");
    let run = s
        .command(&["exec", "sh", "-c", &attack(0)])
        .stdin(File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        std::fs::read_to_string(&input).unwrap(),
        "host log\n",
        "the guest wrote the host file given as its stdin"
    );
    assert_eq!(
        mode(&input),
        0o644,
        "the guest changed the stdin file's mode"
    );

    // stderr: a host log too.
    let errlog = host_file(&dir, "err.log");
    let err = File::options().append(true).open(&errlog).unwrap();
    let run = s
        .command(&["exec", "sh", "-c", &attack(2)])
        .stderr(err)
        .output()
        .unwrap();
    assert!(run.status.success());
    let content = std::fs::read_to_string(&errlog).unwrap();
    assert!(
        content.starts_with("host log\npipe:"),
        "the guest rewrote the host's log through /proc/self/fd/2: {content:?}"
    );
    assert_eq!(
        mode(&errlog),
        0o644,
        "the guest changed the error log's mode"
    );
}

#[test]
fn exec_in_a_running_guest_cannot_reopen_the_callers_files() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("reopen", "", RC);
    s.ok(&["start"]);
    reopen_attack(&s);
}

#[test]
fn exec_in_a_stopped_guest_cannot_reopen_the_callers_files() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("reopen1", "", RC);
    reopen_attack(&s);
}

/// `vserver start` from a cron job: none of the starter's files (stdin,
/// stdout, stderr) stays open in the running guest, its init or its
/// monitor.
#[test]
fn a_started_guest_keeps_none_of_the_starters_files() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("startfd", "", "#!/bin/sh\necho \"rc $1\"\nsleep 300 &\n");
    let dir = TempDir::new("stdio-start");
    let (input, output) = (host_file(&dir, "in"), host_file(&dir, "out"));
    let run = s
        .command(&["start"])
        .stdin(File::open(&input).unwrap())
        .stdout(File::options().append(true).open(&output).unwrap())
        .stderr(File::options().append(true).open(&output).unwrap())
        .status()
        .unwrap();
    assert!(run.success());
    for file in [&input, &output] {
        let holders = holders_of(file_id(file));
        assert!(
            holders.is_empty(),
            "{} is held open after start: {holders:?}",
            file.display()
        );
    }
    // The rc output goes to the guest's console, kept on the host.
    let log = s.vserver(&["log"]);
    assert!(
        text(&log.stdout).contains("rc "),
        "the rc output is not in the console log: {}{}",
        text(&log.stdout),
        text(&log.stderr)
    );
}

/// A few MB through stdin -> guest cat -> stdout arrive byte-exact, and the
/// command's exit status comes back.
#[test]
fn exec_relays_data_exactly_and_passes_the_status() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("data", "", RC);
    s.ok(&["start"]);
    let mut rng = Rng(0x5eed_1234);
    let data: Vec<u8> = (0..(3 << 20) + 12345).map(|_| rng.next() as u8).collect();
    let mut child = s
        .command(&["exec", "sh", "-c", "cat; echo done >&2; exit 3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&sent));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "done\n");
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "the data changed on its way");
}

/// A service script that leaves a daemon holding its stdout returns
/// anyway: the relay stops when the script ends.
#[test]
fn a_daemon_left_holding_the_output_does_not_hang_service() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("daemon", "", RC);
    s.guest.script(
        "etc/init.d/web",
        "#!/bin/sh\necho \"web $1\"\nsleep 300 &\necho spawned\n",
    );
    s.ok(&["start"]);
    let mut child = s
        .command(&["service", "web", "start"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let _child = Started(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    let out = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("vserver service hangs while the daemon holds its output");
    assert_eq!(out, "web start\nspawned\n");
}

/// A terminal for `vserver` as an admin has it: a session of its own
/// (setsid -c) with the host pty as its controlling terminal.
struct Admin {
    pty: Pty,
    seen: String,
}

impl Admin {
    fn new(rows: u16, cols: u16) -> Self {
        let pty = Pty::new();
        resize(&pty, rows, cols);
        Admin {
            pty,
            seen: String::new(),
        }
    }

    fn spawn(&self, s: &Setup, args: &[&str]) -> Started {
        let cmd = s.command(args);
        let inner: Vec<_> = std::iter::once(cmd.get_program().to_owned())
            .chain(cmd.get_args().map(|a| a.to_owned()))
            .collect();
        let mut outer = Command::new("setsid");
        outer.arg("-c").args(&inner);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => outer.env(k, v),
                None => outer.env_remove(k),
            };
        }
        Started(self.pty.attach(&mut outer).spawn().unwrap())
    }

    fn type_in(&self, bytes: &[u8]) {
        (&self.pty.master).write_all(bytes).unwrap();
    }

    /// Reads the terminal until `want` was shown.
    fn read_until(&mut self, want: &str) {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while !self.seen.contains(want) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {want:?} in {:?}",
                self.seen
            );
            match (&self.pty.master).read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The host pty's slave, as `holders_of` identifies files.
    fn slave_id(&self) -> (u64, u64) {
        file_id(Path::new(self.pty.path()))
    }
}

fn resize(pty: &Pty, rows: u16, cols: u16) {
    rustix::termios::tcsetwinsize(
        &pty.master,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
}

fn wait_exit(child: &mut Started) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "vserver did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (st_dev, st_ino): a file, or a device node of one devpts instance.
fn file_id(path: &Path) -> (u64, u64) {
    let st = std::fs::metadata(path).unwrap();
    (st.dev(), st.ino())
}

/// The processes (other than this test) holding the file `id` open.
fn holders_of(id: (u64, u64)) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for proc_entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = proc_entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(st) = std::fs::metadata(fd.path()) {
                if (st.dev(), st.ino()) == id {
                    let cmdline =
                        std::fs::read(proc_entry.path().join("cmdline")).unwrap_or_default();
                    found.push(format!("{pid} {}", text(&cmdline).replace('\0', " ")));
                }
            }
        }
    }
    found
}

/// `exec -t` (and enter's terminal) is a pty of the guest's own devpts,
/// with the caller's window size; its exit status comes back. On a running
/// guest and on a stopped one (the context made for the command).
#[test]
fn exec_t_runs_on_a_pty_of_the_guests_devpts() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("ptyexec", "", RC);
    let script = "t=$(tty); echo \"TTY=$t\"; \
                  [ \"$(stat -c %d \"$t\")\" = \"$(stat -c %d /dev/pts/ptmx)\" ] && echo GUEST-DEVPTS; \
                  echo \"SIZE=$(stty size)\"; exit 7";
    for running in [false, true] {
        if running {
            s.ok(&["start"]);
        }
        let mut admin = Admin::new(33, 101);
        let mut child = admin.spawn(&s, &["exec", "-t", "sh", "-c", script]);
        admin.read_until("SIZE=");
        admin.read_until("\n");
        assert_eq!(wait_exit(&mut child), 7, "{}", admin.seen);
        assert!(admin.seen.contains("TTY=/dev/pts/"), "{}", admin.seen);
        assert!(admin.seen.contains("GUEST-DEVPTS"), "{}", admin.seen);
        assert!(admin.seen.contains("SIZE=33 101"), "{}", admin.seen);
    }
}

/// Finding 2: a process that a guest shell leaves behind keeps no
/// descriptor of the admin's terminal after `enter` returned, and does not
/// read what the admin types next. The window size follows the admin's.
#[test]
fn enter_leaves_the_guest_nothing_of_the_admins_terminal() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("ptyenter", "", RC);
    // The spy: its own session (no job control stops its reads), a second
    // to let enter end, then it reads its stdin into the guest's /tmp.
    s.guest.script(
        "bin/spy",
        "#!/bin/sh\ntrap '' HUP INT\nsleep 1\nexec cat > /tmp/stolen\n",
    );
    s.ok(&["start"]);
    let mut admin = Admin::new(24, 80);
    let host_tty = admin.slave_id();
    let mut child = admin.spawn(&s, &["enter"]);
    admin.type_in(b"echo SIZE=$(stty size)\n");
    admin.read_until("SIZE=24 80");
    // A change of the admin's window reaches the guest's terminal.
    resize(&admin.pty, 40, 120);
    std::thread::sleep(Duration::from_millis(300));
    admin.type_in(b"echo SIZE=$(stty size)\n");
    admin.read_until("SIZE=40 120");
    admin.type_in(b"setsid spy & echo STARTED\n");
    admin.read_until("STARTED\r\n");
    admin.type_in(b"exit 3\n");
    assert_eq!(wait_exit(&mut child), 3, "{}", admin.seen);
    drop(child);

    let holders = holders_of(host_tty);
    assert!(
        holders.is_empty(),
        "processes hold the admin's terminal after enter returned: {holders:?}"
    );
    // What the admin types next stays with the admin.
    std::thread::sleep(Duration::from_millis(1500));
    admin.type_in(b"SECRET password\n");
    std::thread::sleep(Duration::from_millis(1000));
    let stolen = std::fs::read_to_string(s.guest.join("tmp/stolen")).unwrap_or_default();
    assert!(
        !stolen.contains("SECRET"),
        "a guest process read what the admin typed after enter: {stolen:?}"
    );
}

/// `vserver NAME exec -t` without a terminal of the caller's still runs on
/// a guest pty, leaving the caller's stdin alone; the end of the caller's
/// input ends the command's (the terminal's end-of-file character).
#[test]
fn exec_t_without_a_terminal_uses_a_guest_pty() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("ptypipe", "", RC);
    s.ok(&["start"]);
    let mut child = s
        .command(&["exec", "-t", "sh", "-c", "tty; cat; echo END"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"line\n").unwrap();
    let out = wait_output(child);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    assert!(shown.lines().any(|l| l.starts_with("/dev/pts/")), "{shown}");
    assert!(
        shown.contains("line\r\n") && shown.ends_with("END\r\n"),
        "{shown}"
    );
}

/// The output of a child, failing the test if it does not end in time.
fn wait_output(child: std::process::Child) -> std::process::Output {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            panic!("vserver did not end");
        }
    }
}
