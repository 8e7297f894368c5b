//! The generic system call entry for x86_64 and aarch64.
//!
//! Linux returns -errno in the result register for failures, with errno in
//! 1..=4095; every other value is success. `raw` turns that into a Result.

use super::errno::Errno;

/// A system call number (`linux_raw_sys::general::__NR_*`).
pub type Nr = u32;

/// The largest errno the kernel returns: results in -4095..=-1 are errors.
const MAX_ERRNO: usize = 4095;

fn decode(ret: usize) -> Result<usize, Errno> {
    if ret > usize::MAX - MAX_ERRNO {
        Err(Errno::from_raw(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

/// Performs system call `nr` with up to six word-sized arguments.
///
/// # Safety
/// The caller must pass arguments that are valid for that call: pointers
/// must point to memory of the size and kind the kernel expects for the whole
/// call, and the call must not break invariants Rust relies on (for example
/// unmapping memory still in use, or closing a descriptor an owner holds).
#[inline]
pub unsafe fn raw(nr: Nr, args: [usize; 6]) -> Result<usize, Errno> {
    let ret: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the `syscall` instruction takes the number in rax and arguments
    // in rdi, rsi, rdx, r10, r8, r9; it clobbers rcx and r11 and returns in
    // rax. The caller guarantees the arguments are valid for `nr`.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as usize => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `svc 0` takes the number in x8 and arguments in x0..x5 and
    // returns in x0; no other register is clobbered. The caller guarantees
    // the arguments are valid for `nr`.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr as usize,
            inlateout("x0") args[0] => ret,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    compile_error!("vsbox's raw system call entry supports x86_64 and aarch64");
    decode(ret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::general::{__NR_close, __NR_getpid, __NR_getppid, __NR_uname};
    use linux_raw_sys::system::new_utsname;

    #[test]
    fn getpid_matches_rustix() {
        // SAFETY: getpid takes no arguments and touches no memory.
        let pid = unsafe { raw(__NR_getpid, [0; 6]) }.unwrap();
        assert_eq!(pid as i32, rustix::process::getpid().as_raw_nonzero().get());
        // SAFETY: as above.
        let ppid = unsafe { raw(__NR_getppid, [0; 6]) }.unwrap();
        let expected = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        assert_eq!(ppid as i32, expected);
    }

    #[test]
    fn failures_decode_to_errno() {
        // SAFETY: closing -1 refers to no descriptor; the kernel answers EBADF.
        let err = unsafe { raw(__NR_close, [usize::MAX, 0, 0, 0, 0, 0]) }.unwrap_err();
        assert_eq!(err.name(), Some("EBADF"));
    }

    #[test]
    fn pointer_arguments_reach_the_kernel() {
        // SAFETY: new_utsname is plain arrays of C chars; all-zero is valid.
        let mut uts: new_utsname = unsafe { core::mem::zeroed() };
        // SAFETY: uname writes one `struct new_utsname` to the pointer, which
        // points to a live value of exactly that type.
        unsafe { raw(__NR_uname, [&mut uts as *mut _ as usize, 0, 0, 0, 0, 0]) }.unwrap();
        let sysname: Vec<u8> = uts
            .sysname
            .iter()
            .take_while(|&&c| c != 0)
            // c_char is i8 on x86_64 and u8 on aarch64.
            .map(|&c| u8::from_ne_bytes(c.to_ne_bytes()))
            .collect();
        assert_eq!(sysname, b"Linux");
    }

    #[test]
    fn decode_boundaries() {
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode(usize::MAX - 4095), Ok(usize::MAX - 4095));
        assert_eq!(decode(usize::MAX - 4094).unwrap_err().raw(), 4095);
        assert_eq!(decode(usize::MAX).unwrap_err().raw(), 1);
    }
}
