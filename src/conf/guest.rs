//! The typed view of one guest's configuration, with defaults applied.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::error::{ConfError, Location};
use super::eval::Evaluator;
use super::root::ConfigRoot;
use super::vars::Variables;
use crate::context::capability::CapabilityList;
use crate::context::flags::ContextFlags;
use crate::context::rlimit::{LimitValue, Ulimit};
use crate::net::iproot::{self, IpRoot};

pub const DEFAULT_VSERVERS_ROOT: &str = "/vservers";

/// Static context numbers; 0 is the host, 1 the spectator, and numbers from
/// `DYNAMIC_CONTEXTS` up are handed out to guests that set none.
pub const STATIC_CONTEXTS: std::ops::RangeInclusive<u32> = 2..=49151;
pub const DYNAMIC_CONTEXTS: std::ops::RangeInclusive<u32> = 49152..=65535;

/// NIS domain name: keep the host's, none at all, or a name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DomainName {
    #[default]
    Host,
    None,
    Name(String),
}

#[derive(Debug, Clone)]
pub struct GuestConfig {
    pub name: String,
    pub description: Option<String>,
    pub context: Option<u32>,
    pub ip_root: IpRoot,
    pub ip_root_dev: Option<String>,
    pub ip_root_mask: Option<u8>,
    pub ip_root_bcast: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub domainname: DomainName,
    pub caps: CapabilityList,
    /// S_CAPS_HOST_ROOT: S_CAPS may give capabilities that are host root
    /// (`capability::HOST_ROOT`); without it such an S_CAPS is an error.
    pub caps_host_root: bool,
    pub flags: ContextFlags,
    pub ulimit: Ulimit,
    pub nice: Option<i32>,
    pub onboot: bool,
    pub priority: i32,
    pub profile: Option<String>,
    pub vservers_root: PathBuf,
    pub vserver_dir: PathBuf,
    pub generate_mtab: bool,
    /// S_MEMORY_MAX: most bytes of memory the whole guest may use.
    pub memory_max: Option<u64>,
    /// S_PIDS_MAX: most tasks the whole guest may hold (ULIMIT -u, when
    /// given, wins; unset, a default applies: see `context::spawn::Setup`).
    pub pids_max: Option<LimitValue>,
    /// S_CPU_WEIGHT: the guest's share of CPU time against other guests,
    /// 1 to 10000 (100 is one ordinary task's worth).
    pub cpu_weight: Option<u32>,
    /// S_CPU_MAX: at most QUOTA microseconds of CPU time per PERIOD.
    pub cpu_max: Option<(u64, u64)>,
    /// S_START_TIMEOUT: how long `start` waits for the start scripts.
    pub start_timeout: std::time::Duration,
    /// S_STOP_TIMEOUT: how long `stop` waits for the guest's own shutdown
    /// before it kills what is left.
    pub stop_timeout: std::time::Duration,
    /// S_USERNS: the guest runs in a user namespace of its own, its ids
    /// mapped to a host range of its own (see `context::userns`).
    pub userns: bool,
    /// S_ENV: variables the guest's init and every command run in the
    /// guest get, on top of the clean environment vsbox gives them.
    pub env: Vec<(String, String)>,
    /// Every variable the files set, known or not, in order.
    pub vars: Variables,
}

/// The variables vsbox knows, in printconf's order. IPV4ROOT is the seed's
/// older name of IPROOT and is folded into it.
pub const KNOWN: &[&str] = &[
    "S_CONTEXT",
    "IPROOT",
    "IPROOTDEV",
    "IPROOTMASK",
    "IPROOTBCAST",
    "S_HOSTNAME",
    "S_DOMAINNAME",
    "S_CAPS",
    "S_CAPS_HOST_ROOT",
    "S_FLAGS",
    "ULIMIT",
    "S_NICE",
    "ONBOOT",
    "PRIORITY",
    "PROFILE",
    "VSERVERS_ROOT",
    "VSERVERDIR",
    "GENERATEMTAB",
    "S_MEMORY_MAX",
    "S_PIDS_MAX",
    "S_CPU_WEIGHT",
    "S_CPU_MAX",
    "S_START_TIMEOUT",
    "S_STOP_TIMEOUT",
    "S_USERNS",
    "S_ENV",
];
const ALIASES: &[&str] = &["IPV4ROOT"];

/// A guest name: it becomes a file name, a directory and a cgroup name.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid guest name (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)",
            crate::error::shown(name)
        ))
    }
}

