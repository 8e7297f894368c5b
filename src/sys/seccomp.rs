//! Installing a classic-BPF seccomp filter, and probes that make the calls a
//! guest filter denies with harmless arguments, so tests can see who
//! answers: the filter (EPERM, ENOSYS) or the kernel (EFAULT, EBADF,
//! EINVAL...).
//!
//! The program itself is built in `context::seccomp`; this module only hands
//! it to the kernel. `struct sock_filter`, `struct sock_fprog` and the
//! seccomp constants live in linux-raw-sys's `ptrace` module, a feature this
//! crate does not enable, so they are restated here from
//! include/uapi/linux/{filter,seccomp,audit}.h.

use linux_raw_sys::general as k;

use super::errno::Errno;
use super::syscall::raw;

/// `struct sock_filter`: one classic-BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// The longest program the kernel takes (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// seccomp(2) operation.
const SECCOMP_SET_MODE_FILTER: usize = 1;

// Filter return values (the action in the high 16 bits, data in the low).
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// `struct seccomp_data` offsets: int nr; __u32 arch; __u64
// instruction_pointer; __u64 args[6].
pub const DATA_NR: u32 = 0;
pub const DATA_ARCH: u32 = 4;
/// Offset of the low 32 bits of args[i]: the kernel stores the arguments
/// as native-endian u64s and classic BPF loads 32 bits at a time.
pub const fn data_arg_low(i: u32) -> u32 {
    16 + 8 * i + if cfg!(target_endian = "big") { 4 } else { 0 }
}

// AUDIT_ARCH_* (include/uapi/linux/audit.h): EM_* | 64BIT | LE.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
pub const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// x32 system calls are x86_64 numbers with this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic-BPF opcodes (include/uapi/linux/bpf_common.h).
pub const BPF_LD: u16 = 0x00;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_W: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;

/// Installs `program` as a seccomp filter on the calling thread; it stays
/// for the thread's life and is inherited by its children and across
/// execve. The kernel requires no_new_privs or CAP_SYS_ADMIN (EACCES
/// otherwise).
pub fn install(program: &[SockFilter]) -> Result<(), Errno> {
    if program.is_empty() || program.len() > MAX_INSNS {
        return Err(Errno::from_raw(linux_raw_sys::errno::EINVAL as i32));
    }
    let prog = SockFprog {
        len: program.len() as u16,
        filter: program.as_ptr(),
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) reads one `struct
    // sock_fprog` and the `len` instructions it points to, both live for the
    // call (the kernel copies the program); it writes no user memory.
    unsafe {
        raw(
            k::__NR_seccomp,
            [
                SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const SockFprog as usize,
                0,
                0,
                0,
            ],
        )
    }?;
    Ok(())
}

/// Whether the calling thread runs under a seccomp filter (Seccomp: 2 in
/// /proc/self/status), read with PR_GET_SECCOMP.
pub fn in_filter_mode() -> Result<bool, Errno> {
    // SAFETY: PR_GET_SECCOMP (21) takes no pointer and only reads the
    // calling thread's state.
    let mode = unsafe { raw(k::__NR_prctl, [21, 0, 0, 0, 0, 0]) }?;
    Ok(mode == 2)
}

/// Calls that a guest's filter denies, made with arguments chosen so that
/// the kernel itself, when it lets them through, fails them early with a
/// recognisable errno and no side effect: NULL pointers (the kernel writes
/// nothing through them), descriptor -1, invalid flags. Each returns the
/// errno (or Ok when the call succeeded, which for these arguments should
/// never happen).
pub mod probe {
    use super::*;

    /// Makes a call whose arguments are integers, NULL pointers, or
    /// pointers to static NUL-terminated strings.
    fn call(nr: u32, args: [usize; 6]) -> Result<usize, Errno> {
        // Callers pass integers, -1 descriptors, NULL or 'static strings: the
        // kernel writes through none; `raw_socket` closes what it gets.
        // SAFETY: with such arguments no call breaks a Rust invariant.
        unsafe { raw(nr, args) }
    }

    const EMPTY: &[u8] = b"\0";

    /// init_module(NULL, 0, ""): ENOEXEC from the kernel (too short).
    pub fn init_module() -> Result<usize, Errno> {
        call(
            k::__NR_init_module,
            [0, 0, EMPTY.as_ptr() as usize, 0, 0, 0],
        )
    }

    /// finit_module(-1, "", 0): EBADF from the kernel.
    pub fn finit_module() -> Result<usize, Errno> {
        call(
            k::__NR_finit_module,
            [usize::MAX, EMPTY.as_ptr() as usize, 0, 0, 0, 0],
        )
    }

    /// delete_module(NULL, 0): EFAULT from the kernel.
    pub fn delete_module() -> Result<usize, Errno> {
        call(k::__NR_delete_module, [0, 0, 0, 0, 0, 0])
    }

