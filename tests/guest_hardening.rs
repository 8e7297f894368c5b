//! Hostile guests against the host, from inside real guests: the host's
//! abstract unix sockets (Landlock scoping), io_uring (the seccomp
//! filter), the guest's pid 1 (not dumpable) and S_CAPS capabilities that
//! are host root. Each test reproduces the attack as guest root; needs
//! root (says "skipped" otherwise).

mod common;

use std::process::Command;

use common::netprobe;
use common::process::{Probe, wait_until};
use common::vserver::{Setup, text};

fn skip_unless_root(test: &str) -> bool {
    if common::is_root() {
        return false;
    }
    eprintln!("{test}: skipped: needs root");
    true
}

/// A name no other test or host program uses.
fn unique_name(tag: &str) -> String {
    format!("vsbox-test-{}-{tag}", std::process::id())
}

/// Whether this kernel scopes abstract unix sockets (Landlock ABI 6).
fn kernel_scopes() -> bool {
    vsbox::context::scope::available()
}

/// `netprobe ARGS` inside the guest as a joined command; its one line.
fn guest_probe(setup: &Setup, args: &[&str]) -> String {
    let mut all = vec!["exec", "/bin/netprobe"];
    all.extend_from_slice(args);
    let out = setup.vserver(&all);
    text(&out.stdout).trim().to_string()
}

/// The guest's rc script: at start, only `body`; nothing at stop.
fn rc_running(body: &str) -> String {
    format!("#!/bin/sh\ncase \"$1\" in 0|6) exit 0;; esac\n{body}\n")
}

