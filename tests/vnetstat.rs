//! vnetstat against a real guest, as root: the guest's sockets and only
//! them. Loopback addresses only (127.0.0.0/8).

mod common;

use std::net::TcpListener;
use std::process::Output;

use common::process::wait_until;
use common::vsbox_bin;
use common::vserver::{Setup, text};

/// `vsbox vnetstat ARGS` with the guest's configuration root and run state.
fn vnetstat(s: &Setup, args: &[&str]) -> Output {
    std::process::Command::new(vsbox_bin())
        .arg("vnetstat")
        .args(args)
        .env("VSBOX_CONFIG_ROOT", s.etc.path())
        .env("VSBOX_RUN_DIR", s.run.path())
        .output()
        .unwrap()
}

fn ok(s: &Setup, args: &[&str]) -> String {
    let out = vnetstat(s, args);
    assert!(
        out.status.success(),
        "vnetstat {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The rows of a table, split into cells, header left out.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn lists_a_guests_listener_and_not_the_hosts_sockets() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // A free port on the guest's address, found by the host and let go.
    let addr = "127.0.0.7";
    let port = TcpListener::bind((addr, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let local = format!("{addr}:{port}");
    let rc = format!(
        "#!/bin/sh\nif [ \"$1\" != 6 ]; then busybox httpd -p {local} -h /var </dev/null >/dev/null 2>&1; fi\n"
    );
    let s = Setup::new("vnetstat", "", &rc);

    // Not running yet: a clear error.
    let out = vnetstat(&s, &[&s.name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("guest {} is not running", s.name)),
        "{}",
        text(&out.stderr)
    );

    s.ok(&["start"]);
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port().to_string();

    let mut table = String::new();
    wait_until("the guest's httpd to listen", || {
        table = ok(&s, &[&s.name]);
        table.contains(&local)
    });
    assert!(table.starts_with("PROTO "), "{table}");
    let rows = rows(&table);
    let row = rows.iter().find(|r| r[1] == local).unwrap();
    assert_eq!(row, &["tcp", &local, "0.0.0.0:*", "LISTEN"], "{table}");
    assert!(
        !rows
            .iter()
            .any(|r| r[1].ends_with(&format!(":{host_port}"))),
        "the host's listener is listed for the guest: {table}"
    );

    // Every guest: a GUEST column with the guest's name.
    let all = ok(&s, &[]);
    assert!(all.starts_with("GUEST "), "{all}");
    let rows_all = self::rows(&all);
    assert!(
        rows_all
            .iter()
            .any(|r| r == &[s.name.as_str(), "tcp", &local, "0.0.0.0:*", "LISTEN"]),
        "{all}"
    );
    assert!(
        !rows_all
            .iter()
            .any(|r| r[2].ends_with(&format!(":{host_port}"))),
        "{all}"
    );

    // JSON
    let json = ok(&s, &["--json", &s.name]);
    assert!(
        json.contains(&format!(
            "\"guest\": \"{}\", \"proto\": \"tcp\", \"local\": \"{local}\", \"peer\": \"0.0.0.0:*\", \"state\": \"LISTEN\", \"uid\": 0,",
            s.name
        )),
        "{json}"
    );

    // A connection the guest accepts belongs to it too (an accepted socket
    // keeps its listener's cgroup); the host's end does not.
    let conn = std::net::TcpStream::connect(&local).unwrap();
    let client = conn.local_addr().unwrap().to_string();
    wait_until("the accepted connection to be listed", || {
        table = ok(&s, &[&s.name]);
        self::rows(&table)
            .iter()
            .any(|r| r[1] == local && r[2] == client)
    });
    assert!(
        !self::rows(&table).iter().any(|r| r[1] == client),
        "the host's end is listed: {table}"
    );
    drop(conn);
    drop(host);

    s.ok(&["stop"]);
    assert_eq!(vnetstat(&s, &[&s.name]).status.code(), Some(1));
    let after = ok(&s, &[]);
    assert!(!after.contains(&s.name), "{after}");
}
