//! Guest cgroups against the real kernel (root only): limits land in the
//! control files, processes move in, pids.max holds against a fork loop,
//! kill_all kills everything, remove and failed creates leave nothing.
//!
//! Runs on hybrid hosts (dev, CI) and pure cgroup v2 hosts (the test VM).
//! Every test uses its own cgroup name and cleans up through Drop guards.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::process::Pid;
use vsbox::context::cgroup::{self, Cgroup, CgroupLimits};

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

fn unique_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "vsbox-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The cgroup mounts, read here independently of the library: (mount point,
/// v1 controllers or None for cgroup2).
fn cgroup_mounts() -> Vec<(PathBuf, Option<Vec<String>>)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let (left, right) = line.split_once(" - ").unwrap();
        let mount = PathBuf::from(left.split(' ').nth(4).unwrap());
        let f: Vec<&str> = right.split(' ').collect();
        match f[0] {
            "cgroup2" => out.push((mount, None)),
            "cgroup" => out.push((mount, Some(f[2].split(',').map(str::to_string).collect()))),
            _ => {}
        }
    }
    out
}

fn v2_mount() -> PathBuf {
    cgroup_mounts()
        .into_iter()
        .find(|(_, c)| c.is_none())
        .expect("a cgroup2 mount")
        .0
}

fn v2_dir(name: &str) -> PathBuf {
    v2_mount().join("vsbox").join(name)
}

/// Whether `controller` is on v2 here (pure v2 host) or on v1 (hybrid).
fn on_v2(controller: &str) -> bool {
    let text = std::fs::read_to_string(v2_mount().join("cgroup.controllers")).unwrap();
    text.split_whitespace().any(|c| c == controller)
}

/// The directory of guest `name` that holds `controller`'s files.
fn controller_dir(name: &str, controller: &str) -> PathBuf {
    if on_v2(controller) {
        return v2_dir(name);
    }
    let (mount, _) = cgroup_mounts()
        .into_iter()
        .find(|(_, c)| {
            c.as_ref()
                .is_some_and(|c| c.iter().any(|x| x == controller))
        })
        .unwrap_or_else(|| panic!("no {controller} controller on this host"));
    mount.join("vsbox").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Every place a directory of guest `name` could be, on every cgroup mount.
fn leftovers(name: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|(m, _)| m.join("vsbox").join(name))
        .filter(|p| p.exists())
        .collect()
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(child.id() as i32).unwrap()
}

/// Removes the cgroup (killing what is in it) and kills and reaps the
/// children at the end of a test, pass or fail.
struct Guard {
    name: String,
    children: Vec<Child>,
}

impl Guard {
    fn new(name: &str) -> Self {
        Guard {
            name: name.to_string(),
            children: Vec::new(),
        }
    }

    /// Starts `sh -c script` with piped stdin and stderr; the script should
    /// `read` a line before doing anything, so it can be moved into the
    /// cgroup first.
    fn shell(&mut self, script: &str) -> &mut Child {
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start sh");
        self.children.push(child);
        self.children.last_mut().unwrap()
    }

    fn sleep(&mut self) -> Pid {
        let child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("cannot start sleep");
        let pid = pid_of(&child);
        self.children.push(child);
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(cg) = Cgroup::open(&self.name) {
            let _ = cg.remove();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // If the library failed, do it by hand so no test leaves a cgroup.
        let left = leftovers(&self.name);
        for dir in &left {
            kill_tree_by_hand(dir);
        }
        for dir in &left {
            remove_tree_by_hand(dir);
        }
    }
}

/// SIGKILLs every process listed in `dir` and the cgroups below it.
fn kill_tree_by_hand(dir: &Path) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in text
            .split_whitespace()
            .filter_map(|w| w.parse::<i32>().ok())
        {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                kill_tree_by_hand(&e.path());
            }
        }
    }
}

