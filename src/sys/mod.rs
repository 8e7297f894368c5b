//! The raw system call layer: the only module allowed to hold `unsafe`.
//!
//! rustix covers most calls. What it lacks (clone3 with CLONE_INTO_CGROUP,
//! setns by pidfd with several namespace flags, bpf, seccomp, capset,
//! FS_IOC_* flags, FIDEDUPERANGE, Landlock, mount_setattr) is wrapped here in small typed functions,
//! each `unsafe` block with a SAFETY note saying why it is sound.

pub mod bpf;
pub mod capability;
pub mod dedupe;
pub mod errno;
pub mod fsflags;
pub mod ipc;
pub mod landlock;
pub mod mount;
pub mod netlink;
pub mod pidfd;
pub mod process;
pub mod seccomp;
pub mod signal;
pub mod syscall;
