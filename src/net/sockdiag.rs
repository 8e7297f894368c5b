//! Which TCP and UDP sockets belong to which guest (vnetstat, N8).
//!
//! The kernel lists sockets through NETLINK_SOCK_DIAG: one
//! SOCK_DIAG_BY_FAMILY dump (`struct inet_diag_req_v2`) per address family
//! and protocol, answered by one `struct inet_diag_msg` per socket. Since
//! Linux 5.9 each answer carries INET_DIAG_CGROUP_ID, the id of the v2 cgroup
//! of the process that created the socket (an accepted connection inherits
//! its listener's). That id is the inode number of the cgroup's directory, so
//! a socket belongs to guest NAME when its id is the inode of
//! `<v2>/vsbox/NAME` or of a directory below it.
//!
//! Where a socket carries no cgroup id (a kernel without it), it is
//! attributed by ownership instead: the guest's processes' open
//! descriptors (`/proc/PID/fd`, `socket:[INODE]`) name the socket's inode.
//! Sockets with neither (TIME_WAIT and half-open connections, which are not
//! full sockets) are not attributed to any guest.
//!
//! Guests share the host's network stack, so one dump sees every guest.
//! Parsing is bounds-checked: a short or odd reply is skipped, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::context::cgroup::Cgroup;
use crate::context::runstate::RunDir;
use crate::error::{Error, Result};
use crate::sys::netlink::{Attrs, Family, Message, NetlinkSocket};

/// The netlink message type of a sock_diag request and its answers.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `enum inet_diag_attr`: the u64 cgroup id (Linux 5.9).
pub const INET_DIAG_CGROUP_ID: u16 = 21;
/// Size of `struct inet_diag_req_v2`.
pub const REQ_LEN: usize = 56;
/// Size of `struct inet_diag_msg`.
pub const MSG_LEN: usize = 72;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// `TCP_CLOSE`: an unconnected UDP socket.
const TCP_CLOSE: u8 = 7;
/// The most directories of one guest's cgroup tree that are looked at.
const MAX_CGROUPS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One TCP or UDP socket as sock_diag reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetSocket {
    pub proto: Proto,
    /// The kernel's socket state (TCP_ESTABLISHED = 1 ... TCP_NEW_SYN_RECV = 12).
    pub state: u8,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub uid: u32,
    /// The socket's inode (0 for TIME_WAIT and request sockets).
    pub inode: u32,
    /// The v2 cgroup id of the socket's creator, when the kernel says.
    pub cgroup_id: Option<u64>,
}

impl InetSocket {
    /// `tcp`, `tcp6`, `udp` or `udp6`, as netstat writes it.
    pub fn proto_name(&self) -> &'static str {
        match (self.proto, self.local.is_ipv6()) {
            (Proto::Tcp, false) => "tcp",
            (Proto::Tcp, true) => "tcp6",
            (Proto::Udp, false) => "udp",
            (Proto::Udp, true) => "udp6",
        }
    }

    /// The state as netstat and ss name it; UDP sockets are `UNCONN` or
    /// `ESTABLISHED` (connected).
    pub fn state_name(&self) -> &'static str {
        if self.proto == Proto::Udp && self.state == TCP_CLOSE {
            return "UNCONN";
        }
        const NAMES: [&str; 13] = [
            "UNKNOWN",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT1",
            "FIN_WAIT2",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "CLOSING",
            "NEW_SYN_RECV",
        ];
        NAMES.get(usize::from(self.state)).unwrap_or(&"UNKNOWN")
    }
}

