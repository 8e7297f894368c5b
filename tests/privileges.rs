//! The privilege ceiling against the real kernel: `vsbox reducecap` reduces
//! a process, and busybox (or this test binary, re-executed in a probe
//! mode) checks from inside that what a guest must not do fails. Needs root
//! (says "skipped" otherwise) and busybox (`apt-get install busybox-static`;
//! $VSBOX_BUSYBOX overrides where it is).
//!
//! Calls busybox cannot make (init_module, bpf, open_by_handle_at, setns
//! with bad arguments...) are made by `probe_child`: the parent runs
//! `vsbox reducecap ... -- <this test binary> --exact probe_child` with
//! VSBOX_PRIV_PROBE set, and the child prints one `probe NAME RESULT` line
//! per call. Each probe is also run without the reduction, so a test can
//! tell the filter's answer from the kernel's own.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use common::tempdir::TempDir;
use common::vsbox_bin;

/// The default ceiling, written out independently of the library's table:
/// the capabilities a guest keeps.
const KEPT: [u32; 16] = [
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    11, // NET_BROADCAST
    14, // IPC_LOCK
    15, // IPC_OWNER
    18, // SYS_CHROOT
    28, // LEASE
    29, // AUDIT_WRITE
    31, // SETFCAP
];

const CAP_NET_RAW: u32 = 13;
const CAP_SYS_CHROOT: u32 = 18;
const CAP_SYS_RESOURCE: u32 = 24;

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

fn skip_unless_root(test: &str) -> bool {
    if common::is_root() {
        return false;
    }
    eprintln!("{test}: skipped: needs root");
    true
}

