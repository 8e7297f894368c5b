//! S_NICE: the guest's init, its start scripts and every command run in the
//! guest get the configured nice value, a negative one included (set while
//! vsbox still holds CAP_SYS_NICE, which the guest never gets).

mod common;

use common::is_root;
use common::vserver::{Setup, text};

/// The nice value (field 19) of a /proc/PID/stat line.
fn nice_of(stat: &str) -> i32 {
    // The command name (field 2) is in parentheses and may hold blanks.
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let field: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3.
    field[19 - 3]
        .parse()
        .unwrap_or_else(|_| panic!("no nice value in {stat:?}"))
}

#[test]
fn s_nice_applies_to_init_start_scripts_and_commands() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rc = "#!/bin/sh\n[ \"$1\" = 3 ] && cat /proc/self/stat > /var/log/rc.stat\nexit 0\n";
    let s = Setup::new("nice", "S_NICE=-7\n", rc);
    let own = rustix::process::getpriority_process(None).unwrap();
    assert_ne!(
        own, -7,
        "the test itself must not run at the nice value it checks"
    );

    // A command in the stopped guest (a context of its own).
    let stat = s.ok(&["exec", "cat", "/proc/self/stat"]);
    assert_eq!(nice_of(&stat), -7, "exec in a stopped guest: {stat}");

    s.ok(&["start"]);
    let init = s.init_pid().expect("the guest's init runs");
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    assert_eq!(nice_of(&stat), -7, "the guest's init: {stat}");
    let stat = std::fs::read_to_string(s.guest.join("var/log/rc.stat")).unwrap();
    assert_eq!(nice_of(&stat), -7, "the start scripts: {stat}");
    let stat = s.ok(&["exec", "cat", "/proc/self/stat"]);
    assert_eq!(nice_of(&stat), -7, "exec in the running guest: {stat}");
    // Guest root cannot go below it again: CAP_SYS_NICE is not in the guest.
    let out = s.vserver(&["exec", "nice", "-n", "-3", "cat", "/proc/self/stat"]);
    let stat = text(&out.stdout);
    assert!(
        !out.status.success() || nice_of(&stat) >= -7,
        "guest root raised its priority: {stat}"
    );
    s.ok(&["stop"]);
}
