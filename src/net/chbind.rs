//! Host commands bound to addresses (chbind, the v_ services): the guests'
//! ipv4root programs, on a cgroup made for the command inside the caller's
//! own.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::conf::ConfigRoot;
use crate::conf::eval::Evaluator;
use crate::context::cgroup::SubCgroup;
use crate::context::spawn::{self, ExitCode};
use crate::error::{Error, Result};
use crate::net::iproot::{self, IpRoot};
use crate::net::{ipv4root, rtnetlink};

/// The addresses named by `words`: each an IP address (with an optional
/// /mask), or a network device, which stands for all of its addresses.
pub fn resolve(words: &[String]) -> Result<IpRoot> {
    let mut list: Vec<String> = Vec::new();
    for word in words {
        let word = word.trim();
        let single = IpRoot::parse(word)
            .ok()
            .filter(|r| r.entries().len() == 1 && r.entries()[0].device.is_none());
        let found = match single {
            Some(_) => vec![word.to_string()],
            None => device_addresses(word)?,
        };
        for text in found {
            // An address given twice (or on two devices) counts once.
            let addr = text.split('/').next().unwrap_or_default().to_string();
            if !list
                .iter()
                .any(|t| t.split('/').next() == Some(addr.as_str()))
            {
                list.push(text);
            }
        }
    }
    if list.is_empty() {
        return Err(Error::usage("no address given (--ip IP or --ip DEVICE)"));
    }
    IpRoot::parse(&list.join(" ")).map_err(Error::usage)
}

fn device_addresses(name: &str) -> Result<Vec<String>> {
    if iproot::check_device(name).is_err() {
        return Err(Error::usage(format!(
            "'{}' is neither an IP address nor a network device name",
            crate::error::shown(name)
        )));
    }
    let index = rtnetlink::link_index(name)?.ok_or_else(|| {
        Error::usage(format!(
            "'{}' is neither an IP address nor an existing network device",
            crate::error::shown(name)
        ))
    })?;
    let found: Vec<String> = rtnetlink::addresses(Some(index))?
        .iter()
        .map(|a| format!("{}/{}", a.addr, a.prefix))
        .collect();
    if found.is_empty() {
        return Err(Error::failure(format!("device {name} has no address")));
    }
    Ok(found)
}

/// Runs `command` bound to `ips` (with `bcast` as an extra broadcast
/// address), waits for it and returns its exit status. Its cgroup is
/// removed after it, unless it left processes behind (a daemon).
pub fn run(ips: &IpRoot, bcast: Option<Ipv4Addr>, command: &[OsString]) -> Result<ExitCode> {
    if command.is_empty() {
        return Err(Error::usage("no command to run"));
    }
    let policy = ipv4root::Policy::from_iproot(ips, None, bcast)
        .ok_or_else(|| Error::usage("0.0.0.0 means no restriction: nothing to bind to"))?;
    let cgroup = SubCgroup::create("chbind")?;
    let result = ipv4root::attach(cgroup.dir(), &policy)
        .and_then(|()| spawn::run_in_cgroup(cgroup.dir(), command));
    let removed = cgroup.remove_if_empty();
    let code = result?;
    removed?;
    Ok(code)
}

/// The addresses of host service `service`, from /etc/vservices/SVC.conf
/// (`IP="..."`, addresses or device names); without that file or IP,
/// 127.0.0.1 and the first address of the device of the default route.
pub fn service_addresses(root: &ConfigRoot, service: &str) -> Result<IpRoot> {
    crate::conf::guest::check_name(service).map_err(Error::usage)?;
    let file = services_dir(root).join(format!("{service}.conf"));
    let words: Vec<String> = match file.exists() {
        true => {
            let mut eval = Evaluator::new(root, Default::default());
            eval.run(&file).map_err(|e| Error::usage(e.to_string()))?;
            eval.vars
                .value("IP")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        }
        false => Vec::new(),
    };
    if !words.is_empty() {
        return resolve(&words);
    }
    let mut words = vec!["127.0.0.1".to_string()];
    if let Some(index) = rtnetlink::default_route_device()? {
        let primary = rtnetlink::addresses(Some(index))?
            .into_iter()
            .find(|a| matches!(a.addr, IpAddr::V4(_)));
        if let Some(a) = primary {
            words.push(a.addr.to_string());
        }
    }
    resolve(&words)
}

/// /etc/vservices, moved with the configuration root.
pub fn services_dir(root: &ConfigRoot) -> PathBuf {
    root.dir().join("vservices")
}