/// busybox: $VSBOX_BUSYBOX, else the usual places. A missing busybox is a
/// failure, not a skip: these tests are the proof of the guest ceiling.
fn busybox() -> PathBuf {
    let candidates = std::env::var_os("VSBOX_BUSYBOX")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"].map(PathBuf::from));
    for path in candidates {
        if path.is_file() {
            return path;
        }
    }
    panic!("busybox not found: apt-get install busybox-static (or set VSBOX_BUSYBOX)");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `vsbox reducecap ARGS -- busybox sh -c SCRIPT`.
fn reduced_sh(args: &[&str], script: &str) -> Output {
    Command::new(vsbox_bin())
        .arg("reducecap")
        .args(args)
        .arg("--")
        .arg(busybox())
        .args(["sh", "-c", script])
        .env("BB", busybox())
        .env("VSBOX", vsbox_bin())
        .output()
        .expect("run vsbox reducecap")
}

/// The Cap* and other status fields of the shell's own /proc/self/status.
fn status_fields(args: &[&str]) -> BTreeMap<String, String> {
    let out = reduced_sh(args, "cat /proc/self/status");
    assert!(out.status.success(), "{}", show(&out));
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn hex(fields: &BTreeMap<String, String>, name: &str) -> u64 {
    u64::from_str_radix(&fields[name], 16).unwrap_or_else(|_| panic!("{name}: {fields:?}"))
}

/// The bounding set of this test process: a ceiling can only be what the
/// host still has.
fn own_bounding() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap();
    u64::from_str_radix(line.trim(), 16).unwrap()
}

fn own_effective_has(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    u64::from_str_radix(line.trim(), 16).unwrap() & (1 << cap) != 0
}

fn assert_sets(fields: &BTreeMap<String, String>, want: u64) {
    for name in ["CapBnd", "CapPrm", "CapEff", "CapInh"] {
        assert_eq!(
            hex(fields, name),
            want,
            "{name} is {:#x}, the ceiling is {want:#x}",
            hex(fields, name)
        );
    }
    assert_eq!(hex(fields, "CapAmb"), 0, "ambient set not empty");
}

#[test]
fn secure_sets_are_exactly_the_ceiling() {
    if skip_unless_root("secure_sets_are_exactly_the_ceiling") {
        return;
    }
    let fields = status_fields(&["--secure"]);
    assert_sets(&fields, mask(&KEPT) & own_bounding());
    assert_eq!(fields["Seccomp"], "2", "no seccomp filter: {fields:?}");
    assert_eq!(
        fields["NoNewPrivs"], "0",
        "no_new_privs must stay off so setuid programs work"
    );
}

#[test]
fn cap_adds_back_and_bang_removes() {
    if skip_unless_root("cap_adds_back_and_bang_removes") {
        return;
    }
    let fields = status_fields(&["--secure", "--cap", "CAP_NET_RAW", "--cap", "!SYS_CHROOT"]);
    let want = (mask(&KEPT) | 1 << CAP_NET_RAW) & !(1 << CAP_SYS_CHROOT);
    assert_sets(&fields, want & own_bounding());
    // Without --secure only what `!` names goes, and no filter is installed.
    let fields = status_fields(&["--cap", "!CAP_SYS_CHROOT"]);
    assert_sets(&fields, own_bounding() & !(1 << CAP_SYS_CHROOT));
    assert_eq!(fields["Seccomp"], "0");
}

#[test]
fn quotactl_is_accepted_with_a_warning() {
    if skip_unless_root("quotactl_is_accepted_with_a_warning") {
        return;
    }
    let out = reduced_sh(&["--secure", "--cap", "CAP_QUOTACTL"], "true");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("CAP_QUOTACTL: mainline Linux has no such capability"),
        "{}",
        show(&out)
    );
    let out = reduced_sh(&["--secure", "--cap", "CAP_FLY"], "true");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn show_prints_the_resulting_sets() {
    if skip_unless_root("show_prints_the_resulting_sets") {
        return;
    }
    let out = Command::new(vsbox_bin())
        .args(["reducecap", "--secure", "--show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    let line = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .trim()
            .to_string()
    };
    assert!(line("effective:").starts_with("CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER"));
    assert!(!line("bounding:").contains("CAP_SYS_ADMIN"));
    assert_eq!(line("ambient:"), "(none)");
    assert_eq!(line("seccomp:"), "filter");
}

/// A setuid-root program run by an unprivileged user in the guest gets the
/// ceiling, not more, and not less: no_new_privs is off.
#[test]
fn setuid_programs_get_the_ceiling() {
    if skip_unless_root("setuid_programs_get_the_ceiling") {
        return;
    }
    let dir = TempDir::new("privileges-suid");
    let vfs = rustix::fs::statvfs(dir.path()).unwrap();
    assert!(
        !vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::NOSUID),
        "{} is on a nosuid filesystem: set TMPDIR to a directory where setuid works",
        dir.path().display()
    );
    std::os::unix::fs::chown(dir.path(), Some(0), Some(0)).unwrap();
    let suid = dir.path().join("vsbox-suid");
    std::fs::copy(vsbox_bin(), &suid).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    // busybox su as root asks no password; its shell is busybox's sh.
    let sh = dir.path().join("sh");
    std::os::unix::fs::symlink(busybox(), &sh).unwrap();
    let as_nobody = |cmd: &str| format!("exec \"$BB\" su -s {} nobody -c '{cmd}'", sh.display());
    let script = as_nobody(&format!("exec {} reducecap --show", suid.display()));
    let out = reduced_sh(&["--secure"], &script);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    let effective = stdout
        .lines()
        .find_map(|l| l.strip_prefix("effective:"))
        .unwrap_or_else(|| panic!("{}", show(&out)))
        .trim()
        .to_string();
    let expected: Vec<String> = vsbox_names(mask(&KEPT) & own_bounding());
    assert_eq!(effective, expected.join(" "), "{}", show(&out));
    // And as nobody without the setuid bit: nothing at all.
    let out = reduced_sh(
        &["--secure"],
        &as_nobody("exec grep CapEff /proc/self/status"),
    );
    assert!(
        text(&out.stdout).contains("0000000000000000"),
        "{}",
        show(&out)
    );
}

fn vsbox_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|n| mask & (1u64 << n) != 0)
        .map(|n| vsbox::context::capability::Capability::Linux(n as u8).to_string())
        .collect()
}

#[test]
fn mount_fails() {
    if skip_unless_root("mount_fails") {
        return;
    }
    let dir = TempDir::new("privileges-mount");
    let target = dir.path().to_str().unwrap();
    let out = reduced_sh(
        &["--secure"],
        &format!("\"$BB\" mount -t tmpfs vsbox-test-tmpfs {target}"),
    );
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains("vsbox-test-tmpfs");
    if mounted {
        let _ = Command::new(busybox()).args(["umount", target]).status();
    }
    assert!(
        !mounted,
        "a reduced process mounted a tmpfs: {}",
        show(&out)
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        show(&out)
    );
}

