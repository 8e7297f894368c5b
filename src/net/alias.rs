//! IP aliases: a guest's IPROOT addresses put on their devices at start
//! (labelled DEV:NAME, DEV:NAME1, ...) and taken off at stop.
//!
//! What was added is recorded in RUNDIR/NAME.net before each change, so a
//! stop after a crash or a failed start still finds and removes it. An
//! address the host already has is never touched, and never removed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::Result;
use crate::conf::GuestConfig;
use crate::context::runstate::RunDir;
use crate::error::{Context, Error};
use crate::net::iproot::IpRoot;
use crate::net::rtnetlink::{self, Address, AddressSpec};

/// The kernel keeps labels in IFNAMSIZ (16) bytes, NUL included.
const LABEL_MAX: usize = 15;

/// The network settings of a guest that aliases need.
#[derive(Debug, Clone, Copy)]
pub struct AliasConfig<'a> {
    pub ip_root: &'a IpRoot,
    /// IPROOTDEV: the device of entries that name none.
    pub dev: Option<&'a str>,
    /// IPROOTMASK (IPv4 only).
    pub mask: Option<u8>,
    /// IPROOTBCAST.
    pub bcast: Option<Ipv4Addr>,
}

impl<'a> From<&'a GuestConfig> for AliasConfig<'a> {
    fn from(g: &'a GuestConfig) -> Self {
        AliasConfig {
            ip_root: &g.ip_root,
            dev: g.ip_root_dev.as_deref(),
            mask: g.ip_root_mask,
            bcast: g.ip_root_bcast,
        }
    }
}

/// One change made at start, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Link(String),
    Addr(String, IpAddr, u8),
}

/// Adds guest `name`'s aliases; all or nothing.
pub fn add_aliases(name: &str, guest: &GuestConfig) -> Result<()> {
    add(&record_path(name), name, &AliasConfig::from(guest))
}

/// Removes what `add_aliases` recorded for `name`; nothing recorded is fine.
pub fn remove_aliases(name: &str) -> Result<()> {
    remove(&record_path(name))
}

/// RUNDIR/NAME.net: what was added for guest `name`.
pub fn record_path(name: &str) -> PathBuf {
    RunDir::from_env().guest_file(name).with_extension("net")
}

