//! The guest's seccomp filter as a classic-BPF program, built without
//! libseccomp.
//!
//! The program is built once (a `Vec<SockFilter>`, before any fork or
//! clone) and installed as many times as needed with
//! `sys::seccomp::install`. It is defence in depth behind the capability
//! ceiling: every call it denies also needs a capability a guest lacks, or
//! reaches kernel code (keyrings, perf, userfaultfd) that is not namespaced
//! and has a long record of exploits.
//!
//! Decisions, in program order:
//! 1. `seccomp_data.arch` is not this build's architecture (i386 `int 0x80`
//!    on x86_64, for instance): kill the process. On x86_64 the x32 calls
//!    (numbers with bit 30 set) are killed too: the rules below name x86_64
//!    numbers only.
//! 2. Calls in the deny list: EPERM. io_uring_setup, io_uring_enter and
//!    io_uring_register too (the answer of the kernel's own
//!    io_uring_disabled sysctl), unless the guest's S_FLAGS has `io_uring`:
//!    io_uring runs the guest's I/O in kernel workers, outside what the
//!    filter sees, and has been the kernel's largest source of privilege
//!    escalations since 5.1.
//! 3. ioctl TIOCSTI / TIOCLINUX (terminal input injection into a host shell
//!    whose terminal a guest process shares): EPERM. The command is compared
//!    on its low 32 bits only, as the kernel reads it (CVE-2019-10063).
//! 4. With the lock flag: setns always, clone and unshare when a
//!    namespace flag is set (low 32 bits of args[0]): EPERM; clone3: ENOSYS,
//!    because its flags sit in memory the filter cannot read, and ENOSYS
//!    (not EPERM) makes libc fall back to clone (moby#42680).
//!    A guest with a user namespace of its own (S_USERNS) may make new
//!    namespaces: they nest in its user namespace, so its capabilities over
//!    them are no more than over its own (systemd's PrivateTmp and other
//!    unit sandboxing need them). setns stays refused: entering a namespace
//!    is how an escape goes, and the guest has no need of it.
//! 5. Everything else: allowed.

use linux_raw_sys::general as k;

use crate::sys::seccomp::{
    AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64, BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K,
    BPF_LD, BPF_RET, BPF_W, DATA_ARCH, DATA_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS, SockFilter, X32_SYSCALL_BIT, data_arg_low,
};

/// The system call numbers the filter names, for one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscalls {
    pub kexec_load: u32,
    pub kexec_file_load: u32,
    pub init_module: u32,
    pub finit_module: u32,
    pub delete_module: u32,
    pub open_by_handle_at: u32,
    pub bpf: u32,
    pub perf_event_open: u32,
    pub add_key: u32,
    pub request_key: u32,
    pub keyctl: u32,
    pub userfaultfd: u32,
    pub io_uring_setup: u32,
    pub io_uring_enter: u32,
    pub io_uring_register: u32,
    pub ioctl: u32,
    pub setns: u32,
    pub unshare: u32,
    pub clone: u32,
    pub clone3: u32,
}

impl Syscalls {
    /// The numbers of the architecture this is built for
    /// (linux-raw-sys's `general` module is per target).
    pub const NATIVE: Syscalls = Syscalls {
        kexec_load: k::__NR_kexec_load,
        kexec_file_load: k::__NR_kexec_file_load,
        init_module: k::__NR_init_module,
        finit_module: k::__NR_finit_module,
        delete_module: k::__NR_delete_module,
        open_by_handle_at: k::__NR_open_by_handle_at,
        bpf: k::__NR_bpf,
        perf_event_open: k::__NR_perf_event_open,
        add_key: k::__NR_add_key,
        request_key: k::__NR_request_key,
        keyctl: k::__NR_keyctl,
        userfaultfd: k::__NR_userfaultfd,
        io_uring_setup: k::__NR_io_uring_setup,
        io_uring_enter: k::__NR_io_uring_enter,
        io_uring_register: k::__NR_io_uring_register,
        ioctl: k::__NR_ioctl,
        setns: k::__NR_setns,
        unshare: k::__NR_unshare,
        clone: k::__NR_clone,
        clone3: k::__NR_clone3,
    };

