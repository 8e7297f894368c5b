//! ipv4root with cgroup-BPF: programs attached to the guest's cgroup v2 keep
//! its sockets on the guest's addresses (the seed's kernel patch did this
//! in the socket layer).
//!
//! - low ports: the root of a guest in a user namespace of its own has no
//!   CAP_NET_BIND_SERVICE in the host's network namespace; the bind
//!   programs answer 3 ("allowed, no capability check") for that uid alone
//!   (bpf_get_current_uid_gid), so its daemons bind ports below 1024 on
//!   the guest's addresses, and the guest's other users still may not.
//! - bind: 0.0.0.0 and 127.0.0.1 (:: and ::1) become the first address of
//!   that family, as in the seed, so daemons that listen on localhost by
//!   default (PostgreSQL, MySQL, redis) work and their local clients reach
//!   them through the connect rewrite; any other address must be one of
//!   the guest's (IPv4: or a broadcast address of the policy), else EPERM.
//!   Only 127.0.0.1 is mapped, not 127.0.0.0/8: other loopback addresses
//!   are other guests' or the host's.
//! - connect: 127.0.0.1 and 0.0.0.0 (::1 and ::) become the first address,
//!   and an unbound socket is bound to the first address (the bpf_bind
//!   helper, port 0) so its source is the guest's.
//! - A guest whose IPROOT has 127.0.0.1 (::1) itself keeps that address
//!   as is, in bind, connect and sendmsg alike.
//! - UDP sendmsg: the destination is rewritten as for connect; an unset
//!   source becomes the first address, an explicit one (IP_PKTINFO) must be
//!   the guest's.
//! - A guest without an IPv6 address behaves as a host whose IPv6 has no
//!   address and no route, because stock daemons expect that: Debian's
//!   nginx listens on both 0.0.0.0:80 and [::]:80 (IPV6_V6ONLY) and fails
//!   when either cannot be opened. Its IPv6 sockets can be made; bind to
//!   :: succeeds but is bound to ::1 with an ephemeral port, a listener
//!   that takes no port from anyone (two guests both "listen on [::]:80")
//!   and that ingress makes unreachable; bind to any other IPv6 address is
//!   EADDRNOTAVAIL, connect and sendmsg to an IPv6 destination
//!   ENETUNREACH (errnos chosen with bpf_set_retval, Linux 5.18). A
//!   dual-stack socket (no IPV6_V6ONLY) bound to :: gets no IPv4 traffic
//!   either: the hook cannot see that option.
//! - socket creation: AF_INET is refused (EPERM) when the guest has IPv6
//!   but no IPv4 address. Not symmetric with the above on purpose: Linux
//!   always has IPv4, so no daemon has a "host without IPv4" path to
//!   imitate, and an IPv6-only guest is a deliberate configuration.
//! - ingress: packets for the guest's sockets must be addressed to the
//!   guest (IPv4: or to a broadcast address, 255.255.255.255 included; no
//!   IPv6 packet for a guest without an IPv6 address).
//!   This closes the autobind gap: a socket that listens or sends without
//!   bind is bound to 0.0.0.0 (::) by the kernel with no bind hook run, and
//!   would otherwise receive traffic for every host address.
//!
//! IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are refused (EPERM) in every
//! IPv6 hook: a dual-stack socket would reach IPv4 through them without the
//! IPv4 hooks ever running. IPv4 multicast is not delivered to guests.
//!
//! Context offsets are those of struct bpf_sock_addr, struct bpf_sock and
//! struct __sk_buff (include/uapi/linux/bpf.h); addresses there are in
//! network byte order, so a 32-bit load of them equals `from_ne_bytes` of
//! the octets, which is how the immediates are made. 32-bit compares
//! (JMP32) keep addresses with a last byte >= 128 intact.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::bpf::{Asm, Cond, Insn, Label, Reg, Size};
use super::iproot::IpRoot;
use crate::error::{Context, Error, Result};
use crate::sys::bpf as sys;
use crate::sys::errno::Errno;

use Reg::*;

/// What a guest's sockets may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    ipv4: Vec<Ipv4Addr>,
    ipv6: Vec<Ipv6Addr>,
    broadcasts: Vec<Ipv4Addr>,
    /// The host uid of the root of a guest in a user namespace of its own:
    /// its binds to the guest's addresses skip the kernel's
    /// CAP_NET_BIND_SERVICE check, which is against the host's network
    /// namespace and which that root cannot pass (see `with_root_uid`).
    root_uid: Option<u32>,
}

