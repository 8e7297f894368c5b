//! Hostile guests against their cgroups (issue 12, findings 4 and 7), as
//! root with real guests: guest root WITHOUT the lock flag makes user, mount
//! and cgroup namespaces (examples/nsprobe.rs), mounts the cgroup
//! hierarchies and tries to lift its limits and to make cgroups outside its
//! own; every guest has a process limit; ULIMIT -u never becomes a per-uid
//! RLIMIT_NPROC shared with other guests.
//!
//! Runs on hybrid hosts (v1 controllers, the dev and CI machines) and on
//! pure cgroup v2 (the test VM).

mod common;

use std::path::{Path, PathBuf};

use common::nsprobe;
use common::vserver::{Setup, text};
use vsbox::context::cgroup::{DEFAULT_PIDS_MAX, Hierarchies, LEAF, PARENT};

/// The guest's rc: nothing, so that vinit alone stays.
const RC: &str = "#!/bin/sh\n";
/// Clears the S_FLAGS=lock that `Setup` writes first.
const NO_LOCK: &str = "S_FLAGS=\n";
/// The mount point the attacks use inside the guest.
const MNT: &str = "/cgp";

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A started guest with the namespace probe at /bin/nsprobe, a mount point
/// for the attacks and a `nobody` user; stopped (and its cgroups removed)
/// when dropped.
fn start(tag: &str, conf: &str) -> Setup {
    let s = Setup::new(tag, conf, RC);
    std::fs::copy(nsprobe(), s.guest.join("bin/nsprobe")).unwrap();
    std::fs::create_dir(s.guest.join(&MNT[1..])).unwrap();
    let passwd = s.guest.join("etc/passwd");
    let mut users = std::fs::read_to_string(&passwd).unwrap();
    users.push_str("nobody:x:65534:65534:nobody:/tmp:/bin/sh\n");
    std::fs::write(&passwd, users).unwrap();
    s.ok(&["start"]);
    s
}

/// Runs `script` as guest root in new user, mount and cgroup namespaces.
fn in_namespaces(s: &Setup, script: &str) -> String {
    let out = s.vserver(&["exec", "/bin/nsprobe", "/bin/sh", "-c", script]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !said.contains("error unshare"),
        "a guest without lock may make namespaces: {said}"
    );
    said
}