/// Reads a guest's configuration the way the seed's printconf did:
/// vservers.conf (if present) first, then vservers/NAME.conf. A `profile`
/// from the caller overrides PROFILE= in the files.
pub fn load(
    root: &ConfigRoot,
    name: &str,
    profile: Option<&str>,
) -> Result<GuestConfig, ConfError> {
    let guest_file = root.guest_file(name);
    // A bad name is not shown as a file name: it may be long or hold
    // control characters, which check_name's message escapes and shortens.
    check_name(name).map_err(|why| ConfError::file(&root.guests_dir(), why))?;
    let mut vars = Variables::default();
    if let Some(p) = profile {
        vars.fix("PROFILE", p, "command line");
    }
    let mut eval = Evaluator::new(root, vars);
    let global = root.global_file();
    if global.exists() {
        eval.run(&global)?;
    }
    let description = eval.run(&guest_file)?;
    GuestConfig::from_vars(name, description, eval.vars)
}

impl GuestConfig {
    pub fn from_vars(
        name: &str,
        description: Option<String>,
        vars: Variables,
    ) -> Result<Self, ConfError> {
        let view = View { vars: &vars };
        let ip_text = view.text("IPROOT").or_else(|| view.text("IPV4ROOT"));
        let ip_var = if view.text("IPROOT").is_some() {
            "IPROOT"
        } else {
            "IPV4ROOT"
        };
        let vservers_root = view
            .parse("VSERVERS_ROOT", absolute_path)?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_VSERVERS_ROOT));
        let vserver_dir = view
            .parse("VSERVERDIR", absolute_path)?
            .unwrap_or_else(|| vservers_root.join(name));
        let config = GuestConfig {
            name: name.to_string(),
            description,
            context: view.parse("S_CONTEXT", parse_context)?,
            ip_root: match ip_text {
                Some(text) => IpRoot::parse(text).map_err(|e| view.error(ip_var, e))?,
                None => IpRoot::default(),
            },
            ip_root_dev: view.parse("IPROOTDEV", |t| {
                iproot::check_device(t).map(|()| t.to_string())
            })?,
            ip_root_mask: view.parse("IPROOTMASK", |t| iproot::parse_mask(t, true))?,
            ip_root_bcast: view.parse("IPROOTBCAST", |t| {
                t.parse().map_err(|_| {
                    format!(
                        "'{}' is not an IPv4 broadcast address",
                        crate::error::shown(t)
                    )
                })
            })?,
            hostname: view.parse("S_HOSTNAME", parse_hostname)?,
            domainname: match view.parse("S_DOMAINNAME", parse_hostname)? {
                None => DomainName::Host,
                Some(n) if n == "none" => DomainName::None,
                Some(n) => DomainName::Name(n),
            },
            caps: view
                .parse("S_CAPS", CapabilityList::parse)?
                .unwrap_or_default(),
            caps_host_root: view
                .parse("S_CAPS_HOST_ROOT", parse_yes_no)?
                .unwrap_or(false),
            flags: view
                .parse("S_FLAGS", ContextFlags::parse)?
                .unwrap_or_default(),
            ulimit: view.parse("ULIMIT", Ulimit::parse)?.unwrap_or_default(),
            nice: view.parse("S_NICE", parse_nice)?,
            onboot: view.parse("ONBOOT", parse_yes_no)?.unwrap_or(false),
            priority: view
                .parse("PRIORITY", |t| {
                    t.parse::<i32>()
                        .map_err(|_| format!("'{}' is not a whole number", crate::error::shown(t)))
                })?
                .unwrap_or(0),
            profile: view.parse("PROFILE", parse_profile)?,
            vservers_root,
            vserver_dir,
            generate_mtab: view.parse("GENERATEMTAB", parse_yes_no)?.unwrap_or(true),
            memory_max: view.parse("S_MEMORY_MAX", parse_bytes)?,
            pids_max: view.parse("S_PIDS_MAX", parse_pids_max)?,
            cpu_weight: view.parse("S_CPU_WEIGHT", parse_cpu_weight)?,
            cpu_max: view.parse("S_CPU_MAX", parse_cpu_max)?,
            start_timeout: view
                .parse("S_START_TIMEOUT", parse_seconds)?
                .unwrap_or(crate::context::spawn::START_TIMEOUT),
            stop_timeout: view
                .parse("S_STOP_TIMEOUT", parse_seconds)?
                .unwrap_or(crate::context::spawn::STOP_TIMEOUT),
            userns: view.parse("S_USERNS", parse_yes_no)?.unwrap_or(false),
            env: view.parse("S_ENV", parse_env)?.unwrap_or_default(),
            vars: vars.clone(),
        };
        if !config.caps_host_root {
            if let Some((cap, why)) = config.caps.host_root().first() {
                return Err(view.error(
                    "S_CAPS",
                    format!(
                        "{cap} is host root ({why}); remove it, or set S_CAPS_HOST_ROOT=\"yes\" in {}.conf to give the guest the host's root knowingly",
                        config.name
                    ),
                ));
            }
        }
        Ok(config)
    }

    /// The start-time warning of a guest that S_CAPS_HOST_ROOT lets have
    /// host-root capabilities; None when it has none.
    pub fn host_root_warning(&self) -> Option<String> {
        let caps = self.caps.host_root();
        (self.caps_host_root && !caps.is_empty()).then(|| {
            let names: Vec<String> = caps.iter().map(|(c, _)| c.to_string()).collect();
            format!(
                "S_CAPS_HOST_ROOT=yes: S_CAPS gives {}: root in this guest is root on the host",
                names.join(" ")
            )
        })
    }

    /// The effective value of every known variable, as text, in printconf's
    /// order; then the other variables the files set.
    pub fn effective(&self) -> Vec<(String, String)> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let mut out: Vec<(String, String)> = vec![
            ("S_CONTEXT".into(), opt(self.context.map(|c| c.to_string()))),
            ("IPROOT".into(), self.ip_root.to_string()),
            ("IPROOTDEV".into(), opt(self.ip_root_dev.clone())),
            (
                "IPROOTMASK".into(),
                opt(self.ip_root_mask.map(|m| m.to_string())),
            ),
            (
                "IPROOTBCAST".into(),
                opt(self.ip_root_bcast.map(|b| b.to_string())),
            ),
            ("S_HOSTNAME".into(), opt(self.hostname.clone())),
            (
                "S_DOMAINNAME".into(),
                match &self.domainname {
                    DomainName::Host => String::new(),
                    DomainName::None => "none".into(),
                    DomainName::Name(n) => n.clone(),
                },
            ),
            ("S_CAPS".into(), self.caps.to_string()),
            ("S_CAPS_HOST_ROOT".into(), yes_no(self.caps_host_root)),
            ("S_FLAGS".into(), self.flags.to_string()),
            ("ULIMIT".into(), self.ulimit.to_string()),
            ("S_NICE".into(), opt(self.nice.map(|n| n.to_string()))),
            ("ONBOOT".into(), yes_no(self.onboot)),
            ("PRIORITY".into(), self.priority.to_string()),
            ("PROFILE".into(), opt(self.profile.clone())),
            (
                "VSERVERS_ROOT".into(),
                self.vservers_root.display().to_string(),
            ),
            ("VSERVERDIR".into(), self.vserver_dir.display().to_string()),
            ("GENERATEMTAB".into(), yes_no(self.generate_mtab)),
            (
                "S_MEMORY_MAX".into(),
                opt(self.memory_max.map(|m| m.to_string())),
            ),
            (
                "S_PIDS_MAX".into(),
                opt(self.pids_max.map(|p| match p {
                    LimitValue::Units(n) => n.to_string(),
                    LimitValue::Unlimited => "max".into(),
                })),
            ),
            (
                "S_CPU_WEIGHT".into(),
                opt(self.cpu_weight.map(|w| w.to_string())),
            ),
            (
                "S_CPU_MAX".into(),
                opt(self.cpu_max.map(|(q, p)| format!("{q} {p}"))),
            ),
            (
                "S_START_TIMEOUT".into(),
                self.start_timeout.as_secs().to_string(),
            ),
            (
                "S_STOP_TIMEOUT".into(),
                self.stop_timeout.as_secs().to_string(),
            ),
            ("S_USERNS".into(), yes_no(self.userns)),
            (
                "S_ENV".into(),
                self.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ];
        debug_assert!(
            out.iter()
                .map(|(n, _)| n.as_str())
                .eq(KNOWN.iter().copied())
        );
        if let Some(d) = &self.description {
            out.push(("DESCRIPTION".into(), d.clone()));
        }
        for v in self.vars.iter() {
            let known = KNOWN.contains(&v.name.as_str()) || ALIASES.contains(&v.name.as_str());
            if !known && v.name != "DESCRIPTION" {
                out.push((v.name.clone(), v.value.clone()));
            }
        }
        out
    }
}

