#!/usr/bin/env bash
# Runs every test: the unit and integration tests on this machine's kernel
# (as root: they use real mounts, namespaces and cgroups), then the same
# integration tests inside qemu on Debian's stock kernel (pure cgroup v2) and
# on the kernel/ patched kernel. Installs what it needs (apt-get, rustup).
#
#   ./test.sh              everything
#   ./test.sh --host-only  only cargo test on this machine
set -uo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" != 0 ]; then
    echo "test.sh: the integration tests need root (real mounts, namespaces, cgroups)" >&2
    exit 2
fi

# The tests run the static binary (guests have no dynamic loader), built
# for musl by default (.cargo/config.toml). Where the musl target cannot be
# installed, fall back to a static glibc build.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl &&
    ! rustup target add x86_64-unknown-linux-musl; then
    echo "test.sh: no musl target; testing a static glibc build instead" >&2
    export CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
fi
# What the integration tests use on the host: busybox-static (the guests'
# userland), mkfs.ext4 and losetup (inode flag tests), groff (man pages),
# pgrep, ip (iproute2: dummy devices for the alias tests), rsync (vserver-copy),
# tmux (vtop on a terminal), systemd (systemd-analyze verify of docs/init).
missing=()
for pkg in busybox-static e2fsprogs util-linux mount groff-base procps iproute2 rsync tmux xfsprogs btrfs-progs systemd; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

failed=()
stage() {
    local name=$1
    shift
    echo
    echo "===== $name: $*"
    if "$@"; then
        echo "===== $name: ok"
    else
        echo "===== $name: FAILED"
        failed+=("$name")
    fi
}

# The unit tests (the raw system call entry among them) on aarch64 too,
# under qemu user-mode emulation.
aarch64_unit_tests() {
    rustup target add aarch64-unknown-linux-musl >/dev/null || return 1
    command -v qemu-aarch64-static >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq qemu-user-static >/dev/null; } || return 1
    cargo test --lib --target aarch64-unknown-linux-musl
}

# The socket probe the networking tests run (see tests/common/mod.rs).
host_tests() {
    cargo build --examples && cargo test --all-targets
}

# The escape and isolation tests again, every guest in a user namespace of
# its own (S_USERNS=yes: tests/common/vserver.rs reads VSBOX_TEST_USERNS).
userns_escape_tests() {
    VSBOX_TEST_USERNS=1 cargo test --test escape --test escape_cgroup --test guest_hardening --test stdio --test console
}

# The real Debian guests tests/debian.rs works on (debootstrap; built once,
# cached under .cache/guests/).
stage debian-guests bench/debian-guests --build
stage host host_tests
stage host-userns userns_escape_tests
stage aarch64 aarch64_unit_tests
if [ "${1:-}" != "--host-only" ]; then
    stage vm-stock test-vm/run --kernel stock
    stage vm-patched test-vm/run --kernel patched
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: failed stages: ${failed[*]}"
    exit 1
fi
echo "test.sh: all stages passed"