/// Removes `dir` and the cgroups below it, deepest first, retrying while
/// killed processes are still leaving.
fn remove_tree_by_hand(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree_by_hand(&e.path());
            }
        }
    }
    let end = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn limits_are_written_to_the_control_files() {
    need_root!();
    let name = unique_name();
    let _guard = Guard::new(&name);
    let limits = CgroupLimits {
        pids_max: Some(7),
        memory_max: Some(64 << 20),
        cpu_weight: Some(200),
        cpu_max: Some((50_000, 100_000)),
    };
    let cg = Cgroup::create(&name, &limits).unwrap();
    assert_eq!(cg.name(), name);
    assert_eq!(cg.v2_path(), v2_dir(&name));
    assert!(v2_dir(&name).is_dir());

    assert_eq!(read(&controller_dir(&name, "pids").join("pids.max")), "7");
    if on_v2("memory") {
        assert_eq!(read(&v2_dir(&name).join("memory.max")), "67108864");
    } else {
        let dir = controller_dir(&name, "memory");
        assert_eq!(read(&dir.join("memory.limit_in_bytes")), "67108864");
    }
    if on_v2("cpu") {
        assert_eq!(read(&v2_dir(&name).join("cpu.weight")), "200");
        assert_eq!(read(&v2_dir(&name).join("cpu.max")), "50000 100000");
    } else {
        let dir = controller_dir(&name, "cpu");
        assert_eq!(read(&dir.join("cpu.shares")), "2048");
        assert_eq!(read(&dir.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&dir.join("cpu.cfs_period_us")), "100000");
    }
    // Each controller's directory is one of the guest's.
    let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    for c in ["pids", "memory", "cpu"] {
        assert!(paths.contains(&controller_dir(&name, c)), "{c}: {paths:?}");
    }
    // vsbox/ itself holds no process (the v2 no-internal-processes rule).
    assert_eq!(read(&v2_mount().join("vsbox/cgroup.procs")), "");
}

#[test]
fn no_limits_mean_the_kernel_defaults() {
    need_root!();
    let name = unique_name();
    let _guard = Guard::new(&name);
    let _cg = Cgroup::create(&name, &CgroupLimits::default()).unwrap();
    assert_eq!(read(&controller_dir(&name, "pids").join("pids.max")), "max");
}

#[test]
fn a_process_moves_in_and_is_counted() {
    need_root!();
    let name = unique_name();
    let mut guard = Guard::new(&name);
    let cg = Cgroup::create(&name, &CgroupLimits::default()).unwrap();
    assert!(cg.is_empty().unwrap());
    assert!(cg.processes().unwrap().is_empty());

    let pids: Vec<Pid> = (0..3).map(|_| guard.sleep()).collect();
    for &pid in &pids {
        cg.add_process(pid).unwrap();
    }
    let mut expected = pids.clone();
    expected.sort_unstable_by_key(|p| p.as_raw_nonzero());
    assert_eq!(cg.processes().unwrap(), expected);
    assert!(!cg.is_empty().unwrap());

    // /proc/PID/cgroup, raw and through the library.
    let text = read(Path::new(&format!(
        "/proc/{}/cgroup",
        pids[0].as_raw_nonzero()
    )));
    // In the leaf below the limits, in every hierarchy, v1 ones without a
    // controller vsbox uses and named ones included.
    let want = format!("/vsbox/{name}/{}", cgroup::LEAF);
    assert!(text.lines().any(|l| l == format!("0::{want}")), "{text}");
    for line in text.lines() {
        assert!(line.ends_with(&format!(":{want}")), "not joined: {line}");
    }
    let pc = cgroup::current_cgroup(pids[0]).unwrap();
    assert_eq!(pc.guest(), Some(name.as_str()));
    assert_eq!(pc.v2.as_deref(), Some(want.as_str()));
    let me = cgroup::current_cgroup(rustix::process::getpid()).unwrap();
    assert_ne!(me.guest(), Some(name.as_str()));

    // Stats: three single-threaded sleeps. Memory is not charged on
    // migration, so let a fourth process allocate in the guest.
    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids_current, Some(3));
    assert!(stats.memory_current.is_some());
    assert!(stats.cpu_usage_usec.is_some());
    let child = guard.shell("read go; exec sleep 30");
    let fourth = pid_of(child);
    cg.add_process(fourth).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    expected.push(fourth);
    expected.sort_unstable_by_key(|p| p.as_raw_nonzero());
    wait_for("memory use", Duration::from_secs(10), || {
        cg.stats().unwrap().memory_current.unwrap() > 0
    });
    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids_current, Some(4));
    let mem = stats.memory_current.unwrap();
    assert!(mem < 1 << 30, "memory {mem}");

    // Opening by name finds the same directories and members.
    let again = Cgroup::open(&name).unwrap();
    assert_eq!(again.paths(), cg.paths());
    assert_eq!(again.processes().unwrap(), expected);
    let fd = again.v2_dir_fd().unwrap();
    let st = rustix::fs::fstat(&fd).unwrap();
    assert_eq!(
        rustix::fs::FileType::from_raw_mode(st.st_mode),
        rustix::fs::FileType::Directory
    );
    let flags = rustix::io::fcntl_getfd(&fd).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));

    // remove kills them: each sleep dies of SIGKILL.
    cg.remove().unwrap();
    for child in &mut guard.children {
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
}

