//! Real Debian guests that boot their own init, as servers do: systemd
//! (debootstrap's default variant) and sysvinit (sysvinit-core) guests with
//! nginx and sshd, started, served, rebooted from inside, restarted and
//! stopped with vserver. Trees from tests/common/distro.rs (cached by
//! `bench/debian-guests --build`), each test on a fresh copy.

mod common;

use std::time::{Duration, Instant};

use common::distro::{DistroGuest, Tree, http_status_line, ssh_banner};

/// Long enough for a boot on a loaded machine or in the TCG test VM.
const BOOT: Duration = Duration::from_secs(90);

/// pid 1 of the guest on the host, and its start time (field 22 of stat):
/// the pair tells one boot from the next.
fn init_of(guest: &DistroGuest) -> Option<(i32, u64)> {
    let dir = std::fs::read_dir(guest.run.path().join("contexts")).ok()?;
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if !text.lines().any(|l| l == format!("name={}", guest.name)) {
            continue;
        }
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key));
        return Some((
            field("init_pid=")?.parse().ok()?,
            field("init_start=")?.parse().ok()?,
        ));
    }
    None
}

/// The name of process `pid` on the host.
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `systemctl is-system-running --wait` in the guest: "running" or
/// "degraded" once the boot is over; with the failed units when degraded.
/// A guest restarted by its monitor (a reboot inside) may still be setting
/// up: asked again until systemd answers.
fn systemd_state(guest: &DistroGuest) -> String {
    let mut state = String::new();
    wait_until(BOOT, || {
        let out = guest.vserver(&["exec", "systemctl", "is-system-running", "--wait"]);
        state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        !state.is_empty() && state != "offline"
    });
    if state == "running" {
        return state;
    }
    let failed = guest.vserver(&["exec", "systemctl", "--failed", "--no-pager", "--plain"]);
    format!("{state}: {}", String::from_utf8_lossy(&failed.stdout))
}

/// The guest's boot id, as the journal sees it.
fn boot_id(guest: &DistroGuest) -> String {
    guest
        .ok(&["exec", "cat", "/proc/sys/kernel/random/boot_id"])
        .trim()
        .to_string()
}

/// Waits until `check` holds, at most `within`.
fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

fn assert_serves(guest: &DistroGuest, ip: &str, when: &str) {
    let http = http_status_line(&format!("{ip}:80"), BOOT);
    assert!(
        http.as_deref().is_some_and(|l| l.contains(" 200 ")),
        "{when}: nginx on {ip}:80 answered {http:?}"
    );
    let ssh = ssh_banner(&format!("{ip}:22"), BOOT);
    assert!(
        ssh.as_deref()
            .is_some_and(|l| l.starts_with("SSH-2.0-OpenSSH")),
        "{when}: sshd on {ip}:22 answered {ssh:?}"
    );
    // The guest's address only: nothing of the guest listens on the host's
    // loopback address.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:80").is_err()
            || guest.root.join("nonexistent").exists(),
        "{when}: something answers on the host's 127.0.0.1:80"
    );
}

/// Stops the guest and says how long it took; the stop must be the init's
/// own, not the kill after S_STOP_TIMEOUT.
fn timed_stop(guest: &DistroGuest) -> Duration {
    let t = Instant::now();
    let out = guest
        .command("vserver", &["--verbose", &guest.name, "stop"])
        .output()
        .unwrap();
    let took = t.elapsed();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stop failed: {said}");
    assert!(!said.contains("killed"), "the stop had to kill: {said}");
    eprintln!("{}: stop took {:.2} s", guest.name, took.as_secs_f64());
    took
}

#[test]
fn a_systemd_guest_boots_to_running_serves_on_its_address_and_stops_cleanly() {
    let ip = "127.0.0.190";
    let Some(guest) = DistroGuest::new(
        Tree::Systemd,
        "systemd",
        &format!("IPROOT={ip}\nS_FLAGS=lock\nS_STOP_TIMEOUT=60\n"),
    ) else {
        return;
    };
    let t = Instant::now();
    guest.ok(&["start"]);
    let state = systemd_state(&guest);
    eprintln!(
        "{}: boot to {state} took {:.2} s",
        guest.name,
        t.elapsed().as_secs_f64()
    );
    // No unit fails: the guest has what systemd needs (API file systems,
    // its own cgroup, $container), with the lock flag set.
    assert_eq!(state, "running");
    let (pid, _) = init_of(&guest).expect("no run state for the guest");
    assert_eq!(comm(pid), "systemd", "pid 1 of the guest is not systemd");
    assert_serves(&guest, ip, "after boot");
    // systemd runs the services in cgroups of its own, below the guest's.
    let cg = guest.ok(&["exec", "systemctl", "show", "-p", "ControlGroup", "nginx"]);
    assert_eq!(cg.trim(), "ControlGroup=/system.slice/nginx.service");
    // `vserver-stat --all` names the init.
    let list = guest.command("vserver-stat", &["--all"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&guest.name) && l.contains("systemd")),
        "{list}"
    );
    let took = timed_stop(&guest);
    assert!(took < Duration::from_secs(30), "stop took {took:?}");
    assert!(
        init_of(&guest).is_none() && comm(pid) != "systemd",
        "the guest still runs"
    );
    assert!(
        vsbox::context::cgroup::Cgroup::open(&guest.name).is_err(),
        "the guest's cgroup is left"
    );
}

