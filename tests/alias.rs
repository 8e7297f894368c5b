//! IP aliases against the real kernel (root only): each test makes its own
//! dummy device with `ip link add NAME type dummy` (removed by a guard, pass
//! or fail), puts only documentation-range or 127.x addresses on it, and
//! checks the result with `ip -o addr show dev NAME`, independently of the
//! library's own netlink code.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use common::netdev::{Dummy, addrs, find, have_vlan, ip, ip_ok, link_exists};
use common::tempdir::TempDir;
use vsbox::net::alias::{self, AliasConfig};
use vsbox::net::iproot::IpRoot;

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

fn record(dir: &TempDir, name: &str) -> PathBuf {
    dir.path().join(format!("{name}.net"))
}

fn config<'a>(root: &'a IpRoot, dev: Option<&'a str>) -> AliasConfig<'a> {
    AliasConfig {
        ip_root: root,
        dev,
        mask: None,
        bcast: None,
    }
}

#[test]
fn alias_gets_label_prefix_and_broadcast_and_goes_at_stop() {
    need_root!();
    let d = Dummy::new('a');
    let dev = d.name();
    let dir = TempDir::new("alias");
    let rec = record(&dir, "g");
    let root = IpRoot::parse(&format!("{dev}:192.0.2.5/24 127.3.0.5")).unwrap();
    // the second entry has no device of its own and no IPROOTDEV: not added
    alias::add(&rec, "g", &config(&root, None)).unwrap();
    let lines = addrs(dev);
    let a = find(&lines, "192.0.2.5/24").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(a.brd.as_deref(), Some("192.0.2.255"));
    assert_eq!(a.label.as_deref(), Some(&*format!("{dev}:g")));
    assert!(lines.iter().all(|l| !l.addr.starts_with("127.3.")));
    assert!(rec.exists());

    alias::remove(&rec).unwrap();
    assert!(find(&addrs(dev), "192.0.2.5/24").is_none());
    assert!(!rec.exists());
    // a second stop finds nothing to do
    alias::remove(&rec).unwrap();
}

#[test]
fn iprootdev_mask_and_bcast_apply() {
    need_root!();
    let d = Dummy::new('b');
    let dev = d.name();
    let dir = TempDir::new("alias");
    let rec = record(&dir, "web");
    let root = IpRoot::parse("198.51.100.7 127.4.0.9/16").unwrap();
    let cfg = AliasConfig {
        mask: Some(25),
        bcast: Some(Ipv4Addr::new(198, 51, 100, 99)),
        ..config(&root, Some(dev))
    };
    alias::add(&rec, "web", &cfg).unwrap();
    let lines = addrs(dev);
    let a = find(&lines, "198.51.100.7/25").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(a.brd.as_deref(), Some("198.51.100.99"));
    assert_eq!(a.label.as_deref(), Some(&*format!("{dev}:web")));
    let b = find(&lines, "127.4.0.9/16").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(b.label.as_deref(), Some(&*format!("{dev}:web1")));
    alias::remove(&rec).unwrap();
    let lines = addrs(dev);
    assert!(
        lines.iter().all(|l| !l.addr.starts_with("198.51.100.7")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.addr.starts_with("127.4.")),
        "{lines:?}"
    );
}

