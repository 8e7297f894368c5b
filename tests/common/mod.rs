//! Helpers shared by the integration tests (each tests/*.rs has `mod common;`).
#![allow(dead_code)]

pub mod distro;
pub mod dpkg;
pub mod guest;
pub mod netdev;
pub mod process;
pub mod pty;
pub mod rng;
pub mod tempdir;
pub mod tmux;
pub mod vserver;

use std::path::PathBuf;

/// The vsbox binary under test: $VSBOX_BIN (set in the test VM, where the
/// binary is not where cargo built it), else the one cargo built.
pub fn vsbox_bin() -> PathBuf {
    std::env::var_os("VSBOX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vsbox")))
}

/// Whether the tests run as root; the kernel-facing tests need it and say
/// "skipped" otherwise.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The socket probe (examples/netprobe.rs).
pub fn netprobe() -> PathBuf {
    example("netprobe", "VSBOX_NETPROBE")
}

/// The namespace probe (examples/nsprobe.rs).
pub fn nsprobe() -> PathBuf {
    example("nsprobe", "VSBOX_NSPROBE")
}

/// The example program `name`: $`env` (set in the test VM), else the one
/// cargo built next to the test binary. `cargo test` builds it; `cargo test
/// --all-targets` builds it as a test harness only, so test.sh builds the
/// examples first with `cargo build --examples`.
fn example(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/TRIPLE/debug/deps/TEST-HASH -> target/TRIPLE/debug/examples/NAME
    let probe = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("examples").join(name))
        .unwrap();
    assert!(
        probe.exists(),
        "{} is missing: run `cargo build --examples` (test.sh does)",
        probe.display()
    );
    probe
}