/// The guest's directory (`vsbox/NAME`, where its limits are) that holds
/// `controller`'s files.
fn limit_dir(h: &Hierarchies, name: &str, controller: &str) -> PathBuf {
    let mount = if h.v2_controllers.iter().any(|c| c == controller) {
        h.v2.clone().unwrap()
    } else {
        h.v1.iter()
            .find(|v| v.controllers.iter().any(|c| c == controller))
            .unwrap_or_else(|| panic!("no {controller} controller on this host"))
            .mount
            .clone()
    };
    mount.join(PARENT).join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// How the guest mounts the hierarchy of `controller` (`mount` arguments)
/// and finds its own cgroup there (the /proc/self/cgroup line prefix).
fn mount_of(h: &Hierarchies, controller: &str) -> (String, String) {
    if h.v2_controllers.iter().any(|c| c == controller) {
        return ("-t cgroup2 none".into(), "0::".into());
    }
    (
        format!("-t cgroup -o {controller} none"),
        format!("[0-9]*:{controller}:"),
    )
}

/// Guest root mounts the hierarchy of `controller` in its own namespaces
/// and writes `value` into `file` of its own cgroup and of every ancestor it
/// can see, up to the root of its cgroup namespace.
fn lift_script(h: &Hierarchies, controller: &str, file: &str, value: &str) -> String {
    let (mount, line) = mount_of(h, controller);
    format!(
        "mount {mount} {MNT} || exit 3
p=$(grep '^{line}' /proc/self/cgroup | cut -d: -f3)
d={MNT}$p
while :; do
  [ -e \"$d/{file}\" ] && echo {value} > \"$d/{file}\" && echo \"lifted $d/{file}\"
  [ \"$d\" = {MNT} ] && break
  d=${{d%/*}}
done
umount {MNT}
"
    )
}

/// A fork loop of up to 100 sleeps in the guest: how many it started
/// before a fork failed.
fn fork_loop(s: &Setup) -> u32 {
    let out = s.vserver(&[
        "exec",
        "sh",
        "-c",
        "i=0; while [ $i -lt 100 ]; do sleep 300 </dev/null >/dev/null 2>&1 & i=$((i+1)); echo $i; done",
    ]);
    text(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_guest_without_lock_cannot_lift_its_own_limits() {
    need_root!();
    let s = start(
        "lift",
        &format!("{NO_LOCK}S_PIDS_MAX=30\nS_MEMORY_MAX=256M\n"),
    );
    let h = Hierarchies::detect().unwrap();
    let pids_max = limit_dir(&h, &s.name, "pids").join("pids.max");
    let memory_max = if h.v2_controllers.iter().any(|c| c == "memory") {
        ("memory.max", "max")
    } else {
        ("memory.limit_in_bytes", "-1")
    };
    let memory_file = limit_dir(&h, &s.name, "memory").join(memory_max.0);
    let before = read(&memory_file);

    let said = in_namespaces(&s, &lift_script(&h, "pids", "pids.max", "max"));
    eprintln!("pids attack: {said}");
    let said = in_namespaces(&s, &lift_script(&h, "memory", memory_max.0, memory_max.1));
    eprintln!("memory attack: {said}");

    assert_eq!(read(&pids_max), "30", "the guest lifted its pids.max");
    assert_eq!(
        read(&memory_file),
        before,
        "the guest lifted its {}",
        memory_max.0
    );
    // And the limit holds: the guest cannot fork past it.
    let started = fork_loop(&s);
    let current: u64 = read(&pids_max.with_file_name("pids.current"))
        .parse()
        .unwrap();
    assert!(
        started < 30 && current <= 30,
        "{started} sleeps started, pids.current {current}"
    );
}

#[test]
fn a_guest_without_lock_sees_only_its_own_cgroups() {
    need_root!();
    let s = start("view", NO_LOCK);
    let h = Hierarchies::detect().unwrap();
    let made = format!("vsbox-escape-{}", std::process::id());
    // Every hierarchy: how to mount it, where it is on the host.
    let mut hierarchies = vec![("-t cgroup2 none".to_string(), h.v2.clone().unwrap())];
    for v in &h.v1 {
        let mut options = v.controllers.clone();
        if let Some(name) = &v.name {
            if options.is_empty() {
                options.push("none".into());
            }
            options.push(format!("name={name}"));
        }
        hierarchies.push((
            format!("-t cgroup -o {} none", options.join(",")),
            v.mount.clone(),
        ));
    }
    // Removes what the guest made at a host root, pass or fail.
    struct Cleanup(Vec<PathBuf>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for dir in &self.0 {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    let _cleanup = Cleanup(hierarchies.iter().map(|(_, m)| m.join(&made)).collect());

    let mut script = String::new();
    for (mount, _) in &hierarchies {
        script.push_str(&format!(
            "mount {mount} {MNT} && {{ mkdir {MNT}/{made}; umount {MNT}; }} || echo 'refused: {mount}'\n"
        ));
    }
    let said = in_namespaces(&s, &script);
    eprintln!("{said}");
    let at_host_roots: Vec<&PathBuf> = _cleanup.0.iter().filter(|d| d.exists()).collect();
    assert!(
        at_host_roots.is_empty(),
        "the guest made cgroups at the host's roots: {at_host_roots:?}"
    );
    for (mount, host) in &hierarchies {
        let own = host.join(PARENT).join(&s.name).join(LEAF).join(&made);
        assert!(
            own.is_dir(),
            "{mount}: the guest's mkdir is not at {}: {said}",
            own.display()
        );
    }
}

#[test]
fn every_guest_has_a_process_limit() {
    need_root!();
    let h = Hierarchies::detect().unwrap();
    let plain = start("pidsdefault", "");
    let file = limit_dir(&h, &plain.name, "pids").join("pids.max");
    assert_eq!(read(&file), DEFAULT_PIDS_MAX.to_string());
    assert_eq!(DEFAULT_PIDS_MAX, 4096);
    drop(plain);

    let small = start("pids40", "S_PIDS_MAX=40\n");
    let file = limit_dir(&h, &small.name, "pids").join("pids.max");
    assert_eq!(read(&file), "40");
    let started = fork_loop(&small);
    let current: u64 = read(&file.with_file_name("pids.current")).parse().unwrap();
    // vinit and the looping shell count too.
    assert!(
        (30..40).contains(&started) && current <= 40,
        "{started} sleeps started, pids.current {current}"
    );
}

#[test]
fn ulimit_u_limits_the_guest_not_the_uid_across_guests() {
    need_root!();
    let h = Hierarchies::detect().unwrap();
    let b = start("nprocb", "");
    // Guest B's nobody holds five processes.
    b.ok(&[
        "suexec",
        "nobody",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do sleep 300 </dev/null >/dev/null 2>&1 & done",
    ]);
    let a = start("nproca", "ULIMIT=\"-u 3\"\n");
    // Guest A's nobody still runs: -u 3 is A's pids.max (vinit and this
    // shell are two), not an RLIMIT_NPROC that B's nobody already fills.
    let out = a.vserver(&["suexec", "nobody", "sh", "-c", "echo ran; ulimit -u"]);
    let said = text(&out.stdout);
    assert!(
        out.status.success() && said.starts_with("ran\n"),
        "guest A's nobody: {said}{}",
        text(&out.stderr)
    );
    assert_ne!(said, "ran\n3\n", "ULIMIT -u became RLIMIT_NPROC");
    let file = limit_dir(&h, &a.name, "pids").join("pids.max");
    assert_eq!(read(&file), "3");
}
