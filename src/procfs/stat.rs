//! vserver-stat: one line per running guest (and one for the host) with
//! its context, process count, memory, CPU time, uptime, name and
//! description, in the seed's columns and units.
//!
//! Process counts come from the guest's cgroup (cgroup.procs of its tree),
//! resident memory from the cgroup's memory counter and CPU time from its
//! cpu.stat where the host has them, else from the /proc scan; VSZ is
//! always the sum over the guest's processes. The host line (context 0,
//! "root server" as the seed called it) sums the processes outside every
//! guest.

use std::fmt::Write as _;

use super::{CLK_TCK, Want, escape};
use crate::Result;
use crate::conf::ConfigRoot;
use crate::context::cgroup::{Cgroup, keyed_value};

/// One line of vserver-stat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestStat {
    /// None for a guest cgroup no run-state record names.
    pub context: Option<u32>,
    pub name: String,
    pub processes: u64,
    /// Bytes.
    pub vsz: u64,
    pub rss: u64,
    /// Microseconds.
    pub user_usec: u64,
    pub sys_usec: u64,
    pub uptime_secs: u64,
    pub description: Option<String>,
}

/// The host's line first, then each guest's by context number.
pub fn collect() -> Result<Vec<GuestStat>> {
    let table = super::scan(Want::default())?;
    let usec = |ticks: u64| ticks * (1_000_000 / CLK_TCK);
    let mut lines = Vec::new();
    let mut host = GuestStat {
        context: Some(0),
        name: "root server".to_string(),
        uptime_secs: table.uptime / CLK_TCK,
        ..GuestStat::default()
    };
    let mut guests: Vec<GuestStat> = table
        .guests
        .iter()
        .map(|g| GuestStat {
            context: g.number,
            name: g.name.clone(),
            ..GuestStat::default()
        })
        .collect();
    for p in &table.procs {
        let s = match p.guest {
            Some(i) => &mut guests[usize::from(i)],
            None => &mut host,
        };
        s.processes += 1;
        s.vsz += p.vsz;
        s.rss += p.rss;
        s.user_usec += usec(p.utime);
        s.sys_usec += usec(p.stime);
    }
    lines.push(host);
    let root = ConfigRoot::select(None);
    for (g, s) in table.guests.iter().zip(&mut guests) {
        if let Some(init) = table.find(g.init_pid) {
            s.uptime_secs = table.uptime.saturating_sub(table.procs[init].start) / CLK_TCK;
        }
        if let Ok(cgroup) = Cgroup::open(&g.cgroup) {
            if let Ok(pids) = cgroup.processes() {
                s.processes = pids.len() as u64;
            }
            if let Ok(Some(memory)) = cgroup.stats().map(|st| st.memory_current) {
                s.rss = memory;
            }
            // cpu.stat is a core v2 file (no controller needed): user and
            // system time of every task the guest ever had, gone or not.
            if let Ok(text) = std::fs::read_to_string(cgroup.v2_path().join("cpu.stat")) {
                if let (Some(u), Some(sy)) = (
                    keyed_value(&text, "user_usec"),
                    keyed_value(&text, "system_usec"),
                ) {
                    s.user_usec = u;
                    s.sys_usec = sy;
                }
            }
        }
        if g.number.is_some() {
            s.description = crate::conf::load(&root, &g.name, None)
                .ok()
                .and_then(|c| c.description);
        }
    }
    guests.retain(|s| s.context.is_some() || s.processes > 0);
    guests.sort_by_key(|s| s.context.unwrap_or(u32::MAX));
    lines.extend(guests);
    Ok(lines)
}

/// Bytes as the seed 0.20 showed them: 512, 1.5K, 10.6M, 1.4G, 2.0T.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut unit = 0;
    let mut div = 1024u64;
    while unit + 1 < UNITS.len() && bytes >= div * 1024 {
        div *= 1024;
        unit += 1;
    }
    let tenths = (bytes as u128 * 10 / div as u128) as u64;
    format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
}

/// CPU time or uptime as the seed showed them: "4m05s37" (minutes,
/// seconds, hundredths) under an hour, "3h25m07" under a day, "2d04h11"
/// under a year, then "1y123d04".
pub fn format_time(usec: u64) -> String {
    let cs = usec / 10_000;
    let s = cs / 100;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if h == 0 {
        format!("{m}m{:02}s{:02}", s % 60, cs % 100)
    } else if d == 0 {
        format!("{h}h{:02}m{:02}", m % 60, s % 60)
    } else if d < 365 {
        format!("{d}d{:02}h{:02}", h % 24, m % 60)
    } else {
        format!("{}y{}d{:02}", d / 365, d % 365, h % 24)
    }
}

pub fn table(lines: &[GuestStat]) -> String {
    let mut out = String::from("CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME\n");
    for s in lines {
        let ctx = s.context.map_or("?".to_string(), |c| c.to_string());
        let _ = write!(
            out,
            "{ctx:<5} {:>4} {:>6} {:>6} {:>9} {:>9} {:>9} ",
            s.processes,
            format_size(s.vsz),
            format_size(s.rss),
            format_time(s.user_usec),
            format_time(s.sys_usec),
            format_time(s.uptime_secs * 1_000_000),
        );
        escape(s.name.as_bytes(), &mut out, 64);
        if let Some(d) = &s.description {
            out.push_str("  ");
            escape(d.as_bytes(), &mut out, 200);
        }
        out.push('\n');
    }
    out
}

pub fn json(lines: &[GuestStat]) -> String {
    crate::json::list(lines.iter().map(|s| {
        crate::json::Object::new()
            .opt_num("ctx", s.context)
            .str("name", &s.name)
            .num("processes", s.processes)
            .num("vsz", s.vsz)
            .num("rss", s.rss)
            .num("user_usec", s.user_usec)
            .num("sys_usec", s.sys_usec)
            .num("uptime_secs", s.uptime_secs)
            .opt_str("description", s.description.as_ref())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_like_the_seed() {
        assert_eq!(format_size(512), "512");
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(10 * 1024 * 1024 + 600 * 1024), "10.5M");
        assert_eq!(format_size(3 << 30), "3.0G");
        assert_eq!(format_size(5 << 50), "5120.0T");
        assert_eq!(format_time(0), "0m00s00");
        assert_eq!(format_time(245_370_000), "4m05s37");
        assert_eq!(format_time(12_307_000_000), "3h25m07");
        assert_eq!(format_time(187_860_000_000), "2d04h11");
        assert_eq!(format_time(400 * 86_400_000_000), "1y35d00");
    }

    #[test]
    fn json_is_escaped() {
        let s = GuestStat {
            context: None,
            name: "a\"b".into(),
            description: Some("x\ny".into()),
            ..GuestStat::default()
        };
        let j = json(&[s]);
        assert!(j.contains("\"ctx\": null, \"name\": \"a\\\"b\""), "{j}");
        assert!(j.contains("\"description\": \"x\\ny\"}"), "{j}");
    }
}