    /// The calls answered EPERM in every guest, with the reason shown in
    /// docs/SECURITY.md.
    pub fn denied(&self) -> [(u32, &'static str); 12] {
        [
            (self.kexec_load, "kexec_load"),
            (self.kexec_file_load, "kexec_file_load"),
            (self.init_module, "init_module"),
            (self.finit_module, "finit_module"),
            (self.delete_module, "delete_module"),
            (self.open_by_handle_at, "open_by_handle_at"),
            (self.bpf, "bpf"),
            (self.perf_event_open, "perf_event_open"),
            (self.add_key, "add_key"),
            (self.request_key, "request_key"),
            (self.keyctl, "keyctl"),
            (self.userfaultfd, "userfaultfd"),
        ]
    }

    /// The io_uring calls, answered EPERM unless the policy allows io_uring.
    pub fn io_uring(&self) -> [(u32, &'static str); 3] {
        [
            (self.io_uring_setup, "io_uring_setup"),
            (self.io_uring_enter, "io_uring_enter"),
            (self.io_uring_register, "io_uring_register"),
        ]
    }
}

/// An architecture as the filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// AUDIT_ARCH_* value the kernel puts in `seccomp_data.arch`.
    pub audit_arch: u32,
    /// Whether numbers with X32_SYSCALL_BIT are a second ABI to refuse.
    pub has_x32: bool,
    pub syscalls: Syscalls,
}

impl Arch {
    /// The architecture this binary runs as.
    pub const NATIVE: Arch = Arch {
        audit_arch: if cfg!(target_arch = "x86_64") {
            AUDIT_ARCH_X86_64
        } else {
            AUDIT_ARCH_AARCH64
        },
        has_x32: cfg!(target_arch = "x86_64"),
        syscalls: Syscalls::NATIVE,
    };
}

/// What the filter enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// The deny list and the terminal-injection ioctls.
    pub deny: bool,
    /// The lock flag: no setns, no new namespaces, clone3 answered ENOSYS.
    pub lock: bool,
    /// With `lock`, a guest in a user namespace of its own: new namespaces
    /// (nested in its own) are allowed; setns is still refused.
    pub nest: bool,
    /// The io_uring flag: with `deny`, io_uring stays allowed.
    pub io_uring: bool,
}

impl Policy {
    /// Whether there is anything to filter at all.
    pub fn is_empty(&self) -> bool {
        !self.deny && !self.lock
    }
}

/// Namespace flags that clone(2) accepts in its flags word. CLONE_NEWTIME
/// (0x80) is not one: in clone's flags that bit is part of the exit signal,
/// and a new time namespace can only be made by unshare or clone3.
pub const CLONE_NAMESPACES: u32 = k::CLONE_NEWNS
    | k::CLONE_NEWCGROUP
    | k::CLONE_NEWUTS
    | k::CLONE_NEWIPC
    | k::CLONE_NEWUSER
    | k::CLONE_NEWPID
    | k::CLONE_NEWNET;

/// Namespace flags of unshare(2): clone's and CLONE_NEWTIME.
pub const UNSHARE_NAMESPACES: u32 = CLONE_NAMESPACES | k::CLONE_NEWTIME;

/// The terminal ioctls that push input into (TIOCSTI) or drive (TIOCLINUX)
/// a terminal the guest may share with a host shell.
const TIOCSTI: u32 = linux_raw_sys::ioctl::TIOCSTI;
const TIOCLINUX: u32 = linux_raw_sys::ioctl::TIOCLINUX;

/// Where a jump goes: the next instruction or a named return/check block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Next,
    Allow,
    Eperm,
    Enosys,
    Kill,
    CheckClone,
    CheckUnshare,
    CheckIoctl,
}

