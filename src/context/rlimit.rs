//! ULIMIT: resource limits in the syntax of the shell's `ulimit` builtin,
//! as the seed passed "$ULIMIT" to it ("-HS -u 200 -n 1024").

use std::fmt;

use linux_raw_sys::general as k;

/// Which of the two limits a setting changes. As in the shell, -H alone sets
/// the hard limit, -S alone the soft one, both or neither set both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Soft,
    Hard,
    Both,
}

/// The resources ULIMIT may set, by their `ulimit` option letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Core,
    Data,
    FileSize,
    Locked,
    Rss,
    Files,
    Stack,
    CpuTime,
    Processes,
    AddressSpace,
}

const RESOURCES: [(char, Resource); 10] = [
    ('c', Resource::Core),
    ('d', Resource::Data),
    ('f', Resource::FileSize),
    ('l', Resource::Locked),
    ('m', Resource::Rss),
    ('n', Resource::Files),
    ('s', Resource::Stack),
    ('t', Resource::CpuTime),
    ('u', Resource::Processes),
    ('v', Resource::AddressSpace),
];

impl Resource {
    pub fn from_letter(c: char) -> Option<Self> {
        RESOURCES.iter().find(|(l, _)| *l == c).map(|(_, r)| *r)
    }

    pub fn letter(self) -> char {
        RESOURCES
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(l, _)| *l)
            .unwrap_or('?')
    }

    /// The setrlimit(2) resource number.
    pub fn rlimit(self) -> u32 {
        match self {
            Resource::Core => k::RLIMIT_CORE,
            Resource::Data => k::RLIMIT_DATA,
            Resource::FileSize => k::RLIMIT_FSIZE,
            Resource::Locked => k::RLIMIT_MEMLOCK,
            Resource::Rss => k::RLIMIT_RSS,
            Resource::Files => k::RLIMIT_NOFILE,
            Resource::Stack => k::RLIMIT_STACK,
            Resource::CpuTime => k::RLIMIT_CPU,
            Resource::Processes => k::RLIMIT_NPROC,
            Resource::AddressSpace => k::RLIMIT_AS,
        }
    }

    /// Bytes per unit of the value written in ULIMIT: POSIX sh counts -c and
    /// -f in 512-byte blocks, the other sizes in KiB; counts and seconds are
    /// unscaled.
    pub fn unit(self) -> u64 {
        match self {
            Resource::Core | Resource::FileSize => 512,
            Resource::Data
            | Resource::Locked
            | Resource::Rss
            | Resource::Stack
            | Resource::AddressSpace => 1024,
            Resource::Files | Resource::CpuTime | Resource::Processes => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitValue {
    Unlimited,
    /// In the resource's ULIMIT unit (see `Resource::unit`).
    Units(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    pub value: LimitValue,
}

impl Limit {
    /// The value for setrlimit(2); RLIM_INFINITY is all ones.
    pub fn rlim(self) -> u64 {
        match self.value {
            LimitValue::Unlimited => u64::MAX,
            LimitValue::Units(n) => n.saturating_mul(self.resource.unit()),
        }
    }
}

/// A parsed ULIMIT value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub kind: LimitKind,
    pub limits: Vec<Limit>,
}

impl Default for Ulimit {
    fn default() -> Self {
        Ulimit {
            kind: LimitKind::Both,
            limits: Vec::new(),
        }
    }
}

const EXPECTED: &str = "expected -H, -S, -c, -d, -f, -l, -m, -n, -s, -t, -u or -v";

impl Ulimit {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (mut hard, mut soft) = (false, false);
        let mut limits = Vec::new();
        let mut words = text.split_whitespace().peekable();
        while let Some(word) = words.next() {
            let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
                return Err(format!("'{word}' is not an option ({EXPECTED})"));
            };
            let mut resource = None;
            for c in letters.chars() {
                match c {
                    'H' => hard = true,
                    'S' => soft = true,
                    _ if resource.is_some() => {
                        return Err(format!(
                            "'{word}': one resource per option, each with its value"
                        ));
                    }
                    _ => match Resource::from_letter(c) {
                        Some(r) => resource = Some(r),
                        None => return Err(format!("unknown ulimit option -{c} ({EXPECTED})")),
                    },
                }
            }
            let Some(resource) = resource else { continue };
            let value = match words.next() {
                Some("unlimited") => LimitValue::Unlimited,
                Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    let n = v
                        .parse::<u64>()
                        .map_err(|_| format!("-{} {v}: number too large", resource.letter()))?;
                    if n.checked_mul(resource.unit()).is_none() {
                        return Err(format!("-{} {v}: number too large", resource.letter()));
                    }
                    LimitValue::Units(n)
                }
                Some(v) => {
                    return Err(format!(
                        "-{} needs a number or 'unlimited', not '{v}'",
                        resource.letter()
                    ));
                }
                None => {
                    return Err(format!(
                        "-{} needs a number or 'unlimited'",
                        resource.letter()
                    ));
                }
            };
            limits.push(Limit { resource, value });
        }
        let kind = match (hard, soft) {
            (true, false) => LimitKind::Hard,
            (false, true) => LimitKind::Soft,
            _ => LimitKind::Both,
        };
        Ok(Ulimit { kind, limits })
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

impl fmt::Display for Ulimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.limits.is_empty() {
            return Ok(());
        }
        f.write_str(match self.kind {
            LimitKind::Soft => "-S",
            LimitKind::Hard => "-H",
            LimitKind::Both => "-HS",
        })?;
        for limit in &self.limits {
            write!(f, " -{} ", limit.resource.letter())?;
            match limit.value {
                LimitValue::Unlimited => f.write_str("unlimited")?,
                LimitValue::Units(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_form_sets_both_limits() {
        let u = Ulimit::parse("-HS -u 200 -n 1024").unwrap();
        assert_eq!(u.kind, LimitKind::Both);
        assert_eq!(
            u.limits,
            vec![
                Limit {
                    resource: Resource::Processes,
                    value: LimitValue::Units(200)
                },
                Limit {
                    resource: Resource::Files,
                    value: LimitValue::Units(1024)
                },
            ]
        );
        assert_eq!(u.to_string(), "-HS -u 200 -n 1024");
    }

    #[test]
    fn hard_soft_and_neither() {
        assert_eq!(Ulimit::parse("-H -n 10").unwrap().kind, LimitKind::Hard);
        assert_eq!(Ulimit::parse("-S -n 10").unwrap().kind, LimitKind::Soft);
        assert_eq!(Ulimit::parse("-n 10").unwrap().kind, LimitKind::Both);
        assert_eq!(Ulimit::parse("-Hn 10").unwrap().kind, LimitKind::Hard);
        assert_eq!(Ulimit::parse("-SH -n 10").unwrap().kind, LimitKind::Both);
    }

    #[test]
    fn every_resource_letter_and_units() {
        for (letter, unit) in [
            ('c', 512),
            ('d', 1024),
            ('f', 512),
            ('l', 1024),
            ('m', 1024),
            ('n', 1),
            ('s', 1024),
            ('t', 1),
            ('u', 1),
            ('v', 1024),
        ] {
            let u = Ulimit::parse(&format!("-{letter} 3")).unwrap();
            assert_eq!(u.limits[0].rlim(), 3 * unit, "-{letter}");
            assert_eq!(u.limits[0].resource.letter(), letter);
        }
        let u = Ulimit::parse("-c unlimited").unwrap();
        assert_eq!(u.limits[0].rlim(), u64::MAX);
        assert_eq!(Resource::Processes.rlimit(), k::RLIMIT_NPROC);
    }

    #[test]
    fn errors() {
        for (text, want) in [
            ("-x 1", "unknown ulimit option -x"),
            ("-n", "-n needs a number"),
            ("-n abc", "-n needs a number or 'unlimited', not 'abc'"),
            ("-n -1", "-n needs a number"),
            ("200", "'200' is not an option"),
            ("-nu 1", "one resource per option"),
            ("-d 99999999999999999999", "number too large"),
            ("-d 18014398509481984", "number too large"),
            ("-", "'-' is not an option"),
        ] {
            let err = Ulimit::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