impl Policy {
    /// The guest's addresses with their prefix lengths, in order (the first
    /// of each family is the one unbound sockets get), and an extra
    /// broadcast address. Each IPv4 address with a prefix of 30 or less
    /// adds its network's broadcast address.
    pub fn new(addrs: &[(IpAddr, Option<u8>)], bcast: Option<Ipv4Addr>) -> Policy {
        let mut p = Policy {
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            broadcasts: Vec::new(),
            root_uid: None,
        };
        for &(addr, prefix) in addrs {
            match addr.to_canonical() {
                IpAddr::V4(a) => {
                    push_new(&mut p.ipv4, a);
                    // A mapped IPv6 prefix counts from bit 96.
                    let prefix = prefix.map(|n| n - if addr.is_ipv6() { n.min(96) } else { 0 });
                    if let Some(n @ 0..=30) = prefix {
                        push_new(&mut p.broadcasts, (u32::from(a) | (u32::MAX >> n)).into());
                    }
                }
                IpAddr::V6(a) => push_new(&mut p.ipv6, a),
            }
        }
        if let Some(b) = bcast {
            push_new(&mut p.broadcasts, b);
        }
        p
    }

    /// The policy for IPROOT, with IPROOTMASK as `default_prefix` for
    /// addresses without one and IPROOTBCAST as `bcast`; None when the guest
    /// uses the host's addresses (no restriction).
    pub fn from_iproot(
        root: &IpRoot,
        default_prefix: Option<u8>,
        bcast: Option<Ipv4Addr>,
    ) -> Option<Policy> {
        if root.is_host() {
            return None;
        }
        let addrs: Vec<(IpAddr, Option<u8>)> = root
            .entries()
            .iter()
            .map(|e| {
                let prefix = match e.addr {
                    IpAddr::V4(_) => e.prefix.or(default_prefix),
                    IpAddr::V6(_) => e.prefix,
                };
                (e.addr, prefix)
            })
            .collect();
        Some(Policy::new(&addrs, bcast))
    }

    /// The same policy for a guest whose root is host uid `uid` in a user
    /// namespace of its own: that root binds ports below 1024 on the
    /// guest's addresses, as root does on a host (bind programs return 3,
    /// "allowed, no CAP_NET_BIND_SERVICE needed", for it alone: the guest's
    /// other users still may not).
    pub fn with_root_uid(mut self, uid: Option<u32>) -> Policy {
        self.root_uid = uid;
        self
    }

    pub fn ipv4(&self) -> &[Ipv4Addr] {
        &self.ipv4
    }

    pub fn ipv6(&self) -> &[Ipv6Addr] {
        &self.ipv6
    }