/// A guest with the probe at /bin/netprobe, started; stderr of the start.
fn started(setup: &Setup) -> String {
    std::fs::copy(netprobe(), setup.guest.join("bin/netprobe")).unwrap();
    let out = setup.vserver(&["start"]);
    assert!(out.status.success(), "vserver start: {}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn host_abstract_sockets_are_out_of_the_guests_reach() {
    if skip_unless_root("host_abstract_sockets_are_out_of_the_guests_reach") {
        return;
    }
    let host_name = unique_name("host");
    let inner_name = unique_name("inner");
    let daemon_name = unique_name("daemon");
    // Two processes of the guest itself (the rc script and the server it
    // starts): they still talk over an abstract socket. A second server
    // stays, as a guest daemon would.
    let setup = Setup::new(
        "abstract",
        "",
        &rc_running(&format!(
            "/bin/netprobe unix-serve {daemon_name} >/var/log/daemon.out 2>&1 &\n\
             /bin/netprobe unix-serve {inner_name} >/var/log/serve.out 2>&1 &\n\
             i=0; while [ $i -lt 100 ]; do\n\
               /bin/netprobe unix-connect {inner_name} >/var/log/connect.out 2>&1 && break\n\
               i=$((i+1)); sleep 0.1\n\
             done"
        )),
    );
    let mut server = Probe::spawn(Command::new(netprobe()).args(["unix-serve", &host_name]));
    assert_eq!(server.line(), format!("listening @{host_name}"));
    let warnings = started(&setup);

    let from_guest = guest_probe(&setup, &["unix-connect", &host_name]);
    if kernel_scopes() {
        assert_eq!(
            from_guest, "error EPERM",
            "guest root reached the host's abstract socket @{host_name}"
        );
        assert!(!warnings.contains("abstract"), "{warnings}");
        // The control: the host's own connect works, so the server was
        // there to be reached.
        let from_host = Command::new(netprobe())
            .args(["unix-connect", &host_name])
            .output()
            .unwrap();
        assert_eq!(
            text(&from_host.stdout).trim(),
            format!("connected @{host_name}")
        );
    } else {
        // The gap the warning names: the guest does reach it.
        eprintln!("this kernel has no Landlock scoping: checking the start-time warning instead");
        assert_eq!(from_guest, format!("connected @{host_name}"));
        assert!(
            warnings.contains("abstract unix sockets stay reachable"),
            "no warning from vserver start: {warnings}"
        );
    }
    assert_eq!(server.line(), "accepted");

    let connect_log = setup.guest.join("var/log/connect.out");
    wait_until("the guest's own abstract socket connect", || {
        std::fs::read_to_string(&connect_log).is_ok_and(|t| t.contains("connected"))
    });
    // A joined command is a domain of its own, a sibling of the guest's
    // pid 1: it talks to its own processes over abstract sockets...
    let joined_name = unique_name("joined");
    let script = format!(
        "/bin/netprobe unix-serve {joined_name} & \
         i=0; while [ $i -lt 100 ]; do \
           /bin/netprobe unix-connect {joined_name} && break; i=$((i+1)); sleep 0.1; \
         done; wait"
    );
    let joined = setup.vserver(&["exec", "/bin/sh", "-c", &script]);
    assert!(
        text(&joined.stdout).contains(&format!("connected @{joined_name}")),
        "{}{}",
        text(&joined.stdout),
        text(&joined.stderr)
    );
    // ...but not to the daemon the guest's own rc started (documented in
    // context::scope and SECURITY.md).
    if kernel_scopes() {
        let daemon_log = setup.guest.join("var/log/daemon.out");
        wait_until("the guest's daemon", || {
            std::fs::read_to_string(&daemon_log).is_ok_and(|t| t.contains("listening"))
        });
        assert_eq!(
            guest_probe(&setup, &["unix-connect", &daemon_name]),
            "error EPERM"
        );
    }
    setup.ok(&["stop"]);
    assert!(setup.cgroup_gone());
}

#[test]
fn io_uring_is_denied_unless_s_flags_allows_it() {
    if skip_unless_root("io_uring_is_denied_unless_s_flags_allows_it") {
        return;
    }
    let host = Command::new(netprobe()).arg("io_uring").output().unwrap();
    let host_answer = text(&host.stdout).trim().to_string();
    let denied = Setup::new("uring", "", "#!/bin/sh\n");
    started(&denied);
    assert_eq!(
        guest_probe(&denied, &["io_uring"]),
        "error EPERM",
        "io_uring_setup from guest root reached the kernel"
    );
    denied.ok(&["stop"]);

    if host_answer == "error EPERM" {
        eprintln!(
            "the host's kernel itself refuses io_uring (io_uring_disabled): flag not checked"
        );
        return;
    }
    // EFAULT (a NULL parameter block) where the kernel has io_uring,
    // ENOSYS where it has none (the test VM's minimal patched kernel).
    assert!(
        host_answer == "error EFAULT" || host_answer == "error errno38",
        "{host_answer}: {}",
        text(&host.stderr)
    );
    let allowed = Setup::new("uring-ok", "S_FLAGS=\"lock io_uring\"\n", "#!/bin/sh\n");
    started(&allowed);
    assert_eq!(
        guest_probe(&allowed, &["io_uring"]),
        host_answer,
        "with S_FLAGS io_uring the kernel answers"
    );
    allowed.ok(&["stop"]);
}

#[test]
fn guest_root_cannot_read_or_trace_vinit() {
    if skip_unless_root("guest_root_cannot_read_or_trace_vinit") {
        return;
    }
    // The rc script runs as guest root, a child of vinit (pid 1), in its
    // Landlock domain: only dumpability stands between them.
    let setup = Setup::new(
        "dumpable",
        "",
        &rc_running(
            "{ cat /proc/1/environ >/dev/null 2>&1 && echo environ-read || echo environ-refused\n\
               ( exec 3</proc/1/mem ) 2>/dev/null && echo mem-opened || echo mem-refused\n\
               readlink /proc/1/exe >/dev/null 2>&1 && echo exe-read || echo exe-refused\n\
             } >/var/log/probe.out",
        ),
    );
    started(&setup);
    let out = std::fs::read_to_string(setup.guest.join("var/log/probe.out")).unwrap();
    for refused in ["environ-refused", "mem-refused", "exe-refused"] {
        assert!(
            out.contains(refused),
            "vinit --rc is open to guest root: {out}"
        );
    }
    // A joined command (vserver exec) is refused too.
    let joined = setup.vserver(&["exec", "/bin/sh", "-c", "cat /proc/1/environ"]);
    assert!(!joined.status.success(), "{}", text(&joined.stdout));
    setup.ok(&["stop"]);
    assert!(setup.cgroup_gone());
}

#[test]
fn vinit_supervising_a_command_is_not_dumpable() {
    if skip_unless_root("vinit_supervising_a_command_is_not_dumpable") {
        return;
    }
    // chcontext: pid 1 is `vinit --supervise`, the main command its child
    // (in the same Landlock domain: only dumpability stands between them).
    let guest = common::guest::GuestRoot::new("supervise");
    let run = common::tempdir::TempDir::new("run-supervise");
    let out = Command::new(common::vsbox_bin())
        .env("VSBOX_RUN_DIR", run.path())
        .args(["chcontext", "--secure", "--root"])
        .arg(guest.path())
        .args([
            "--",
            "/bin/sh",
            "-c",
            "cat /proc/1/environ >/dev/null 2>&1 && echo environ-read; \
             grep -l vinit /proc/1/status >/dev/null && echo pid1-is-vinit",
        ])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(
        said.contains("pid1-is-vinit"),
        "{said}{}",
        text(&out.stderr)
    );
    assert!(!said.contains("environ-read"), "vinit --supervise: {said}");
    // chcontext names the gap on a kernel that cannot scope, and only there.
    let warned = text(&out.stderr).contains("abstract unix sockets stay reachable");
    assert_eq!(warned, !kernel_scopes(), "{}", text(&out.stderr));
}

/// NAME.conf gives `caps` without the override: no start, a clear error,
/// nothing left behind.
fn refused(caps: &str, named: &str) {
    let setup = Setup::new("hostroot", &format!("S_CAPS=\"{caps}\"\n"), "#!/bin/sh\n");
    let out = setup.vserver(&["start"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "S_CAPS=\"{caps}\" started: {err}");
    let conf = setup
        .etc
        .path()
        .join(format!("vservers/{}.conf", setup.name));
    for want in [
        conf.display().to_string(),
        "S_CAPS".to_string(),
        format!("{named} is host root"),
        "S_CAPS_HOST_ROOT".to_string(),
    ] {
        assert!(err.contains(&want), "missing '{want}' in: {err}");
    }
    assert!(setup.cgroup_gone(), "a refused start left a cgroup");
    assert!(
        setup.vserver(&["running"]).status.code() != Some(0),
        "a refused start left the guest running"
    );
}

#[test]
fn s_caps_that_are_host_root_are_refused() {
    if skip_unless_root("s_caps_that_are_host_root_are_refused") {
        return;
    }
    refused("CAP_SYS_ADMIN", "CAP_SYS_ADMIN");
    refused("CAP_NET_RAW MKNOD", "CAP_MKNOD");
    refused("CAP_SYS_MODULE", "CAP_SYS_MODULE");

    // With the loud override the guest starts, warns, and has the
    // capability.
    let setup = Setup::new(
        "hostroot-ok",
        "S_CAPS=\"CAP_SYS_ADMIN\"\nS_CAPS_HOST_ROOT=\"yes\"\n",
        "#!/bin/sh\n",
    );
    let warnings = started(&setup);
    assert!(
        warnings.contains("S_CAPS_HOST_ROOT=yes") && warnings.contains("CAP_SYS_ADMIN"),
        "no warning: {warnings}"
    );
    let status = setup.ok(&["exec", "/bin/cat", "/proc/self/status"]);
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_ne!(eff & 1 << 21, 0, "CAP_SYS_ADMIN missing: {status}");
    setup.ok(&["stop"]);
    assert!(setup.cgroup_gone());
}

/// Restores a host device node's mode and owner when dropped: the attack
/// below must not leave the host broken if vsbox fails the test.
struct HostNode {
    path: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl HostNode {
    fn save(path: &'static str) -> Self {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).unwrap();
        HostNode {
            path,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    fn changed(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.path).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid()) != (self.mode, self.uid, self.gid)
    }
}

impl Drop for HostNode {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::os::unix::fs::chown(self.path, Some(self.uid), Some(self.gid));
        let _ = std::fs::set_permissions(self.path, std::fs::Permissions::from_mode(self.mode));
    }
}

/// Guest root keeps CAP_FOWNER and CAP_CHOWN for its own files: the device
/// nodes of its /dev, and the /dev/null that masks /proc/kcore and the
/// like, must be its own, never binds of the host's inodes, or a chmod in
/// the guest changes the host's /dev/null.
#[test]
fn guest_root_cannot_change_the_hosts_device_nodes() {
    if skip_unless_root("guest_root_cannot_change_the_hosts_device_nodes") {
        return;
    }
    let nodes = ["/dev/null", "/dev/zero", "/dev/tty", "/dev/urandom"].map(HostNode::save);
    let setup = Setup::new("devnodes", "", &rc_running(""));
    started(&setup);
    // /proc/timer_list and /proc/kallsyms are masked by a /dev/null.
    let out = setup.vserver(&[
        "exec",
        "/bin/sh",
        "-c",
        "chmod 0700 /dev/null /dev/zero /dev/tty /dev/urandom /proc/timer_list /proc/kallsyms; \
         chown 1:1 /dev/null /dev/zero /dev/tty /dev/urandom /proc/timer_list /proc/kallsyms; \
         ls -l /dev/null",
    ]);
    // The attack ran: the guest changed its own node; in a user namespace
    // (VSBOX_TEST_USERNS=1) the nodes are the host's, bound, and their
    // owner is not mapped there: refused.
    let own = text(&out.stdout).starts_with("crwx------    1 1        1");
    let refused = text(&out.stderr).contains("Operation not permitted");
    let in_userns = std::env::var("VSBOX_TEST_USERNS").is_ok_and(|v| v == "1");
    assert!(
        if in_userns { refused } else { own },
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for node in &nodes {
        assert!(
            !node.changed(),
            "guest root changed the host's {}",
            node.path
        );
    }
    setup.ok(&["stop"]);
}