#[test]
fn opening_a_missing_cgroup_fails_with_enoent() {
    need_root!();
    let err = Cgroup::open(&unique_name()).unwrap_err();
    assert_eq!(err.errno().map(|e| e.raw()), Some(2), "{err}");
}

#[test]
fn pids_max_stops_a_fork_loop() {
    need_root!();
    let name = unique_name();
    let mut guard = Guard::new(&name);
    let limits = CgroupLimits {
        pids_max: Some(5),
        ..Default::default()
    };
    let cg = Cgroup::create(&name, &limits).unwrap();
    let child = guard.shell(
        "read go; i=0; while [ $i -lt 20 ]; do sleep 30 2>/dev/null & i=$((i+1)); done; echo survived >&2",
    );
    cg.add_process(pid_of(child)).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(
        err.to_ascii_lowercase().contains("fork"),
        "no fork failure: {err:?}"
    );
    let left = cg.processes().unwrap();
    assert!(
        !left.is_empty() && left.len() <= 5,
        "{} processes: {left:?}",
        left.len()
    );
    let current = cg.stats().unwrap().pids_current.unwrap();
    assert!(current <= 5, "pids.current {current}");
    cg.kill_all().unwrap();
    assert!(cg.is_empty().unwrap());
    assert!(cg.processes().unwrap().is_empty());
}

/// A shell that forks as fast as it can (sleeps and sub-shells that fork
/// too); `kill` stops all of it.
fn kill_a_forking_tree(kill: impl FnOnce(&Cgroup) -> vsbox::Result<()>) {
    let name = unique_name();
    let mut guard = Guard::new(&name);
    // A bound so the test stays small even if kill_all broke.
    let limits = CgroupLimits {
        pids_max: Some(200),
        ..Default::default()
    };
    let cg = Cgroup::create(&name, &limits).unwrap();
    let child = guard.shell(
        "read go; while :; do sleep 30 & (while :; do sleep 1 & sleep 0.05; done) & sleep 0.01; done",
    );
    let shell = pid_of(child);
    cg.add_process(shell).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    wait_for("the tree to grow", Duration::from_secs(10), || {
        cg.processes().unwrap().len() >= 20
    });
    let seen = cg.processes().unwrap();
    kill(&cg).unwrap();
    assert!(cg.is_empty().unwrap());
    assert!(cg.processes().unwrap().is_empty());
    use std::os::unix::process::ExitStatusExt;
    let status = guard.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    // None of the processes seen is alive in the guest: gone, a zombie
    // waiting for init, or a reused pid elsewhere.
    for pid in seen {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero()));
        let Ok(stat) = stat else { continue };
        let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]);
        if state == Some("Z") {
            continue;
        }
        if let Ok(pc) = cgroup::current_cgroup(pid) {
            assert_ne!(pc.guest(), Some(name.as_str()), "{pid:?} survived: {stat}");
        }
    }
    cg.remove().unwrap();
    assert!(leftovers(&name).is_empty());
}

#[test]
fn kill_all_kills_every_process_including_forking_ones() {
    need_root!();
    kill_a_forking_tree(|cg| cg.kill_all());
}

#[test]
fn kill_by_freezing_kills_every_process_including_forking_ones() {
    need_root!();
    kill_a_forking_tree(|cg| cg.kill_all_by_freezing());
}

#[test]
fn freeze_stops_cpu_use_and_thaw_resumes_it() {
    need_root!();
    let name = unique_name();
    let mut guard = Guard::new(&name);
    let cg = Cgroup::create(&name, &CgroupLimits::default()).unwrap();
    let child = guard.shell("read go; while :; do :; done");
    cg.add_process(pid_of(child)).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let usage = || cg.stats().unwrap().cpu_usage_usec.unwrap();
    let start = usage();
    wait_for("CPU use", Duration::from_secs(10), || {
        usage() > start + 20_000
    });

    cg.freeze().unwrap();
    // Let accounting that was in flight when the freeze landed settle (slow
    // under emulation), then nothing may be added.
    std::thread::sleep(Duration::from_millis(100));
    let frozen = usage();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(usage(), frozen, "a frozen guest used CPU");

    cg.thaw().unwrap();
    wait_for("CPU use after thaw", Duration::from_secs(10), || {
        usage() > frozen + 20_000
    });
    cg.remove().unwrap();
    assert!(leftovers(&name).is_empty());
}