/// An instruction before the jump offsets are known.
enum Insn {
    Load(u32),
    Jump {
        op: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ret(u32),
    Label(Target),
}

/// Builds the filter program for `arch`. An empty policy gives a program
/// that only checks the architecture.
pub fn build(arch: &Arch, policy: Policy) -> Vec<SockFilter> {
    use Target::*;
    let nr = &arch.syscalls;
    let mut p = vec![
        Insn::Load(DATA_ARCH),
        Insn::Jump {
            op: BPF_JEQ,
            k: arch.audit_arch,
            jt: Next,
            jf: Kill,
        },
        Insn::Load(DATA_NR),
    ];
    if arch.has_x32 {
        p.push(Insn::Jump {
            op: BPF_JGE,
            k: X32_SYSCALL_BIT,
            jt: Kill,
            jf: Next,
        });
    }
    let jeq = |k: u32, to: Target| Insn::Jump {
        op: BPF_JEQ,
        k,
        jt: to,
        jf: Next,
    };
    if policy.deny {
        for (number, _) in nr.denied() {
            p.push(jeq(number, Eperm));
        }
        if !policy.io_uring {
            for (number, _) in nr.io_uring() {
                p.push(jeq(number, Eperm));
            }
        }
        p.push(jeq(nr.ioctl, CheckIoctl));
    }
    // The namespace-flag checks: the lock flag unless the guest may nest.
    let check_flags = policy.lock && !policy.nest;
    if policy.lock {
        p.push(jeq(nr.setns, Eperm));
    }
    if check_flags {
        p.push(jeq(nr.clone3, Enosys));
        p.push(jeq(nr.clone, CheckClone));
        p.push(jeq(nr.unshare, CheckUnshare));
    }
    // The end of the chain: nothing matched.
    p.push(Insn::Ret(SECCOMP_RET_ALLOW));
    // Argument checks, then the shared returns: every jump goes forward.
    if check_flags {
        for (label, mask) in [
            (CheckClone, CLONE_NAMESPACES),
            (CheckUnshare, UNSHARE_NAMESPACES),
        ] {
            p.push(Insn::Label(label));
            p.push(Insn::Load(data_arg_low(0)));
            p.push(Insn::Jump {
                op: BPF_JSET,
                k: mask,
                jt: Eperm,
                jf: Allow,
            });
        }
    }
    if policy.deny {
        p.push(Insn::Label(CheckIoctl));
        p.push(Insn::Load(data_arg_low(1)));
        p.push(jeq(TIOCSTI, Eperm));
        p.push(Insn::Jump {
            op: BPF_JEQ,
            k: TIOCLINUX,
            jt: Eperm,
            jf: Allow,
        });
    }
    p.push(Insn::Label(Allow));
    p.push(Insn::Ret(SECCOMP_RET_ALLOW));
    p.push(Insn::Label(Eperm));
    p.push(Insn::Ret(SECCOMP_RET_ERRNO | linux_raw_sys::errno::EPERM));
    if check_flags {
        p.push(Insn::Label(Enosys));
        p.push(Insn::Ret(SECCOMP_RET_ERRNO | linux_raw_sys::errno::ENOSYS));
    }
    p.push(Insn::Label(Kill));
    p.push(Insn::Ret(SECCOMP_RET_KILL_PROCESS));
    assemble(&p)
}

/// Resolves labels into relative jump offsets. Classic BPF jumps only
/// forward, by at most 255 instructions; the program is built so that every
/// label follows its users, and is far shorter than that.
fn assemble(p: &[Insn]) -> Vec<SockFilter> {
    let mut at = Vec::new();
    let mut pc = 0usize;
    for insn in p {
        match insn {
            Insn::Label(t) => at.push((*t, pc)),
            _ => pc += 1,
        }
    }
    let find = |t: Target, from: usize| -> u8 {
        if t == Target::Next {
            return 0;
        }
        let to = at
            .iter()
            .find(|(l, _)| *l == t)
            .map(|(_, pc)| *pc)
            .expect("every jump target is a label in the program");
        let offset = to.checked_sub(from + 1).expect("jumps go forward only");
        u8::try_from(offset).expect("jump within 255 instructions")
    };
    let mut out = Vec::with_capacity(pc);
    for insn in p {
        let here = out.len();
        match *insn {
            Insn::Label(_) => {}
            Insn::Load(offset) => out.push(SockFilter {
                code: BPF_LD | BPF_W | BPF_ABS,
                jt: 0,
                jf: 0,
                k: offset,
            }),
            Insn::Jump { op, k, jt, jf } => out.push(SockFilter {
                code: BPF_JMP | op | BPF_K,
                jt: find(jt, here),
                jf: find(jf, here),
                k,
            }),
            Insn::Ret(value) => out.push(SockFilter {
                code: BPF_RET | BPF_K,
                jt: 0,
                jf: 0,
                k: value,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::{AUDIT_ARCH_I386, BPF_JA, BPF_JGT};

    /// x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl).
    const X86_64: Syscalls = Syscalls {
        kexec_load: 246,
        kexec_file_load: 320,
        init_module: 175,
        finit_module: 313,
        delete_module: 176,
        open_by_handle_at: 304,
        bpf: 321,
        perf_event_open: 298,
        add_key: 248,
        request_key: 249,
        keyctl: 250,
        userfaultfd: 323,
        io_uring_setup: 425,
        io_uring_enter: 426,
        io_uring_register: 427,
        ioctl: 16,
        setns: 308,
        unshare: 272,
        clone: 56,
        clone3: 435,
    };

    /// aarch64 numbers (include/uapi/asm-generic/unistd.h).
    const AARCH64: Syscalls = Syscalls {
        kexec_load: 104,
        kexec_file_load: 294,
        init_module: 105,
        finit_module: 273,
        delete_module: 106,
        open_by_handle_at: 265,
        bpf: 280,
        perf_event_open: 241,
        add_key: 217,
        request_key: 218,
        keyctl: 219,
        userfaultfd: 282,
        io_uring_setup: 425,
        io_uring_enter: 426,
        io_uring_register: 427,
        ioctl: 29,
        setns: 268,
        unshare: 97,
        clone: 220,
        clone3: 435,
    };

    const ARCH_X86_64: Arch = Arch {
        audit_arch: AUDIT_ARCH_X86_64,
        has_x32: true,
        syscalls: X86_64,
    };
    const ARCH_AARCH64: Arch = Arch {
        audit_arch: AUDIT_ARCH_AARCH64,
        has_x32: false,
        syscalls: AARCH64,
    };
    const FULL: Policy = Policy {
        deny: true,
        lock: true,
        nest: false,
        io_uring: false,
    };

    /// A `struct seccomp_data` as the filter reads it: 64 bytes.
    fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&nr.to_ne_bytes());
        d[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        d
    }

    /// A classic-BPF interpreter for the instructions a seccomp filter may
    /// use, strict about anything else (the kernel's checker would refuse
    /// it, so must the test).
    fn run(prog: &[SockFilter], d: &[u8; 64]) -> u32 {
        assert!(!prog.is_empty() && prog.len() <= crate::sys::seccomp::MAX_INSNS);
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        loop {
            let insn = prog.get(pc).expect("the program ends in a return");
            pc += 1;
            match insn.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    let off = insn.k as usize;
                    assert!(off.is_multiple_of(4) && off + 4 <= 64, "load at {off}");
                    acc = u32::from_ne_bytes(d[off..off + 4].try_into().unwrap());
                }
                c if c == BPF_RET | BPF_K => return insn.k,
                c if c == BPF_JMP | BPF_JA => pc += insn.k as usize,
                c if c & 0x07 == BPF_JMP && c & 0x08 == BPF_K => {
                    let taken = match c & 0xf0 {
                        BPF_JEQ => acc == insn.k,
                        BPF_JGT => acc > insn.k,
                        BPF_JGE => acc >= insn.k,
                        BPF_JSET => acc & insn.k != 0,
                        _ => panic!("jump opcode {c:#x}"),
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                c => panic!("opcode {c:#x} at {}", pc - 1),
            }
        }
    }

    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const KILL: u32 = SECCOMP_RET_KILL_PROCESS;
    const EPERM: u32 = SECCOMP_RET_ERRNO | linux_raw_sys::errno::EPERM;
    const ENOSYS: u32 = SECCOMP_RET_ERRNO | linux_raw_sys::errno::ENOSYS;

    fn decide(arch: &Arch, policy: Policy, nr: u32, args: [u64; 6]) -> u32 {
        run(&build(arch, policy), &data(arch.audit_arch, nr, args))
    }

    fn a0(x: u64) -> [u64; 6] {
        [x, 0, 0, 0, 0, 0]
    }

    #[test]
    fn native_numbers_are_linux_raw_sys() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(Syscalls::NATIVE, X86_64);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(Syscalls::NATIVE, AARCH64);
        assert_eq!(
            Arch::NATIVE.has_x32,
            Arch::NATIVE.audit_arch == AUDIT_ARCH_X86_64
        );
    }

    #[test]
    fn deny_list_is_eperm_on_both_arches() {
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            for (nr, name) in arch.syscalls.denied() {
                for policy in [FULL, Policy { deny: true, ..FULL }] {
                    assert_eq!(decide(&arch, policy, nr, [0; 6]), EPERM, "{name}");
                }
                let only_lock = Policy {
                    deny: false,
                    ..FULL
                };
                assert_eq!(decide(&arch, only_lock, nr, [0; 6]), ALLOW, "{name}");
            }
        }
    }

    #[test]
    fn io_uring_is_eperm_unless_the_flag_allows_it() {
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            for (nr, name) in arch.syscalls.io_uring() {
                assert_eq!(decide(&arch, FULL, nr, [0; 6]), EPERM, "{name}");
                let allowed = Policy {
                    io_uring: true,
                    ..FULL
                };
                assert_eq!(decide(&arch, allowed, nr, [0; 6]), ALLOW, "{name}");
                // Only the deny list denies it: lock alone does not.
                let only_lock = Policy {
                    deny: false,
                    ..FULL
                };
                assert_eq!(decide(&arch, only_lock, nr, [0; 6]), ALLOW, "{name}");
            }
            // The flag opens io_uring only: the deny list stays.
            let allowed = Policy {
                io_uring: true,
                ..FULL
            };
            assert_eq!(decide(&arch, allowed, arch.syscalls.bpf, [0; 6]), EPERM);
        }
    }

    #[test]
    fn ordinary_calls_are_allowed() {
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            for nr in 0..500 {
                let s = &arch.syscalls;
                let special = arch.syscalls.denied().iter().any(|(n, _)| *n == nr)
                    || arch.syscalls.io_uring().iter().any(|(n, _)| *n == nr)
                    || [s.setns, s.clone3].contains(&nr);
                if !special {
                    assert_eq!(decide(&arch, FULL, nr, [0; 6]), ALLOW, "nr {nr}");
                }
            }
        }
    }