/// Adds the aliases of guest `name`, recording them in `record`.
pub fn add(record: &Path, name: &str, config: &AliasConfig) -> Result<()> {
    let path = record;
    // Left over from a crash: take it off before starting again.
    remove(path)?;
    let mut done = Vec::new();
    let result = add_all(name, config, path, &mut done);
    if (result.is_err() || done.is_empty()) && undo(&done).is_ok() {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn add_all(name: &str, config: &AliasConfig, path: &Path, done: &mut Vec<Change>) -> Result<()> {
    let host = rtnetlink::addresses(None)?;
    let mut count = 0;
    for entry in config.ip_root.entries() {
        let Some(dev) = entry.device.as_deref().or(config.dev) else {
            continue;
        };
        let label = label(dev, name, count);
        count += 1;
        if host.iter().any(|a| a.addr == entry.addr) {
            continue;
        }
        let index = match rtnetlink::link_index(dev)? {
            Some(index) => index,
            None => {
                let no_dev = || {
                    Error::failure(format!(
                        "cannot add {} to {dev}: no such device",
                        entry.addr
                    ))
                };
                let (parent, id) = vlan_parts(dev).ok_or_else(no_dev)?;
                let parent = rtnetlink::link_index(parent)?.ok_or_else(no_dev)?;
                apply(path, done, Change::Link(dev.to_string()), || {
                    rtnetlink::create_vlan(parent, id, dev)
                })?;
                rtnetlink::link_index(dev)?.ok_or_else(no_dev)?
            }
        };
        let v4 = entry.addr.is_ipv4();
        let prefix = entry
            .prefix
            .or(config.mask.filter(|_| v4))
            .or_else(|| own_prefix(&host, index, entry.addr))
            .unwrap_or(if v4 { 32 } else { 128 });
        let broadcast = match entry.addr {
            IpAddr::V4(a) => config.bcast.or_else(|| broadcast(a, prefix)),
            IpAddr::V6(_) => None,
        };
        let spec = AddressSpec {
            index,
            addr: entry.addr,
            prefix,
            broadcast,
            label: Some(label),
        };
        let change = Change::Addr(dev.to_string(), entry.addr, prefix);
        apply(path, done, change, || rtnetlink::add_address(&spec))?;
    }
    Ok(())
}

/// Records `change`, then makes it; a change that failed is forgotten.
fn apply(
    path: &Path,
    done: &mut Vec<Change>,
    change: Change,
    make: impl FnOnce() -> Result<()>,
) -> Result<()> {
    done.push(change);
    let result = write_record(path, done).and_then(|()| make());
    if result.is_err() {
        done.pop();
    }
    result
}

/// Removes what `record` lists, then the record.
pub fn remove(path: &Path) -> Result<()> {
    // Not blocking on a FIFO, nor reading anything but a small regular
    // file: a bad record must not hang stop (and every guest's with it).
    let what = || format!("cannot read {}", path.display());
    let Some(bytes) = crate::context::guestfile::read_regular(path, RECORD_MAX, what)? else {
        return Ok(());
    };
    undo(&parse_record(&String::from_utf8_lossy(&bytes)))?;
    std::fs::remove_file(path).context(|| format!("cannot remove {}", path.display()))
}

/// Takes off recorded addresses, then recorded vlan devices that have no
/// address left; what is already gone is fine. Goes on past a failure and
/// returns the first.
fn undo(changes: &[Change]) -> Result<()> {
    let mut first = Ok(());
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            if !rtnetlink::is_gone(&e) && first.is_ok() {
                first = Err(e);
            }
        }
    };
    for change in changes.iter().rev() {
        if let Change::Addr(dev, addr, prefix) = change {
            keep(rtnetlink::link_index(dev).and_then(|index| match index {
                Some(index) => rtnetlink::del_address(index, *addr, *prefix),
                None => Ok(()),
            }));
        }
    }
    for change in changes.iter().rev() {
        if let Change::Link(dev) = change {
            keep(rtnetlink::link_index(dev).and_then(|index| {
                let Some(index) = index else { return Ok(()) };
                let addrs = rtnetlink::addresses(Some(index))?;
                // The kernel's own IPv6 link-local address does not count.
                if addrs.iter().all(|a| is_link_local(a.addr)) {
                    rtnetlink::delete_link(index)?;
                }
                Ok(())
            }));
        }
    }
    first
}

