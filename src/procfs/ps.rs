//! vps and vpstree: the process table printed like ps and pstree, with the
//! context and guest of every process.
//!
//! vps takes a compact subset of ps's options (BSD `ax`, `aux`, UNIX `-e`,
//! `-f`, `-o LIST`, `-p LIST`) plus `--guest NAME`, `--ctx N` and
//! `--no-headers`; every process is listed whatever the selection options
//! say (the spectator view), unless --guest, --ctx or -p narrow it.

use std::fmt::Write as _;

use super::{CLK_TCK, Process, Table, Users, Want, escape, tty_name};
use crate::{Error, Result};

/// A column of vps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Pid,
    Ppid,
    Context,
    Vserver,
    User,
    Uid,
    Stat,
    Tty,
    Vsz,
    Rss,
    Time,
    Etime,
    Pcpu,
    Nlwp,
    Comm,
    Args,
}

/// (names accepted by -o, header, right-aligned width or 0 for left).
const FIELDS: &[(Field, &[&str], &str, usize)] = &[
    (Field::Pid, &["pid"], "PID", 7),
    (Field::Ppid, &["ppid"], "PPID", 7),
    (Field::Context, &["ctx", "context"], "CONTEXT", 7),
    (Field::Vserver, &["vserver", "guest"], "VSERVER", 0),
    (Field::User, &["user", "euser"], "USER", 0),
    (Field::Uid, &["uid", "euid"], "UID", 6),
    (Field::Stat, &["stat", "state", "s"], "STAT", 0),
    (Field::Tty, &["tty", "tt"], "TT", 0),
    (Field::Vsz, &["vsz"], "VSZ", 8),
    (Field::Rss, &["rss"], "RSS", 7),
    (Field::Time, &["time", "cputime"], "TIME", 8),
    (Field::Etime, &["etime"], "ELAPSED", 11),
    (Field::Pcpu, &["pcpu", "%cpu"], "%CPU", 5),
    (Field::Nlwp, &["nlwp", "thcount"], "NLWP", 4),
    (Field::Comm, &["comm", "ucomm"], "COMMAND", 0),
    (Field::Args, &["args", "cmd", "command"], "COMMAND", 0),
];

const DEFAULT: &[Field] = &[
    Field::Pid,
    Field::Context,
    Field::Vserver,
    Field::Stat,
    Field::Time,
    Field::Args,
];
const USER_FORMAT: &[Field] = &[
    Field::User,
    Field::Pid,
    Field::Context,
    Field::Vserver,
    Field::Pcpu,
    Field::Vsz,
    Field::Rss,
    Field::Tty,
    Field::Stat,
    Field::Time,
    Field::Args,
];
const FULL_FORMAT: &[Field] = &[
    Field::User,
    Field::Pid,
    Field::Ppid,
    Field::Context,
    Field::Vserver,
    Field::Tty,
    Field::Time,
    Field::Args,
];

/// Parsed vps options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub fields: Vec<Field>,
    pub guest: Option<String>,
    pub context: Option<u32>,
    pub pids: Vec<i32>,
    pub no_headers: bool,
}

fn field(name: &str) -> Result<Field> {
    FIELDS
        .iter()
        .find(|(_, names, _, _)| names.contains(&name))
        .map(|f| f.0)
        .ok_or_else(|| {
            Error::usage(format!("unknown field '{}' (known: pid ppid ctx vserver user uid stat tty vsz rss time etime pcpu nlwp comm args)", crate::error::shown(name)
            ))
        })
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', ' ']).filter(|s| !s.is_empty())
}

impl Options {
    /// Parses vps's arguments (see the module documentation).
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut format: Option<&[Field]> = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |what: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| Error::usage(format!("{arg} needs {what}")))
            };
            match arg.as_str() {
                "--guest" => o.guest = Some(value("a guest name")?),
                "--ctx" => {
                    let v = value("a context number")?;
                    o.context = Some(v.parse().map_err(|_| {
                        Error::usage(format!(
                            "--ctx: '{}' is not a context number",
                            crate::error::shown(&v)
                        ))
                    })?);
                }
                "--no-headers" | "--no-heading" => o.no_headers = true,
                "-o" | "--format" => {
                    for name in list(&value("a field list")?) {
                        o.fields.push(field(name)?);
                    }
                }
                "-p" | "--pid" => {
                    for p in list(&value("a pid list")?) {
                        o.pids.push(p.parse().map_err(|_| {
                            Error::usage(format!("-p: '{}' is not a pid", crate::error::shown(p)))
                        })?);
                    }
                }
                "-e" | "-A" | "-ax" | "-w" | "-ww" => {}
                "-f" | "-ef" | "-fe" | "-Af" => format = Some(FULL_FORMAT),
                s if !s.starts_with('-') && s.chars().all(|c| "axuwh".contains(c)) => {
                    if s.contains('u') {
                        format = Some(USER_FORMAT);
                    }
                    if s.contains('h') {
                        o.no_headers = true;
                    }
                }
                s => {
                    return Err(Error::usage(format!(
                        "unknown option '{}'",
                        crate::error::shown(s)
                    )));
                }
            }
        }
        if o.fields.is_empty() {
            o.fields = format.unwrap_or(DEFAULT).to_vec();
        }
        Ok(o)
    }

    fn wants(&self) -> Want {
        Want {
            cmdline: self.fields.contains(&Field::Args),
            uid: self
                .fields
                .iter()
                .any(|f| matches!(f, Field::User | Field::Uid)),
        }
    }
}

