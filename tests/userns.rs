//! User namespaces for guests (issue 13, S_USERNS=yes): guest root is an
//! unprivileged host id of the guest's own range, the tree keeps host ids
//! on disk through an idmapped mount, and guest root has no power over host
//! files a symbolic link or a host bind mount exposes in the tree.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::is_root;
use common::vserver::{Setup, text};

/// An rc that only logs.
const RC: &str = "#!/bin/sh\necho \"rc $1\" >> /var/log/rc.log\n";

/// The first host id of slot 0 (`context::userns`).
const FIRST: u32 = 1 << 30;

/// (inside, outside, count) of a uid_map or gid_map line.
fn map_of(pid: i32, file: &str) -> Vec<(u32, u32, u32)> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<u32> = l.split_whitespace().map(|w| w.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

/// A started busybox guest with S_USERNS=yes, and its pid 1's range base.
fn started(tag: &str) -> (Setup, i32, u32) {
    let s = Setup::new(tag, "S_USERNS=yes\n", RC);
    s.ok(&["start"]);
    let pid = s.init_pid().expect("the guest's init runs");
    let map = map_of(pid, "uid_map");
    assert_eq!(map.len(), 1, "uid_map of pid 1: {map:?}");
    let (inside, base, count) = map[0];
    assert_eq!((inside, count), (0, 65536), "uid_map of pid 1: {map:?}");
    assert!(base >= FIRST, "guest root is host uid {base}");
    assert_eq!(map_of(pid, "gid_map"), map, "gid_map of pid 1");
    (s, pid, base)
}

/// `vserver NAME exec sh -c SCRIPT`: (success, stdout + stderr).
fn exec(s: &Setup, script: &str) -> (bool, String) {
    let out = s.vserver(&["exec", "sh", "-c", script]);
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn guest_root_is_an_unprivileged_host_id_and_its_files_keep_host_ids() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (s, pid, base) = started("uidmap");
    // Not root on the host: the kernel's view of pid 1's credentials.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == base.to_string()),
        "pid 1 {uid_line}"
    );
    // A joined command is the guest's root too: uid 0 inside, base outside.
    let (ok, out) = exec(&s, "id -u; cat /proc/self/uid_map; echo made > /root/made");
    assert!(ok, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "{out}");
    let map: Vec<u32> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(map, [0, base, 65536], "{out}");
    // On disk the file is host root's: unified files stay shared.
    let meta = std::fs::metadata(s.guest.join("root/made")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner on disk");
    // And the tree's root-owned files are the guest root's inside.
    let (ok, out) = exec(&s, "stat -c %u:%g /etc/passwd /bin/busybox");
    assert!(ok, "{out}");
    assert_eq!(out, "0:0\n0:0\n");
    s.ok(&["stop"]);
}

#[test]
fn guest_root_cannot_write_host_files_through_a_symlink_or_a_host_bind_mount() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let host = common::tempdir::TempDir::new("userns-host");
    let secret = host.write("secret", "host\n");
    // A host directory bound into the tree by the host, before the start.
    let s = Setup::new("bind", "S_USERNS=yes\n", RC);
    let target = s.guest.join("mnt");
    rustix::mount::mount_bind(host.path(), &target).unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }
    let _bound = Unmount(&target);
    std::os::unix::fs::symlink(&secret, s.guest.join("root/link")).unwrap();
    s.ok(&["start"]);
    let pid = s.init_pid().expect("the guest's init runs");
    assert_eq!(map_of(pid, "uid_map")[0].0, 0);
    assert!(
        map_of(pid, "uid_map")[0].1 >= FIRST,
        "not in a user namespace"
    );
    let (_, out) = exec(
        &s,
        "echo guest > /mnt/secret; chmod 666 /mnt/secret; chown 0 /mnt/secret; \
         echo guest > /root/link; stat -c %u /mnt/secret",
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "host\n",
        "the guest wrote the host's file: {out}"
    );
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o644, "{out}");
    // Host root's file is nobody's inside: unmapped.
    assert!(out.lines().any(|l| l == "65534"), "{out}");
    s.ok(&["stop"]);
}

