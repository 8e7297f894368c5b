//! ipv4root from inside real guests and under chbind: the guest's sockets
//! may use only its own addresses (IPROOT). Loopback addresses only: every
//! address here is in 127.0.0.0/8 or ::1, so no packet leaves the machine.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::netdev::{Dummy, addrs, find};
use common::process::{Probe, wait_until};
use common::vserver::{Setup, text};
use common::{netprobe, vsbox_bin};

/// A running guest with the probe at /bin/netprobe.
struct NetGuest {
    setup: Setup,
}

impl NetGuest {
    fn start(tag: &str, conf: &str) -> Option<Self> {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        let setup = Setup::new(tag, conf, "#!/bin/sh\n");
        std::fs::copy(netprobe(), setup.guest.join("bin/netprobe")).unwrap();
        setup.ok(&["start"]);
        Some(NetGuest { setup })
    }

    /// Runs the probe in the guest and returns its output line.
    fn probe(&self, args: &[&str]) -> String {
        let mut all = vec!["exec", "/bin/netprobe"];
        all.extend_from_slice(args);
        let out = self.setup.vserver(&all);
        let line = text(&out.stdout).trim().to_string();
        assert!(
            !line.is_empty(),
            "netprobe {args:?} printed nothing: {}",
            text(&out.stderr)
        );
        line
    }

    /// Starts the probe in the guest in the background.
    fn spawn(&self, args: &[&str]) -> Probe {
        let mut all = vec!["exec", "/bin/netprobe"];
        all.extend_from_slice(args);
        let mut cmd = self.setup.command(&all);
        Probe::spawn(&mut cmd)
    }

    /// The ids of the BPF programs attached to the guest's cgroup.
    fn program_ids(&self) -> Vec<u32> {
        let cgroup = vsbox::context::cgroup::Cgroup::open(&self.setup.name).unwrap();
        let dir = cgroup.v2_dir_fd().unwrap();
        vsbox::net::ipv4root::attached_ids(std::os::fd::AsFd::as_fd(&dir)).unwrap()
    }
}