/// Scans and prints the table `options` ask for.
pub fn vps(options: &Options) -> Result<String> {
    let table = super::scan(options.wants())?;
    let guest = match &options.guest {
        Some(g) => Some(guest_filter(&table, g)?),
        None => None,
    };
    let users = if options.fields.contains(&Field::User) {
        Users::host()
    } else {
        Users::default()
    };
    Ok(format_table(&table, options, guest, &users))
}

/// The guest index --guest names (by name or directory); a guest that
/// runs but has no process seen matches nothing.
fn guest_filter(table: &Table, arg: &str) -> Result<Option<u16>> {
    let name = if arg.contains('/') {
        super::running_guest(arg)?.name
    } else {
        arg.to_string()
    };
    match table.guest_index(&name) {
        Some(i) => Ok(Some(i)),
        None if table.guests.iter().any(|g| g.name == name) => Ok(None),
        None => Err(Error::failure(format!("guest {name} is not running"))),
    }
}

fn format_table(
    table: &Table,
    options: &Options,
    guest: Option<Option<u16>>,
    users: &Users,
) -> String {
    let selected = |p: &Process| {
        guest.is_none_or(|g| g.is_some() && p.guest == g)
            && options.context.is_none_or(|c| table.context(p) == Some(c))
            && (options.pids.is_empty() || options.pids.contains(&p.pid))
    };
    let name_width = table
        .guests
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = String::with_capacity(table.procs.len() * 80);
    let last = options.fields.len() - 1;
    if !options.no_headers {
        for (i, f) in options.fields.iter().enumerate() {
            let (_, _, header, width) = FIELDS.iter().find(|x| x.0 == *f).unwrap();
            pad(
                &mut out,
                header,
                *width,
                left_width(*f, name_width),
                i == last,
            );
        }
        out.push('\n');
    }
    let mut cell = String::new();
    for p in table.procs.iter().filter(|p| selected(p)) {
        for (i, f) in options.fields.iter().enumerate() {
            cell.clear();
            write_field(table, p, *f, users, &mut cell);
            let width = FIELDS.iter().find(|x| x.0 == *f).unwrap().3;
            pad(
                &mut out,
                &cell,
                width,
                left_width(*f, name_width),
                i == last,
            );
        }
        out.push('\n');
    }
    out
}

fn left_width(f: Field, name_width: usize) -> usize {
    match f {
        Field::Vserver => name_width,
        Field::User => 8,
        Field::Stat => 4,
        Field::Tty => 6,
        _ => 0,
    }
}

fn pad(out: &mut String, cell: &str, right: usize, left: usize, last: bool) {
    if right > 0 {
        let _ = write!(out, "{cell:>right$}");
    } else if last {
        out.push_str(cell);
    } else {
        let _ = write!(out, "{cell:<left$}");
    }
    if !last {
        out.push(' ');
    }
}