    /// Directed and extra broadcast addresses (255.255.255.255 only when
    /// given); ingress always accepts 255.255.255.255 as well.
    pub fn broadcasts(&self) -> &[Ipv4Addr] {
        &self.broadcasts
    }
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// One program, ready to load and attach.
#[derive(Debug, Clone)]
pub struct Program {
    /// `vsbox_*`: how `detach` recognises its programs.
    pub name: &'static str,
    pub prog_type: u32,
    pub attach_type: u32,
    pub insns: Vec<Insn>,
}

/// Every name starts with this; other programs on the cgroup are left alone.
pub const NAME_PREFIX: &str = "vsbox_";
const LICENSE: &str = "GPL";

/// The attach types vsbox uses, for query and detach.
const ATTACH_TYPES: [u32; 8] = [
    sys::CGROUP_INET4_BIND,
    sys::CGROUP_INET4_CONNECT,
    sys::CGROUP_UDP4_SENDMSG,
    sys::CGROUP_INET6_BIND,
    sys::CGROUP_INET6_CONNECT,
    sys::CGROUP_UDP6_SENDMSG,
    sys::CGROUP_INET_SOCK_CREATE,
    sys::CGROUP_INET_INGRESS,
];

// struct bpf_sock_addr.
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;
const USER_PORT: i16 = 24;
const MSG_SRC_IP4: i16 = 40;
const MSG_SRC_IP6: i16 = 44;
// struct bpf_sock.
const SOCK_FAMILY: i16 = 4;
// struct __sk_buff.
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
// Offsets of the destination in the IPv4 and IPv6 headers.
const IP4_DST: i16 = 16;
const IP6_DST: i16 = 24;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// bpf_bind(ctx, addr, addr_len), allowed in connect hooks.
const HELPER_BIND: i32 = 64;
/// bpf_set_retval(retval): the errno of a refused call (Linux 5.18).
const HELPER_SET_RETVAL: i32 = 187;

/// bpf_get_current_uid_gid(): uid in the low 32 bits, as the host sees it.
const HELPER_GET_CURRENT_UID_GID: i32 = 15;

const DENY: i32 = 0;
const ALLOW: i32 = 1;
/// A bind hook's "allowed, without the CAP_NET_BIND_SERVICE check" (Linux
/// 5.12).
const ALLOW_LOW_PORTS: i32 = 3;

fn word4(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

fn words6(a: Ipv6Addr) -> [u32; 4] {
    let o = a.octets();
    core::array::from_fn(|i| {
        u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

const LOOPBACK4: Ipv4Addr = Ipv4Addr::LOCALHOST;
const ANY4: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
const LOOPBACK6: Ipv6Addr = Ipv6Addr::LOCALHOST;
const ANY6: Ipv6Addr = Ipv6Addr::UNSPECIFIED;
/// The registers an IPv6 address is loaded into, one word each.
const V6: [Reg; 4] = [R2, R3, R4, R5];

/// Jumps to `hit` when the low 32 bits of `reg` are one of `addrs`.
fn match4(a: &mut Asm, reg: Reg, addrs: &[Ipv4Addr], hit: Label) {
    for &addr in addrs {
        a.jmp32_imm(Cond::Eq, reg, word4(addr), hit);
    }
}

/// Jumps to `hit` when the address in `V6` is one of `addrs`.
fn match6(a: &mut Asm, addrs: &[Ipv6Addr], hit: Label) {
    for &addr in addrs {
        let next = a.label();
        let w = words6(addr);
        for i in 0..3 {
            a.jmp32_imm(Cond::Ne, V6[i], w[i], next);
        }
        a.jmp32_imm(Cond::Eq, V6[3], w[3], hit);
        a.bind(next);
    }
}

/// Jumps to `hit` when the address in `V6` is IPv4-mapped.
fn match_mapped(a: &mut Asm, hit: Label) {
    let next = a.label();
    a.jmp32_imm(Cond::Ne, V6[0], 0, next)
        .jmp32_imm(Cond::Ne, V6[1], 0, next)
        .jmp32_imm(Cond::Eq, V6[2], u32::from_ne_bytes([0, 0, 0xff, 0xff]), hit)
        .bind(next);
}

fn load6(a: &mut Asm, base: Reg, off: i16) {
    for (i, reg) in V6.into_iter().enumerate() {
        a.ldx(Size::W, reg, base, off + 4 * i as i16);
    }
}

/// Stores `addr` at ctx (r1) + off, through r0: register stores, since
/// immediate stores into the context fail before Linux 6.3.
fn store4(a: &mut Asm, off: i16, addr: Ipv4Addr) {
    a.mov32_imm(R0, word4(addr)).stx(Size::W, R1, off, R0);
}

fn store6(a: &mut Asm, off: i16, addr: Ipv6Addr) {
    for (i, w) in words6(addr).into_iter().enumerate() {
        a.mov32_imm(R0, w).stx(Size::W, R1, off + 4 * i as i16, R0);
    }
}

/// Calls bpf_bind(ctx, sockaddr, len) with `sockaddr` (at most 32 bytes)
/// built on the stack; the result (-EINVAL when already bound) is ignored.
fn bind_helper(a: &mut Asm, sockaddr: &[u8]) {
    let len = sockaddr.len().div_ceil(8) * 8;
    let base = -(len as i16);
    for (i, chunk) in sockaddr.chunks(8).enumerate() {
        let mut dw = [0u8; 8];
        dw[..chunk.len()].copy_from_slice(chunk);
        a.ld_imm64(R2, u64::from_ne_bytes(dw))
            .stx(Size::DW, R10, base + 8 * i as i16, R2);
    }
    a.mov64_reg(R2, R10)
        .alu64_imm(super::bpf::Alu::Add, R2, base.into())
        .mov64_imm(R3, sockaddr.len() as i32)
        .call(HELPER_BIND);
}

/// Refuses the call with `errno` rather than the EPERM a plain refusal
/// gives, so that the caller sees what a host without the address or the
/// route would answer.
fn refuse(a: &mut Asm, errno: u32) {
    a.mov64_imm(R1, -(errno as i32))
        .call(HELPER_SET_RETVAL)
        .ret(DENY);
}

fn sockaddr_in(addr: Ipv4Addr) -> [u8; 16] {
    let mut s = [0; 16];
    s[..2].copy_from_slice(&AF_INET.to_ne_bytes());
    s[4..8].copy_from_slice(&addr.octets());
    s
}

fn sockaddr_in6(addr: Ipv6Addr) -> [u8; 28] {
    let mut s = [0; 28];
    s[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
    s[8..24].copy_from_slice(&addr.octets());
    s
}

fn finish(a: Asm, name: &'static str, prog_type: u32, attach_type: u32) -> Result<Program> {
    let insns = a
        .finish()
        .map_err(|e| Error::failure(format!("cannot build BPF program {name}: {e}")))?;
    Ok(Program {
        name,
        prog_type,
        attach_type,
        insns,
    })
}

fn sock_addr(a: Asm, name: &'static str, attach_type: u32) -> Result<Program> {
    finish(a, name, sys::PROG_TYPE_CGROUP_SOCK_ADDR, attach_type)
}

/// A bind hook's allowing end: for the root of a user-namespaced guest,
/// without the port check (see `Policy::with_root_uid`).
fn allow_bind(a: &mut Asm, p: &Policy) {
    if let Some(uid) = p.root_uid {
        let other = a.label();
        a.call(HELPER_GET_CURRENT_UID_GID)
            .jmp32_imm(Cond::Ne, R0, uid, other)
            .ret(ALLOW_LOW_PORTS)
            .bind(other);
    }
    a.ret(ALLOW);
}

fn bind4(p: &Policy, first: Ipv4Addr) -> Result<Program> {
    let mut a = Asm::new();
    let (rewrite, allow) = (a.label(), a.label());
    a.ldx(Size::W, R2, R1, USER_IP4);
    // The guest's own addresses first: one that is 127.0.0.1 stays as is.
    match4(&mut a, R2, &p.ipv4, allow);
    match4(&mut a, R2, &p.broadcasts, allow);
    match4(&mut a, R2, &[ANY4, LOOPBACK4], rewrite);
    a.ret(DENY).bind(rewrite);
    store4(&mut a, USER_IP4, first);
    a.bind(allow);
    allow_bind(&mut a, p);
    sock_addr(a, "vsbox_bind4", sys::CGROUP_INET4_BIND)
}

/// Rewrites a loopback or unspecified IPv4 destination at `off`, unless
/// the guest owns 127.0.0.1 itself.
fn redirect4(a: &mut Asm, p: &Policy, off: i16, first: Ipv4Addr) {
    let (rewrite, keep) = (a.label(), a.label());
    a.ldx(Size::W, R2, R1, off);
    match4(a, R2, &redirected4(p), rewrite);
    a.ja(keep).bind(rewrite);
    store4(a, off, first);
    a.bind(keep);
}

/// The addresses that mean "this guest" (the seed's ctx-8): 0.0.0.0, and
/// 127.0.0.1 unless it is one of the guest's own addresses.
fn redirected4(p: &Policy) -> Vec<Ipv4Addr> {
    let mut out = vec![ANY4];
    if !p.ipv4.contains(&LOOPBACK4) {
        out.push(LOOPBACK4);
    }
    out
}

/// The same for IPv6: :: and ::1.
fn redirected6(p: &Policy) -> Vec<Ipv6Addr> {
    let mut out = vec![ANY6];
    if !p.ipv6.contains(&LOOPBACK6) {
        out.push(LOOPBACK6);
    }
    out
}

fn connect4(p: &Policy, first: Ipv4Addr) -> Result<Program> {
    let mut a = Asm::new();
    redirect4(&mut a, p, USER_IP4, first);
    bind_helper(&mut a, &sockaddr_in(first));
    a.ret(ALLOW);
    sock_addr(a, "vsbox_connect4", sys::CGROUP_INET4_CONNECT)
}

fn sendmsg4(p: &Policy, first: Ipv4Addr) -> Result<Program> {
    let mut a = Asm::new();
    let (check, allow) = (a.label(), a.label());
    redirect4(&mut a, p, USER_IP4, first);
    a.ldx(Size::W, R2, R1, MSG_SRC_IP4)
        .jmp32_imm(Cond::Ne, R2, 0, check);
    store4(&mut a, MSG_SRC_IP4, first);
    a.ret(ALLOW).bind(check);
    match4(&mut a, R2, &p.ipv4, allow);
    a.ret(DENY).bind(allow).ret(ALLOW);
    sock_addr(a, "vsbox_sendmsg4", sys::CGROUP_UDP4_SENDMSG)
}

fn bind6(p: &Policy, first: Ipv6Addr) -> Result<Program> {
    let mut a = Asm::new();
    let (deny, rewrite, allow) = (a.label(), a.label(), a.label());
    load6(&mut a, R1, USER_IP6);
    match_mapped(&mut a, deny);
    // The guest's own addresses first: one that is ::1 stays as is.
    match6(&mut a, &p.ipv6, allow);
    match6(&mut a, &[ANY6, LOOPBACK6], rewrite);
    a.bind(deny).ret(DENY).bind(rewrite);
    store6(&mut a, USER_IP6, first);
    a.bind(allow);
    allow_bind(&mut a, p);
    sock_addr(a, "vsbox_bind6", sys::CGROUP_INET6_BIND)
}

/// Refuses an IPv4-mapped IPv6 destination at `off` and rewrites a
/// loopback or unspecified one (::1 kept when it is the guest's).
fn redirect6(a: &mut Asm, p: &Policy, off: i16, first: Ipv6Addr) {
    let (deny, rewrite, keep) = (a.label(), a.label(), a.label());
    load6(a, R1, off);
    match_mapped(a, deny);
    match6(a, &redirected6(p), rewrite);
    a.ja(keep).bind(deny).ret(DENY).bind(rewrite);
    store6(a, off, first);
    a.bind(keep);
}

fn connect6(p: &Policy, first: Ipv6Addr) -> Result<Program> {
    let mut a = Asm::new();
    redirect6(&mut a, p, USER_IP6, first);
    bind_helper(&mut a, &sockaddr_in6(first));
    a.ret(ALLOW);
    sock_addr(a, "vsbox_connect6", sys::CGROUP_INET6_CONNECT)
}

fn sendmsg6(p: &Policy, first: Ipv6Addr) -> Result<Program> {
    let mut a = Asm::new();
    let (unset, allow) = (a.label(), a.label());
    redirect6(&mut a, p, USER_IP6, first);
    load6(&mut a, R1, MSG_SRC_IP6);
    match6(&mut a, &[ANY6], unset);
    match6(&mut a, &p.ipv6, allow);
    a.ret(DENY).bind(unset);
    store6(&mut a, MSG_SRC_IP6, first);
    a.bind(allow).ret(ALLOW);
    sock_addr(a, "vsbox_sendmsg6", sys::CGROUP_UDP6_SENDMSG)
}

/// bind6 of a guest without an IPv6 address: :: is bound to ::1 with an
/// ephemeral port (see the module comment), a mapped address is refused
/// as everywhere, any other address is not the guest's (EADDRNOTAVAIL).
fn bind6_without_ipv6() -> Result<Program> {
    let mut a = Asm::new();
    let (deny, any) = (a.label(), a.label());
    load6(&mut a, R1, USER_IP6);
    match_mapped(&mut a, deny);
    match6(&mut a, &[ANY6], any);
    refuse(&mut a, linux_raw_sys::errno::EADDRNOTAVAIL);
    a.bind(deny).ret(DENY).bind(any);
    store6(&mut a, USER_IP6, LOOPBACK6);
    a.mov32_imm(R0, 0).stx(Size::W, R1, USER_PORT, R0);
    a.ret(ALLOW);
    sock_addr(a, "vsbox_bind6", sys::CGROUP_INET6_BIND)
}

/// connect6 or sendmsg6 of a guest without an IPv6 address: no IPv6
/// destination is reachable (ENETUNREACH); a mapped one is refused.
fn unreachable6(name: &'static str, attach_type: u32) -> Result<Program> {
    let mut a = Asm::new();
    let deny = a.label();
    load6(&mut a, R1, USER_IP6);
    match_mapped(&mut a, deny);
    refuse(&mut a, linux_raw_sys::errno::ENETUNREACH);
    a.bind(deny).ret(DENY);
    sock_addr(a, name, attach_type)
}

/// Refuses AF_INET sockets, for a guest with IPv6 but no IPv4 address.
fn sock_create_without_ipv4() -> Result<Program> {
    let mut a = Asm::new();
    let deny = a.label();
    a.ldx(Size::W, R2, R1, SOCK_FAMILY)
        .jmp32_imm(Cond::Eq, R2, AF_INET.into(), deny)
        .ret(ALLOW)
        .bind(deny)
        .ret(DENY);
    finish(
        a,
        "vsbox_sock",
        sys::PROG_TYPE_CGROUP_SOCK,
        sys::CGROUP_INET_SOCK_CREATE,
    )
}

fn ingress(p: &Policy) -> Result<Program> {
    let mut a = Asm::new();
    let (v4, v6, drop, allow) = (a.label(), a.label(), a.label(), a.label());
    // r6 = data (the network header), r7 = data_end.
    a.ldx(Size::W, R6, R1, SKB_DATA)
        .ldx(Size::W, R7, R1, SKB_DATA_END)
        .mov64_reg(R8, R6)
        .alu64_imm(super::bpf::Alu::Add, R8, 1)
        .jmp_reg(Cond::Gt, R8, R7, allow)
        .ldx(Size::B, R2, R6, 0)
        .alu32_imm(super::bpf::Alu::Rsh, R2, 4)
        .jmp32_imm(Cond::Eq, R2, 4, v4)
        .jmp32_imm(Cond::Eq, R2, 6, v6)
        .ja(allow);

    a.bind(v4)
        .mov64_reg(R8, R6)
        .alu64_imm(super::bpf::Alu::Add, R8, 20)
        .jmp_reg(Cond::Gt, R8, R7, drop)
        .ldx(Size::W, R2, R6, IP4_DST);
    match4(&mut a, R2, &p.ipv4, allow);
    match4(&mut a, R2, &p.broadcasts, allow);
    match4(&mut a, R2, &[Ipv4Addr::BROADCAST], allow);
    a.ja(drop);

    a.bind(v6);
    if !p.ipv6.is_empty() {
        a.mov64_reg(R8, R6)
            .alu64_imm(super::bpf::Alu::Add, R8, 40)
            .jmp_reg(Cond::Gt, R8, R7, drop);
        load6(&mut a, R6, IP6_DST);
        match6(&mut a, &p.ipv6, allow);
    }
    a.bind(drop).ret(DENY).bind(allow).ret(ALLOW);
    finish(
        a,
        "vsbox_ingress",
        sys::PROG_TYPE_CGROUP_SKB,
        sys::CGROUP_INET_INGRESS,
    )
}

/// The programs that enforce `policy`: the socket-address hooks of both
/// families (IPv6 ones that answer as a host without IPv6 when the guest
/// has no IPv6 address), socket creation when it lacks IPv4, ingress.
pub fn programs(policy: &Policy) -> Result<Vec<Program>> {
    let mut out = Vec::new();
    if let Some(&first) = policy.ipv4.first() {
        out.push(bind4(policy, first)?);
        out.push(connect4(policy, first)?);
        out.push(sendmsg4(policy, first)?);
    }
    match policy.ipv6.first() {
        Some(&first) => {
            out.push(bind6(policy, first)?);
            out.push(connect6(policy, first)?);
            out.push(sendmsg6(policy, first)?);
        }
        None => {
            out.push(bind6_without_ipv6()?);
            out.push(unreachable6("vsbox_connect6", sys::CGROUP_INET6_CONNECT)?);
            out.push(unreachable6("vsbox_sendmsg6", sys::CGROUP_UDP6_SENDMSG)?);
        }
    }
    if policy.ipv4.is_empty() {
        out.push(sock_create_without_ipv4()?);
    }
    out.push(ingress(policy)?);
    Ok(out)
}

/// Loads one program; a failure names it and carries the end of the
/// verifier's log.
pub fn load(program: &Program) -> Result<OwnedFd> {
    sys::prog_load(
        program.prog_type,
        program.attach_type,
        &program.insns,
        LICENSE,
        program.name,
    )
    .map_err(|e| {
        let log = if e.log.is_empty() {
            String::new()
        } else {
            format!(" (verifier: {})", e.log)
        };
        Error::sys(
            format!("cannot load BPF program {}{log}", program.name),
            e.errno,
        )
    })
}

/// Loads and attaches `programs` to the cgroup (an fd of its v2 directory),
/// all or none: on a failure the ones already attached are detached.
pub fn attach_programs(cgroup_dir: BorrowedFd<'_>, programs: &[Program]) -> Result<()> {
    let mut attached: Vec<(OwnedFd, u32)> = Vec::new();
    let mut result = Ok(());
    for p in programs {
        let step = load(p).and_then(|fd| {
            sys::prog_attach(cgroup_dir, fd.as_fd(), p.attach_type, sys::F_ALLOW_MULTI)
                .context(|| format!("cannot attach BPF program {} to the cgroup", p.name))?;
            Ok(fd)
        });
        match step {
            Ok(fd) => attached.push((fd, p.attach_type)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_err() {
        for (fd, attach_type) in &attached {
            let _ = sys::prog_detach(cgroup_dir, fd.as_fd(), *attach_type);
        }
    }
    // The cgroup holds its own reference to each attached program.
    result
}

/// Loads and attaches the programs that enforce `policy`, all or none.
pub fn attach(cgroup_dir: BorrowedFd<'_>, policy: &Policy) -> Result<()> {
    attach_programs(cgroup_dir, &programs(policy)?)
}

/// Calls `f(attach type, program fd, id)` for each vsbox program attached
/// to the cgroup itself.
fn each_attached(
    cgroup_dir: BorrowedFd<'_>,
    mut f: impl FnMut(u32, &OwnedFd, u32) -> Result<()>,
) -> Result<()> {
    let enoent = Errno::from_raw(linux_raw_sys::errno::ENOENT as i32);
    for attach_type in ATTACH_TYPES {
        let ids = sys::prog_query(cgroup_dir, attach_type)
            .context(|| "cannot list the BPF programs of the cgroup")?;
        for id in ids {
            let fd = match sys::prog_get_fd_by_id(id) {
                Ok(fd) => fd,
                // Detached and freed since the query.
                Err(e) if e == enoent => continue,
                Err(e) => return Err(Error::sys(format!("cannot open BPF program {id}"), e)),
            };
            let info =
                sys::prog_info(fd.as_fd()).context(|| format!("cannot read BPF program {id}"))?;
            if info.name.starts_with(NAME_PREFIX) {
                f(attach_type, &fd, id)?;
            }
        }
    }
    Ok(())
}

/// Detaches every vsbox program from the cgroup and returns how many there
/// were. It goes on after a failure and reports the first one.
pub fn detach(cgroup_dir: BorrowedFd<'_>) -> Result<usize> {
    let mut count = 0;
    let mut first_err = None;
    each_attached(cgroup_dir, |attach_type, fd, id| {
        match sys::prog_detach(cgroup_dir, fd.as_fd(), attach_type) {
            Ok(()) => count += 1,
            Err(e) => {
                first_err.get_or_insert(Error::sys(format!("cannot detach BPF program {id}"), e));
            }
        }
        Ok(())
    })?;
    match first_err {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

/// The ids of the vsbox programs attached to the cgroup.
pub fn attached_ids(cgroup_dir: BorrowedFd<'_>) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    each_attached(cgroup_dir, |_, _, id| {
        ids.push(id);
        Ok(())
    })?;
    Ok(ids)
}

/// Whether a program with this id is still loaded (the kernel frees a
/// program once nothing holds it: no cgroup, no descriptor).
pub fn program_exists(id: u32) -> bool {
    sys::prog_get_fd_by_id(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn policy_splits_families_and_computes_broadcasts() {
        let p = Policy::new(
            &[
                (ip("10.1.2.3"), Some(24)),
                (ip("2001:db8::1"), Some(64)),
                (ip("10.1.2.200"), Some(24)),
                (ip("192.168.7.1"), Some(30)),
                (ip("192.168.8.1"), Some(31)),
                (ip("172.16.0.1"), Some(32)),
                (ip("127.0.0.2"), None),
                (ip("10.1.2.3"), Some(24)),
            ],
            Some(v4("10.9.255.255")),
        );
        assert_eq!(
            p.ipv4(),
            [
                v4("10.1.2.3"),
                v4("10.1.2.200"),
                v4("192.168.7.1"),
                v4("192.168.8.1"),
                v4("172.16.0.1"),
                v4("127.0.0.2")
            ]
        );
        assert_eq!(p.ipv6(), ["2001:db8::1".parse::<Ipv6Addr>().unwrap()]);
        assert_eq!(
            p.broadcasts(),
            [v4("10.1.2.255"), v4("192.168.7.3"), v4("10.9.255.255")]
        );
    }

    #[test]
    fn broadcast_edges() {
        let p = Policy::new(
            &[(ip("127.0.0.2"), Some(8)), (ip("1.2.3.4"), Some(0))],
            None,
        );
        assert_eq!(p.broadcasts(), [v4("127.255.255.255"), Ipv4Addr::BROADCAST]);
        // An IPv4-mapped IPv6 address is its IPv4 address.
        let p = Policy::new(&[(ip("::ffff:10.0.0.1"), Some(120))], None);
        assert_eq!(p.ipv4(), [v4("10.0.0.1")]);
        assert!(p.ipv6().is_empty());
        assert_eq!(p.broadcasts(), [v4("10.0.0.255")]);
    }

    #[test]
    fn from_iproot() {
        let root = IpRoot::parse("").unwrap();
        assert_eq!(Policy::from_iproot(&root, Some(24), None), None);
        let root = IpRoot::parse("eth0:10.0.0.5 10.0.1.5/16 ::1 fe80::1/64").unwrap();
        let p = Policy::from_iproot(&root, Some(24), Some(v4("10.0.0.127"))).unwrap();
        assert_eq!(p.ipv4(), [v4("10.0.0.5"), v4("10.0.1.5")]);
        assert_eq!(p.ipv6().len(), 2);
        assert_eq!(
            p.broadcasts(),
            [v4("10.0.0.255"), v4("10.0.255.255"), v4("10.0.0.127")]
        );
        let p = Policy::from_iproot(&IpRoot::parse("10.0.0.5").unwrap(), None, None).unwrap();
        assert!(p.broadcasts().is_empty());
    }

    #[test]
    fn addresses_become_network_order_words() {
        // 127.0.0.130 in memory is 7f 00 00 82.
        assert_eq!(word4(v4("127.0.0.130")).to_ne_bytes(), [0x7f, 0, 0, 0x82]);
        let w = words6("2001:db8::ff:1".parse().unwrap());
        assert_eq!(w[0].to_ne_bytes(), [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(w[3].to_ne_bytes(), [0, 0xff, 0, 1]);
        assert_eq!(sockaddr_in(v4("1.2.3.4"))[4..8], [1, 2, 3, 4]);
        assert_eq!(sockaddr_in6(LOOPBACK6)[23], 1);
    }

    fn names(p: &Policy) -> Vec<&'static str> {
        programs(p).unwrap().iter().map(|p| p.name).collect()
    }

    #[test]
    fn programs_follow_the_families() {
        // Without IPv6 the IPv6 hooks answer as a host without IPv6; no
        // socket-creation rule.
        let v4_only = Policy::new(&[(ip("127.0.0.2"), Some(8))], None);
        assert_eq!(
            names(&v4_only),
            [
                "vsbox_bind4",
                "vsbox_connect4",
                "vsbox_sendmsg4",
                "vsbox_bind6",
                "vsbox_connect6",
                "vsbox_sendmsg6",
                "vsbox_ingress"
            ]
        );
        let v4_programs = programs(&v4_only).unwrap();
        let set_retval = |p: &Program| {
            p.insns
                .iter()
                .any(|i| i.code == 0x85 && i.imm == HELPER_SET_RETVAL)
        };
        for p in &v4_programs[3..6] {
            assert!(set_retval(p), "{}", p.name);
        }
        let both = Policy::new(&[(ip("127.0.0.2"), None), (ip("::1"), None)], None);
        assert_eq!(names(&both).len(), 7);
        assert!(!names(&both).contains(&"vsbox_sock"));
        let v6_only = Policy::new(&[(ip("::1"), None)], None);
        assert_eq!(
            names(&v6_only),
            [
                "vsbox_bind6",
                "vsbox_connect6",
                "vsbox_sendmsg6",
                "vsbox_sock",
                "vsbox_ingress"
            ]
        );
        assert!(programs(&both).unwrap().iter().all(|p| !set_retval(p)));
        for p in programs(&both).unwrap().into_iter().chain(v4_programs) {
            assert!(p.name.starts_with(NAME_PREFIX) && p.name.len() < sys::OBJ_NAME_LEN);
            // Every program ends by returning.
            assert_eq!(p.insns.last().unwrap().code, 0x95, "{}", p.name);
        }
    }

    #[test]
    fn loopback_is_redirected_unless_the_guest_owns_it() {
        let p = Policy::new(&[(ip("127.0.0.2"), None), (ip("2001:db8::1"), None)], None);
        assert_eq!(redirected4(&p), [ANY4, LOOPBACK4]);
        assert_eq!(redirected6(&p), [ANY6, LOOPBACK6]);
        let own = Policy::new(&[(ip("127.0.0.1"), None), (ip("::1"), None)], None);
        assert_eq!(redirected4(&own), [ANY4]);
        assert_eq!(redirected6(&own), [ANY6]);
    }

    #[test]
    fn compares_are_32_bit_and_ctx_stores_use_registers() {
        let p = Policy::new(&[(ip("127.0.0.130"), None), (ip("::1"), None)], None);
        for prog in programs(&p).unwrap() {
            for insn in &prog.insns {
                // No BPF_ST (class 2) into the context, no 64-bit compare of
                // an immediate (class 5 with BPF_K, except ja/call/exit).
                assert_ne!(insn.code & 7, 2, "{}", prog.name);
                let op = insn.code & 0xf0;
                if insn.code & 0x0f == 0x05 {
                    assert!(matches!(op, 0x00 | 0x80 | 0x90), "{}: {insn:?}", prog.name);
                }
            }
        }
        let bind4 = &programs(&p).unwrap()[0];
        let want = i32::from_ne_bytes([127, 0, 0, 130]);
        assert!(bind4.insns.iter().any(|i| i.code == 0x16 && i.imm == want));
    }
}