fn is_link_local(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// A record larger than this is not one vsbox wrote (16 addresses and
/// their vlans take a few hundred bytes).
const RECORD_MAX: u64 = 64 * 1024;

fn write_record(path: &Path, changes: &[Change]) -> Result<()> {
    let mut text = String::new();
    for change in changes {
        text += &match change {
            Change::Link(dev) => format!("link {dev}\n"),
            Change::Addr(dev, addr, prefix) => format!("addr {dev} {addr}/{prefix}\n"),
        };
    }
    let tmp = path.with_extension("net.tmp");
    let what = || format!("cannot write {}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context(what)?;
    }
    crate::context::runstate::write_new(&tmp, text.as_bytes()).context(what)?;
    std::fs::rename(&tmp, path).context(what)
}

fn parse_record(text: &str) -> Vec<Change> {
    let parse = |line: &str| {
        let mut words = line.split_whitespace();
        match (words.next()?, words.next()?, words.next()) {
            ("link", dev, None) => Some(Change::Link(dev.to_string())),
            ("addr", dev, Some(addr)) => {
                let (addr, prefix) = addr.split_once('/')?;
                Some(Change::Addr(
                    dev.to_string(),
                    addr.parse().ok()?,
                    prefix.parse().ok()?,
                ))
            }
            _ => None,
        }
    };
    text.lines().filter_map(parse).collect()
}

/// DEV:NAME, then DEV:NAME1, DEV:NAME2, ..., cut to what the kernel keeps.
fn label(dev: &str, name: &str, n: usize) -> String {
    let mut label = format!("{dev}:{name}");
    if n > 0 {
        label += &n.to_string();
    }
    let mut end = label.len().min(LABEL_MAX);
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    label.truncate(end);
    label
}

/// eth0.231 -> (eth0, 231).
fn vlan_parts(dev: &str) -> Option<(&str, u16)> {
    let (parent, id) = dev.rsplit_once('.')?;
    let id: u16 = id.parse().ok()?;
    (!parent.is_empty() && (1..4095).contains(&id)).then_some((parent, id))
}

fn prefix_bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// Whether `addr` lies in `net`/`prefix` (same family).
fn contains(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    let ((n, bits), (a, abits)) = (prefix_bits(net), prefix_bits(addr));
    if bits != abits || prefix > bits {
        return false;
    }
    let shift = u32::from(bits - prefix);
    shift >= 128 || (n >> shift) == (a >> shift)
}

/// The prefix of the device's own address whose network holds `addr`.
fn own_prefix(host: &[Address], index: u32, addr: IpAddr) -> Option<u8> {
    host.iter()
        .find(|a| a.index == index && contains(a.addr, a.prefix, addr))
        .map(|a| a.prefix)
}

fn broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix <= 30).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn labels_count_and_fit_the_kernel() {
        assert_eq!(label("eth0", "web", 0), "eth0:web");
        assert_eq!(label("eth0", "web", 1), "eth0:web1");
        assert_eq!(label("eth0.231", "webserver", 2), "eth0.231:webser");
        assert_eq!(label("eth0", "wébwébwéb", 0).len(), 14);
    }

    #[test]
    fn vlan_names() {
        assert_eq!(vlan_parts("eth0.231"), Some(("eth0", 231)));
        assert_eq!(vlan_parts("br.0.5"), Some(("br.0", 5)));
        assert_eq!(vlan_parts("eth0"), None);
        assert_eq!(vlan_parts("eth0.0"), None);
        assert_eq!(vlan_parts("eth0.4095"), None);
        assert_eq!(vlan_parts(".5"), None);
        assert_eq!(vlan_parts("eth0.x"), None);
    }

    #[test]
    fn prefixes_and_broadcasts() {
        assert!(contains(ip("192.0.2.1"), 24, ip("192.0.2.200")));
        assert!(!contains(ip("192.0.2.1"), 24, ip("192.0.3.1")));
        assert!(contains(ip("10.0.0.1"), 0, ip("192.0.3.1")));
        assert!(!contains(ip("10.0.0.1"), 8, ip("2001:db8::1")));
        assert!(contains(ip("2001:db8::1"), 32, ip("2001:db8:5::1")));
        assert!(!contains(ip("2001:db8::1"), 129, ip("2001:db8::1")));
        let host = [Address {
            index: 3,
            addr: ip("198.51.100.1"),
            prefix: 25,
            label: None,
            broadcast: None,
        }];
        assert_eq!(own_prefix(&host, 3, ip("198.51.100.100")), Some(25));
        assert_eq!(own_prefix(&host, 3, ip("198.51.100.200")), None);
        assert_eq!(own_prefix(&host, 4, ip("198.51.100.100")), None);
        let b = |a: &str, p| broadcast(a.parse().unwrap(), p).map(|b| b.to_string());
        assert_eq!(b("192.0.2.5", 24).as_deref(), Some("192.0.2.255"));
        assert_eq!(b("127.0.0.5", 8).as_deref(), Some("127.255.255.255"));
        assert_eq!(b("10.1.2.3", 0).as_deref(), Some("255.255.255.255"));
        assert_eq!(b("192.0.2.5", 31), None);
        assert_eq!(b("192.0.2.5", 32), None);
    }

    #[test]
    fn record_round_trips_and_skips_garbage() {
        let changes = vec![
            Change::Link("eth0.231".into()),
            Change::Addr("eth0.231".into(), ip("192.0.2.5"), 24),
            Change::Addr("eth0".into(), ip("2001:db8::5"), 64),
        ];
        let dir = std::env::temp_dir().join(format!("vsbox-alias-unit-{}", std::process::id()));
        let path = dir.join("g.net");
        write_record(&path, &changes).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(parse_record(&text), changes);
        let junk =
            "link\naddr eth0 1.2.3.4\naddr eth0 x/8\naddr eth0 1.2.3.4/99x\nfoo bar\nlink a b\n";
        assert_eq!(parse_record(junk), vec![]);
    }
}