/// "M:SS" for up to an hour, "H:MM:SS" beyond, "D-HH:MM:SS" beyond a day.
pub fn format_clock(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The process's command line, or `[comm]` when it has none (kernel
/// threads, zombies), escaped.
pub fn write_command(table: &Table, p: &Process, out: &mut String, max: usize) {
    let cmd = table.cmdline(p);
    if cmd.is_empty() {
        out.push('[');
        escape(table.comm(p), out, 64);
        out.push(']');
    } else {
        escape(cmd, out, max);
    }
}

pub fn write_field(table: &Table, p: &Process, f: Field, users: &Users, out: &mut String) {
    let _ = match f {
        Field::Pid => write!(out, "{}", p.pid),
        Field::Ppid => write!(out, "{}", p.ppid),
        Field::Context => match table.context(p) {
            Some(n) => write!(out, "{n}"),
            None => write!(out, "?"),
        },
        Field::Vserver => match table.guest(p) {
            Some(g) => {
                escape(g.name.as_bytes(), out, 64);
                Ok(())
            }
            None => write!(out, "MAIN"),
        },
        Field::User => {
            users.write(p.uid, p.guest.is_none(), out);
            Ok(())
        }
        Field::Uid => write!(out, "{}", p.uid),
        Field::Stat => {
            out.push(p.state as char);
            if p.nice < 0 {
                out.push('<');
            } else if p.nice > 0 {
                out.push('N');
            }
            if p.threads > 1 {
                out.push('l');
            }
            Ok(())
        }
        Field::Tty => write!(out, "{}", tty_name(p.tty)),
        Field::Vsz => write!(out, "{}", p.vsz / 1024),
        Field::Rss => write!(out, "{}", p.rss / 1024),
        Field::Time => write!(out, "{}", format_clock((p.utime + p.stime) / CLK_TCK)),
        Field::Etime => write!(
            out,
            "{}",
            format_clock(table.uptime.saturating_sub(p.start) / CLK_TCK)
        ),
        Field::Pcpu => {
            let alive = table.uptime.saturating_sub(p.start).max(1);
            let tenths = (p.utime + p.stime) * 1000 / alive;
            write!(out, "{}.{}", tenths / 10, tenths % 10)
        }
        Field::Nlwp => write!(out, "{}", p.threads),
        Field::Comm => {
            escape(table.comm(p), out, 64);
            Ok(())
        }
        Field::Args => {
            write_command(table, p, out, super::CMDLINE_MAX);
            Ok(())
        }
    };
}

/// vpstree: the process tree, each subtree whose guest differs from its
/// parent's marked `[NAME ctx N]`. With `guest`, only that guest's
/// subtrees; with `args`, command lines instead of names.
pub fn vpstree(guest: Option<&str>, args: bool) -> Result<String> {
    let table = super::scan(Want {
        cmdline: args,
        uid: false,
    })?;
    let only = match guest {
        Some(g) => match guest_filter(&table, g)? {
            Some(i) => Some(i),
            None => return Ok(String::new()),
        },
        None => None,
    };
    // children[i]: indices of the processes whose parent is procs[i].
    let n = table.procs.len();
    let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, p) in table.procs.iter().enumerate() {
        let parent = table.find(p.ppid).filter(|&j| j != i);
        let in_scope = |q: &Process| only.is_none_or(|g| q.guest == Some(g));
        if !in_scope(p) {
            continue;
        }
        match parent {
            Some(j) if in_scope(&table.procs[j]) => children[j].push(i as u32),
            _ => roots.push(i as u32),
        }
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for (k, &r) in roots.iter().enumerate() {
        tree_line(
            &table,
            &children,
            r,
            None,
            &mut prefix,
            k + 1 == roots.len(),
            args,
            &mut out,
        );
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn tree_line(
    table: &Table,
    children: &[Vec<u32>],
    i: u32,
    parent_guest: Option<Option<u16>>,
    prefix: &mut String,
    last: bool,
    args: bool,
    out: &mut String,
) {
    let p = &table.procs[i as usize];
    let is_child = parent_guest.is_some();
    out.push_str(prefix);
    if is_child {
        out.push_str(if last { "`-" } else { "|-" });
    }
    if args {
        write_command(table, p, out, 200);
    } else {
        escape(table.comm(p), out, 64);
    }
    let _ = write!(out, "({})", p.pid);
    if parent_guest != Some(p.guest) {
        if let Some(g) = table.guest(p) {
            out.push_str(" [");
            escape(g.name.as_bytes(), out, 64);
            match g.number {
                Some(n) => {
                    let _ = write!(out, " ctx {n}]");
                }
                None => out.push_str(" ctx ?]"),
            }
        } else if parent_guest.is_some() {
            out.push_str(" [MAIN ctx 0]");
        }
    }
    out.push('\n');
    let len = prefix.len();
    if is_child {
        prefix.push_str(if last { "  " } else { "| " });
    }
    // Deep trees (a fork chain) would recurse without bound: stop at a
    // depth no real tree reaches.
    if len < 2000 {
        let kids = &children[i as usize];
        for (k, &c) in kids.iter().enumerate() {
            tree_line(
                table,
                children,
                c,
                Some(p.guest),
                prefix,
                k + 1 == kids.len(),
                args,
                out,
            );
        }
    }
    prefix.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Result<Options> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options() {
        assert_eq!(opts(&[]).unwrap().fields, DEFAULT);
        assert_eq!(opts(&["ax"]).unwrap().fields, DEFAULT);
        assert_eq!(opts(&["aux"]).unwrap().fields, USER_FORMAT);
        assert_eq!(opts(&["-ef"]).unwrap().fields, FULL_FORMAT);
        let o = opts(&[
            "-o",
            "pid,ctx",
            "-o",
            "args",
            "--guest",
            "web",
            "--no-headers",
        ])
        .unwrap();
        assert_eq!(o.fields, [Field::Pid, Field::Context, Field::Args]);
        assert_eq!(o.guest.as_deref(), Some("web"));
        assert!(o.no_headers);
        assert_eq!(opts(&["-p", "1,2"]).unwrap().pids, [1, 2]);
        assert_eq!(opts(&["--ctx", "49152"]).unwrap().context, Some(49152));
        assert!(opts(&["-o", "bogus"]).is_err());
        assert!(opts(&["-o"]).is_err());
        assert!(opts(&["--ctx", "x"]).is_err());
        assert!(opts(&["-Z"]).is_err());
    }

    #[test]
    fn clocks() {
        assert_eq!(format_clock(0), "0:00");
        assert_eq!(format_clock(61), "1:01");
        assert_eq!(format_clock(3661), "1:01:01");
        assert_eq!(format_clock(90061), "1-01:01:01");
    }
}
