//! Netlink sockets: a message builder, a request that waits for the
//! kernel's ack, a dump that follows multi-part replies to NLMSG_DONE, and a
//! bounds-checked attribute iterator.
//!
//! Everything goes through rustix's safe socket calls; messages are built and
//! parsed as plain bytes (native endian, 4-byte aligned), so no `unsafe` is
//! needed. Users: src/net/rtnetlink.rs (NETLINK_ROUTE) and sock_diag.

use std::os::fd::OwnedFd;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    AddressFamily, Protocol, RecvFlags, SendFlags, SocketFlags, SocketType, recv, sendto,
    socket_with,
};

use crate::sys::errno::Errno;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Size of `struct nlmsghdr` (len u32, type u16, flags u16, seq u32, pid u32).
pub const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;

/// Large enough for any single dump datagram the kernel sends by default
/// (it fills at most max(page size, 32 KiB) per datagram).
const RECV_BUF: usize = 64 * 1024;

/// Which netlink family to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// NETLINK_ROUTE: links, addresses, routes.
    Route,
    /// NETLINK_SOCK_DIAG: socket listings.
    SockDiag,
}

pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink request under construction: the header, then a fixed
/// family header as bytes, then attributes.
#[derive(Debug, Clone)]
pub struct Message {
    buf: Vec<u8>,
}

impl Message {
    /// A message of `msg_type`; NLM_F_REQUEST is always added.
    pub fn new(msg_type: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&[0; 8]); // seq and port id, set when sent
        Message { buf }
    }

    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Appends raw bytes (a family's fixed header such as ifaddrmsg), padded
    /// to 4 bytes.
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends an attribute.
    pub fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = (NLA_HDRLEN + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.bytes(data)
    }

    pub fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    pub fn attr_u16(&mut self, kind: u16, value: u16) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.extend_from_slice(value.as_bytes());
        v.push(0);
        self.attr(kind, &v)
    }

    /// A nested attribute (NLA_F_NESTED set) whose content `fill` appends.
    pub fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.buf.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        fill(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn add_flags(&mut self, flags: u16) {
        let f = ne_u16(&self.buf, 6).unwrap_or(0) | flags;
        self.buf[6..8].copy_from_slice(&f.to_ne_bytes());
    }

    /// The encoded message with its length and sequence number filled in.
    pub fn encode(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// One received netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// The messages in one received datagram; stops at the first malformed one.
pub struct Messages<'a> {
    data: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Messages { data }
    }
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Received<'a>;

    fn next(&mut self) -> Option<Received<'a>> {
        let d = self.data;
        let len = ne_u32(d, 0)? as usize;
        if len < NLMSG_HDRLEN || len > d.len() {
            self.data = &[];
            return None;
        }
        let msg = Received {
            msg_type: ne_u16(d, 4)?,
            flags: ne_u16(d, 6)?,
            seq: ne_u32(d, 8)?,
            payload: &d[NLMSG_HDRLEN..len],
        };
        self.data = d.get(align4(len)..).unwrap_or(&[]);
        Some(msg)
    }
}

/// The attributes of a payload: `(type without flag bits, data)`. Stops at
/// the first attribute whose length does not fit.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    data: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Attributes filling `data` entirely (a nested attribute's content).
    pub fn new(data: &'a [u8]) -> Self {
        Attrs { data }
    }

    /// Attributes following a fixed header of `header_len` bytes.
    pub fn after(payload: &'a [u8], header_len: usize) -> Self {
        Attrs::new(payload.get(align4(header_len)..).unwrap_or(&[]))
    }

    /// The data of the first attribute of `kind`.
    pub fn get(mut self, kind: u16) -> Option<&'a [u8]> {
        self.find(|&(k, _)| k == kind).map(|(_, v)| v)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let d = self.data;
        let len = ne_u16(d, 0)? as usize;
        let kind = ne_u16(d, 2)?;
        if len < NLA_HDRLEN || len > d.len() {
            self.data = &[];
            return None;
        }
        self.data = d.get(align4(len)..).unwrap_or(&[]);
        Some((kind & NLA_TYPE_MASK, &d[NLA_HDRLEN..len]))
    }
}

/// A u32 attribute value (None when it has the wrong size).
pub fn attr_u32(data: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(data.try_into().ok()?))
}