/// Reads variables and turns bad values into errors at their assignment.
struct View<'a> {
    vars: &'a Variables,
}

impl View<'_> {
    /// The value if set and not empty (empty means "the default", as in the
    /// seed's scripts).
    fn text(&self, name: &str) -> Option<&str> {
        self.vars
            .value(name)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    fn parse<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfError> {
        self.text(name)
            .map(|t| parse(t).map_err(|e| self.error(name, e)))
            .transpose()
    }

    fn error(&self, name: &str, message: String) -> ConfError {
        let loc = self
            .vars
            .get(name)
            .map(|v| v.loc.clone())
            .unwrap_or_else(|| Location {
                file: std::sync::Arc::from(std::path::Path::new("(default)")),
                line: 0,
                col: 0,
            });
        ConfError::value(&loc, name, message)
    }
}

/// A whole number of seconds, at least 1.
fn parse_seconds(t: &str) -> Result<std::time::Duration, String> {
    match t.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(std::time::Duration::from_secs(n)),
        _ => Err(format!(
            "'{}' is not a number of seconds (1 or more)",
            crate::error::shown(t)
        )),
    }
}

/// `NAME=VALUE` words: names as a shell takes them, values without
/// control characters (blanks separate the words).
fn parse_env(t: &str) -> Result<Vec<(String, String)>, String> {
    t.split_whitespace()
        .map(|word| {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| format!("'{}' is not NAME=VALUE", crate::error::shown(word)))?;
            let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(format!(
                    "'{}' is not a variable name",
                    crate::error::shown(name)
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(format!("the value of {name} holds a control character"));
            }
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

fn parse_context(t: &str) -> Result<u32, String> {
    match t.parse::<u32>() {
        Ok(0) => Err("context 0 is the host".into()),
        Ok(1) => Err("context 1 is the spectator context".into()),
        Ok(n) if STATIC_CONTEXTS.contains(&n) => Ok(n),
        _ => Err(format!(
            "'{t}' is not a context number ({}..={}; leave it empty for a dynamic one)",
            STATIC_CONTEXTS.start(),
            STATIC_CONTEXTS.end()
        )),
    }
}

/// Host and NIS domain names: at most 64 bytes (the kernel's limit), no
/// blanks, slashes or control characters.
fn parse_hostname(t: &str) -> Result<String, String> {
    if t.len() > 64 {
        return Err(format!(
            "'{}' is longer than 64 bytes",
            crate::error::shown(t)
        ));
    }
    if t.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "'{}' is not a valid host name",
            crate::error::shown(t)
        ));
    }
    Ok(t.to_string())
}

