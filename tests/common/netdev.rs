//! Network devices for the tests: a dummy device per test (removed by a
//! guard, pass or fail) and `ip`'s own view of addresses, independent of
//! the library's netlink code. Only documentation-range or 127.x addresses
//! go on these devices, and nothing is routed through them.

use std::process::Command;

pub fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("cannot run ip");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

pub fn ip_ok(args: &[&str]) {
    let (ok, text) = ip(args);
    assert!(ok, "ip {args:?}: {text}");
}

/// A dummy device, up, deleted (with its vlan devices) when dropped. On a
/// kernel without the dummy driver (the dev machine's), an ifb device,
/// which takes addresses the same way.
pub struct Dummy(String);

impl Dummy {
    pub fn new(tag: char) -> Self {
        let name = format!("vs{}{tag}", std::process::id() % 10000);
        let _ = ip(&["link", "del", &name]);
        if !ip(&["link", "add", &name, "type", "dummy"]).0 {
            assert!(
                std::env::var_os("VSBOX_TEST_VM").is_none(),
                "no dummy devices in the test VM"
            );
            ip_ok(&["link", "add", &name, "type", "ifb"]);
        }
        let dummy = Dummy(name);
        ip_ok(&["link", "set", &dummy.0, "up"]);
        dummy
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &format!("{}.231", self.0)]);
        let _ = ip(&["link", "del", &self.0]);
    }
}

/// One `inet`/`inet6` line of `ip -o addr show dev DEV`.
#[derive(Debug)]
pub struct Line {
    pub addr: String,
    pub brd: Option<String>,
    pub label: Option<String>,
}

pub fn addrs(dev: &str) -> Vec<Line> {
    let (_, text) = ip(&["-o", "addr", "show", "dev", dev]);
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line
            .split_whitespace()
            .map(|w| w.trim_end_matches('\\'))
            .collect();
        let Some(at) = words.iter().position(|w| *w == "inet" || *w == "inet6") else {
            continue;
        };
        let after = &words[at + 1..];
        let next = |key: &str| {
            let i = after.iter().position(|w| *w == key)?;
            after.get(i + 1).map(|w| w.to_string())
        };
        let prefix = format!("{dev}:");
        out.push(Line {
            addr: after[0].to_string(),
            brd: next("brd"),
            label: after
                .iter()
                .find(|w| **w == dev || w.starts_with(&prefix))
                .map(|w| w.to_string()),
        });
    }
    out
}

pub fn find<'a>(lines: &'a [Line], addr: &str) -> Option<&'a Line> {
    lines.iter().find(|l| l.addr == addr)
}

/// Whether the kernel can make vlan devices (8021q), tried on `dev`.
pub fn have_vlan(dev: &str) -> bool {
    let probe = format!("{dev}.9");
    let ok = ip(&[
        "link", "add", "link", dev, "name", &probe, "type", "vlan", "id", "9",
    ])
    .0;
    let _ = ip(&["link", "del", &probe]);
    if !ok {
        // The test VM's kernels have it: there, this is a failure.
        assert!(
            std::env::var_os("VSBOX_TEST_VM").is_none(),
            "no vlan support (8021q) in the test VM"
        );
        eprintln!("skipped: the kernel has no vlan support (8021q)");
    }
    ok
}

pub fn link_exists(dev: &str) -> bool {
    ip(&["link", "show", "dev", dev]).0
}
