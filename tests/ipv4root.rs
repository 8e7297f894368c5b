//! The ipv4root BPF programs against the real kernel (root only), without a
//! guest: they load, attach to a temporary cgroup v2 directory, list,
//! detach and are freed; attaching is all or nothing; a refused program
//! reports the verifier's log; the ingress program judges packets
//! (BPF_PROG_TEST_RUN); a process moved into the cgroup sees the bind and
//! socket rules. Loopback addresses only (127.0.0.0/8, ::1).

mod common;

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vsbox::net::ipv4root::{self, Policy, Program};
use vsbox::sys::bpf as sys;

macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// The first cgroup2 mount (/sys/fs/cgroup/unified on hybrid hosts).
fn v2_mount() -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2"))
                .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
        })
        .expect("a cgroup2 mount")
}

/// A temporary cgroup, removed (with the programs attached to it) on drop.
struct TempCgroup {
    path: PathBuf,
    dir: Option<File>,
}

impl TempCgroup {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = v2_mount().join(format!(
            "vsbox-bpftest-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let dir = File::open(&path).unwrap();
        TempCgroup {
            path,
            dir: Some(dir),
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_ref().unwrap().as_fd()
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = ipv4root::detach(dir.as_fd());
        }
        // The processes that were moved in have exited; their exit may
        // still be settling, so rmdir is retried briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = std::fs::remove_dir(&self.path) {
            if e.kind() == std::io::ErrorKind::NotFound || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn policy(addrs: &[&str]) -> Policy {
    let addrs: Vec<(IpAddr, Option<u8>)> = addrs
        .iter()
        .map(|a| match a.split_once('/') {
            Some((a, p)) => (a.parse().unwrap(), Some(p.parse().unwrap())),
            None => (a.parse().unwrap(), None),
        })
        .collect();
    Policy::new(&addrs, None)
}

fn guest_policy() -> Policy {
    policy(&["127.0.0.2/8", "127.0.0.130", "::1"])
}

/// Waits until `f` holds (program freeing may be deferred by the kernel).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut polls = 0;
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        polls += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("{what}: after {polls} polls, {:?}", start.elapsed());
}

#[test]
fn attach_lists_detach_and_frees() {
    need_root!();
    let cg = TempCgroup::new();
    let policy = guest_policy();
    ipv4root::attach(cg.fd(), &policy).unwrap();
    let ids = ipv4root::attached_ids(cg.fd()).unwrap();
    // v4 and v6 socket-address hooks and ingress; no socket-creation rule.
    assert_eq!(ids.len(), 7, "{ids:?}");
    for &id in &ids {
        assert!(ipv4root::program_exists(id));
        let fd = sys::prog_get_fd_by_id(id).unwrap();
        let info = sys::prog_info(fd.as_fd()).unwrap();
        assert_eq!(info.id, id);
        assert!(info.name.starts_with("vsbox_"), "{info:?}");
    }
    // Attaching again stacks a second set; detach removes both.
    ipv4root::attach(cg.fd(), &policy).unwrap();
    assert_eq!(ipv4root::attached_ids(cg.fd()).unwrap().len(), 14);
    assert_eq!(ipv4root::detach(cg.fd()).unwrap(), 14);
    assert!(ipv4root::attached_ids(cg.fd()).unwrap().is_empty());
    for &id in &ids {
        eventually("a detached program is freed", || {
            !ipv4root::program_exists(id)
        });
    }
    assert_eq!(ipv4root::detach(cg.fd()).unwrap(), 0);
}

#[test]
fn removing_the_cgroup_frees_the_programs() {
    need_root!();
    let cg = TempCgroup::new();
    ipv4root::attach(cg.fd(), &policy(&["127.0.0.2"])).unwrap();
    let ids = ipv4root::attached_ids(cg.fd()).unwrap();
    assert_eq!(ids.len(), 7, "{ids:?}");
    // Remove the directory with the programs still attached.
    let mut cg = cg;
    cg.dir = None;
    std::fs::remove_dir(&cg.path).unwrap();
    // The kernel releases a removed cgroup's programs from a work queue.
    for &id in &ids {
        eventually("the programs of a removed cgroup are freed", || {
            !ipv4root::program_exists(id)
        });
    }
}

#[test]
fn attach_is_all_or_nothing() {
    need_root!();
    let cg = TempCgroup::new();
    let mut programs = ipv4root::programs(&guest_policy()).unwrap();
    let good = programs.len();
    // A last program the verifier refuses: r0 is never set.
    programs.push(Program {
        name: "vsbox_broken",
        prog_type: sys::PROG_TYPE_CGROUP_SKB,
        attach_type: sys::CGROUP_INET_INGRESS,
        insns: vec![sys::Insn {
            code: 0x95,
            ..Default::default()
        }],
    });
    let err = ipv4root::attach_programs(cg.fd(), &programs).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("vsbox_broken"), "{text}");
    assert!(text.contains("R0 !read_ok"), "{text}");
    // EACCES on recent kernels, EINVAL on older ones.
    assert!(
        text.ends_with("(EACCES)") || text.ends_with("(EINVAL)"),
        "{text}"
    );
    assert!(ipv4root::attached_ids(cg.fd()).unwrap().is_empty());
    // The good ones are attachable; a bad target fails cleanly.
    programs.truncate(good);
    let not_a_cgroup = File::open("/").unwrap();
    let err = ipv4root::attach_programs(not_a_cgroup.as_fd(), &programs).unwrap_err();
    assert!(
        err.to_string().contains("cannot attach BPF program vsbox_"),
        "{err}"
    );
    ipv4root::attach_programs(cg.fd(), &programs).unwrap();
    assert_eq!(ipv4root::attached_ids(cg.fd()).unwrap().len(), good);
}

#[test]
fn refused_program_returns_the_verifier_log() {
    need_root!();
    let exit = sys::Insn {
        code: 0x95,
        ..Default::default()
    };
    let err = sys::prog_load(
        sys::PROG_TYPE_CGROUP_SOCK_ADDR,
        sys::CGROUP_INET4_BIND,
        &[exit],
        "GPL",
        "vsbox_bad",
    )
    .unwrap_err();
    assert!(
        matches!(err.errno.name(), Some("EACCES" | "EINVAL")),
        "{err}"
    );
    assert!(err.log.contains("R0 !read_ok"), "{}", err.log);
    assert!(err.to_string().contains("verifier: "), "{err}");
}

/// An Ethernet frame around an IP header with destination `dst`.
fn frame(dst: IpAddr) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    match dst {
        IpAddr::V4(a) => {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&20u16.to_be_bytes());
            h[8] = 64;
            h[9] = 17;
            h[12..16].copy_from_slice(&[127, 0, 0, 9]);
            h[16..20].copy_from_slice(&a.octets());
            f.extend_from_slice(&h);
        }
        IpAddr::V6(a) => {
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[6] = 17;
            h[7] = 64;
            h[8..24].copy_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
            h[24..40].copy_from_slice(&a.octets());
            f.extend_from_slice(&h);
        }
    }
    f
}