#[test]
fn several_entries_count_labels_and_take_the_device_prefix() {
    need_root!();
    let d = Dummy::new('c');
    let dev = d.name();
    ip_ok(&["addr", "add", "192.0.2.1/26", "dev", dev]);
    let dir = TempDir::new("alias");
    let rec = record(&dir, "g");
    let root = IpRoot::parse("192.0.2.10 192.0.2.200 2001:db8::10/64 2001:db8:1::5").unwrap();
    alias::add(&rec, "g", &config(&root, Some(dev))).unwrap();
    let lines = addrs(dev);
    // inside the device's 192.0.2.0/26: its prefix; outside: /32
    let a = find(&lines, "192.0.2.10/26").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(a.label.as_deref(), Some(&*format!("{dev}:g")));
    assert_eq!(a.brd.as_deref(), Some("192.0.2.63"));
    let b = find(&lines, "192.0.2.200/32").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(b.label.as_deref(), Some(&*format!("{dev}:g1")));
    assert!(find(&lines, "2001:db8::10/64").is_some(), "{lines:?}");
    assert!(find(&lines, "2001:db8:1::5/128").is_some(), "{lines:?}");
    // usable at once: no duplicate address detection pending
    let (_, text) = ip(&["-o", "addr", "show", "dev", dev]);
    assert!(!text.contains("tentative"), "{text}");

    alias::remove(&rec).unwrap();
    let lines = addrs(dev);
    for gone in ["192.0.2.10/26", "192.0.2.200/32", "2001:db8::10/64"] {
        assert!(find(&lines, gone).is_none(), "{lines:?}");
    }
    assert!(find(&lines, "192.0.2.1/26").is_some(), "{lines:?}");
}

#[test]
fn address_already_present_is_left_alone() {
    need_root!();
    let d = Dummy::new('d');
    let dev = d.name();
    ip_ok(&["addr", "add", "198.51.100.20/24", "dev", dev]);
    let dir = TempDir::new("alias");
    let rec = record(&dir, "g");
    let root = IpRoot::parse("198.51.100.20 198.51.100.21").unwrap();
    alias::add(&rec, "g", &config(&root, Some(dev))).unwrap();
    let lines = addrs(dev);
    let kept = find(&lines, "198.51.100.20/24").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(kept.label.as_deref(), Some(dev));
    let b = find(&lines, "198.51.100.21/24").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(b.label.as_deref(), Some(&*format!("{dev}:g1")));

    alias::remove(&rec).unwrap();
    let lines = addrs(dev);
    assert!(find(&lines, "198.51.100.20/24").is_some(), "{lines:?}");
    assert!(find(&lines, "198.51.100.21/24").is_none(), "{lines:?}");
}

#[test]
fn removal_works_from_the_record_alone() {
    need_root!();
    let d = Dummy::new('e');
    let dev = d.name();
    // As a crash would leave it: addresses on the device, a record naming
    // them (and one that never made it), nothing else known.
    ip_ok(&[
        "addr",
        "add",
        "127.5.0.1/8",
        "dev",
        dev,
        "label",
        &format!("{dev}:x"),
    ]);
    ip_ok(&["addr", "add", "2001:db8::77/64", "dev", dev]);
    let dir = TempDir::new("alias");
    let rec = dir.write(
        "x.net",
        &format!(
            "addr {dev} 127.5.0.1/8\naddr {dev} 2001:db8::77/64\naddr {dev} 192.0.2.99/24\n\
             addr vsbox-nodev 192.0.2.98/24\n"
        ),
    );
    alias::remove(&rec).unwrap();
    let lines = addrs(dev);
    assert!(find(&lines, "127.5.0.1/8").is_none(), "{lines:?}");
    assert!(find(&lines, "2001:db8::77/64").is_none(), "{lines:?}");
    assert!(!rec.exists());
}

#[test]
fn vlan_device_is_created_and_removed_at_stop() {
    need_root!();
    let d = Dummy::new('f');
    if !have_vlan(d.name()) {
        return;
    }
    let vlan = format!("{}.231", d.name());
    let dir = TempDir::new("alias");
    let rec = record(&dir, "v");
    let root = IpRoot::parse(&format!("{vlan}:192.0.2.40/24")).unwrap();
    alias::add(&rec, "v", &config(&root, None)).unwrap();
    assert!(link_exists(&vlan));
    // 8021q's own table: "NAME | ID | PARENT" (busybox ip has no -d)
    let table = std::fs::read_to_string("/proc/net/vlan/config").unwrap();
    let row = table
        .lines()
        .find(|l| l.split('|').next().map(str::trim) == Some(&*vlan));
    let row: Vec<&str> = row
        .unwrap_or_else(|| panic!("{table}"))
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(row, [&*vlan, "231", d.name()]);
    let (_, text) = ip(&["link", "show", "dev", &vlan]);
    assert!(text.contains(",UP"), "{text}");
    let lines = addrs(&vlan);
    let a = find(&lines, "192.0.2.40/24").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(a.label.as_deref(), Some(&*format!("{vlan}:v")));

    alias::remove(&rec).unwrap();
    assert!(!link_exists(&vlan));
    assert!(link_exists(d.name()));
}