/// `127.0.0.2:80`, `[::1]:80`; port 0 is `*` (`0.0.0.0:*` for no peer).
pub fn format_addr(addr: &SocketAddr) -> String {
    let port = match addr.port() {
        0 => "*".to_string(),
        p => p.to_string(),
    };
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// The dump request for every socket of `proto` in address family `v6` or
/// IPv4: all states, no extensions (the cgroup id comes unasked).
pub fn dump_request(proto: Proto, v6: bool) -> Message {
    let mut req = [0u8; REQ_LEN];
    req[0] = if v6 { AF_INET6 } else { AF_INET };
    req[1] = match proto {
        Proto::Tcp => IPPROTO_TCP,
        Proto::Udp => IPPROTO_UDP,
    };
    req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states
    let mut m = Message::new(SOCK_DIAG_BY_FAMILY, 0);
    m.bytes(&req);
    m
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ip_at(b: &[u8], at: usize, v6: bool) -> Option<IpAddr> {
    Some(if v6 {
        let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        IpAddr::V4(Ipv4Addr::from(o))
    })
}

/// Parses one answer (`struct inet_diag_msg` and its attributes); None for
/// a short message or an address family other than IPv4/IPv6.
pub fn parse_msg(proto: Proto, payload: &[u8]) -> Option<InetSocket> {
    if payload.len() < MSG_LEN {
        return None;
    }
    let v6 = match payload[0] {
        AF_INET => false,
        AF_INET6 => true,
        _ => return None,
    };
    // inet_diag_sockid at 4: sport, dport (big endian), src[16], dst[16],
    // if, cookie[2]; then expires, rqueue, wqueue, uid, inode.
    let local = SocketAddr::new(ip_at(payload, 8, v6)?, be_u16(payload, 4)?);
    let peer = SocketAddr::new(ip_at(payload, 24, v6)?, be_u16(payload, 6)?);
    let cgroup_id = Attrs::after(payload, MSG_LEN)
        .get(INET_DIAG_CGROUP_ID)
        .and_then(|d| Some(u64::from_ne_bytes(d.try_into().ok()?)));
    Some(InetSocket {
        proto,
        state: payload[1],
        local,
        peer,
        uid: ne_u32(payload, 64)?,
        inode: ne_u32(payload, 68)?,
        cgroup_id,
    })
}

/// Every TCP and UDP socket (IPv4 and IPv6) of the caller's network
/// namespace.
pub fn inet_sockets() -> Result<Vec<InetSocket>> {
    let mut nl = NetlinkSocket::open(Family::SockDiag)
        .map_err(|e| Error::sys("cannot open a sock_diag netlink socket", e))?;
    let mut out = Vec::new();
    for proto in [Proto::Tcp, Proto::Udp] {
        for v6 in [false, true] {
            let r = nl.dump(&mut dump_request(proto, v6), |t, payload| {
                if t == SOCK_DIAG_BY_FAMILY {
                    out.extend(parse_msg(proto, payload));
                }
            });
            match r {
                Ok(()) => {}
                // No IPv6 (or no UDP diag module): nothing of that kind.
                Err(_) if v6 || proto == Proto::Udp => {}
                Err(e) => return Err(Error::sys("cannot list the TCP sockets", e)),
            }
        }
    }
    Ok(out)
}

/// A socket and the guest it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSocket {
    pub guest: String,
    pub socket: InetSocket,
}

/// One running guest's cgroup ids and (only where needed) socket inodes.
struct GuestIds {
    name: String,
    cgroup: Cgroup,
    ids: Vec<u64>,
}

/// The cgroup ids of a v2 directory and every directory below it. cgroupfs
/// holds no symbolic links, so walking it by path follows none.
pub fn cgroup_tree_ids(root: PathBuf) -> Result<Vec<u64>> {
    let meta = std::fs::symlink_metadata(&root)
        .map_err(|e| Error::io(format!("cannot stat {}", root.display()), &e))?;
    let mut ids = vec![meta.ino()];
    let mut pending = vec![root];
    let mut seen = 1;
    while let Some(dir) = pending.pop() {
        // A sub-cgroup removed meanwhile is simply gone.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() && seen < MAX_CGROUPS {
                seen += 1;
                ids.push(meta.ino());
                pending.push(entry.path());
            }
        }
    }
    Ok(ids)
}

/// The socket inodes the guest's processes hold open.
fn socket_inodes(cgroup: &Cgroup) -> Vec<u64> {
    let mut inodes = Vec::new();
    for pid in cgroup.processes().unwrap_or_default() {
        let dir = format!("/proc/{}/fd", pid.as_raw_nonzero());
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t
                    .strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                {
                    inodes.push(n);
                }
            }
        }
    }
    inodes
}

/// Attributes `sockets` to `guests` (name, cgroup ids); a socket without a
/// cgroup id goes by inode through `inodes_of` (asked at most once per
/// guest). Sorted by guest, protocol, local address.
pub fn attribute(
    sockets: &[InetSocket],
    guests: &[(String, Vec<u64>)],
    mut inodes_of: impl FnMut(usize) -> Vec<u64>,
) -> Vec<GuestSocket> {
    // (id, guest index), sorted: looked up by binary search.
    let mut by_id: Vec<(u64, usize)> = Vec::new();
    for (i, (_, ids)) in guests.iter().enumerate() {
        by_id.extend(ids.iter().map(|&id| (id, i)));
    }
    by_id.sort_unstable();
    let mut by_inode: Option<Vec<(u64, usize)>> = None;
    let find = |table: &[(u64, usize)], key: u64| {
        let at = table.partition_point(|&(k, _)| k < key);
        table.get(at).filter(|&&(k, _)| k == key).map(|&(_, i)| i)
    };
    let mut out = Vec::new();
    for s in sockets {
        let owner = match s.cgroup_id {
            Some(id) => find(&by_id, id),
            None if s.inode != 0 => {
                let table = by_inode.get_or_insert_with(|| {
                    let mut t: Vec<(u64, usize)> = Vec::new();
                    for i in 0..guests.len() {
                        t.extend(inodes_of(i).into_iter().map(|ino| (ino, i)));
                    }
                    t.sort_unstable();
                    t
                });
                find(table, u64::from(s.inode))
            }
            None => None,
        };
        if let Some(i) = owner {
            out.push(GuestSocket {
                guest: guests[i].0.clone(),
                socket: *s,
            });
        }
    }
    out.sort_by(|a, b| {
        (
            &a.guest,
            a.socket.proto,
            a.socket.local.is_ipv6(),
            a.socket.local,
        )
            .cmp(&(
                &b.guest,
                b.socket.proto,
                b.socket.local.is_ipv6(),
                b.socket.local,
            ))
    });
    out
}

