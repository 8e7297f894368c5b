//! Typed rtnetlink (NETLINK_ROUTE): links, addresses, the default route's
//! device. Each call opens its own socket; none of this is on a hot path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::Context;
use crate::sys::errno::Errno;
use crate::sys::netlink::{
    Attrs, Family, Message, NLM_F_CREATE, NLM_F_EXCL, NetlinkSocket, attr_str, attr_u32,
};
use crate::{Error, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VLAN_ID: u16 = 1;
const IFF_UP: u32 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;
const RT_SCOPE_HOST: u8 = 254;

const RTA_OIF: u16 = 4;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// An address as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSpec {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
}

fn socket() -> Result<NetlinkSocket> {
    NetlinkSocket::open(Family::Route).context(|| "cannot open a netlink socket")
}

/// struct ifinfomsg: family, pad, type, index, flags, change.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
fn ifaddrmsg(family: u8, prefix: u8, flags: u8, scope: u8, index: u32) -> [u8; 8] {
    let i = index.to_ne_bytes();
    [family, prefix, flags, scope, i[0], i[1], i[2], i[3]]
}

fn family_of(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn parse_ip(data: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(data) {
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    } else {
        <[u8; 16]>::try_from(data)
            .ok()
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Every link: (index, name).
pub fn links() -> Result<Vec<(u32, String)>> {
    let mut out = Vec::new();
    let mut msg = Message::new(RTM_GETLINK, 0);
    msg.bytes(&ifinfomsg(0, 0, 0));
    socket()?
        .dump(&mut msg, |t, p| {
            let name = Attrs::after(p, 16).get(IFLA_IFNAME).and_then(attr_str);
            if let (RTM_NEWLINK, Some(index), Some(name)) = (t, u32_at(p, 4), name) {
                out.push((index, name.to_string()));
            }
        })
        .context(|| "cannot list network devices")?;
    Ok(out)
}

pub fn link_index(name: &str) -> Result<Option<u32>> {
    Ok(links()?.into_iter().find(|l| l.1 == name).map(|l| l.0))
}

pub fn link_name(index: u32) -> Result<Option<String>> {
    Ok(links()?.into_iter().find(|l| l.0 == index).map(|l| l.1))
}

/// A device's name for messages, its index when it has none.
fn describe_link(index: u32) -> String {
    link_name(index)
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("device {index}"))
}

fn parse_address(payload: &[u8]) -> Option<Address> {
    let (&family, &prefix) = (payload.first()?, payload.get(1)?);
    let index = u32_at(payload, 4)?;
    let (mut local, mut address, mut label, mut broadcast) = (None, None, None, None);
    for (kind, data) in Attrs::after(payload, 8) {
        match kind {
            IFA_LOCAL => local = parse_ip(data),
            IFA_ADDRESS => address = parse_ip(data),
            IFA_LABEL => label = attr_str(data).map(str::to_string),
            IFA_BROADCAST => {
                if let Some(IpAddr::V4(b)) = parse_ip(data) {
                    broadcast = Some(b);
                }
            }
            _ => {}
        }
    }
    let addr = if family == AF_INET {
        local.or(address)?
    } else {
        address.or(local)?
    };
    Some(Address {
        index,
        addr,
        prefix,
        label,
        broadcast,
    })
}

/// The addresses of one device, or of all.
pub fn addresses(index: Option<u32>) -> Result<Vec<Address>> {
    let mut out = Vec::new();
    let mut msg = Message::new(RTM_GETADDR, 0);
    msg.bytes(&ifaddrmsg(0, 0, 0, 0, 0));
    socket()?
        .dump(&mut msg, |t, p| {
            if t != RTM_NEWADDR {
                return;
            }
            if let Some(a) = parse_address(p).filter(|a| index.is_none_or(|i| a.index == i)) {
                out.push(a);
            }
        })
        .context(|| "cannot list network addresses")?;
    Ok(out)
}

pub fn add_address(spec: &AddressSpec) -> Result<()> {
    let family = family_of(spec.addr);
    let v4 = family == AF_INET;
    let flags = if v4 { 0 } else { IFA_F_NODAD };
    let scope = match spec.addr {
        IpAddr::V4(a) if a.is_loopback() => RT_SCOPE_HOST,
        _ => 0,
    };
    let bytes = addr_bytes(&spec.addr);
    let mut msg = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    msg.bytes(&ifaddrmsg(family, spec.prefix, flags, scope, spec.index))
        .attr(IFA_LOCAL, &bytes)
        .attr(IFA_ADDRESS, &bytes);
    if v4 {
        if let Some(b) = spec.broadcast {
            msg.attr(IFA_BROADCAST, &b.octets());
        }
        if let Some(label) = &spec.label {
            msg.attr_str(IFA_LABEL, label);
        }
    }
    socket()?.request(&mut msg).map_err(|e| {
        let dev = describe_link(spec.index);
        Error::sys(
            format!("cannot add {}/{} to {dev}", spec.addr, spec.prefix),
            e,
        )
    })
}

/// Removes an address; the raw errno is kept (EADDRNOTAVAIL: not there).
pub fn del_address(index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
    let bytes = addr_bytes(&addr);
    let mut msg = Message::new(RTM_DELADDR, 0);
    msg.bytes(&ifaddrmsg(family_of(addr), prefix, 0, 0, index));
    if addr.is_ipv4() {
        msg.attr(IFA_LOCAL, &bytes);
    } else {
        msg.attr(IFA_ADDRESS, &bytes);
    }
    socket()?.request(&mut msg).map_err(|e| {
        let dev = describe_link(index);
        Error::sys(format!("cannot remove {addr}/{prefix} from {dev}"), e)
    })
}

/// Creates `name` as VLAN `vlan_id` of `parent_index`, up at once.
pub fn create_vlan(parent_index: u32, vlan_id: u16, name: &str) -> Result<()> {
    let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    msg.bytes(&ifinfomsg(0, IFF_UP, IFF_UP))
        .attr_str(IFLA_IFNAME, name)
        .attr_u32(IFLA_LINK, parent_index)
        .nested(IFLA_LINKINFO, |m| {
            m.attr_str(IFLA_INFO_KIND, "vlan")
                .nested(IFLA_INFO_DATA, |m| {
                    m.attr_u16(IFLA_VLAN_ID, vlan_id);
                });
        });
    socket()?
        .request(&mut msg)
        .context(|| format!("cannot create vlan device {name}"))
}

pub fn delete_link(index: u32) -> Result<()> {
    let mut msg = Message::new(RTM_DELLINK, 0);
    msg.bytes(&ifinfomsg(index, 0, 0));
    socket()?.request(&mut msg).map_err(|e| {
        let dev = describe_link(index);
        Error::sys(format!("cannot delete {dev}"), e)
    })
}

/// The device of the IPv4 default route in the main table.
pub fn default_route_device() -> Result<Option<u32>> {
    let mut found = None;
    let mut msg = Message::new(RTM_GETROUTE, 0);
    msg.bytes(&[AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    socket()?
        .dump(&mut msg, |t, p| {
            // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
            // scope, type, flags (u32).
            if t != RTM_NEWROUTE || p.len() < 12 || p[0] != AF_INET || p[1] != 0 {
                return;
            }
            let mut table = p[4] as u32;
            let mut oif = None;
            for (kind, data) in Attrs::after(p, 12) {
                match kind {
                    RTA_TABLE => table = attr_u32(data).unwrap_or(table),
                    RTA_OIF => oif = attr_u32(data),
                    _ => {}
                }
            }
            if table == RT_TABLE_MAIN && p[7] == RTN_UNICAST && found.is_none() {
                found = oif;
            }
        })
        .context(|| "cannot list routes")?;
    Ok(found)
}

/// Whether `err` says the thing to remove is already gone.
pub fn is_gone(err: &Error) -> bool {
    let gone = [
        linux_raw_sys::errno::EADDRNOTAVAIL,
        linux_raw_sys::errno::ENODEV,
        linux_raw_sys::errno::ENOENT,
    ];
    err.errno()
        .is_some_and(|e| gone.contains(&(Errno::raw(e) as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_by_family() {
        let mut m = Message::new(RTM_NEWADDR, 0);
        m.bytes(&ifaddrmsg(AF_INET, 24, 0, 0, 7))
            .attr(IFA_ADDRESS, &[192, 0, 2, 9])
            .attr(IFA_LOCAL, &[192, 0, 2, 5])
            .attr(IFA_BROADCAST, &[192, 0, 2, 255])
            .attr_str(IFA_LABEL, "vs0:web");
        let b = m.encode(1).to_vec();
        let a = parse_address(&b[16..]).unwrap();
        assert_eq!(a.index, 7);
        assert_eq!(a.prefix, 24);
        assert_eq!(a.addr, "192.0.2.5".parse::<IpAddr>().unwrap());
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(a.label.as_deref(), Some("vs0:web"));

        let mut m = Message::new(RTM_NEWADDR, 0);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        m.bytes(&ifaddrmsg(AF_INET6, 64, 0, 0, 3))
            .attr(IFA_ADDRESS, &v6.octets());
        let b = m.encode(1).to_vec();
        let a = parse_address(&b[16..]).unwrap();
        assert_eq!((a.addr, a.prefix, a.label), (IpAddr::V6(v6), 64, None));

        // no address attribute, or a truncated header: nothing
        assert_eq!(parse_address(&ifaddrmsg(AF_INET, 8, 0, 0, 1)), None);
        assert_eq!(parse_address(&[2, 8, 0]), None);
        assert_eq!(parse_ip(&[1, 2, 3]), None);
    }

    #[test]
    fn lists_loopback() {
        let Ok(links) = links() else { return };
        let lo = links.iter().find(|l| l.1 == "lo").map(|l| l.0);
        assert!(lo.is_some());
        assert_eq!(link_index("lo").unwrap(), lo);
        assert_eq!(link_name(lo.unwrap()).unwrap().as_deref(), Some("lo"));
        let addrs = addresses(lo).unwrap();
        assert!(addrs.iter().all(|a| Some(a.index) == lo));
        assert!(
            addrs
                .iter()
                .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.prefix == 8)
        );
        assert_eq!(link_index("vsbox-no-such-dev").unwrap(), None);
        let _ = default_route_device().unwrap();
    }
}