    /// kexec_load(0, too many segments, NULL, unknown architecture):
    /// EINVAL from the kernel. Never zero segments: that would unload the
    /// host's loaded kexec image.
    pub fn kexec_load() -> Result<usize, Errno> {
        call(k::__NR_kexec_load, [0, usize::MAX, 0, 0xdead_0000, 0, 0])
    }

    /// kexec_file_load(-1, -1, 0, NULL, unknown flags): EINVAL or EBADF.
    pub fn kexec_file_load() -> Result<usize, Errno> {
        call(
            k::__NR_kexec_file_load,
            [usize::MAX, usize::MAX, 0, 0, 0xffff_0000, 0],
        )
    }

    /// open_by_handle_at(-1, NULL, 0): EBADF or EFAULT from the kernel.
    pub fn open_by_handle_at() -> Result<usize, Errno> {
        call(k::__NR_open_by_handle_at, [usize::MAX, 0, 0, 0, 0, 0])
    }

    /// bpf(unknown command, NULL, 0): EINVAL from the kernel (EPERM when
    /// unprivileged BPF is off and CAP_BPF is missing).
    pub fn bpf() -> Result<usize, Errno> {
        call(k::__NR_bpf, [0xffff, 0, 0, 0, 0, 0])
    }

    /// perf_event_open(NULL, 0, -1, -1, 0): EFAULT from the kernel, whatever
    /// the capabilities.
    pub fn perf_event_open() -> Result<usize, Errno> {
        call(
            k::__NR_perf_event_open,
            [0, 0, usize::MAX, usize::MAX, 0, 0],
        )
    }

    /// add_key(NULL, ...): EFAULT from the kernel.
    pub fn add_key() -> Result<usize, Errno> {
        call(k::__NR_add_key, [0, 0, 0, 0, 0, 0])
    }

    /// request_key(NULL, ...): EFAULT from the kernel.
    pub fn request_key() -> Result<usize, Errno> {
        call(k::__NR_request_key, [0, 0, 0, 0, 0, 0])
    }

    /// keyctl(unknown operation): EOPNOTSUPP from the kernel.
    pub fn keyctl() -> Result<usize, Errno> {
        call(k::__NR_keyctl, [0xffff, 0, 0, 0, 0, 0])
    }

    /// userfaultfd(unknown flags): EINVAL (or EPERM when unprivileged
    /// userfaultfd is off and CAP_SYS_PTRACE is missing).
    pub fn userfaultfd() -> Result<usize, Errno> {
        call(k::__NR_userfaultfd, [0xffff_0000, 0, 0, 0, 0, 0])
    }

    /// io_uring_setup(1, NULL): EFAULT from the kernel (which reads the
    /// parameters first, so no ring is made); EPERM from the filter, or
    /// from the kernel's io_uring_disabled sysctl (Linux 6.6 and later).
    pub fn io_uring_setup() -> Result<usize, Errno> {
        call(k::__NR_io_uring_setup, [1, 0, 0, 0, 0, 0])
    }

    /// setns(-1, 0): EBADF from the kernel.
    pub fn setns() -> Result<usize, Errno> {
        call(k::__NR_setns, [usize::MAX, 0, 0, 0, 0, 0])
    }

    /// unshare(CLONE_NEWNS | CLONE_NEWUSER | unknown bit): EINVAL from the
    /// kernel, which checks the flags first, so nothing is unshared.
    pub fn unshare_namespace() -> Result<usize, Errno> {
        let flags = k::CLONE_NEWNS | k::CLONE_NEWUSER | 0x8000_0000_u32;
        call(k::__NR_unshare, [flags as usize, 0, 0, 0, 0, 0])
    }

    /// clone(CLONE_NEWUTS | CLONE_NEWNS | CLONE_FS): EINVAL from the kernel
    /// (a new mount namespace cannot share the fs struct), so no process is
    /// ever created.
    pub fn clone_namespace() -> Result<usize, Errno> {
        let flags = k::CLONE_NEWUTS | k::CLONE_NEWNS | k::CLONE_FS;
        call(k::__NR_clone, [flags as usize, 0, 0, 0, 0, 0])
    }

    /// clone(CLONE_NEWNS | CLONE_FS) with the flag bits also set above bit
    /// 32: the kernel takes the flags as `unsigned long` but a filter that
    /// looks at the low word only must still see them. EINVAL from the
    /// kernel.
    pub fn clone_namespace_high_bits() -> Result<usize, Errno> {
        let flags = (k::CLONE_NEWNS | k::CLONE_FS) as usize | (1usize << 40);
        call(k::__NR_clone, [flags, 0, 0, 0, 0, 0])
    }

    /// clone(CLONE_SIGHAND | CLONE_FS): EINVAL from the kernel (shared
    /// signal handlers need CLONE_VM), and no namespace flag: the lock filter
    /// must let it through to the kernel.
    pub fn clone_plain_invalid() -> Result<usize, Errno> {
        let flags = k::CLONE_SIGHAND | k::CLONE_FS;
        call(k::__NR_clone, [flags as usize, 0, 0, 0, 0, 0])
    }