#[test]
fn mknod_fails() {
    if skip_unless_root("mknod_fails") {
        return;
    }
    let dir = TempDir::new("privileges-mknod");
    let node = dir.path().join("mem");
    let out = reduced_sh(
        &["--secure"],
        &format!("\"$BB\" mknod {} c 1 1", node.display()),
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        show(&out)
    );
    assert!(!node.exists(), "a reduced process made /dev/mem's twin");
    // Control: the same command with CAP_MKNOD given back works, so the
    // failure above is the ceiling's doing.
    let out = reduced_sh(
        &["--secure", "--cap", "CAP_MKNOD"],
        &format!("\"$BB\" mknod {} c 1 3", dir.path().join("null").display()),
    );
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn raw_socket_needs_net_raw() {
    if skip_unless_root("raw_socket_needs_net_raw") {
        return;
    }
    let ping = "exec \"$BB\" ping -c 1 -W 1 127.0.0.1";
    let out = reduced_sh(&["--secure"], ping);
    assert!(
        !out.status.success(),
        "ping worked without CAP_NET_RAW: {}",
        show(&out)
    );
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        show(&out)
    );
    let out = reduced_sh(&["--secure", "--cap", "CAP_NET_RAW"], ping);
    assert!(
        out.status.success(),
        "ping with CAP_NET_RAW: {}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains("1 packets received"),
        "{}",
        show(&out)
    );
}

#[test]
fn immutable_flag_cannot_be_set() {
    if skip_unless_root("immutable_flag_cannot_be_set") {
        return;
    }
    let dir = TempDir::new("privileges-immutable");
    let file = dir.write("shared", "unified content\n");
    let setattr = |reduce: bool, flag: &str| {
        let mut cmd = Command::new(vsbox_bin());
        if reduce {
            cmd.args(["reducecap", "--secure", "--"]).arg(vsbox_bin());
        }
        cmd.args(["setattr", flag]).arg(&file).output().unwrap()
    };
    // Control: full root can set and clear it on this filesystem.
    let out = setattr(false, "--immutable");
    assert!(out.status.success(), "control: {}", show(&out));
    let out = setattr(false, "--!immutable");
    assert!(out.status.success(), "control: {}", show(&out));

    let out = setattr(true, "--immutable");
    // Whatever happened, leave a removable file behind.
    let _ = setattr(false, "--!immutable");
    assert!(
        !out.status.success(),
        "a reduced process set the immutable flag"
    );
    assert!(text(&out.stderr).contains("EPERM"), "{}", show(&out));
}

#[test]
fn hard_rlimit_cannot_be_raised() {
    if skip_unless_root("hard_rlimit_cannot_be_raised") {
        return;
    }
    let raise = "n=$(ulimit -H -n); ulimit -H -n $((n + 1)) && echo raised $n";
    let lower = "n=$(ulimit -H -n); ulimit -HS -n $((n - 1)) && echo lowered";
    let out = reduced_sh(&["--secure"], raise);
    assert!(!out.status.success(), "hard limit raised: {}", show(&out));
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        show(&out)
    );
    let out = reduced_sh(&["--secure"], lower);
    assert!(out.status.success(), "{}", show(&out));
    if own_effective_has(CAP_SYS_RESOURCE) {
        // Control: with CAP_SYS_RESOURCE given back the raise works.
        let out = reduced_sh(&["--secure", "--cap", "CAP_SYS_RESOURCE"], raise);
        assert!(out.status.success(), "control: {}", show(&out));
    } else {
        eprintln!(
            "hard_rlimit_cannot_be_raised: this host runs the tests without \
             CAP_SYS_RESOURCE, so there is no control run"
        );
    }
}

/// ULIMIT as the library applies it (reducecap has no option for it; the
/// vserver command passes the configured value): run in a child of this
/// test binary that applies the privileges to itself.
#[test]
fn ulimit_is_applied_hard_and_soft() {
    if skip_unless_root("ulimit_is_applied_hard_and_soft") {
        return;
    }
    for (ulimit, want) in [
        ("-HS -n 64", "64 64"),
        ("-H -n 100", "100 100"),
        ("-S -n 10", "10 KEEP"),
        ("-n 77 -u 3000", "77 77"),
    ] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ulimit_child", "--nocapture", "--test-threads=1"])
            .env("VSBOX_PRIV_ULIMIT", ulimit)
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{ulimit}: {}", show(&out));
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ulimit "))
            .unwrap_or_else(|| panic!("{ulimit}: {}", show(&out)));
        let (got, raise) = line.split_once(" raise=").unwrap();
        let (soft, hard) = got.split_once(' ').unwrap();
        let (want_soft, want_hard) = want.split_once(' ').unwrap();
        assert_eq!(soft, want_soft, "{ulimit}: {line}");
        if want_hard != "KEEP" {
            assert_eq!(hard, want_hard, "{ulimit}: {line}");
        }
        assert_eq!(raise, "EPERM", "{ulimit}: raising the hard limit: {line}");
    }
}

