//! The bpf(2) calls vsbox needs for cgroup-attached eBPF programs: load a
//! program (with the verifier's log on failure), attach it to and detach it
//! from a cgroup v2 directory, list what a cgroup holds, and look programs
//! up by id.
//!
//! linux-raw-sys has no bpf module, so the commands, the few constants and
//! the parts of `union bpf_attr` used here are restated from
//! include/uapi/linux/bpf.h. Each attribute struct is a prefix of its union
//! member: the kernel takes a shorter `bpf_attr` and zero-fills the rest, so
//! these layouts work on every kernel from 5.x on (the oldest fields are
//! never moved). Only features present in Linux 6.1 are used.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use linux_raw_sys::general::__NR_bpf;

use super::errno::Errno;
use super::syscall::raw;

/// `struct bpf_insn`: one eBPF instruction. `regs` holds dst_reg in the low
/// nibble and src_reg in the high one (the C bitfield order on
/// little-endian machines, which is all vsbox targets).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The eight bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// enum bpf_cmd.
const BPF_PROG_LOAD: usize = 5;
const BPF_PROG_ATTACH: usize = 8;
const BPF_PROG_DETACH: usize = 9;
const BPF_PROG_TEST_RUN: usize = 10;
const BPF_PROG_GET_FD_BY_ID: usize = 13;
const BPF_OBJ_GET_INFO_BY_FD: usize = 15;
const BPF_PROG_QUERY: usize = 16;

// enum bpf_prog_type.
pub const PROG_TYPE_CGROUP_SKB: u32 = 8;
pub const PROG_TYPE_CGROUP_SOCK: u32 = 9;
pub const PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;

// enum bpf_attach_type.
pub const CGROUP_INET_INGRESS: u32 = 0;
pub const CGROUP_INET_SOCK_CREATE: u32 = 2;
pub const CGROUP_INET4_BIND: u32 = 8;
pub const CGROUP_INET6_BIND: u32 = 9;
pub const CGROUP_INET4_CONNECT: u32 = 10;
pub const CGROUP_INET6_CONNECT: u32 = 11;
pub const CGROUP_UDP4_SENDMSG: u32 = 14;
pub const CGROUP_UDP6_SENDMSG: u32 = 15;

/// Attach flag: several programs per cgroup and attach type, run in order.
pub const F_ALLOW_MULTI: u32 = 2;

/// BPF_OBJ_NAME_LEN: names are at most 15 bytes plus a NUL.
pub const OBJ_NAME_LEN: usize = 16;

/// The size of the buffer the verifier writes its log into on a retry.
const LOG_SIZE: usize = 64 * 1024;
/// How much of the log's end a LoadError keeps.
const LOG_TAIL: usize = 1024;