fn judge(program: &Program, dst: &str) -> u32 {
    let fd = ipv4root::load(program).unwrap();
    sys::prog_test_run(fd.as_fd(), &frame(dst.parse().unwrap())).unwrap()
}

/// Whether BPF_PROG_TEST_RUN gives cgroup-skb programs their packet
/// (data_end): only since Linux 6.13 and its stable backports.
fn test_run_sees_packets() -> bool {
    use vsbox::net::bpf::{Asm, Cond, Reg::*, Size};
    let mut a = Asm::new();
    let short = a.label();
    a.ldx(Size::W, R2, R1, 76)
        .ldx(Size::W, R3, R1, 80)
        .alu64_imm(vsbox::net::bpf::Alu::Add, R2, 1)
        .jmp_reg(Cond::Gt, R2, R3, short)
        .ret(1)
        .bind(short)
        .ret(0);
    let probe = Program {
        name: "vsbox_probe",
        prog_type: sys::PROG_TYPE_CGROUP_SKB,
        attach_type: sys::CGROUP_INET_INGRESS,
        insns: a.finish().unwrap(),
    };
    judge(&probe, "127.0.0.2") == 1
}

#[test]
fn ingress_accepts_only_the_guests_destinations() {
    need_root!();
    if !test_run_sees_packets() {
        eprintln!("skipped: BPF_PROG_TEST_RUN does not pass packets to cgroup-skb programs here");
        return;
    }
    let find = |p: &Policy| {
        ipv4root::programs(p)
            .unwrap()
            .into_iter()
            .find(|p| p.name == "vsbox_ingress")
            .unwrap()
    };
    let both = find(&policy(&["127.0.0.2/8", "127.0.0.130", "::1"]));
    for dst in [
        "127.0.0.2",
        "127.0.0.130",
        "127.255.255.255",
        "255.255.255.255",
        "::1",
    ] {
        assert_eq!(judge(&both, dst), 1, "{dst}");
    }
    for dst in [
        "127.0.0.3",
        "127.0.0.1",
        "127.0.0.131",
        "::2",
        "::ffff:127.0.0.2",
    ] {
        assert_eq!(judge(&both, dst), 0, "{dst}");
    }
    let v4_only = find(&policy(&["127.0.0.130/32"]));
    assert_eq!(judge(&v4_only, "127.0.0.130"), 1);
    assert_eq!(judge(&v4_only, "127.255.255.255"), 0);
    assert_eq!(judge(&v4_only, "::1"), 0);
}

