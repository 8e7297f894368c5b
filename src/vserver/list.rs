//! Every configured guest, running or stopped, on one line each (`vserver
//! list`, `vserver-stat --all`), as `lxc-ls -f` and `machinectl list` show
//! theirs; and the JSON object of one guest's status, which `vserver NAME
//! status --json` prints and each list entry extends (one schema).

use std::fmt::Write as _;

use super::all::guest_names;
use super::guest::{Guest, Options, Status};
use crate::conf::ConfigRoot;
use crate::context::initkind::InitKind;
use crate::json::{self, Object};
use crate::procfs;
use crate::procfs::stat::{format_size, format_time};
use crate::{Error, Result};

/// One guest of the list.
#[derive(Debug)]
pub struct GuestRow {
    pub name: String,
    pub status: Status,
    /// IPROOT, as configured ("" for the host's addresses).
    pub addresses: Vec<String>,
    /// What runs as pid 1 (`InitKind::name`): vinit, systemd, sysvinit or
    /// init (another init of the guest's own, fakeinit).
    pub init: Option<&'static str>,
    /// Why the configuration could not be read (the guest is shown
    /// "broken", not left out).
    pub error: Option<Error>,
}

impl GuestRow {
    pub fn state(&self) -> &'static str {
        match (&self.error, self.status.running) {
            (_, true) => "running",
            (Some(_), false) => "broken",
            (None, false) => "stopped",
        }
    }
}

/// The guests of `root` with a configuration file, by name.
pub fn collect(root: &ConfigRoot) -> Result<Vec<GuestRow>> {
    let options = Options {
        silent: true,
        ..Options::default()
    };
    let mut rows = Vec::new();
    for name in guest_names(root)? {
        let row = match Guest::load(root, &name, None, options) {
            Ok(guest) => GuestRow {
                status: guest.status()?,
                addresses: guest
                    .config
                    .ip_root
                    .entries()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                // A guest without its tree yet: what its flags say.
                init: Some(
                    guest
                        .init_kind()
                        .unwrap_or_else(|_| InitKind::from_flags(&guest.config.flags))
                        .name(),
                ),
                error: None,
                name,
            },
            Err(e) => GuestRow {
                // A guest whose file no longer parses may still run.
                status: crate::context::runstate::RunDir::from_env()
                    .find(&name)?
                    .map_or_else(Status::stopped, |r| Status {
                        running: true,
                        context: Some(r.number),
                        ..Status::stopped()
                    }),
                addresses: Vec::new(),
                init: None,
                error: Some(e),
                name,
            },
        };
        rows.push(row);
    }
    Ok(rows)
}

/// NAME STATE CONTEXT ADDRESSES INIT UPTIME MEMORY, `-` where a value does
/// not apply; names and errors escaped to one line.
pub fn table(rows: &[GuestRow]) -> String {
    let mut cells = vec![
        [
            "NAME",
            "STATE",
            "CONTEXT",
            "ADDRESSES",
            "INIT",
            "UPTIME",
            "MEMORY",
        ]
        .map(String::from),
    ];
    for r in rows {
        let mut name = String::new();
        procfs::escape(r.name.as_bytes(), &mut name, 64);
        let s = &r.status;
        let dash = || "-".to_string();
        cells.push([
            name,
            r.state().to_string(),
            s.context.map_or_else(dash, |c| c.to_string()),
            if r.addresses.is_empty() {
                dash()
            } else {
                r.addresses.join(",")
            },
            r.init.map_or_else(dash, str::to_string),
            s.uptime_secs
                .map_or_else(dash, |u| format_time(u * 1_000_000)),
            s.memory_bytes.map_or_else(dash, format_size),
        ]);
    }
    let mut width = [0; 7];
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for r in rows {
        if let Some(e) = &r.error {
            let mut text = String::new();
            procfs::escape(e.message().as_bytes(), &mut text, 300);
            let _ = writeln!(out, "# {}: {text}", r.name);
        }
    }
    out
}

/// The JSON object of one guest's status (`vserver NAME status --json`).
pub fn status_object(name: &str, s: &Status) -> Object {
    Object::new()
        .str("name", name)
        .bool("running", s.running)
        .opt_num("context", s.context)
        .num("processes", s.processes as u64)
        .opt_num("uptime_secs", s.uptime_secs)
        .opt_num("memory_bytes", s.memory_bytes)
}

/// The list as a JSON array: each guest's status object with "state",
/// "addresses", "init" and "error" added.
pub fn json(rows: &[GuestRow]) -> String {
    json::list(rows.iter().map(|r| {
        status_object(&r.name, &r.status)
            .str("state", r.state())
            .strs("addresses", &r.addresses)
            .opt_str("init", r.init)
            .opt_str("error", r.error.as_ref().map(Error::message))
    }))
}

/// Writes the list of `root`'s guests to stdout, as a table or JSON.
pub fn print(root: &ConfigRoot, as_json: bool) -> Result<()> {
    use std::io::Write;
    let rows = collect(root)?;
    let text = if as_json { json(&rows) } else { table(&rows) };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write the guest list", &e))
}