    /// clone3(NULL, 0): EINVAL from the kernel (size too small).
    pub fn clone3() -> Result<usize, Errno> {
        call(k::__NR_clone3, [0, 0, 0, 0, 0, 0])
    }

    /// ioctl(-1, TIOCSTI, NULL): EBADF from the kernel.
    pub fn tiocsti() -> Result<usize, Errno> {
        call(
            k::__NR_ioctl,
            [
                usize::MAX,
                linux_raw_sys::ioctl::TIOCSTI as usize,
                0,
                0,
                0,
                0,
            ],
        )
    }

    /// ioctl(-1, TIOCSTI with bits above 32 set, NULL): the kernel takes the
    /// command as `unsigned int`, so this is TIOCSTI too (CVE-2019-10063).
    pub fn tiocsti_high_bits() -> Result<usize, Errno> {
        let cmd = linux_raw_sys::ioctl::TIOCSTI as usize | (1usize << 40);
        call(k::__NR_ioctl, [usize::MAX, cmd, 0, 0, 0, 0])
    }

    /// ioctl(-1, TIOCLINUX, NULL): EBADF from the kernel.
    pub fn tioclinux() -> Result<usize, Errno> {
        call(
            k::__NR_ioctl,
            [
                usize::MAX,
                linux_raw_sys::ioctl::TIOCLINUX as usize,
                0,
                0,
                0,
                0,
            ],
        )
    }

    /// getpid through the i386 entry (`int 0x80`, number 20) from this
    /// 64-bit process: the kernel reports AUDIT_ARCH_I386 to seccomp, so a
    /// guest's filter kills the process. Without a filter: the pid when the
    /// kernel has IA32 emulation, else the process gets SIGSEGV.
    #[cfg(target_arch = "x86_64")]
    pub fn i386_getpid() -> usize {
        let ret: usize;
        // SAFETY: i386 getpid takes no arguments and touches no memory; the
        // 32-bit entry returns in eax and may clobber r8-r11, declared here.
        unsafe {
            core::arch::asm!(
                "int 0x80",
                inlateout("rax") 20usize => ret,
                lateout("r8") _,
                lateout("r9") _,
                lateout("r10") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    /// getpid with the x32 bit set in its number: a guest's filter kills the
    /// process; without one, the pid, or ENOSYS on a kernel without x32.
    #[cfg(target_arch = "x86_64")]
    pub fn x32_getpid() -> Result<usize, Errno> {
        call(X32_SYSCALL_BIT | k::__NR_getpid, [0; 6])
    }

    /// socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), closed at once: needs
    /// CAP_NET_RAW.
    pub fn raw_socket() -> Result<(), Errno> {
        // AF_INET = 2, SOCK_RAW = 3, IPPROTO_ICMP = 1.
        let fd = call(linux_raw_sys::general::__NR_socket, [2, 3, 1, 0, 0, 0])?;
        call(k::__NR_close, [fd, 0, 0, 0, 0, 0]).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel() {
        assert_eq!(core::mem::size_of::<SockFilter>(), 8);
        assert_eq!(core::mem::size_of::<SockFprog>(), 16);
        assert_eq!(data_arg_low(0), 16);
        assert_eq!(data_arg_low(5), 56);
        assert_eq!(AUDIT_ARCH_X86_64, 0xc000_003e);
        assert_eq!(AUDIT_ARCH_AARCH64, 0xc000_00b7);
        assert_eq!(X32_SYSCALL_BIT, 0x4000_0000);
    }

    #[test]
    fn probes_reach_the_kernel_unfiltered() {
        // The unit test process has no filter of ours: these answers come
        // from the kernel, and must differ from the filter's EPERM or the
        // integration tests could not tell who denied a call. On x86_64 the
        // answers are checked exactly; the aarch64 unit tests run under qemu
        // user-mode emulation, which does not emulate every call (ENOSYS),
        // so there only "not EPERM" is checked.
        let exact = cfg!(target_arch = "x86_64");
        let name = |r: Result<usize, Errno>| r.unwrap_err().name().unwrap_or("?");
        let check = |got: &str, want: &str, call: &str| {
            if exact {
                assert_eq!(got, want, "{call}");
            } else {
                assert_ne!(got, "EPERM", "{call}");
            }
        };
        check(name(probe::perf_event_open()), "EFAULT", "perf_event_open");
        check(name(probe::setns()), "EBADF", "setns");
        check(name(probe::clone_namespace()), "EINVAL", "clone");
        check(name(probe::clone_namespace_high_bits()), "EINVAL", "clone");
        check(name(probe::clone_plain_invalid()), "EINVAL", "clone");
        check(name(probe::unshare_namespace()), "EINVAL", "unshare");
        check(name(probe::clone3()), "EINVAL", "clone3");
        check(name(probe::tiocsti()), "EBADF", "tiocsti");
        check(name(probe::tiocsti_high_bits()), "EBADF", "tiocsti");
        check(name(probe::add_key()), "EFAULT", "add_key");
        check(name(probe::keyctl()), "EOPNOTSUPP", "keyctl");
    }
}