/// Child mode of `ulimit_is_applied_hard_and_soft`; does nothing unless
/// VSBOX_PRIV_ULIMIT is set.
#[test]
fn ulimit_child() {
    let Ok(text) = std::env::var("VSBOX_PRIV_ULIMIT") else {
        return;
    };
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    use vsbox::context::privileges::Privileges;
    use vsbox::context::rlimit::Ulimit;
    // Make room first so that "-H -n 100" really lowers a soft limit.
    let before = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: before.maximum.map(|m| m.min(1024)),
            maximum: before.maximum,
        },
    );
    let privileges = Privileges {
        secure: true,
        ulimit: Ulimit::parse(&text).unwrap(),
        ..Default::default()
    };
    privileges.prepare().apply().unwrap();
    let now = getrlimit(Resource::Nofile);
    let raise = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: now.current,
            maximum: now.maximum.map(|m| m + 1),
        },
    );
    let fmt = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    let raise = match raise {
        Ok(()) => "ok".to_string(),
        Err(e) => vsbox::sys::errno::Errno::from(e)
            .name()
            .unwrap_or("?")
            .to_string(),
    };
    println!(
        "\nulimit {} {} raise={raise}",
        fmt(now.current),
        fmt(now.maximum)
    );
}

#[test]
fn lock_forbids_unshare_and_setns() {
    if skip_unless_root("lock_forbids_unshare_and_setns") {
        return;
    }
    let unshare = "exec \"$BB\" unshare -u -- \"$BB\" true";
    let nsenter = "exec \"$BB\" nsenter -t $$ -u -- \"$BB\" true";
    // Control: with CAP_SYS_ADMIN and no lock both work.
    for script in [unshare, nsenter] {
        let out = reduced_sh(&["--secure", "--cap", "CAP_SYS_ADMIN"], script);
        assert!(out.status.success(), "control {script}: {}", show(&out));
    }
    // The lock flag forbids them, even to a process holding CAP_SYS_ADMIN.
    for caps in [
        &["--secure", "--flag", "lock"][..],
        &["--secure", "--flag", "lock", "--cap", "CAP_SYS_ADMIN"],
    ] {
        for script in [unshare, nsenter] {
            let out = reduced_sh(caps, script);
            assert!(!out.status.success(), "{caps:?} {script}: {}", show(&out));
            assert!(
                text(&out.stderr).contains("Operation not permitted"),
                "{caps:?} {script}: {}",
                show(&out)
            );
        }
    }
    // A user namespace needs no capability at all: only the filter stops it.
    let userns = "exec \"$BB\" unshare -U -- \"$BB\" true";
    let out = reduced_sh(&["--secure"], userns);
    let userns_possible = out.status.success();
    let out = reduced_sh(&["--secure", "--flag", "lock"], userns);
    assert!(
        !out.status.success(),
        "lock let a user namespace through: {}",
        show(&out)
    );
    if !userns_possible {
        eprintln!(
            "lock_forbids_unshare_and_setns: user namespaces are off on this host; no control run"
        );
    }
}