/// A string attribute value, without its NUL terminator.
pub fn attr_str(data: &[u8]) -> Option<&str> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    std::str::from_utf8(&data[..end]).ok()
}

/// The errno of an NLMSG_ERROR payload: Ok(()) for an ack (error 0).
pub fn error_payload(payload: &[u8]) -> Result<(), Errno> {
    match ne_u32(payload, 0).map(|v| v as i32) {
        Some(0) => Ok(()),
        Some(e) if e < 0 => Err(Errno::from_raw(-e)),
        _ => Err(Errno::from_raw(linux_raw_sys::errno::EPROTO as i32)),
    }
}

/// An open netlink socket (SOCK_RAW, close-on-exec) talking to the kernel.
pub struct NetlinkSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl NetlinkSocket {
    pub fn open(family: Family) -> Result<Self, Errno> {
        let protocol = match family {
            Family::Route => None,
            Family::SockDiag => Some(rustix::net::netlink::SOCK_DIAG),
        };
        Self::open_protocol(protocol)
    }

    /// A socket of any netlink protocol (None = NETLINK_ROUTE).
    pub fn open_protocol(protocol: Option<Protocol>) -> Result<Self, Errno> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            protocol,
        )?;
        Ok(NetlinkSocket {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    fn send(&mut self, msg: &mut Message) -> Result<u32, Errno> {
        self.seq = self.seq.wrapping_add(1);
        let kernel = SocketAddrNetlink::new(0, 0);
        sendto(&self.fd, msg.encode(self.seq), SendFlags::empty(), &kernel)?;
        Ok(self.seq)
    }

    /// Receives datagrams and hands each message of sequence `seq` to
    /// `each` until it returns Some(result).
    fn receive<T>(
        &mut self,
        seq: u32,
        mut each: impl FnMut(Received<'_>) -> Option<Result<T, Errno>>,
    ) -> Result<T, Errno> {
        loop {
            let (_, len) = loop {
                match recv(&self.fd, &mut self.buf[..], RecvFlags::TRUNC) {
                    Err(rustix::io::Errno::INTR) => continue,
                    r => break r?,
                }
            };
            if len > self.buf.len() {
                return Err(Errno::from_raw(linux_raw_sys::errno::EMSGSIZE as i32));
            }
            for msg in Messages::new(&self.buf[..len]) {
                if msg.seq != seq {
                    continue; // a late answer to an earlier request
                }
                if let Some(result) = each(msg) {
                    return result;
                }
            }
        }
    }

    /// Sends `msg` with NLM_F_ACK and waits for the kernel's answer.
    pub fn request(&mut self, msg: &mut Message) -> Result<(), Errno> {
        msg.add_flags(NLM_F_ACK);
        let seq = self.send(msg)?;
        self.receive(seq, |m| {
            (m.msg_type == NLMSG_ERROR).then(|| error_payload(m.payload))
        })
    }

    /// Sends `msg` with NLM_F_DUMP and calls `each(type, payload)` for every
    /// reply message until NLMSG_DONE.
    pub fn dump(
        &mut self,
        msg: &mut Message,
        mut each: impl FnMut(u16, &[u8]),
    ) -> Result<(), Errno> {
        msg.add_flags(NLM_F_DUMP);
        let seq = self.send(msg)?;
        self.receive(seq, |m| match m.msg_type {
            NLMSG_DONE => Some(match ne_u32(m.payload, 0).map(|v| v as i32) {
                Some(e) if e < 0 => Err(Errno::from_raw(-e)),
                _ => Ok(()),
            }),
            NLMSG_ERROR => Some(error_payload(m.payload)),
            NLMSG_NOOP => None,
            t => {
                each(t, m.payload);
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_header_fixed_part_and_attributes() {
        let mut m = Message::new(20, NLM_F_CREATE);
        m.bytes(&[2, 8, 0, 0, 1, 0, 0, 0, 9]);
        m.attr_u32(2, 0x7f000001).attr_str(3, "lo:x");
        let b = m.encode(7).to_vec();
        assert_eq!(b.len() % 4, 0);
        assert_eq!(ne_u32(&b, 0), Some(b.len() as u32));
        assert_eq!(ne_u16(&b, 4), Some(20));
        assert_eq!(ne_u16(&b, 6), Some(NLM_F_CREATE | NLM_F_REQUEST));
        assert_eq!(ne_u32(&b, 8), Some(7));
        // fixed part: 9 bytes padded to 12
        assert_eq!(&b[16..25], &[2, 8, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(&b[25..28], &[0, 0, 0]);
        let attrs: Vec<_> = Attrs::after(&b[16..], 9).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].0, 2);
        assert_eq!(attr_u32(attrs[0].1), Some(0x7f000001));
        assert_eq!(attrs[1], (3, &b"lo:x\0"[..]));
        assert_eq!(attr_str(attrs[1].1), Some("lo:x"));
    }

    #[test]
    fn nested_attributes_carry_their_length_and_flag() {
        let mut m = Message::new(16, 0);
        m.bytes(&[0; 16]);
        m.nested(18, |m| {
            m.attr_str(1, "vlan");
            m.nested(2, |m| {
                m.attr_u16(1, 231);
            });
        });
        let b = m.encode(1).to_vec();
        let payload = &b[NLMSG_HDRLEN..];
        let (kind, info) = Attrs::after(payload, 16).next().unwrap();
        assert_eq!(kind, 18);
        assert_eq!(ne_u16(payload, 18), Some(18 | NLA_F_NESTED));
        // "vlan\0" -> 4 + 5 = 9, padded 12; nested 4 + (4 + 2 padded 8) = 12
        assert_eq!(info.len(), 24);
        let inner: Vec<_> = Attrs::new(info).collect();
        assert_eq!(inner[0], (1, &b"vlan\0"[..]));
        assert_eq!(inner[1].0, 2);
        assert_eq!(
            Attrs::new(inner[1].1).get(1),
            Some(&231u16.to_ne_bytes()[..])
        );
    }

    #[test]
    fn malformed_attributes_stop_without_panic() {
        // length shorter than the header
        assert_eq!(Attrs::new(&[2, 0, 1, 0, 9, 9]).count(), 0);
        // length past the end
        assert_eq!(Attrs::new(&[40, 0, 1, 0, 1, 2, 3, 4]).count(), 0);
        // truncated header
        assert_eq!(Attrs::new(&[8, 0, 1]).count(), 0);
        assert_eq!(Attrs::new(&[]).count(), 0);
        // one good attribute, then garbage
        let v: Vec<_> = Attrs::new(&[5, 0, 1, 0, 7, 0, 0, 0, 99, 0]).collect();
        assert_eq!(v, vec![(1, &[7u8][..])]);
        // a last attribute without its padding is still read
        assert_eq!(Attrs::new(&[5, 0, 1, 0, 7]).count(), 1);
        assert_eq!(Attrs::after(&[1, 2], 8).count(), 0);
        assert_eq!(attr_u32(&[1, 2, 3]), None);
        assert_eq!(attr_str(&[0xff, 0]), None);
    }

    #[test]
    fn messages_split_and_stop_on_bad_length() {
        let mut a = Message::new(NLMSG_ERROR, 0);
        a.bytes(&(-17i32).to_ne_bytes());
        let mut data = a.encode(3).to_vec();
        let mut b = Message::new(NLMSG_DONE, 0);
        b.bytes(&0u32.to_ne_bytes());
        data.extend_from_slice(b.encode(3));
        let msgs: Vec<_> = Messages::new(&data).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].msg_type, NLMSG_ERROR);
        assert_eq!(error_payload(msgs[0].payload), Err(Errno::from_raw(17)));
        assert_eq!(msgs[1].msg_type, NLMSG_DONE);
        assert_eq!(error_payload(&0u32.to_ne_bytes()), Ok(()));
        assert!(error_payload(&[1]).is_err());
        // truncated: claims 200 bytes
        let mut bad = data.clone();
        bad[0] = 200;
        assert_eq!(Messages::new(&bad).count(), 0);
        assert_eq!(Messages::new(&data[..10]).count(), 0);
        assert_eq!(Messages::new(&data[..data.len() - 1]).count(), 1);
    }

    #[test]
    fn route_socket_dumps_links() {
        // Unprivileged and harmless: list links; "lo" is always there.
        let Ok(mut s) = NetlinkSocket::open(Family::Route) else {
            return;
        };
        let mut m = Message::new(18, 0); // RTM_GETLINK
        m.bytes(&[0; 16]);
        let mut n = 0;
        s.dump(&mut m, |t, _| {
            assert_eq!(t, 16);
            n += 1;
        })
        .unwrap();
        assert!(n >= 1);
    }
}