fn parse_nice(t: &str) -> Result<i32, String> {
    match t.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{}' is not a nice value (-20 to 19)",
            crate::error::shown(t)
        )),
    }
}

fn parse_yes_no(t: &str) -> Result<bool, String> {
    match t.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("'{}' is not yes or no", crate::error::shown(t))),
    }
}

fn parse_profile(t: &str) -> Result<String, String> {
    if t.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        Ok(t.to_string())
    } else {
        Err(format!(
            "'{}' is not a profile name (letters, digits, '.', '_', '-')",
            crate::error::shown(t)
        ))
    }
}

/// A size in bytes: a number with an optional K, M, G or T (powers of 1024).
fn parse_bytes(t: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "'{}' is not a size (a number of bytes, or with K, M, G or T)",
            crate::error::shown(t)
        )
    };
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => t.split_at(at),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(bad)
}

/// A number of tasks (at least 1), or `max` / `unlimited` for none.
fn parse_pids_max(t: &str) -> Result<LimitValue, String> {
    match t.to_ascii_lowercase().as_str() {
        "max" | "unlimited" => Ok(LimitValue::Unlimited),
        _ => match t.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(LimitValue::Units(n)),
            _ => Err(format!(
                "'{}' is not a process limit (a number of at least 1, or max)",
                crate::error::shown(t)
            )),
        },
    }
}

fn parse_cpu_weight(t: &str) -> Result<u32, String> {
    match t.parse::<u32>() {
        Ok(w) if (1..=10_000).contains(&w) => Ok(w),
        _ => Err(format!(
            "'{}' is not a CPU weight (1 to 10000, 100 being one task's worth)",
            crate::error::shown(t)
        )),
    }
}

/// "QUOTA PERIOD" in microseconds, or "N%" of one CPU (period 100 ms).
fn parse_cpu_max(t: &str) -> Result<(u64, u64), String> {
    let bad = || {
        format!(
            "'{}' is not a CPU limit (\"QUOTA PERIOD\" in microseconds, or a percentage of one CPU such as 150%)",
            crate::error::shown(t)
        )
    };
    if let Some(pct) = t.strip_suffix('%') {
        let pct: u64 = pct.trim().parse().map_err(|_| bad())?;
        if pct == 0 {
            return Err(bad());
        }
        return Ok((pct * 1000, 100_000));
    }
    let mut words = t.split_whitespace();
    let (Some(q), Some(p), None) = (words.next(), words.next(), words.next()) else {
        return Err(bad());
    };
    let (q, p): (u64, u64) = (q.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?);
    // The kernel takes periods of 1 ms to 1 s and quotas of at least 1 ms.
    if !(1000..=1_000_000).contains(&p) || q < 1000 {
        return Err(bad());
    }
    Ok((q, p))
}

fn absolute_path(t: &str) -> Result<PathBuf, String> {
    if t.starts_with('/') {
        Ok(PathBuf::from(t))
    } else {
        Err(format!(
            "'{}' is not an absolute path",
            crate::error::shown(t)
        ))
    }
}