#[test]
fn remove_leaves_no_directory_even_with_sub_cgroups() {
    need_root!();
    let name = unique_name();
    let mut guard = Guard::new(&name);
    let cg = Cgroup::create(&name, &CgroupLimits::default()).unwrap();
    let made: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    assert!(made.iter().all(|p| p.is_dir()));
    assert_eq!(leftovers(&name).len(), made.len());
    // A guest may make cgroups of its own below its v2 directory.
    let sub = v2_dir(&name).join("inner/deeper");
    std::fs::create_dir_all(&sub).unwrap();
    let pid = guard.sleep();
    std::fs::write(sub.join("cgroup.procs"), pid.as_raw_nonzero().to_string()).unwrap();
    assert_eq!(cg.processes().unwrap(), vec![pid]);
    assert!(!cg.is_empty().unwrap());

    cg.remove().unwrap();
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    for p in made {
        assert!(!p.exists(), "{}", p.display());
    }
}

#[test]
fn a_create_the_kernel_refuses_half_way_leaves_nothing() {
    need_root!();
    let name = unique_name();
    let _guard = Guard::new(&name);
    // The kernel wants a quota of at least 1000 us: the directories are made
    // by then, and must go again.
    let limits = CgroupLimits {
        pids_max: Some(10),
        cpu_max: Some((10, 100_000)),
        ..Default::default()
    };
    let err = Cgroup::create(&name, &limits).unwrap_err();
    assert_eq!(err.errno().map(|e| e.raw()), Some(22), "{err}");
    assert!(err.to_string().contains("cpu"), "{err}");
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));

    // Refused before anything is made.
    let err = Cgroup::create(
        &name,
        &CgroupLimits {
            cpu_weight: Some(0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.exit_status(), 2, "{err}");
    assert!(leftovers(&name).is_empty());
    assert!(Cgroup::create("../escape", &CgroupLimits::default()).is_err());
    assert!(!v2_mount().join("escape").exists());
}

#[test]
fn a_running_guest_name_is_refused_and_left_alone() {
    need_root!();
    let name = unique_name();
    let mut guard = Guard::new(&name);
    let cg = Cgroup::create(
        &name,
        &CgroupLimits {
            pids_max: Some(9),
            ..Default::default()
        },
    )
    .unwrap();
    let pid = guard.sleep();
    cg.add_process(pid).unwrap();

    let err = Cgroup::create(
        &name,
        &CgroupLimits {
            pids_max: Some(3),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.errno().map(|e| e.raw()), Some(16), "{err}");
    assert!(err.to_string().contains("running"), "{err}");
    // The running guest keeps its directories, limit and process.
    assert_eq!(cg.processes().unwrap(), vec![pid]);
    assert_eq!(read(&controller_dir(&name, "pids").join("pids.max")), "9");
    assert_eq!(leftovers(&name).len(), cg.paths().len());
}

#[test]
fn a_stale_empty_cgroup_is_replaced() {
    need_root!();
    let name = unique_name();
    let _guard = Guard::new(&name);
    let old = Cgroup::create(
        &name,
        &CgroupLimits {
            pids_max: Some(9),
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::create_dir(v2_dir(&name).join("leftover")).unwrap();
    drop(old);
    let new = Cgroup::create(
        &name,
        &CgroupLimits {
            pids_max: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(read(&controller_dir(&name, "pids").join("pids.max")), "4");
    assert!(!v2_dir(&name).join("leftover").exists());
    new.remove().unwrap();
    assert!(leftovers(&name).is_empty());
}

#[test]
fn layout_is_detected_from_the_mounts() {
    need_root!();
    let h = cgroup::Hierarchies::detect().unwrap();
    assert_eq!(h.v2.as_deref(), Some(v2_mount().as_path()));
    let v1_controllers = cgroup_mounts().iter().any(|(_, c)| {
        c.as_ref()
            .is_some_and(|c| c.iter().any(|x| x == "pids" || x == "memory"))
    });
    let want = if v1_controllers {
        cgroup::Layout::Hybrid
    } else {
        cgroup::Layout::Unified
    };
    assert_eq!(h.layout(), want);
    eprintln!("cgroup layout: {}", h.layout());
}