/// The address part of `WORD ADDR ...` output.
fn addr_of(line: &str, word: &str) -> SocketAddr {
    let rest = line
        .strip_prefix(word)
        .unwrap_or_else(|| panic!("expected '{word} ...', got '{line}'"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

fn ip(addr: SocketAddr) -> String {
    addr.ip().to_string()
}

#[test]
fn bind_any_means_the_first_address() {
    let Some(g) = NetGuest::start("bindany", "IPROOT=\"127.0.0.2 127.0.0.3\"\n") else {
        return;
    };
    for kind in ["tcp", "udp"] {
        let line = g.probe(&["bind", kind, "0.0.0.0:0"]);
        assert_eq!(ip(addr_of(&line, "bound ")), "127.0.0.2", "{kind}");
    }
}

#[test]
fn bind_to_a_foreign_address_is_refused_and_to_the_second_allowed() {
    let Some(g) = NetGuest::start("bindforeign", "IPROOT=\"127.0.0.2 127.0.0.3\"\n") else {
        return;
    };
    for foreign in ["127.0.0.4:0", "127.0.0.130:0", "127.0.0.0:0"] {
        assert_eq!(
            g.probe(&["bind", "tcp", foreign]),
            "error EPERM",
            "{foreign}"
        );
        assert_eq!(
            g.probe(&["bind", "udp", foreign]),
            "error EPERM",
            "{foreign}"
        );
    }
    let line = g.probe(&["bind", "tcp", "127.0.0.3:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "127.0.0.3");
}

#[test]
fn connect_to_localhost_reaches_the_guests_own_listener() {
    let Some(g) = NetGuest::start("localhost", "IPROOT=127.0.0.2\n") else {
        return;
    };
    let mut server = g.spawn(&["serve", "tcp", "0.0.0.0:0"]);
    let listening = listening(&mut server);
    assert_eq!(ip(listening), "127.0.0.2");
    let line = g.probe(&["connect", "tcp", &format!("127.0.0.1:{}", listening.port())]);
    assert!(
        line.ends_with(&format!("to {listening}")),
        "connect to 127.0.0.1 did not land on {listening}: {line}"
    );
    let accepted = server.line();
    assert!(accepted.starts_with("accepted 127.0.0.2:"), "{accepted}");
}

#[test]
fn bind_to_localhost_means_the_first_address() {
    // PostgreSQL, MySQL and redis listen on 127.0.0.1 by default (seed
    // ctx-8: it is the guest's address); the rest of 127/8 is not mapped.
    let Some(g) = NetGuest::start("bindlo", "IPROOT=\"127.0.0.2 127.0.0.3\"\n") else {
        return;
    };
    for kind in ["tcp", "udp"] {
        let line = g.probe(&["bind", kind, "127.0.0.1:0"]);
        assert_eq!(ip(addr_of(&line, "bound ")), "127.0.0.2", "{kind}");
    }
    assert_eq!(g.probe(&["bind", "tcp", "127.0.0.5:0"]), "error EPERM");
    // A server on "127.0.0.1" and a client of 127.0.0.1 in the guest meet.
    let mut server = g.spawn(&["serve", "tcp", "127.0.0.1:0"]);
    let on = listening(&mut server);
    assert_eq!(ip(on), "127.0.0.2");
    let line = g.probe(&["connect", "tcp", &format!("127.0.0.1:{}", on.port())]);
    assert!(line.ends_with(&format!("to {on}")), "{line}");
    assert!(server.line().starts_with("accepted 127.0.0.2:"));

    // A guest that has 127.0.0.1 itself keeps it, in bind and connect.
    let Some(own) = NetGuest::start("ownlo", "IPROOT=\"127.0.0.3 127.0.0.1\"\n") else {
        return;
    };
    let line = own.probe(&["bind", "tcp", "127.0.0.1:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "127.0.0.1");
    let mut server = own.spawn(&["serve", "tcp", "127.0.0.1:0"]);
    let on = listening(&mut server);
    assert_eq!(ip(on), "127.0.0.1");
    let line = own.probe(&["connect", "tcp", &format!("127.0.0.1:{}", on.port())]);
    assert!(line.ends_with(&format!("to {on}")), "{line}");
}

#[test]
fn a_real_daemon_on_localhost_is_reached_on_the_guests_address() {
    let Some(g) = NetGuest::start("httpd", "IPROOT=127.0.0.62\n") else {
        return;
    };
    std::fs::create_dir_all(g.setup.guest.join("www")).unwrap();
    std::fs::write(g.setup.guest.join("www/index.html"), "guest page\n").unwrap();
    // A port free on the guest's address, for busybox httpd's -p.
    let port = TcpListener::bind("127.0.0.62:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = g.setup.command(&[
        "exec",
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        &format!("127.0.0.1:{port}"),
        "-h",
        "/www",
    ]);
    let _httpd = common::process::Started(cmd.stderr(Stdio::piped()).spawn().unwrap());
    let get = || -> Option<String> {
        use std::io::{Read, Write};
        let mut conn = TcpStream::connect(("127.0.0.62", port)).ok()?;
        conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).ok()?;
        Some(reply)
    };
    let mut reply = None;
    wait_until("busybox httpd on 127.0.0.1 in the guest", || {
        reply = get();
        reply.is_some()
    });
    let reply = reply.unwrap();
    assert!(reply.ends_with("guest page\n"), "{reply}");
    // The guest's clients of 127.0.0.1 reach it.
    let out = g.setup.vserver(&[
        "exec",
        "/bin/busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://127.0.0.1:{port}/index.html"),
    ]);
    assert_eq!(text(&out.stdout), "guest page\n", "{}", text(&out.stderr));
}

#[test]
fn ipv6_localhost_means_the_first_ipv6_address() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // 2001:db8::/32 is for documentation; it goes on a dummy device only.
    let dummy = Dummy::new('6');
    let dev = dummy.name();
    let conf = format!("IPROOT=\"192.0.2.30/24 2001:db8::30/64\"\nIPROOTDEV={dev}\n");
    let g = NetGuest::start("bind6lo", &conf).unwrap();
    let line = g.probe(&["bind", "tcp", "[::1]:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "2001:db8::30");
    let line = g.probe(&["bind", "tcp", "127.0.0.1:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "192.0.2.30");
    g.setup.ok(&["stop"]);
}

#[test]
fn unbound_tcp_and_udp_leave_from_the_guests_address() {
    let Some(g) = NetGuest::start("source", "IPROOT=\"127.0.0.2 127.0.0.3\"\n") else {
        return;
    };
    // The peer is a host socket on an address that is not the guest's.
    let listener = TcpListener::bind("127.0.0.50:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let line = g.probe(&["connect", "tcp", &format!("127.0.0.50:{port}")]);
    assert!(line.starts_with("connected 127.0.0.2:"), "{line}");
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(ip(peer), "127.0.0.2");

    let udp = UdpSocket::bind("127.0.0.50:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = udp.local_addr().unwrap().port();
    let line = g.probe(&["send", "udp", &format!("127.0.0.50:{port}")]);
    assert!(line.starts_with("sent from "), "{line}");
    let mut buf = [0u8; 16];
    let (_, from) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(ip(from), "127.0.0.2");
}

#[test]
fn broadcast_works_for_udp() {
    // 127.255.255.255 from the mask; 127.0.0.255 from IPROOTBCAST.
    let Some(g) = NetGuest::start(
        "bcast",
        "IPROOT=\"127.0.0.2/8 127.0.1.2\"\nIPROOTBCAST=127.0.1.255\n",
    ) else {
        return;
    };
    for bcast in ["127.255.255.255", "127.0.1.255"] {
        let mut receiver = g.spawn(&["recv", "udp", &format!("{bcast}:0")]);
        let listening = listening(&mut receiver);
        assert_eq!(ip(listening), bcast);
        let host = UdpSocket::bind("127.0.0.1:0").unwrap();
        host.set_broadcast(true).unwrap();
        host.send_to(b"hello", listening).unwrap();
        let from = receiver.line();
        assert!(from.starts_with("from 127.0.0.1:"), "{bcast}: {from}");
    }
    // Sending to the broadcast address, from the guest's address.
    let host = UdpSocket::bind("127.255.255.255:0").unwrap();
    host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = host.local_addr().unwrap().port();
    let line = g.probe(&[
        "send",
        "udp",
        &format!("127.255.255.255:{port}"),
        "broadcast",
    ]);
    assert!(line.starts_with("sent from "), "{line}");
    let mut buf = [0u8; 16];
    let (_, from) = host.recv_from(&mut buf).unwrap();
    assert_eq!(ip(from), "127.0.0.2");
    // Another guest's broadcast address is not the guest's.
    assert_eq!(g.probe(&["bind", "udp", "127.0.2.255:0"]), "error EPERM");
}

#[test]
fn a_listener_without_bind_is_not_reachable_on_a_foreign_address() {
    let Some(g) = NetGuest::start("autobind", "IPROOT=127.0.0.2\n") else {
        return;
    };
    let mut server = g.spawn(&["serve", "tcp", "-"]);
    let listening = listening(&mut server);
    // The kernel bound it to 0.0.0.0 itself, with no bind hook run...
    assert_eq!(ip(listening), "0.0.0.0");
    // ...yet a connection to a host address that is not the guest's is
    // dropped on the way in,
    let foreign: SocketAddr = format!("127.0.0.50:{}", listening.port()).parse().unwrap();
    let err = TcpStream::connect_timeout(&foreign, Duration::from_millis(700)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    // ...and one to the guest's address is accepted.
    let own: SocketAddr = format!("127.0.0.2:{}", listening.port()).parse().unwrap();
    let _conn = TcpStream::connect_timeout(&own, Duration::from_secs(5)).unwrap();
    let accepted = server.line();
    assert!(accepted.contains(" on 127.0.0.2:"), "{accepted}");
}

#[test]
fn ipv6_without_an_address_is_a_host_without_ipv6() {
    // Debian's nginx listens on 0.0.0.0:80 and on [::]:80 (IPV6_V6ONLY)
    // and fails when it cannot open either.
    let Some(a) = NetGuest::start("nov6a", "IPROOT=127.0.0.216\n") else {
        return;
    };
    let b = NetGuest::start("nov6b", "IPROOT=127.0.0.217\n").unwrap();
    assert_eq!(a.probe(&["socket", "inet6"]), "ok");
    // Both guests "listen on [::]:80" at once: each gets an ephemeral port
    // on ::1 that takes port 80 from nobody...
    let mut server_a = a.spawn(&["serve", "tcp", "[::]:80", "v6only"]);
    let mut server_b = b.spawn(&["serve", "tcp", "[::]:80", "v6only"]);
    let on_a = listening(&mut server_a);
    let on_b = listening(&mut server_b);
    for on in [on_a, on_b] {
        assert_eq!(ip(on), "::1", "{on}");
        assert_ne!(on.port(), 80, "{on}");
    }
    // ...and that nothing reaches: the host's connection to it is dropped
    // on the way in.
    let err = TcpStream::connect_timeout(&on_a, Duration::from_millis(700)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let port80: SocketAddr = "[::1]:80".parse().unwrap();
    assert!(TcpStream::connect_timeout(&port80, Duration::from_millis(700)).is_err());
    // nginx's IPv4 listener beside it.
    let line = a.probe(&["bind", "tcp", "0.0.0.0:80"]);
    assert_eq!(addr_of(&line, "bound ").to_string(), "127.0.0.216:80");
    // The answers of a host without IPv6 addresses and routes.
    for addr in ["[::1]:0", "[2001:db8::1]:0"] {
        assert_eq!(
            a.probe(&["bind", "tcp", addr]),
            "error EADDRNOTAVAIL",
            "{addr}"
        );
    }
    let to_listener = format!("[::1]:{}", on_a.port());
    assert_eq!(
        a.probe(&["connect", "tcp", &to_listener]),
        "error ENETUNREACH"
    );
    assert_eq!(a.probe(&["send", "udp", "[::1]:9"]), "error ENETUNREACH");
    // A dual-stack listener the kernel bound to [::] itself (no bind hook
    // runs) gets only IPv4 traffic addressed to the guest.
    let mut autobound = a.spawn(&["serve", "tcp", "-6"]);
    let port = listening(&mut autobound).port();
    let foreign: SocketAddr = format!("127.0.0.50:{port}").parse().unwrap();
    let err = TcpStream::connect_timeout(&foreign, Duration::from_millis(700)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let on_loopback6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let err = TcpStream::connect_timeout(&on_loopback6, Duration::from_millis(700)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let own: SocketAddr = format!("127.0.0.216:{port}").parse().unwrap();
    let _conn = TcpStream::connect_timeout(&own, Duration::from_secs(5)).unwrap();
    let accepted = autobound.line();
    assert!(accepted.contains(" on [::ffff:127.0.0.216]:"), "{accepted}");
    // IPv4-mapped addresses stay refused: they would go around the IPv4 rules.
    assert_eq!(
        a.probe(&["bind", "tcp", "[::ffff:127.0.0.216]:0"]),
        "error EPERM"
    );
    assert_eq!(
        a.probe(&["connect", "tcp", "[::ffff:127.0.0.216]:80"]),
        "error EPERM"
    );
}

#[test]
fn ipv6_is_confined_with_an_address() {
    let Some(g) = NetGuest::start("v6", "IPROOT=\"127.0.0.2 ::1\"\n") else {
        return;
    };
    let line = g.probe(&["bind", "tcp", "[::]:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "::1");
    assert_eq!(g.probe(&["bind", "tcp", "[2001:db8::1]:0"]), "error EPERM");
    // An IPv4-mapped address would go around the IPv4 rules.
    assert_eq!(
        g.probe(&["bind", "tcp", "[::ffff:127.0.0.1]:0"]),
        "error EPERM"
    );
    assert_eq!(
        g.probe(&["bind", "tcp", "[::ffff:127.0.0.2]:0"]),
        "error EPERM"
    );
    // IPv4 keeps working beside it.
    let line = g.probe(&["bind", "tcp", "0.0.0.0:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "127.0.0.2");
    let mut server = g.spawn(&["serve", "tcp", "[::]:0"]);
    let listening = listening(&mut server);
    assert_eq!(ip(listening), "::1");
    let line = g.probe(&["connect", "tcp", &format!("[::1]:{}", listening.port())]);
    assert!(line.starts_with("connected [::1]:"), "{line}");
}

#[test]
fn sixteen_addresses_with_high_last_bytes() {
    let addrs: Vec<String> = (1..=15)
        .map(|i| format!("127.0.1.{}", i * 16))
        .chain(["127.0.1.255".to_string()])
        .collect();
    let Some(g) = NetGuest::start("sixteen", &format!("IPROOT=\"{}\"\n", addrs.join(" "))) else {
        return;
    };
    for a in &addrs {
        let line = g.probe(&["bind", "udp", &format!("{a}:0")]);
        assert_eq!(ip(addr_of(&line, "bound ")), *a);
    }
    // Neighbours of allowed addresses, above and below 128.
    for refused in [
        "127.0.1.17",
        "127.0.1.200",
        "127.0.1.254",
        "127.0.0.255",
        "127.0.2.16",
    ] {
        assert_eq!(
            g.probe(&["bind", "udp", &format!("{refused}:0")]),
            "error EPERM",
            "{refused}"
        );
    }
}

#[test]
fn host_addresses_when_iproot_is_empty() {
    let Some(g) = NetGuest::start("hostaddrs", "IPROOT=0.0.0.0\n") else {
        return;
    };
    assert!(g.program_ids().is_empty());
    let line = g.probe(&["bind", "tcp", "127.0.0.1:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "127.0.0.1");
    assert_eq!(g.probe(&["socket", "inet6"]), "ok");
}

#[test]
fn programs_and_cgroup_are_gone_after_stop() {
    let Some(g) = NetGuest::start("gone", "IPROOT=127.0.0.2\n") else {
        return;
    };
    let ids = g.program_ids();
    assert!(!ids.is_empty());
    assert!(
        ids.iter()
            .all(|&id| vsbox::net::ipv4root::program_exists(id))
    );
    g.setup.ok(&["stop"]);
    assert!(g.setup.cgroup_gone());
    // The kernel frees a removed cgroup's programs from a work queue.
    wait_until("the guest's BPF programs to be freed", || {
        ids.iter()
            .all(|&id| !vsbox::net::ipv4root::program_exists(id))
    });
}

/// Runs `cmd` (chbind or a v_ service) and checks that the cgroup it made,
/// vsbox-chbind-PID inside this process's own, is gone afterwards.
fn run_bound(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let name = format!("vsbox-chbind-{}", child.id());
    let out = child.wait_with_output().unwrap();
    let own = vsbox::context::cgroup::current_cgroup(rustix::process::getpid()).unwrap();
    let h = vsbox::context::cgroup::Hierarchies::detect().unwrap();
    let dir = h.v2.unwrap().join(own.v2.unwrap().trim_start_matches('/'));
    assert!(!dir.join(&name).exists(), "{name} was left behind");
    out
}

fn chbind(args: &[&str]) -> std::process::Output {
    run_bound(Command::new(vsbox_bin()).arg("chbind").args(args))
}

#[test]
fn chbind_confines_a_host_command() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let probe = netprobe();
    let probe = probe.to_str().unwrap();
    let out = chbind(&[
        "--silent",
        "--ip",
        "127.0.0.2",
        "--ip",
        "127.0.0.3",
        probe,
        "bind",
        "tcp",
        "0.0.0.0:0",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("bound 127.0.0.2:"),
        "{}",
        text(&out.stdout)
    );
    let out = chbind(&[
        "--silent",
        "--ip",
        "127.0.0.2",
        probe,
        "bind",
        "tcp",
        "127.0.0.4:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).trim(), "error EPERM");
    let out = chbind(&[
        "--silent",
        "--ip",
        "127.0.0.2",
        probe,
        "bind",
        "tcp",
        "127.0.0.1:0",
    ]);
    assert!(
        text(&out.stdout).starts_with("bound 127.0.0.2:"),
        "{}",
        text(&out.stdout)
    );
    // A device name stands for its addresses: lo has 127.0.0.1.
    let out = chbind(&["--silent", "--ip", "lo", probe, "bind", "tcp", "0.0.0.0:0"]);
    assert!(
        text(&out.stdout).starts_with("bound 127.0.0.1:"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn chbind_without_an_address_or_command_is_a_usage_error() {
    for (args, says) in [
        (&["--ip"][..], "No value provided for option '--ip'"),
        (
            &["--ip", "/bin/true"][..],
            "neither an IP address nor a network device",
        ),
        (
            &["--ip", "nosuchdev0", "/bin/true"][..],
            "nor an existing network device",
        ),
        (&["/bin/true"][..], "no address given"),
        (&["--ip", "127.0.0.2"][..], "no command given"),
    ] {
        let out = chbind(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn start_puts_the_addresses_on_their_device_and_stop_takes_them_off() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dummy = Dummy::new('n');
    let dev = dummy.name();
    let conf = format!("IPROOT=\"{dev}:192.0.2.10/24 198.51.100.7/24\"\nIPROOTDEV={dev}\n");
    let g = NetGuest::start("alias", &conf).unwrap();
    let lines = addrs(dev);
    let first = find(&lines, "192.0.2.10/24").expect("192.0.2.10 is not on the device");
    assert_eq!(first.brd.as_deref(), Some("192.0.2.255"));
    let label = first.label.clone().unwrap();
    assert!(label.starts_with(&format!("{dev}:vt")), "{label}");
    let second = find(&lines, "198.51.100.7/24").expect("198.51.100.7 is not on the device");
    assert!(
        second
            .label
            .as_ref()
            .unwrap()
            .starts_with(&format!("{dev}:vt"))
    );
    // The guest binds to its address, now that the host has it.
    let line = g.probe(&["bind", "tcp", "0.0.0.0:0"]);
    assert_eq!(ip(addr_of(&line, "bound ")), "192.0.2.10");
    g.setup.ok(&["stop"]);
    let ours = |l: &&common::netdev::Line| !l.addr.starts_with("fe80:");
    assert_eq!(
        addrs(dev).iter().filter(ours).count(),
        0,
        "{:?}",
        addrs(dev)
    );

    // --nodev leaves the devices alone.
    g.setup.ok(&["--nodev", "start"]);
    assert_eq!(
        addrs(dev).iter().filter(ours).count(),
        0,
        "{:?}",
        addrs(dev)
    );
    g.setup.ok(&["--nodev", "stop"]);
}

#[test]
fn exec_on_a_stopped_guest_has_its_addresses_while_it_runs() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dummy = Dummy::new('x');
    let dev = dummy.name();
    let conf = format!("IPROOT=\"{dev}:192.0.2.40/24\"\n");
    let setup = Setup::new("oneshot", &conf, "#!/bin/sh\n");
    std::fs::copy(netprobe(), setup.guest.join("bin/netprobe")).unwrap();
    let on_device = || find(&addrs(dev), "192.0.2.40/24").is_some();
    // The one-shot context (seed 0.16): the address is there while the
    // command runs, so the guest's daemons can bind it...
    let out = setup.vserver(&["exec", "/bin/netprobe", "bind", "tcp", "0.0.0.0:0"]);
    let line = text(&out.stdout);
    assert!(
        line.starts_with("bound 192.0.2.40:"),
        "{line}{}",
        text(&out.stderr)
    );
    // ...and gone after it, whether the command succeeded or not.
    assert!(!on_device(), "{:?}", addrs(dev));
    let out = setup.vserver(&["exec", "/bin/false"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!on_device(), "{:?}", addrs(dev));
    let out = setup.vserver(&["exec", "/bin/no-such-command"]);
    assert!(!out.status.success());
    assert!(!on_device(), "{:?}", addrs(dev));
    // --nodev leaves the devices alone.
    let out = setup.vserver(&[
        "--nodev",
        "exec",
        "/bin/netprobe",
        "bind",
        "tcp",
        "0.0.0.0:0",
    ]);
    assert_eq!(text(&out.stdout).trim(), "error EADDRNOTAVAIL");
    assert!(!on_device(), "{:?}", addrs(dev));
}

#[test]
fn v_services_use_the_addresses_of_their_configuration() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let etc = common::tempdir::TempDir::new("vservices");
    etc.write(
        "vservices/probe.conf",
        "# a host service\nIP=\"127.0.0.5 lo\"\n",
    );
    etc.write("vservices/broken.conf", "IP=\"127.0.0.5\n");
    let vservice = |args: &[&str]| {
        Command::new(vsbox_bin())
            .arg("vservice")
            .args(args)
            .env("VSBOX_CONFIG_ROOT", etc.path())
            .output()
            .unwrap()
    };
    let out = vservice(&["--show", "probe"]);
    assert_eq!(text(&out.stdout).trim(), "127.0.0.5 127.0.0.1/8 ::1/128");
    // Without a file: 127.0.0.1 first.
    let out = vservice(&["--show", "nofile"]);
    assert!(
        text(&out.stdout).starts_with("127.0.0.1"),
        "{}",
        text(&out.stdout)
    );
    let out = vservice(&["--show", "broken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("broken.conf:1"),
        "{}",
        text(&out.stderr)
    );

    // Called as v_probe, vsbox is `vservice probe`.
    let link = etc.path().join("v_probe");
    std::os::unix::fs::symlink(vsbox_bin(), &link).unwrap();
    let probe = netprobe();
    let out = run_bound(
        Command::new(&link)
            .args([probe.to_str().unwrap(), "bind", "tcp", "0.0.0.0:0"])
            .env("VSBOX_CONFIG_ROOT", etc.path()),
    );
    assert!(
        text(&out.stdout).starts_with("bound 127.0.0.5:"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Waits for the probe's `listening ADDR` and returns ADDR.
fn listening(probe: &mut Probe) -> SocketAddr {
    let line = probe.line();
    let addr = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("expected 'listening ADDR', got '{line}'"));
    addr.parse().unwrap()
}