#[test]
fn existing_vlan_device_is_kept() {
    need_root!();
    let d = Dummy::new('g');
    if !have_vlan(d.name()) {
        return;
    }
    let vlan = format!("{}.231", d.name());
    ip_ok(&[
        "link",
        "add",
        "link",
        d.name(),
        "name",
        &vlan,
        "type",
        "vlan",
        "id",
        "231",
    ]);
    let dir = TempDir::new("alias");
    let rec = record(&dir, "v");
    let root = IpRoot::parse(&format!("{vlan}:192.0.2.41/24")).unwrap();
    alias::add(&rec, "v", &config(&root, None)).unwrap();
    assert!(find(&addrs(&vlan), "192.0.2.41/24").is_some());
    alias::remove(&rec).unwrap();
    assert!(link_exists(&vlan));
    assert!(find(&addrs(&vlan), "192.0.2.41/24").is_none());
}

#[test]
fn failure_half_way_leaves_nothing() {
    need_root!();
    let d = Dummy::new('h');
    let dev = d.name();
    let vlan = format!("{dev}.231");
    let middle = if have_vlan(dev) { &vlan } else { dev };
    let dir = TempDir::new("alias");
    let rec = record(&dir, "g");
    let root = IpRoot::parse(&format!(
        "{dev}:192.0.2.50/24 {middle}:198.51.100.50/24 vsbox-nodev:192.0.2.52/24"
    ))
    .unwrap();
    let err = alias::add(&rec, "g", &config(&root, None)).unwrap_err();
    assert!(err.to_string().contains("vsbox-nodev"), "{err}");
    assert!(find(&addrs(dev), "192.0.2.50/24").is_none());
    assert!(find(&addrs(dev), "198.51.100.50/24").is_none());
    assert!(!link_exists(&vlan));
    assert!(!rec.exists());

    // The kernel refuses the third: IPv6 is disabled on the device.
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1").unwrap();
    let root = IpRoot::parse(&format!(
        "{dev}:192.0.2.60/24 {dev}:192.0.2.61/24 {dev}:2001:db8::62/64"
    ))
    .unwrap();
    let err = alias::add(&rec, "g", &config(&root, None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot add 2001:db8::62/64 to {dev}: Permission denied (EACCES)")
    );
    let lines = addrs(dev);
    assert!(
        lines.iter().all(|l| !l.addr.starts_with("192.0.2.6")),
        "{lines:?}"
    );
    assert!(!rec.exists());
}

#[test]
fn a_record_that_is_not_a_regular_file_is_refused_at_once() {
    // The run directory is the host's, but a FIFO or a symbolic link left
    // there must neither hang stop nor be followed.
    let dir = TempDir::new("alias-fifo");
    let fifo = record(&dir, "fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || tx.send(alias::remove(&path)).unwrap());
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("alias::remove hung on a FIFO");
    let err = result.unwrap_err().to_string();
    assert!(err.contains("it is a FIFO, not a regular file"), "{err}");
    let link = record(&dir, "link");
    std::os::unix::fs::symlink(dir.write("elsewhere", "addr lo 127.0.0.1/8\n"), &link).unwrap();
    let err = alias::remove(&link).unwrap_err().to_string();
    assert!(err.contains("a symbolic link"), "{err}");
}