/// The sockets of guest `name` (None: of every running guest). A guest
/// that is not running is an error.
pub fn guest_sockets(name: Option<&str>) -> Result<Vec<GuestSocket>> {
    let run = RunDir::from_env();
    let records = match name {
        Some(n) => match run.find(n)? {
            Some(r) => vec![r],
            None => return Err(Error::failure(format!("guest {n} is not running"))),
        },
        None => run.list()?,
    };
    let mut guests = Vec::new();
    for r in records {
        let cgroup = match Cgroup::open(&r.cgroup) {
            Ok(c) => c,
            // Stopped between the listing and now.
            Err(_) if name.is_none() => continue,
            Err(e) => return Err(e),
        };
        let ids = cgroup_tree_ids(cgroup.v2_path().to_path_buf())?;
        guests.push(GuestIds {
            name: r.name,
            cgroup,
            ids,
        });
    }
    let sockets = inet_sockets()?;
    let pairs: Vec<(String, Vec<u64>)> = guests
        .iter()
        .map(|g| (g.name.clone(), g.ids.clone()))
        .collect();
    Ok(attribute(&sockets, &pairs, |i| {
        socket_inodes(&guests[i].cgroup)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::NLMSG_HDRLEN;

    /// An inet_diag_msg as the kernel lays it out, with a cgroup id
    /// attribute when `cgroup` is given.
    fn fixture(family: u8, state: u8, cgroup: Option<u64>) -> Vec<u8> {
        let mut b = vec![family, state, 0, 0];
        b.extend_from_slice(&8080u16.to_be_bytes());
        b.extend_from_slice(&443u16.to_be_bytes());
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if family == AF_INET {
            src[..4].copy_from_slice(&[127, 0, 0, 2]);
            dst[..4].copy_from_slice(&[127, 0, 0, 1]);
        } else {
            src[15] = 1;
            dst = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9).octets();
        }
        b.extend_from_slice(&src);
        b.extend_from_slice(&dst);
        b.extend_from_slice(&[0; 12]); // if, cookie
        for v in [0u32, 0, 0, 1000, 4242] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(b.len(), MSG_LEN);
        // an unrelated attribute first (INET_DIAG_SHUTDOWN, u8)
        b.extend_from_slice(&[5, 0, 8, 0, 0, 0, 0, 0]);
        if let Some(id) = cgroup {
            b.extend_from_slice(&12u16.to_ne_bytes());
            b.extend_from_slice(&INET_DIAG_CGROUP_ID.to_ne_bytes());
            b.extend_from_slice(&id.to_ne_bytes());
        }
        b
    }

    #[test]
    fn request_is_an_inet_diag_req_v2_for_all_states() {
        let mut m = dump_request(Proto::Udp, true);
        let b = m.encode(1).to_vec();
        assert_eq!(b.len(), NLMSG_HDRLEN + REQ_LEN);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), SOCK_DIAG_BY_FAMILY);
        let req = &b[NLMSG_HDRLEN..];
        assert_eq!(&req[..4], &[AF_INET6, IPPROTO_UDP, 0, 0]);
        assert_eq!(&req[4..8], &[0xff; 4]);
        assert!(req[8..].iter().all(|&x| x == 0));
        let b = dump_request(Proto::Tcp, false).encode(2).to_vec();
        assert_eq!(&b[NLMSG_HDRLEN..NLMSG_HDRLEN + 2], &[AF_INET, IPPROTO_TCP]);
    }

    #[test]
    fn parses_ipv4_with_cgroup_id() {
        let s = parse_msg(Proto::Tcp, &fixture(AF_INET, 10, Some(0x1234_5678_9abc))).unwrap();
        assert_eq!(s.local, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(s.peer, "127.0.0.1:443".parse().unwrap());
        assert_eq!((s.uid, s.inode), (1000, 4242));
        assert_eq!(s.cgroup_id, Some(0x1234_5678_9abc));
        assert_eq!(s.state_name(), "LISTEN");
        assert_eq!(s.proto_name(), "tcp");
        assert_eq!(format_addr(&s.local), "127.0.0.2:8080");
    }

    #[test]
    fn parses_ipv6_without_cgroup_id() {
        let s = parse_msg(Proto::Udp, &fixture(AF_INET6, TCP_CLOSE, None)).unwrap();
        assert_eq!(format_addr(&s.local), "[::1]:8080");
        assert_eq!(format_addr(&s.peer), "[fe80::9]:443");
        assert_eq!(s.cgroup_id, None);
        assert_eq!(s.state_name(), "UNCONN");
        assert_eq!(s.proto_name(), "udp6");
        let unspecified = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0);
        assert_eq!(format_addr(&unspecified), "0.0.0.0:*");
    }

    #[test]
    fn short_or_odd_input_is_skipped() {
        let full = fixture(AF_INET, 1, Some(7));
        for n in 0..MSG_LEN {
            assert_eq!(parse_msg(Proto::Tcp, &full[..n]), None, "{n} bytes");
        }
        // the header alone: no attributes, still a socket
        let s = parse_msg(Proto::Tcp, &full[..MSG_LEN]).unwrap();
        assert_eq!(s.cgroup_id, None);
        // a truncated attribute is not read
        let s = parse_msg(Proto::Tcp, &full[..full.len() - 3]).unwrap();
        assert_eq!(s.cgroup_id, None);
        // a cgroup id of the wrong size is ignored
        let mut odd = full[..MSG_LEN + 8].to_vec();
        odd.extend_from_slice(&[8, 0, 21, 0, 1, 2, 3, 4]);
        assert_eq!(parse_msg(Proto::Tcp, &odd).unwrap().cgroup_id, None);
        // another address family
        let mut unix = full.clone();
        unix[0] = 1;
        assert_eq!(parse_msg(Proto::Tcp, &unix), None);
        // a state out of range has a name
        let mut weird = full;
        weird[1] = 200;
        assert_eq!(
            parse_msg(Proto::Tcp, &weird).unwrap().state_name(),
            "UNKNOWN"
        );
    }

    #[test]
    fn attributes_by_cgroup_id_then_inode() {
        let mk = |cg: Option<u64>, inode: u32, port: u16| InetSocket {
            proto: Proto::Tcp,
            state: 10,
            local: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            peer: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            uid: 0,
            inode,
            cgroup_id: cg,
        };
        let sockets = [
            mk(Some(50), 1, 3), // b's sub-cgroup
            mk(Some(10), 2, 2), // a
            mk(Some(99), 3, 1), // the host
            mk(None, 77, 4),    // by inode: a
            mk(None, 0, 5),     // TIME_WAIT: nobody
            mk(Some(10), 9, 1), // a
        ];
        let guests = vec![("a".to_string(), vec![10]), ("b".to_string(), vec![20, 50])];
        let mut asked = 0;
        let got = attribute(&sockets, &guests, |i| {
            asked += 1;
            if i == 0 { vec![77] } else { vec![] }
        });
        assert_eq!(asked, 2);
        let seen: Vec<(&str, u16)> = got
            .iter()
            .map(|g| (g.guest.as_str(), g.socket.local.port()))
            .collect();
        assert_eq!(seen, [("a", 1), ("a", 2), ("a", 4), ("b", 3)]);
        // all sockets have a cgroup id: no process is looked at
        let got = attribute(&sockets[..3], &guests, |_| unreachable!());
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_cgroup_tree_gives_every_directorys_id() {
        let root = std::env::temp_dir().join(format!("sockdiag-ids-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("c")).unwrap();
        std::fs::write(root.join("cgroup.procs"), "").unwrap();
        let mut ids = cgroup_tree_ids(root.clone()).unwrap();
        let mut want: Vec<u64> = ["", "a", "a/b", "c"]
            .iter()
            .map(|d| std::fs::metadata(root.join(d)).unwrap().ino())
            .collect();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(ids[0], want[0]);
        ids.sort_unstable();
        want.sort_unstable();
        assert_eq!(ids, want);
        assert!(cgroup_tree_ids(root).is_err());
    }

    #[test]
    fn dumps_this_hosts_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let Ok(all) = inet_sockets() else {
            return; // no sock_diag (a restricted sandbox)
        };
        let mine = all
            .iter()
            .find(|s| s.proto == Proto::Tcp && s.local.port() == port && s.state == 10)
            .unwrap_or_else(|| panic!("listener on {port} not in the dump"));
        // The cgroup id is the inode of our own v2 cgroup directory.
        let h = crate::context::cgroup::Hierarchies::detect().unwrap();
        let me = rustix::process::getpid();
        let cg = crate::context::cgroup::current_cgroup(me).unwrap();
        if let (Some(id), Some(v2), Some(path)) = (mine.cgroup_id, h.v2, cg.v2) {
            let dir = v2.join(path.trim_start_matches('/'));
            assert_eq!(
                std::fs::metadata(&dir).unwrap().ino(),
                id,
                "{}",
                dir.display()
            );
        }
    }
}