#[test]
fn a_systemd_guest_reboots_from_inside_restarts_and_powers_off() {
    let ip = "127.0.0.191";
    let Some(guest) = DistroGuest::new(
        Tree::Systemd,
        "sdreboot",
        &format!("IPROOT={ip}\nS_STOP_TIMEOUT=60\n"),
    ) else {
        return;
    };
    guest.ok(&["start"]);
    assert_eq!(systemd_state(&guest), "running");
    let first = init_of(&guest).unwrap();
    let first_boot = boot_id(&guest);

    // `reboot` inside: systemd shuts down, reboot(2) ends the guest's pid
    // namespace, the monitor starts the guest again.
    guest.ok(&["exec", "systemctl", "reboot"]);
    assert!(
        wait_until(BOOT, || init_of(&guest).is_some_and(|i| i != first)),
        "no new boot after reboot inside the guest"
    );
    assert_eq!(systemd_state(&guest), "running");
    assert_ne!(boot_id(&guest), first_boot, "the boot id did not change");
    assert_serves(&guest, ip, "after reboot inside");

    // restart from the host brings the services back too.
    let before = init_of(&guest).unwrap();
    guest.ok(&["restart"]);
    assert_ne!(init_of(&guest), Some(before));
    assert_eq!(systemd_state(&guest), "running");
    assert_serves(&guest, ip, "after vserver restart");

    // `poweroff` inside stops the guest for good.
    let _ = guest.vserver(&["exec", "systemctl", "poweroff"]);
    assert!(
        wait_until(BOOT, || init_of(&guest).is_none()),
        "the guest still runs after poweroff inside"
    );
    let status = guest.vserver(&["status"]);
    assert!(!status.status.success(), "status says it runs");
    assert!(http_status_line(&format!("{ip}:80"), Duration::ZERO).is_none());
}

#[test]
fn a_sysvinit_guest_boots_its_own_init_serves_and_halts_by_telinit() {
    let ip = "127.0.0.192";
    let Some(guest) = DistroGuest::new(
        Tree::Sysvinit,
        "sysvinit",
        &format!("IPROOT={ip}\nS_FLAGS=\"lock fakeinit\"\nS_STOP_TIMEOUT=60\n"),
    ) else {
        return;
    };
    guest.ok(&["start"]);
    let (pid, _) = init_of(&guest).expect("no run state for the guest");
    assert_eq!(comm(pid), "init", "pid 1 of the guest is not sysvinit");
    assert_serves(&guest, ip, "after boot");
    let runlevel = guest.ok(&["exec", "/sbin/runlevel"]);
    assert_eq!(runlevel.trim(), "N 2", "runlevel says {runlevel}");
    // restart: telinit 0, then a new boot with the services back.
    guest.ok(&["restart"]);
    let (again, _) = init_of(&guest).expect("no run state after restart");
    assert_ne!(again, pid, "the same init after restart");
    assert_serves(&guest, ip, "after restart");
    let took = timed_stop(&guest);
    assert!(took < Duration::from_secs(30), "stop took {took:?}");
    assert!(init_of(&guest).is_none(), "the guest still runs");
    assert!(http_status_line(&format!("{ip}:80"), Duration::ZERO).is_none());
}

#[test]
fn a_systemd_boot_that_never_finishes_fails_the_start_after_s_start_timeout() {
    let Some(guest) = DistroGuest::new(
        Tree::Systemd,
        "sdslow",
        "IPROOT=127.0.0.193\nS_START_TIMEOUT=3\n",
    ) else {
        return;
    };
    // A unit the boot waits for, which takes far longer than the timeout.
    let unit = "[Unit]\nDescription=slow\n[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=multi-user.target\n";
    std::fs::write(guest.root.join("etc/systemd/system/slow.service"), unit).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/slow.service",
        guest
            .root
            .join("etc/systemd/system/multi-user.target.wants/slow.service"),
    )
    .unwrap();
    let t = Instant::now();
    let out = guest.vserver(&["start"]);
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start succeeded");
    assert!(err.contains("S_START_TIMEOUT"), "{err}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(30),
        "{took:?}"
    );
    // Nothing left: no run state, no cgroup.
    assert!(init_of(&guest).is_none());
    assert!(vsbox::context::cgroup::Cgroup::open(&guest.name).is_err());
}