    #[test]
    fn foreign_arch_and_x32_are_killed() {
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            let prog = build(&arch, FULL);
            for other in [AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64, 0] {
                if other != arch.audit_arch {
                    // getpid-like harmless numbers are killed too.
                    assert_eq!(run(&prog, &data(other, 39, [0; 6])), KILL);
                    assert_eq!(run(&prog, &data(other, 172, [0; 6])), KILL);
                }
            }
            let empty = build(&arch, Policy::default());
            assert_eq!(run(&empty, &data(AUDIT_ARCH_I386, 1, [0; 6])), KILL);
            assert_eq!(run(&empty, &data(arch.audit_arch, 1, [0; 6])), ALLOW);
        }
        // x32 getpid is 39 | X32 bit; also the x32 version of a denied call.
        for nr in [X32_SYSCALL_BIT | 39, X32_SYSCALL_BIT | 175, u32::MAX] {
            assert_eq!(decide(&ARCH_X86_64, FULL, nr, [0; 6]), KILL, "{nr:#x}");
            assert_eq!(
                decide(&ARCH_X86_64, Policy::default(), nr, [0; 6]),
                KILL,
                "{nr:#x}"
            );
        }
        // aarch64 has no x32: a high number is just an unknown call (ENOSYS
        // from the kernel).
        assert_eq!(
            decide(&ARCH_AARCH64, FULL, X32_SYSCALL_BIT | 39, [0; 6]),
            ALLOW
        );
    }

    #[test]
    fn lock_rules() {
        let unlocked = Policy {
            lock: false,
            ..FULL
        };
        let nested = Policy { nest: true, ..FULL };
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            let s = arch.syscalls;
            assert_eq!(decide(&arch, FULL, s.setns, a0(0)), EPERM);
            assert_eq!(decide(&arch, FULL, s.clone3, a0(0)), ENOSYS);
            assert_eq!(decide(&arch, unlocked, s.setns, a0(0)), ALLOW);
            assert_eq!(decide(&arch, unlocked, s.clone3, a0(0)), ALLOW);
            for ns in [
                k::CLONE_NEWNS,
                k::CLONE_NEWCGROUP,
                k::CLONE_NEWUTS,
                k::CLONE_NEWIPC,
                k::CLONE_NEWUSER,
                k::CLONE_NEWPID,
                k::CLONE_NEWNET,
            ] {
                let flags = u64::from(ns | k::CLONE_FS | 17);
                assert_eq!(decide(&arch, FULL, s.clone, a0(flags)), EPERM);
                assert_eq!(decide(&arch, FULL, s.unshare, a0(flags)), EPERM);
                // Bits above 32 do not hide the low word.
                assert_eq!(
                    decide(&arch, FULL, s.clone, a0(flags | 0xffff_ffff_0000_0000)),
                    EPERM
                );
                assert_eq!(decide(&arch, unlocked, s.clone, a0(flags)), ALLOW);
                assert_eq!(decide(&arch, unlocked, s.unshare, a0(flags)), ALLOW);
                assert_eq!(decide(&arch, nested, s.clone, a0(flags)), ALLOW);
                assert_eq!(decide(&arch, nested, s.unshare, a0(flags)), ALLOW);
            }
            // A guest in its own user namespace may nest, never setns.
            assert_eq!(decide(&arch, nested, s.setns, a0(0)), EPERM);
            assert_eq!(decide(&arch, nested, s.clone3, a0(0)), ALLOW);
            // Threads, fork (SIGCHLD = 17 in the exit-signal byte), and
            // unshare of non-namespace state are fine.
            let thread = k::CLONE_VM
                | k::CLONE_FS
                | k::CLONE_FILES
                | k::CLONE_SIGHAND
                | k::CLONE_THREAD
                | k::CLONE_SYSVSEM
                | k::CLONE_SETTLS
                | k::CLONE_PARENT_SETTID
                | k::CLONE_CHILD_CLEARTID;
            for flags in [
                u64::from(thread),
                17,
                u64::from(k::CLONE_VFORK | k::CLONE_VM | 17),
            ] {
                assert_eq!(decide(&arch, FULL, s.clone, a0(flags)), ALLOW, "{flags:#x}");
            }
            // The exit signal may be any signal number up to 0xff: it shares
            // its byte with CLONE_NEWTIME and must not count as a namespace.
            assert_eq!(decide(&arch, FULL, s.clone, a0(0x80 | 0x7f)), ALLOW);
            assert_eq!(
                decide(&arch, FULL, s.unshare, a0(u64::from(k::CLONE_NEWTIME))),
                EPERM
            );
            for flags in [k::CLONE_FS, k::CLONE_FILES, k::CLONE_SYSVSEM, 0] {
                assert_eq!(decide(&arch, FULL, s.unshare, a0(u64::from(flags))), ALLOW);
            }
            // The flags are only looked at for clone and unshare.
            assert_eq!(
                decide(&arch, FULL, 0, a0(u64::from(k::CLONE_NEWUSER))),
                ALLOW
            );
        }
    }

    #[test]
    fn terminal_injection_ioctls() {
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            let ioctl = arch.syscalls.ioctl;
            let args = |cmd: u64| [0, cmd, 0, 0, 0, 0];
            for cmd in [TIOCSTI, TIOCLINUX] {
                let cmd = u64::from(cmd);
                assert_eq!(decide(&arch, FULL, ioctl, args(cmd)), EPERM);
                assert_eq!(decide(&arch, FULL, ioctl, args(cmd | 1 << 40)), EPERM);
                // The same number as another call's second argument is fine.
                assert_eq!(decide(&arch, FULL, 0, args(cmd)), ALLOW);
            }
            for cmd in [0x5401u64, 0x5413, 0x540e, 0x8912] {
                assert_eq!(decide(&arch, FULL, ioctl, args(cmd)), ALLOW, "{cmd:#x}");
            }
            let only_lock = Policy {
                deny: false,
                ..FULL
            };
            assert_eq!(
                decide(&arch, only_lock, ioctl, args(u64::from(TIOCSTI))),
                ALLOW
            );
        }
    }

    #[test]
    fn programs_are_small_and_end_in_returns() {
        for arch in [ARCH_X86_64, ARCH_AARCH64] {
            for (deny, lock, io_uring) in [
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (true, true, false),
                (true, true, true),
            ] {
                let prog = build(
                    &arch,
                    Policy {
                        deny,
                        lock,
                        nest: lock && io_uring,
                        io_uring,
                    },
                );
                assert!(prog.len() < 64, "{} instructions", prog.len());
                assert_eq!(prog.last().unwrap().code, BPF_RET | BPF_K);
            }
        }
    }
}
