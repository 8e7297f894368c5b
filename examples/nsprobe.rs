//! A namespace probe for the escape tests: copied into guests (it is static,
//! like vsbox) and run there as guest root, it does what util-linux's
//! `unshare -r -m -C` does and busybox's unshare cannot (it has no cgroup
//! namespace): new user, mount and cgroup namespaces, root inside mapped to
//! the caller's uid and gid, then it runs the command in them.
//!
//! ```text
//! nsprobe PROGRAM [ARGS...]
//! ```
//!
//! A refused step prints `error STEP NAME` (the errno name) and exits 1.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use vsbox::sys::process::{ns, unshare_namespaces};

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("nsprobe: no command (see examples/nsprobe.rs)");
        std::process::exit(2)
    };
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    if let Err(e) = unshare_namespaces(ns::USER | ns::MOUNT | ns::CGROUP) {
        refused("unshare", e.name().unwrap_or("?"));
    }
    // setgroups must be denied before an unprivileged gid_map is written.
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ] {
        if let Err(e) = std::fs::write(file, text) {
            let name = e.raw_os_error().map(vsbox::sys::errno::Errno::from_raw);
            refused(file, name.and_then(|n| n.name()).unwrap_or("?"));
        }
    }
    let err = std::process::Command::new(program).args(rest).exec();
    eprintln!("nsprobe: cannot run {}: {err}", program.to_string_lossy());
    std::process::exit(127)
}

fn refused(step: &str, errno: &str) -> ! {
    println!("error {step} {errno}");
    std::process::exit(1)
}
