//! IPROOT: the addresses a guest may use, `[device:]ip[/mask] ...`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The seed's kernels allowed 16 addresses per guest; so do we.
pub const MAX_ADDRESSES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpEntry {
    /// The device to put the alias on (eth0, eth0.231); None means IPROOTDEV.
    pub device: Option<String>,
    pub addr: IpAddr,
    /// The prefix length; None means IPROOTMASK or the device's own.
    pub prefix: Option<u8>,
}

/// The guest's addresses; none (IPROOT empty or 0.0.0.0) means the guest
/// uses the host's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRoot {
    entries: heapless::Vec<IpEntry, MAX_ADDRESSES>,
}

impl IpRoot {
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || words == ["0.0.0.0"] {
            return Ok(IpRoot::default());
        }
        if words.len() > MAX_ADDRESSES {
            return Err(format!(
                "{} addresses; a guest has at most {MAX_ADDRESSES}",
                words.len()
            ));
        }
        let mut entries = heapless::Vec::new();
        for word in words {
            let entry = parse_entry(word)?;
            if entry.addr.is_unspecified() {
                return Err(format!(
                    "'{word}': 0.0.0.0 (the host's addresses) cannot be combined with other addresses"
                ));
            }
            if entries.iter().any(|e: &IpEntry| e.addr == entry.addr) {
                return Err(format!("{} is listed twice", entry.addr));
            }
            // Cannot fail: the count was checked above.
            let _ = entries.push(entry);
        }
        Ok(IpRoot { entries })
    }

    pub fn entries(&self) -> &[IpEntry] {
        &self.entries
    }

    /// Whether the guest uses the host's addresses.
    pub fn is_host(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_entry(word: &str) -> Result<IpEntry, String> {
    let bad = |why: &str| format!("'{word}': {why} (expected [device:]ip[/mask])");
    let (addr_part, mask) = match word.rsplit_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (word, None),
    };
    // A bare address first: IPv6 addresses contain colons themselves.
    let (device, addr) = match parse_addr(addr_part) {
        Some(addr) => (None, addr),
        None => {
            let (dev, rest) = addr_part
                .split_once(':')
                .ok_or_else(|| bad("not an IP address"))?;
            check_device(dev).map_err(|why| bad(&why))?;
            let addr = parse_addr(rest).ok_or_else(|| bad("not an IP address"))?;
            (Some(dev.to_string()), addr)
        }
    };
    // ::ffff:a.b.c.d is IPv4 a.b.c.d in IPv6 clothes: ipv4root refuses
    // mapped addresses in every IPv6 hook, so the guest could never use it
    // as written, and the alias put on the device would be an IPv6 one that
    // is not the guest's IPv4 address. Refuse it where it is written.
    if let IpAddr::V6(v6) = addr {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err(bad(&format!(
                "an IPv4-mapped IPv6 address is refused; write the IPv4 address {v4}"
            )));
        }
    }
    let prefix = match mask {
        None => None,
        Some(m) => Some(parse_mask(m, addr.is_ipv4()).map_err(|why| bad(&why))?),
    };
    Ok(IpEntry {
        device,
        addr,
        prefix,
    })
}

fn parse_addr(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// A prefix length (`24`) or, for IPv4, a dotted netmask (`255.255.255.0`).
pub fn parse_mask(text: &str, ipv4: bool) -> Result<u8, String> {
    let max = if ipv4 { 32 } else { 128 };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u8>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(format!("prefix length {text} is larger than {max}")),
        };
    }
    let mask: Ipv4Addr = text
        .parse()
        .map_err(|_| format!("'{text}' is not a netmask"))?;
    if !ipv4 {
        return Err(format!(
            "'{text}': an IPv6 address takes a prefix length, not a dotted mask"
        ));
    }
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(format!("netmask {text} is not contiguous"));
    }
    Ok(bits.leading_ones() as u8)
}

/// A network device name as the kernel accepts it (dev_valid_name).
pub fn check_device(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("device name '{name}' must be 1 to 15 characters"));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("'{name}' is not a valid device name"));
    }
    Ok(())
}

impl fmt::Display for IpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dev) = &self.device {
            write!(f, "{dev}:")?;
        }
        write!(f, "{}", self.addr)?;
        if let Some(p) = self.prefix {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

impl fmt::Display for IpRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.entries().iter().map(ToString::to_string).collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_with_devices() {
        let root = IpRoot::parse("eth0:1.2.3.4 eth1:2.3.4.5 192.168.1.2").unwrap();
        let e = root.entries();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].device.as_deref(), Some("eth0"));
        assert_eq!(e[2].device, None);
        assert_eq!(root.to_string(), "eth0:1.2.3.4 eth1:2.3.4.5 192.168.1.2");
    }

    #[test]
    fn masks_vlans_and_ipv6() {
        let root = IpRoot::parse(
            "eth0.231:10.0.0.1/255.255.255.0 ::1 eth0:fe80::1/64 lo:[2001:db8::2]/128 127.0.0.2/8",
        )
        .unwrap();
        assert_eq!(
            root.to_string(),
            "eth0.231:10.0.0.1/24 ::1 eth0:fe80::1/64 lo:2001:db8::2/128 127.0.0.2/8"
        );
        assert_eq!(root.entries()[0].device.as_deref(), Some("eth0.231"));
        assert_eq!(root.entries()[1].addr, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn host_addresses() {
        assert!(IpRoot::parse("").unwrap().is_host());
        assert!(IpRoot::parse("  \n").unwrap().is_host());
        assert!(IpRoot::parse("0.0.0.0").unwrap().is_host());
        assert!(!IpRoot::parse("127.0.0.1").unwrap().is_host());
        assert!(
            IpRoot::parse("0.0.0.0 1.2.3.4")
                .unwrap_err()
                .contains("cannot be combined")
        );
    }

    #[test]
    fn sixteen_addresses_and_no_more() {
        let list: Vec<String> = (1..=16).map(|i| format!("127.0.0.{i}")).collect();
        assert_eq!(IpRoot::parse(&list.join(" ")).unwrap().entries().len(), 16);
        let list: Vec<String> = (1..=17).map(|i| format!("127.0.0.{i}")).collect();
        assert_eq!(
            IpRoot::parse(&list.join(" ")).unwrap_err(),
            "17 addresses; a guest has at most 16"
        );
    }

    #[test]
    fn errors() {
        for (text, want) in [
            ("1.2.3", "not an IP address"),
            ("eth0:1.2.3", "not an IP address"),
            ("1.2.3.4/33", "larger than 32"),
            ("::1/129", "larger than 128"),
            ("1.2.3.4/255.0.255.0", "not contiguous"),
            ("::1/255.255.0.0", "prefix length, not a dotted mask"),
            ("1.2.3.4/x", "not a netmask"),
            ("averyveryverylongname:1.2.3.4", "1 to 15 characters"),
            ("1.2.3.4 1.2.3.4", "listed twice"),
            (
                "::ffff:127.0.0.61",
                "IPv4-mapped IPv6 address is refused; write the IPv4 address 127.0.0.61",
            ),
            ("lo:[::ffff:127.0.0.61]/128", "IPv4-mapped"),
        ] {
            let err = IpRoot::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