#[test]
fn two_guests_get_ranges_that_do_not_overlap() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (a, _, base_a) = started("range-a");
    // The second guest in the first one's run state, as on a real host.
    let b = Setup::new("range-b", "S_USERNS=yes\n", RC);
    let shared = |args: &[&str]| {
        let out = b
            .command(args)
            .env("VSBOX_RUN_DIR", a.run.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    shared(&["start"]);
    let record = std::fs::read_dir(a.run.path().join("contexts"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|t| t.lines().any(|l| l == format!("name={}", b.name)))
        .expect("b's record");
    let base_b: u32 = record
        .lines()
        .find_map(|l| l.strip_prefix("userns="))
        .expect("b's range is recorded")
        .parse()
        .unwrap();
    shared(&["stop"]);
    a.ok(&["stop"]);
    assert!(
        base_a.abs_diff(base_b) >= 65536,
        "ranges {base_a} and {base_b} overlap"
    );
}

/// `systemctl is-system-running --wait` in the guest, with the failed units
/// when it is not "running".
fn systemd_state(guest: &common::distro::DistroGuest) -> String {
    let out = guest.vserver(&["exec", "systemctl", "is-system-running", "--wait"]);
    let state = text(&out.stdout).trim().to_string();
    if state == "running" {
        return state;
    }
    let failed = guest.vserver(&["exec", "systemctl", "--failed", "--no-pager", "--plain"]);
    format!(
        "{state}: {}{}{}",
        text(&failed.stdout),
        text(&out.stderr),
        text(&failed.stderr)
    )
}

#[test]
fn a_systemd_guest_in_a_user_namespace_boots_and_sandboxes_its_units() {
    use common::distro::{DistroGuest, Tree};
    let Some(guest) = DistroGuest::new(
        Tree::Systemd,
        "userns-systemd",
        "IPROOT=127.0.0.195\nS_FLAGS=lock\nS_USERNS=yes\nS_STOP_TIMEOUT=60\n",
    ) else {
        return;
    };
    let t = std::time::Instant::now();
    guest.ok(&["start"]);
    // The start may return before systemd listens on its bus.
    let mut state = systemd_state(&guest);
    while state.contains("Failed to connect to bus") && t.elapsed().as_secs() < 90 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        state = systemd_state(&guest);
    }
    eprintln!(
        "{}: boot to {state} took {:.2} s",
        guest.name,
        t.elapsed().as_secs_f64()
    );
    // systemd in its own user namespace: uid 0 inside is not root outside.
    let map = guest.ok(&["exec", "cat", "/proc/1/uid_map"]);
    let map: Vec<u32> = map.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(map.len(), 3, "{map:?}");
    assert!(map[0] == 0 && map[1] >= FIRST && map[2] == 65536, "{map:?}");
    // Nothing fails; nginx and sshd bind ports 80 and 22 of the guest's
    // address although guest root has no CAP_NET_BIND_SERVICE in the
    // host's network namespace: the bind programs let the guest's root
    // (and only it) have low ports.
    assert_eq!(state, "running", "systemd: {state}");
    let http =
        common::distro::http_status_line("127.0.0.195:80", std::time::Duration::from_secs(30));
    assert!(
        http.as_deref().is_some_and(|l| l.contains(" 200 ")),
        "nginx answered {http:?}"
    );
    let ssh = common::distro::ssh_banner("127.0.0.195:22", std::time::Duration::from_secs(30));
    assert!(
        ssh.as_deref().is_some_and(|l| l.starts_with("SSH-2.0-")),
        "sshd answered {ssh:?}"
    );
    // Unit sandboxing: a private /tmp is a mount namespace of the unit's
    // own, which the lock flag allows in a user namespace.
    let out = guest.vserver(&[
        "exec",
        "systemd-run",
        "-p",
        "PrivateTmp=yes",
        "--wait",
        "--pipe",
        "--quiet",
        "sh",
        "-c",
        "touch /tmp/private-mark && ls /tmp",
    ]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "PrivateTmp unit: {said}");
    assert!(said.contains("private-mark"), "{said}");
    assert!(
        !guest.root.join("tmp/private-mark").exists(),
        "PrivateTmp=yes wrote to the guest's own /tmp"
    );
    let out = guest.vserver(&["stop"]);
    assert!(out.status.success(), "stop: {}", text(&out.stderr));
}

#[test]
fn a_tree_on_a_file_system_without_idmapped_mounts_is_a_clear_error() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // ramfs has no idmapped mounts: the guest tree moved onto one.
    let s = Setup::new("ramfs", "S_USERNS=yes\n", RC);
    let saved = common::tempdir::TempDir::new("userns-ramfs");
    let tree = s.guest.path().to_path_buf();
    let copy = |from: &Path, to: &Path| {
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(to)
            .status()
            .is_ok_and(|st| st.success());
        assert!(ok, "cp -a {} {}", from.display(), to.display());
    };
    copy(&tree, saved.path());
    rustix::mount::mount(
        "vsbox-ramfs",
        &tree,
        "ramfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }
    let _mounted = Unmount(&tree);
    copy(saved.path(), &tree);
    let out = s.vserver(&["start"]);
    let said = text(&out.stderr);
    assert!(!out.status.success(), "started on ramfs: {said}");
    assert!(
        said.contains("idmapped mounts (MOUNT_ATTR_IDMAP)") && said.contains("(ramfs)"),
        "{said}"
    );
    // Nothing left behind: no context, no cgroup.
    assert!(s.init_pid().is_none(), "a context is left");
    assert!(s.cgroup_gone(), "the guest's cgroup is left");
    let records = std::fs::read_dir(s.run.path().join("contexts"))
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(records, 0, "a run-state record is left");
}

/// Ports below 1024 of the host's network namespace need
/// CAP_NET_BIND_SERVICE there, which the root of a user-namespaced guest
/// lacks: the guest's bind programs let its root (and no other guest user)
/// bind them on the guest's address, as root can on a host.
#[test]
fn guest_root_in_a_user_namespace_binds_low_ports_and_other_users_do_not() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Setup::new("userns-lowport", "S_USERNS=yes\nIPROOT=127.0.0.196\n", RC);
    std::fs::copy(common::netprobe(), s.guest.join("bin/netprobe")).unwrap();
    s.ok(&["start"]);
    let bind = |args: &[&str]| {
        let out = s.vserver(args);
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };
    let root = bind(&["exec", "/bin/netprobe", "bind", "tcp", "0.0.0.0:80"]);
    assert!(root.contains("127.0.0.196:80"), "guest root: {root}");
    let user = bind(&[
        "suexec",
        "guest",
        "/bin/netprobe",
        "bind",
        "tcp",
        "0.0.0.0:81",
    ]);
    assert!(user.contains("EACCES"), "a guest user: {user}");
    // High ports stay everyone's.
    let user = bind(&[
        "suexec",
        "guest",
        "/bin/netprobe",
        "bind",
        "tcp",
        "0.0.0.0:8080",
    ]);
    assert!(user.contains("127.0.0.196:8080"), "a guest user: {user}");
    s.ok(&["stop"]);
}
