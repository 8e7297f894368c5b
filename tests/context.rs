//! Security contexts through chcontext, on the real kernel (as root): each
//! test fails if the isolation it names breaks.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::guest::GuestRoot;
use common::process::{Started, wait_until};
use common::tempdir::TempDir;
use common::vsbox_bin;

/// A chcontext run with its own run-state directory.
struct Ctx {
    run: TempDir,
    /// This test's own context number: the cgroup (ctxN) is named after it,
    /// and tests run in parallel.
    number: String,
}

impl Ctx {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(5000);
        Ctx {
            run: TempDir::new("run"),
            number: NEXT.fetch_add(1, Ordering::Relaxed).to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(vsbox_bin());
        cmd.arg("chcontext")
            .args(args)
            .env("VSBOX_RUN_DIR", self.run.path());
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a shell script in a new context; returns (status, stdout, stderr).
    fn sh(&self, extra: &[&str], script: &str) -> (i32, String, String) {
        let mut args: Vec<&str> = vec!["--ctx", &self.number];
        args.extend(extra);
        args.extend(["--silent", "--", "/bin/sh", "-c", script]);
        let out = self.output(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn records(&self) -> Vec<String> {
        match std::fs::read_dir(self.run.path().join("contexts")) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[test]
fn a_context_sees_only_its_own_processes() {
    let ctx = Ctx::new();
    let host_pid = std::process::id();
    let (code, out, err) = ctx.sh(
        &[],
        &format!(
            "echo $$; ls /proc | grep -c '^[0-9]'; kill -0 {host_pid} 2>/dev/null && echo visible; true"
        ),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "2",
        "the command is pid 2, under the context's pid 1"
    );
    let count: u32 = lines[1].parse().unwrap();
    assert!(
        count <= 4,
        "only pid 1, the shell, ls and grep: {count} processes seen"
    );
    assert!(
        !out.contains("visible"),
        "a host process is visible from the context"
    );
}

#[test]
fn orphans_are_reparented_to_pid_1() {
    let ctx = Ctx::new();
    let script =
        "( sh -c 'sleep 0.3; read a b c ppid rest < /proc/$$/stat; echo ppid=$ppid' & ); sleep 1";
    let (code, out, err) = ctx.sh(&[], script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "ppid=1");
}

#[test]
fn exit_status_passes_through() {
    let ctx = Ctx::new();
    assert_eq!(ctx.sh(&[], "exit 7").0, 7);
    assert_eq!(ctx.sh(&[], "kill -9 $$").0, 128 + 9);
    let out = ctx.output(&[
        "--ctx",
        &ctx.number,
        "--silent",
        "--",
        "/nonexistent/program",
    ]);
    // Not found: 127, as env, chroot and the shells say.
    assert_eq!(out.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot run /nonexistent/program: No such file or directory (ENOENT)")
    );
    assert!(
        ctx.records().is_empty(),
        "run state left behind: {:?}",
        ctx.records()
    );
}

#[test]
fn arguments_reach_the_command_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    let ctx = Ctx::new();
    let weird = std::ffi::OsStr::from_bytes(b"caf\xe9 \"q\" $x");
    let out = ctx
        .command(&[
            "--ctx",
            &ctx.number,
            "--silent",
            "--",
            "/bin/sh",
            "-c",
            "printf '%s|' \"$@\"",
            "sh",
            "a b",
            "",
        ])
        .arg(weird)
        .arg("--silent")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"a b||caf\xe9 \"q\" $x|--silent|");
}

#[test]
fn hostname_and_domainname_are_the_contexts_own() {
    let ctx = Ctx::new();
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let (code, out, err) = ctx.sh(
        &["--hostname", "inner-host", "--domainname", "none"],
        "hostname; cat /proc/sys/kernel/domainname",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "inner-host\n\n", "no NIS domain name at all");
    assert_eq!(
        rustix::system::uname().nodename().to_string_lossy(),
        host,
        "the host's name changed"
    );
}

#[test]
fn new_context_message_and_number() {
    let ctx = Ctx::new();
    // Without the Landlock warning of a kernel that cannot scope abstract
    // unix sockets (tests/guest_hardening.rs checks it).
    let said = |out: &Output| -> String {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with("chcontext: warning: this kernel has no Landlock scoping"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let out = ctx.output(&["--ctx", "4321", "--", "/bin/true"]);
    assert!(out.status.success());
    assert_eq!(said(&out), "New security context is 4321\n");
    let out = ctx.output(&["--", "/bin/true"]);
    assert_eq!(said(&out), "New security context is 49152\n");
}

#[test]
fn proc_is_fresh_and_host_wide_files_are_protected() {
    let ctx = Ctx::new();
    // The masked files this kernel has (kcore and friends depend on its
    // configuration); each must read as empty inside.
    let masked: Vec<&str> = [
        "kcore",
        "keys",
        "kallsyms",
        "timer_list",
        "sched_debug",
        "latency_stats",
    ]
    .into_iter()
    .filter(|f| Path::new("/proc").join(f).exists())
    .collect();
    assert!(
        !masked.is_empty(),
        "this kernel has none of the masked /proc files"
    );
    let reads: String = masked
        .iter()
        .map(|f| format!("wc -c < /proc/{f}; "))
        .collect();
    let script = format!(
        "grep -c ' /proc ' /proc/self/mountinfo; \
         echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable; \
         echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; {reads}"
    );
    let (code, out, err) = ctx.sh(&[], &script);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("writable"), "{out}");
    let sizes: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(sizes, vec!["0"; masked.len()], "{masked:?} are masked");
}

#[test]
fn mounts_do_not_reach_the_host() {
    let ctx = Ctx::new();
    let dir = TempDir::new("mountpoint");
    let target = dir.path().to_str().unwrap();
    let script = format!(
        "mount -t tmpfs vsbox-test-tmpfs {target} && grep -c vsbox-test-tmpfs /proc/self/mountinfo"
    );
    let (_code, out, _err) = ctx.sh(&[], &script);
    // Whether the context may mount at all is the privileges' business; if it
    // could, the mount must stay inside.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains("vsbox-test-tmpfs"),
        "a context's mount reached the host ({out})"
    );
}

#[test]
fn sysv_ipc_is_private() {
    let ctx = Ctx::new();
    // A host message queue, made and removed by this test.
    let key = 0x7653_0000 + (std::process::id() & 0xffff) as i32;
    let id = vsbox::sys::ipc::msgget(key).expect("a host message queue");
    assert!(
        std::fs::read_to_string("/proc/sysvipc/msg")
            .unwrap()
            .lines()
            .count()
            > 1
    );
    let (code, out, err) = ctx.sh(&[], "cat /proc/sysvipc/msg | wc -l");
    vsbox::sys::ipc::msg_remove(id).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "1",
        "only the header line: no host queue is visible"
    );
}

#[test]
fn a_guest_root_is_pivoted_into_and_the_host_is_gone() {
    let ctx = Ctx::new();
    let guest = GuestRoot::new("pivot");
    std::fs::write(guest.join("etc/marker"), "guest\n").unwrap();
    let root = guest.path().to_str().unwrap();
    // A host terminal, so the host's devpts has an entry the guest must not
    // see.
    let _host_pty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/ptmx")
        .unwrap();
    let script = "cat /etc/marker; cat /etc/hostname; echo $(awk '{print $5}' /proc/self/mountinfo); echo pts: $(ls /dev/pts); pwd";
    let (code, out, err) = ctx.sh(&["--root", root], script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["guest", "guest"]);
    // Only the guest's root and what vsbox mounts for it: /proc (and its
    // masks), /dev (its nodes, pts, shm, mqueue), /run and /sys when the
    // tree has them. No mount of the host's.
    let mounts: Vec<&str> = lines[2].split(' ').collect();
    let ours = |m: &&str| {
        *m == "/"
            || ["/proc", "/dev", "/run", "/sys"]
                .iter()
                .any(|top| *m == *top || m.starts_with(&format!("{top}/")))
    };
    assert!(
        mounts.iter().all(ours),
        "the host's mounts are visible in the guest: {mounts:?}"
    );
    assert!(mounts.contains(&"/dev") && mounts.contains(&"/dev/pts"));
    assert!(
        lines.contains(&"pts: ptmx"),
        "a devpts of its own, no host terminal: {out}"
    );
    assert_eq!(lines.last(), Some(&"/"), "the cwd is the guest root");
}

#[test]
fn a_symlinked_proc_in_the_guest_is_refused() {
    let ctx = Ctx::new();
    let guest = GuestRoot::new("symproc");
    std::fs::remove_dir(guest.join("proc")).unwrap();
    std::os::unix::fs::symlink("/etc", guest.join("proc")).unwrap();
    let (code, _out, err) = ctx.sh(&["--root", guest.path().to_str().unwrap()], "true");
    assert_eq!(code, 1);
    assert!(
        err.contains("/proc is a symbolic link, not a directory"),
        "{err}"
    );
    assert!(ctx.records().is_empty());
}

#[test]
fn a_failed_start_leaves_nothing_behind() {
    let ctx = Ctx::new();
    let (code, _out, err) = ctx.sh(&["--root", "/nonexistent/guest"], "true");
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot use /nonexistent/guest as the guest root"),
        "{err}"
    );
    assert!(ctx.records().is_empty());
    let cgroup = vsbox::context::cgroup::Cgroup::open(&format!("ctx{}", ctx.number));
    assert!(
        cgroup.is_err(),
        "the cgroup of the failed context is left behind"
    );
}

#[test]
fn joining_a_running_context_with_ctx() {
    let ctx = Ctx::new();
    let _first = Started(
        ctx.command(&[
            "--ctx",
            "4400",
            "--silent",
            "--",
            "/bin/sh",
            "-c",
            "echo ready; exec sleep 30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let record = ctx.run.path().join("contexts/4400");
    wait_until("context 4400", || {
        std::fs::read_to_string(&record).is_ok_and(|t| !t.contains("init_pid=0"))
    });
    let out = ctx.output(&[
        "--ctx",
        "4400",
        "--",
        "/bin/sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("vinit --supervise "),
        "pid 1 is the context's vinit: {text}"
    );
    let count: u32 = text.lines().nth(1).unwrap().parse().unwrap();
    assert!(count <= 5, "sees only the context's processes: {count}");
}

#[test]
fn private_contexts_cannot_be_joined() {
    let ctx = Ctx::new();
    let _first = Started(
        ctx.command(&[
            "--ctx",
            "4401",
            "--flag",
            "private",
            "--silent",
            "--",
            "/bin/sleep",
            "30",
        ])
        .spawn()
        .unwrap(),
    );
    let record = ctx.run.path().join("contexts/4401");
    wait_until("context 4401", || {
        std::fs::read_to_string(&record).is_ok_and(|t| !t.contains("init_pid=0"))
    });
    let out = ctx.output(&["--ctx", "4401", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("context 4401 is private: it cannot be entered")
    );
}

#[test]
fn the_context_dies_with_chcontext_and_its_record_goes() {
    let ctx = Ctx::new();
    let mut first = ctx
        .command(&["--ctx", "4402", "--silent", "--", "/bin/sleep", "30"])
        .spawn()
        .unwrap();
    let record = ctx.run.path().join("contexts/4402");
    wait_until("context 4402", || {
        std::fs::read_to_string(&record).is_ok_and(|t| !t.contains("init_pid=0"))
    });
    let text = std::fs::read_to_string(&record).unwrap();
    let init: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("init_pid="))
        .unwrap()
        .parse()
        .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    wait_until("the context's pid 1 to die", || {
        !Path::new(&format!("/proc/{init}")).exists()
    });
    // Killed outright, chcontext could not remove the cgroup: the next
    // context of that number would; here the test does.
    if let Ok(cgroup) = vsbox::context::cgroup::Cgroup::open("ctx4402") {
        cgroup.remove().unwrap();
    }
}

/// CVE-2019-5736 class: the guest's pid 1 runs vsbox code; /proc/1/exe must
/// not lead to the host's vsbox binary, and writing through it must fail.
#[test]
fn the_host_binary_cannot_be_written_through_proc_exe() {
    let ctx = Ctx::new();
    let host_bin = std::fs::read(vsbox_bin()).unwrap();
    let script = "readlink /proc/1/exe; echo overwrite > /proc/1/exe 2>/dev/null && echo written; \
                  head -c 4 /proc/1/exe | grep -q ELF && echo readable";
    let (code, out, err) = ctx.sh(&[], script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("/memfd:vsbox"),
        "pid 1 runs the sealed copy, not {}",
        lines[0]
    );
    assert!(
        !out.contains("written"),
        "the guest wrote through /proc/1/exe"
    );
    assert!(out.contains("readable"));
    assert_eq!(
        std::fs::read(vsbox_bin()).unwrap(),
        host_bin,
        "the host's vsbox changed"
    );
}

/// No descriptor of the host side (pipes, the sealed binary, the test
/// harness's files) may reach the guest's command.
#[test]
fn no_host_descriptor_leaks_into_the_context() {
    let ctx = Ctx::new();
    let (code, out, err) = ctx.sh(&[], "ls /proc/self/fd | sort -n | tr '\\n' ' '");
    assert_eq!(code, 0, "{err}");
    // 0, 1, 2 and the one ls opens to read the directory.
    assert_eq!(
        out.trim(),
        "0 1 2 3",
        "descriptors seen in the context: {out}"
    );
}

/// The context's processes are in its cgroup, seen from the host; the
/// cgroup is gone when the context ends.
#[test]
fn a_context_has_its_own_cgroup_which_goes_with_it() {
    let ctx = Ctx::new();
    let name = format!("ctx{}", ctx.number);
    let (code, out, err) = ctx.sh(&[], "cat /proc/self/cgroup; sleep 0.2");
    assert_eq!(code, 0, "{err}");
    // The cgroup namespace shows the context's cgroup as its root.
    assert!(out.lines().any(|l| l.starts_with("0::/")), "{out}");
    let started = Started(
        ctx.command(&["--ctx", &ctx.number, "--silent", "--", "/bin/sleep", "30"])
            .spawn()
            .unwrap(),
    );
    let record = ctx.run.path().join(format!("contexts/{}", ctx.number));
    wait_until("the context", || {
        std::fs::read_to_string(&record).is_ok_and(|t| !t.contains("init_pid=0"))
    });
    let cgroup = vsbox::context::cgroup::Cgroup::open(&name).unwrap();
    let procs = cgroup.processes().unwrap();
    assert_eq!(procs.len(), 2, "vinit and sleep: {procs:?}");
    let paths: Vec<std::path::PathBuf> = cgroup.paths().iter().map(|p| p.to_path_buf()).collect();
    drop(cgroup);
    // SIGTERM (what kill sends) reaches the command through vinit; chcontext
    // stays to remove the cgroup and exits with the command's status.
    let mut started = started;
    let pid = rustix::process::Pid::from_raw(started.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = started.0.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    assert!(paths.iter().all(|p| !p.exists()), "left behind: {paths:?}");
    assert!(!record.exists());
}

/// When the main command ends, everything else in the context ends too.
#[test]
fn every_process_ends_with_the_context() {
    let ctx = Ctx::new();
    let marker = format!("31.{}", ctx.number);
    let (code, _out, err) = ctx.sh(&[], &format!("sleep {marker} & sleep {marker} & exit 0"));
    assert_eq!(code, 0, "{err}");
    let left = Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// --secure: the guest ceiling, as reducecap applies it, in a new context.
#[test]
fn a_secure_context_cannot_mount_or_mknod() {
    let ctx = Ctx::new();
    let want = format!("{:016x}", vsbox::context::privileges::secure_ceiling());
    let script = "grep CapBnd /proc/self/status; mount -t tmpfs none /mnt 2>/dev/null && echo mounted; \
                  mknod /tmp/vsbox-null-$$ c 1 3 2>/dev/null && echo made; true";
    let (code, out, err) = ctx.sh(&["--secure"], script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap().split_whitespace().nth(1),
        Some(want.as_str()),
        "{out}"
    );
    assert!(!out.contains("mounted") && !out.contains("made"), "{out}");
}

/// The classic chroot escapes, run inside a guest by a copy of this test
/// binary (`escape_child`): a chroot into a subdirectory and then `..` from
/// a cwd outside it (with and without a saved directory descriptor) must
/// still end at the guest root, never at the host's.
#[test]
fn chroot_escapes_end_at_the_guest_root() {
    let ctx = Ctx::new();
    let guest = GuestRoot::new("escape");
    std::fs::copy(
        std::env::current_exe().unwrap(),
        guest.join("bin/escape-probe"),
    )
    .unwrap();
    // A file only the host has, at a path the guest could name.
    let marker = TempDir::new("escape-marker");
    let marker_file = marker.write("host-only", "host\n");
    let out = ctx
        .command(&[
            "--ctx",
            &ctx.number,
            "--secure",
            "--root",
            guest.path().to_str().unwrap(),
            "--silent",
            "--",
        ])
        .args([
            "/bin/escape-probe",
            "--exact",
            "escape_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VSBOX_ESCAPE_PROBE", &marker_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("escape "))
        .collect();
    assert_eq!(
        results,
        [
            "escape before contained",
            "escape chroot-dotdot contained",
            "escape fchdir-dotdot contained"
        ],
        "{stdout}"
    );
}

/// Child mode of `chroot_escapes_end_at_the_guest_root`: does nothing
/// unless VSBOX_ESCAPE_PROBE names the host-only file.
#[test]
fn escape_child() {
    let Some(marker) = std::env::var_os("VSBOX_ESCAPE_PROBE") else {
        return;
    };
    let marker = std::path::PathBuf::from(marker);
    let seen = |what: &str| {
        let verdict = if marker.exists() {
            "ESCAPED"
        } else {
            "contained"
        };
        println!("escape {what} {verdict}");
    };
    let climb = || {
        for _ in 0..64 {
            let _ = rustix::process::chdir("..");
        }
    };
    // libtest prints "test escape_child ... " without a newline first.
    println!();
    seen("before");
    if std::env::var_os("VSBOX_ESCAPE_CONTROL").is_some() {
        return;
    }

    std::fs::create_dir_all("/tmp/esc1").unwrap();
    rustix::process::chroot("/tmp/esc1").unwrap();
    // The cwd is still the old root, outside the new one: climb from there.
    climb();
    rustix::process::chroot(".").unwrap();
    seen("chroot-dotdot");

    let saved = rustix::fs::open(
        "/",
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    std::fs::create_dir_all("/tmp/esc2").unwrap();
    rustix::process::chroot("/tmp/esc2").unwrap();
    rustix::process::fchdir(&saved).unwrap();
    climb();
    rustix::process::chroot(".").unwrap();
    seen("fchdir-dotdot");
}

/// Two contexts do not see each other's processes.
#[test]
fn contexts_do_not_see_each_other() {
    let a = Ctx::new();
    let marker = format!("32.{}", a.number);
    let _first = Started(
        a.command(&["--ctx", &a.number, "--silent", "--", "/bin/sleep", &marker])
            .spawn()
            .unwrap(),
    );
    let record = a.run.path().join(format!("contexts/{}", a.number));
    wait_until("the first context", || {
        std::fs::read_to_string(&record).is_ok_and(|t| !t.contains("init_pid=0"))
    });
    let b = Ctx::new();
    let (code, out, err) = b.sh(
        &[],
        &format!(
            "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c 'slee[p] {marker}'; ls /dev/pts"
        ),
    );
    assert!(code == 0 || code == 1, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "0",
        "the other context's process is visible: {out}"
    );
}

/// fakeinit: the command itself is pid 1 (the guest's own init).
#[test]
fn fakeinit_makes_the_command_pid_1() {
    let ctx = Ctx::new();
    let (code, out, err) = ctx.sh(&["--flag", "fakeinit"], "echo $$; readlink /proc/1/exe");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the shell is pid 1");
    assert!(
        !lines[1].contains("memfd"),
        "no vinit under fakeinit: {}",
        lines[1]
    );
}