/// Runs `probe_child` under `vsbox reducecap ARGS` (or with no reducecap
/// for None) and returns probe name -> result.
fn probes(args: Option<&[&str]>) -> BTreeMap<String, String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match args {
        Some(args) => {
            let mut c = Command::new(vsbox_bin());
            c.arg("reducecap").args(args).arg("--").arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .args(["--exact", "probe_child", "--nocapture", "--test-threads=1"])
        .env("VSBOX_PRIV_PROBE", "1")
        .env("VSBOX_BUSYBOX", busybox())
        .output()
        .unwrap();
    assert!(out.status.success(), "probe child {args:?}: {}", show(&out));
    let map: BTreeMap<String, String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("probe "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(map.len() > 10, "probe child {args:?}: {}", show(&out));
    map
}

/// Child mode of the probe tests; does nothing unless VSBOX_PRIV_PROBE is
/// set.
#[test]
fn probe_child() {
    if std::env::var_os("VSBOX_PRIV_PROBE").is_none() {
        return;
    }
    use vsbox::sys::seccomp::probe;
    let name = |r: Result<usize, vsbox::sys::errno::Errno>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.name().unwrap_or("?").to_string(),
    };
    type Probe = fn() -> Result<usize, vsbox::sys::errno::Errno>;
    let calls: [(&str, Probe); 21] = [
        ("init_module", probe::init_module),
        ("finit_module", probe::finit_module),
        ("delete_module", probe::delete_module),
        ("kexec_load", probe::kexec_load),
        ("kexec_file_load", probe::kexec_file_load),
        ("open_by_handle_at", probe::open_by_handle_at),
        ("bpf", probe::bpf),
        ("perf_event_open", probe::perf_event_open),
        ("add_key", probe::add_key),
        ("request_key", probe::request_key),
        ("keyctl", probe::keyctl),
        ("userfaultfd", probe::userfaultfd),
        ("setns", probe::setns),
        ("unshare_namespace", probe::unshare_namespace),
        ("clone_namespace", probe::clone_namespace),
        (
            "clone_namespace_high_bits",
            probe::clone_namespace_high_bits,
        ),
        ("clone_plain_invalid", probe::clone_plain_invalid),
        ("clone3", probe::clone3),
        ("tiocsti", probe::tiocsti),
        ("tiocsti_high_bits", probe::tiocsti_high_bits),
        ("tioclinux", probe::tioclinux),
    ];
    // libtest prints "test probe_child ... " without a newline first.
    println!();
    for (call, f) in calls {
        println!("probe {call} {}", name(f()));
    }
    println!("probe raw_socket {}", name(probe::raw_socket().map(|()| 0)));
    // Threads and child processes still work (with lock, clone3 answers
    // ENOSYS and libc must fall back to clone).
    let thread = std::thread::spawn(|| 7).join().map_or("failed", |_| "ok");
    println!("probe thread {thread}");
    let spawn = Command::new(std::env::var_os("VSBOX_BUSYBOX").unwrap())
        .arg("true")
        .status()
        .map_or("failed".to_string(), |s| {
            if s.success() {
                "ok".into()
            } else {
                format!("{s}")
            }
        });
    println!("probe spawn {spawn}");
}

/// The calls every guest is denied.
const DENIED: [&str; 12] = [
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "bpf",
    "perf_event_open",
    "add_key",
    "request_key",
    "keyctl",
    "userfaultfd",
];

#[test]
fn dangerous_calls_fail_with_eperm() {
    if skip_unless_root("dangerous_calls_fail_with_eperm") {
        return;
    }
    let plain = probes(None);
    let secure = probes(Some(&["--secure"]));
    // The capabilities that the kernel itself checks for these calls, given
    // back: only the filter is left to refuse them.
    let filter_only = probes(Some(&[
        "--secure",
        "--cap",
        "CAP_SYS_MODULE",
        "--cap",
        "CAP_SYS_BOOT",
        "--cap",
        "CAP_DAC_READ_SEARCH",
        "--cap",
        "CAP_BPF",
        "--cap",
        "CAP_PERFMON",
        "--cap",
        "CAP_SYS_ADMIN",
        "--cap",
        "CAP_SYS_PTRACE",
    ]));
    for call in DENIED {
        assert_ne!(
            plain[call], "EPERM",
            "{call}: the kernel itself answers EPERM here, so the filter cannot be told apart"
        );
        assert_eq!(secure[call], "EPERM", "{call} under --secure");
        assert_eq!(
            filter_only[call], "EPERM",
            "{call}: the filter did not deny it"
        );
    }
    for p in [&plain, &secure, &filter_only] {
        assert_eq!(p["thread"], "ok");
        assert_eq!(p["spawn"], "ok");
    }
}

#[test]
fn terminal_injection_is_denied() {
    if skip_unless_root("terminal_injection_is_denied") {
        return;
    }
    let plain = probes(None);
    let secure = probes(Some(&["--secure"]));
    for call in ["tiocsti", "tiocsti_high_bits", "tioclinux"] {
        assert_eq!(plain[call], "EBADF", "{call} without the filter");
        assert_eq!(secure[call], "EPERM", "{call} under --secure");
    }
}

#[test]
fn raw_socket_probe_needs_net_raw() {
    if skip_unless_root("raw_socket_probe_needs_net_raw") {
        return;
    }
    assert_eq!(probes(Some(&["--secure"]))["raw_socket"], "EPERM");
    assert_eq!(
        probes(Some(&["--secure", "--cap", "CAP_NET_RAW"]))["raw_socket"],
        "ok"
    );
}

#[test]
fn lock_filter_rules() {
    if skip_unless_root("lock_filter_rules") {
        return;
    }
    let unlocked = probes(Some(&["--secure", "--cap", "CAP_SYS_ADMIN"]));
    let locked = probes(Some(&[
        "--secure",
        "--cap",
        "CAP_SYS_ADMIN",
        "--flag",
        "lock",
    ]));
    let lock_only = probes(Some(&["--flag", "lock"]));
    for (call, kernel) in [
        ("setns", "EBADF"),
        ("unshare_namespace", "EINVAL"),
        ("clone_namespace", "EINVAL"),
        ("clone_namespace_high_bits", "EINVAL"),
        ("clone3", "EINVAL"),
        ("clone_plain_invalid", "EINVAL"),
    ] {
        assert_eq!(unlocked[call], kernel, "{call} without lock");
    }
    for locked in [&locked, &lock_only] {
        for call in [
            "setns",
            "unshare_namespace",
            "clone_namespace",
            "clone_namespace_high_bits",
        ] {
            assert_eq!(locked[call], "EPERM", "{call} with lock");
        }
        assert_eq!(locked["clone3"], "ENOSYS", "clone3 with lock");
        assert_eq!(
            locked["clone_plain_invalid"], "EINVAL",
            "plain clone with lock"
        );
        assert_eq!(locked["thread"], "ok", "threads with lock");
        assert_eq!(locked["spawn"], "ok", "fork/exec with lock");
    }
    // Lock alone does not deny the guest list.
    assert_ne!(lock_only["perf_event_open"], "EPERM");
}

#[test]
fn reducecap_usage() {
    let out = Command::new(vsbox_bin()).arg("reducecap").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = Command::new(vsbox_bin())
        .args(["reducecap", "--flag", "fast", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = Command::new(vsbox_bin())
        .args(["reducecap", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    if common::is_root() {
        let out = Command::new(vsbox_bin())
            .args(["reducecap", "/nonexistent/vsbox-cmd"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            text(&out.stderr).contains("cannot execute /nonexistent/vsbox-cmd"),
            "{}",
            show(&out)
        );
    }
}

/// Child mode of `foreign_abi_calls_kill_the_process`; does nothing unless
/// VSBOX_PRIV_ABI is set.
#[cfg(target_arch = "x86_64")]
#[test]
fn abi_child() {
    let Ok(abi) = std::env::var("VSBOX_PRIV_ABI") else {
        return;
    };
    use rustix::process::{Resource, Rlimit, setrlimit};
    use vsbox::sys::seccomp::probe;
    // A seccomp kill dumps core: not into the test's directory.
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    setrlimit(Resource::Core, none).unwrap();
    let result = match abi.as_str() {
        "i386" => format!("pid {}", probe::i386_getpid()),
        "x32" => match probe::x32_getpid() {
            Ok(pid) => format!("pid {pid}"),
            Err(e) => e.name().unwrap_or("?").to_string(),
        },
        _ => panic!("VSBOX_PRIV_ABI={abi}"),
    };
    println!("\nabi {abi} {result}");
}

/// A call through another ABI than x86_64's (the i386 `int 0x80` entry,
/// x32 numbers) kills the process under the guest filter: its numbers
/// would not match the filter's rules.
#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_abi_calls_kill_the_process() {
    if skip_unless_root("foreign_abi_calls_kill_the_process") {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    const SIGSYS: i32 = 31;
    const SIGSEGV: i32 = 11;
    let exe = std::env::current_exe().unwrap();
    let run = |abi: &str, secure: bool| {
        let mut cmd = if secure {
            let mut c = Command::new(vsbox_bin());
            c.args(["reducecap", "--secure", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(["--exact", "abi_child", "--nocapture", "--test-threads=1"])
            .env("VSBOX_PRIV_ABI", abi)
            .output()
            .unwrap()
    };
    for abi in ["i386", "x32"] {
        let control = run(abi, false);
        let reached = text(&control.stdout).contains(&format!("abi {abi} "));
        match control.status.signal() {
            None if reached => {}
            Some(SIGSEGV) if abi == "i386" => eprintln!(
                "foreign_abi_calls_kill_the_process: this kernel has no IA32 emulation; \
                 the i386 entry is closed anyway"
            ),
            _ => panic!("control {abi}: {}", show(&control)),
        }
        let out = run(abi, true);
        assert_eq!(
            out.status.signal(),
            Some(SIGSYS),
            "{abi} call under --secure was not killed: {}",
            show(&out)
        );
    }
}