/// The BPF_PROG_LOAD member of `union bpf_attr`, up to
/// expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH / BPF_PROG_DETACH member, up to replace_bpf_fd.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The BPF_PROG_QUERY member, up to prog_cnt (plus the padding the
/// aligned u64 before it implies).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The BPF_*_GET_FD_BY_ID member.
#[repr(C)]
#[derive(Default)]
struct GetIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The BPF_OBJ_GET_INFO_BY_FD member.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` up to name.
#[repr(C)]
#[derive(Default)]
struct RawProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; OBJ_NAME_LEN],
}

/// The BPF_PROG_TEST_RUN member, up to ctx_out.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
}

/// Calls bpf(cmd, attr, sizeof attr).
///
/// # Safety
/// `attr` must be the attribute struct of `cmd`, and every pointer in it
/// must point to live memory of the size the kernel reads or writes for
/// that command.
unsafe fn bpf<T>(cmd: usize, attr: &mut T) -> Result<usize, Errno> {
    let size = core::mem::size_of::<T>();
    // SAFETY: the caller vouches for the attribute struct and its pointers;
    // `attr` itself is a live, exclusively borrowed value of `size` bytes.
    unsafe { raw(__NR_bpf, [cmd, attr as *mut T as usize, size, 0, 0, 0]) }
}

/// Wraps a descriptor that a bpf command just returned.
fn owned(fd: usize) -> OwnedFd {
    // SAFETY: the kernel returned a new descriptor, owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd() as u32
}

/// A failed BPF_PROG_LOAD: the errno and the end of the verifier's log
/// (empty when the retry with a log produced none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub errno: Errno,
    pub log: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.log.is_empty() {
            write!(f, "{}", self.errno)
        } else {
            write!(f, "{} (verifier: {})", self.errno, self.log)
        }
    }
}

/// The last `LOG_TAIL` bytes of a verifier log, from a line start, with
/// lines joined by " | " so the tail fits an error message.
fn log_tail(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let mut start = text.len().saturating_sub(LOG_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    let tail = match (start, tail.find('\n')) {
        (s, Some(nl)) if s > 0 => &tail[nl + 1..],
        _ => tail,
    };
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" | ")
}

/// Loads an eBPF program (BPF_PROG_LOAD). `name` is cut to 15 bytes (the
/// kernel accepts letters, digits, '_' and '.'). On failure the load is
/// retried with a verifier log, whose end goes into the error.
pub fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[Insn],
    license: &str,
    name: &str,
) -> Result<OwnedFd, LoadError> {
    let fail = |errno| LoadError {
        errno,
        log: String::new(),
    };
    let einval = Errno::from_raw(linux_raw_sys::errno::EINVAL as i32);
    if insns.is_empty() || license.contains('\0') {
        return Err(fail(einval));
    }
    let mut license = license.as_bytes().to_vec();
    license.push(0);
    let mut attr = LoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| fail(einval))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type,
        ..Default::default()
    };
    let n = name.len().min(OBJ_NAME_LEN - 1);
    attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: `attr` is the PROG_LOAD struct; `insns` points to insn_cnt
    // instructions and `license` to a NUL-terminated string, both live for
    // the call; there is no log buffer (log_level 0).
    let errno = match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    let mut log = vec![0u8; LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above, and `log` is a live, writable buffer of log_size
    // bytes that the verifier fills (NUL-terminated).
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        // Loads with a log do not fail differently; if it passed now, take it.
        Ok(fd) => Ok(owned(fd)),
        Err(_) => Err(LoadError {
            errno,
            log: log_tail(&log),
        }),
    }
}

fn attach_cmd(
    cmd: usize,
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is the ATTACH/DETACH struct; it holds no pointers.
    unsafe { bpf(cmd, &mut attr) }.map(drop)
}

/// Attaches a program to a cgroup (`target` an fd of its v2 directory).
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<(), Errno> {
    attach_cmd(BPF_PROG_ATTACH, target, prog, attach_type, flags)
}

/// Detaches one program from a cgroup.
pub fn prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<(), Errno> {
    attach_cmd(BPF_PROG_DETACH, target, prog, attach_type, 0)
}

/// The ids of the programs attached to the cgroup itself (not inherited)
/// for `attach_type`, in run order.
pub fn prog_query(target: BorrowedFd<'_>, attach_type: u32) -> Result<Vec<u32>, Errno> {
    let mut cap = 64;
    loop {
        let mut ids = vec![0u32; cap];
        let mut attr = QueryAttr {
            target_fd: fd_u32(target),
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: cap as u32,
            ..Default::default()
        };
        // SAFETY: `attr` is the QUERY struct; `prog_ids` points to a live,
        // writable array of prog_cnt u32s.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // The array was too small; prog_cnt now says how many there are.
            Err(e) if e.raw() == linux_raw_sys::errno::ENOSPC as i32 && cap < 1 << 16 => {
                cap = (attr.prog_cnt as usize).max(cap * 2);
            }
            Err(e) => return Err(e),
        }
    }
}

/// A new descriptor for a loaded program; ENOENT when no program has that
/// id (any more).
pub fn prog_get_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = GetIdAttr {
        id,
        ..Default::default()
    };
    // SAFETY: `attr` is the GET_FD_BY_ID struct; it holds no pointers.
    unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.map(owned)
}

/// What the kernel says about a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    pub prog_type: u32,
    pub name: String,
}

/// BPF_OBJ_GET_INFO_BY_FD for a program descriptor.
pub fn prog_info(prog: BorrowedFd<'_>) -> Result<ProgInfo, Errno> {
    let mut info = RawProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(prog),
        info_len: core::mem::size_of::<RawProgInfo>() as u32,
        info: &mut info as *mut RawProgInfo as u64,
    };
    // SAFETY: `attr` is the GET_INFO struct; `info` points to a live,
    // writable bpf_prog_info prefix of info_len bytes whose pointer fields
    // are null with zero counts, so the kernel writes nothing else.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    let end = info
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(OBJ_NAME_LEN);
    Ok(ProgInfo {
        id: info.id,
        prog_type: info.prog_type,
        name: String::from_utf8_lossy(&info.name[..end]).into_owned(),
    })
}

/// Runs a program once on `data` (BPF_PROG_TEST_RUN) and returns its
/// result. For socket-buffer programs `data` is a frame starting with an
/// Ethernet header; cgroup-skb programs see it from the network header.
pub fn prog_test_run(prog: BorrowedFd<'_>, data: &[u8]) -> Result<u32, Errno> {
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(prog),
        data_size_in: u32::try_from(data.len())
            .map_err(|_| Errno::from_raw(linux_raw_sys::errno::EINVAL as i32))?,
        data_in: data.as_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: `attr` is the TEST_RUN struct; `data_in` points to
    // data_size_in live bytes that the kernel only reads; there is no
    // output buffer or context (null, size 0).
    unsafe { bpf(BPF_PROG_TEST_RUN, &mut attr) }?;
    Ok(attr.retval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        use core::mem::{offset_of, size_of};
        assert_eq!(offset_of!(LoadAttr, log_buf), 32);
        assert_eq!(offset_of!(LoadAttr, prog_name), 48);
        assert_eq!(offset_of!(LoadAttr, expected_attach_type), 68);
        assert_eq!(size_of::<AttachAttr>(), 20);
        assert_eq!(offset_of!(QueryAttr, prog_ids), 16);
        assert_eq!(offset_of!(QueryAttr, prog_cnt), 24);
        assert_eq!(offset_of!(RawProgInfo, name), 64);
        assert_eq!(offset_of!(TestRunAttr, ctx_out), 56);
        assert_eq!(size_of::<Insn>(), 8);
    }

    #[test]
    fn log_tail_keeps_whole_last_lines() {
        let mut log = Vec::new();
        for i in 0..200 {
            log.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        log.push(0);
        log.extend_from_slice(b"garbage");
        let tail = log_tail(&log);
        assert!(tail.ends_with("line 198 | line 199"), "{tail}");
        assert!(tail.starts_with("line "), "{tail}");
        assert!(tail.len() <= 2 * LOG_TAIL);
        assert_eq!(log_tail(b"a\nb\n\0"), "a | b");
    }
}
