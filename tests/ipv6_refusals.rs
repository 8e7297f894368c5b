//! Real daemons with their stock configuration in guests without an IPv6
//! address: Debian's nginx (`listen 80; listen [::]:80;`, IPV6_V6ONLY) and
//! sshd (AddressFamily any) open an IPv6 listener beside the IPv4 one, as
//! on a host whose IPv6 has no address, and answer on the guest's IPv4
//! address; two guests do so at once, the IPv6 listeners taking no port.
//! The daemons run in one-shot contexts (`vserver NAME exec`) on fresh
//! copies of the cached Debian trees (tests/common/distro.rs). Loopback
//! addresses only.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::distro::{DistroGuest, Tree, http_status_line, ssh_banner};
use common::process::Started;

/// Runs `command` in a one-shot context of `guest`, in the foreground (so
/// that the context lasts as long as the daemon), with its standard error
/// in `log`.
fn run_daemon(guest: &DistroGuest, command: &[&str], log: &Path) -> Started {
    let mut args = vec![guest.name.as_str(), "exec"];
    args.extend_from_slice(command);
    let child = guest
        .command("vserver", &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap();
    Started(child)
}

/// The host's ::1 port 80 is free: no guest's "[::]:80" holds it (a host
/// listener on [::]:80 would hold it too).
fn host_ipv6_port_80_is_free() {
    let bound = std::net::TcpListener::bind("[::1]:80");
    assert!(bound.is_ok(), "[::1]:80 is taken: {bound:?}");
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn stock_nginx_serves_in_two_guests_without_ipv6() {
    let Some(a) = DistroGuest::new(Tree::Rcd, "nginx6a", "IPROOT=127.0.0.218\n") else {
        return;
    };
    let b = DistroGuest::new(Tree::Rcd, "nginx6b", "IPROOT=127.0.0.219\n").unwrap();
    let dir = common::tempdir::TempDir::new("nginx6-logs");
    let nginx = ["/usr/sbin/nginx", "-g", "daemon off;"];
    let log_a = dir.path().join("a.log");
    let log_b = dir.path().join("b.log");
    let _nginx_a = run_daemon(&a, &nginx, &log_a);
    let _nginx_b = run_daemon(&b, &nginx, &log_b);
    for (addr, log) in [("127.0.0.218:80", &log_a), ("127.0.0.219:80", &log_b)] {
        let status = http_status_line(addr, Duration::from_secs(20));
        assert_eq!(
            status.as_deref(),
            Some("HTTP/1.1 200 OK"),
            "nginx on {addr}; its log: {}",
            log_of(log)
        );
    }
    host_ipv6_port_80_is_free();
}

#[test]
fn stock_sshd_listens_in_two_guests_without_ipv6() {
    let Some(a) = DistroGuest::new(Tree::Sysvinit, "sshd6a", "IPROOT=127.0.0.220\n") else {
        return;
    };
    let b = DistroGuest::new(Tree::Sysvinit, "sshd6b", "IPROOT=127.0.0.221\n").unwrap();
    let dir = common::tempdir::TempDir::new("sshd6-logs");
    // sshd needs its privilege-separation directory; made at run time, as
    // the init script does, since /run may be a fresh tmpfs.
    let sshd = [
        "/bin/sh",
        "-c",
        "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e",
    ];
    let log_a = dir.path().join("a.log");
    let log_b = dir.path().join("b.log");
    let _sshd_a = run_daemon(&a, &sshd, &log_a);
    let _sshd_b = run_daemon(&b, &sshd, &log_b);
    for (addr, log) in [("127.0.0.220:22", &log_a), ("127.0.0.221:22", &log_b)] {
        let banner = ssh_banner(addr, Duration::from_secs(20)).unwrap_or_default();
        assert!(
            banner.starts_with("SSH-2.0-OpenSSH"),
            "sshd on {addr}: '{banner}'; its log: {}",
            log_of(log)
        );
        // Both of AddressFamily any's listeners were opened, without error
        // (sshd logs both listeners before it answers).
        let text = log_of(log);
        for listener in ["0.0.0.0", "::"] {
            let line = format!("Server listening on {listener} port 22.");
            assert!(text.contains(&line), "no '{line}' in: {text}");
        }
        assert!(!text.contains("error"), "{text}");
    }
}