/// Runs netprobe in `cgroup`: a shell moves itself in, then execs it, so
/// every socket is created inside. Returns the probe's first output line.
fn probe_in(cgroup: &Path, args: &[&str]) -> String {
    let probe = common::netprobe();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
        .arg("sh")
        .arg(cgroup)
        .arg(probe)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().next().unwrap_or("").to_string()
}

#[test]
fn sockets_in_the_cgroup_follow_the_policy() {
    need_root!();
    let cg = TempCgroup::new();
    ipv4root::attach(cg.fd(), &guest_policy()).unwrap();
    let p = |args: &[&str]| probe_in(&cg.path, args);
    assert_eq!(p(&["bind", "udp", "127.0.0.3:0"]), "error EPERM");
    assert!(p(&["bind", "udp", "0.0.0.0:0"]).starts_with("bound 127.0.0.2:"));
    assert!(p(&["bind", "tcp", "127.0.0.130:0"]).starts_with("bound 127.0.0.130:"));
    assert!(p(&["bind", "udp", "127.255.255.255:0"]).starts_with("bound 127.255.255.255:"));
    assert_eq!(p(&["bind", "udp", "[::ffff:127.0.0.2]:0"]), "error EPERM");
    assert_eq!(p(&["bind", "udp", "[::2]:0"]), "error EPERM");
    assert!(p(&["bind", "tcp", "[::]:0"]).starts_with("bound [::1]:"));
    // 127.0.0.1 means the guest itself; the source is the guest's first
    // address. The peers are sockets of this (unfiltered) test process.
    let udp = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = udp.local_addr().unwrap().port();
    let sent = p(&["send", "udp", &format!("127.0.0.1:{port}")]);
    assert!(sent.starts_with("sent from "), "{sent}");
    let (_, from) = udp.recv_from(&mut [0; 16]).unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.2");
    let tcp = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let connected = p(&["connect", "tcp", &format!("127.0.0.1:{port}")]);
    assert!(connected.starts_with("connected 127.0.0.2:"), "{connected}");
    assert!(
        connected.ends_with(&format!(" to 127.0.0.2:{port}")),
        "{connected}"
    );
    assert_eq!(p(&["socket", "inet6"]), "ok");

    // Without IPv6: a host without IPv6 addresses and routes.
    let v4 = TempCgroup::new();
    ipv4root::attach(v4.fd(), &policy(&["127.0.0.2/8"])).unwrap();
    let p = |args: &[&str]| probe_in(&v4.path, args);
    assert!(p(&["bind", "tcp", "[::]:0"]).starts_with("bound [::1]:"));
    assert_eq!(p(&["bind", "udp", "[::1]:0"]), "error EADDRNOTAVAIL");
    assert_eq!(p(&["send", "udp", "[::1]:9"]), "error ENETUNREACH");
    assert_eq!(p(&["socket", "inet"]), "ok");
    // Without IPv4: no IPv4 socket at all.
    let v6 = TempCgroup::new();
    ipv4root::attach(v6.fd(), &policy(&["::1"])).unwrap();
    assert_eq!(probe_in(&v6.path, &["socket", "inet"]), "error EPERM");
    assert_eq!(probe_in(&v6.path, &["socket", "inet6"]), "ok");
}

/// A probe left running in the background, killed when the test ends.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_listener_without_bind_gets_only_the_guests_traffic() {
    need_root!();
    use std::io::BufRead;
    use std::net::{SocketAddr, TcpStream};
    let cg = TempCgroup::new();
    ipv4root::attach(cg.fd(), &guest_policy()).unwrap();
    // listen() without bind: the kernel binds 0.0.0.0 and no bind hook runs.
    let mut server = Background(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
            .arg("sh")
            .arg(&cg.path)
            .arg(common::netprobe())
            .args(["serve", "tcp", "-"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(server.0.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let port: u16 = listening.rsplit(':').next().unwrap().parse().unwrap();
    assert!(listening.starts_with("listening 0.0.0.0:"), "{listening}");
    // Another host address: ingress drops the SYN, the connect times out.
    let other: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    assert!(TcpStream::connect_timeout(&other, Duration::from_millis(500)).is_err());
    let guest: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let _conn = TcpStream::connect_timeout(&guest, Duration::from_secs(5)).unwrap();
    let accepted = lines.next().unwrap().unwrap();
    assert!(
        accepted.ends_with(&format!(" on 127.0.0.2:{port}")),
        "{accepted}"
    );
}
