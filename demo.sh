#!/usr/bin/env bash
# The demo: installs what is missing, builds the static vsbox, installs its
# applet links into a temporary directory, writes an example guest
# configuration under a temporary configuration root and shows it through
# printconf. Leaves the machine as it was (the temporary files are removed).
set -euo pipefail
cd "$(dirname "$0")"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need cargo; then
    echo "demo: cargo is missing: install Rust with rustup first" >&2
    exit 1
fi
if ! need readelf && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq binutils >/dev/null
fi

bin=$(./scripts/build-release | tail -n 1)
work=$(mktemp -d /tmp/vsbox-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== the binary"
ls -l "$bin"
file "$bin" 2>/dev/null || true

echo "== vsbox --install -s $work/bin"
mkdir "$work/bin"
"$bin" --install -s "$work/bin"
export PATH="$work/bin:$PATH"

echo "== an example guest: $work/etc/vservers/demo.conf"
mkdir -p "$work/etc/vservers"
cat > "$work/etc/vservers.conf" <<'CONF'
# Site-wide defaults, shared by every guest.
VSERVERS_ROOT=/vservers
S_FLAGS="lock"
CONF
cat > "$work/etc/vservers/demo.conf" <<'CONF'
# Description: the vsbox demo guest
source /etc/vservers.conf
PROFILE=${PROFILE:-prod}
case $PROFILE in
prod)
	IPROOT="lo:127.0.0.2/8"
	S_HOSTNAME=demo
	;;
backup)
	IPROOT="lo:127.0.0.3/8"
	S_HOSTNAME=demo-backup
	;;
esac
S_CAPS="CAP_NET_RAW"
ULIMIT="-HS -u 200 -n 1024"
ONBOOT=yes
CONF
cat "$work/etc/vservers/demo.conf"
export VSBOX_CONFIG_ROOT="$work/etc"

echo "== printconf demo"
printconf demo
echo "== PROFILE=backup printconf --quote demo"
PROFILE=backup printconf --quote demo | grep -E '^(PROFILE|IPROOT|S_HOSTNAME)='
echo "== a configuration error is reported with file, line and column"
echo 'S_HOSTNAME=$(hostname)' >> "$work/etc/vservers/demo.conf"
printconf demo || echo "(exit status $?)"

if [ "$(id -u)" != 0 ]; then
    echo "== (run as root to see a guest in its own security context)"
    exit 0
fi
if [ ! -x /bin/busybox ]; then
    apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null
fi
# The demo guest: built from busybox-static, started, shown, stopped.
rm -f "$work/etc/vservers/demo.conf"
sed -i "s|^VSERVERS_ROOT=.*|VSERVERS_ROOT=$work/vservers|" "$work/etc/vservers.conf"
export VSBOX_RUN_DIR="$work/run"
cleanup() {
    vserver --silent demo stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
echo "== vserver demo build --ip 127.0.0.2"
vserver demo build --ip 127.0.0.2 --hostname demo --description "the vsbox demo guest"
echo "== vserver demo start"
vserver demo start
echo "== vserver demo exec ps ax   (only the guest's processes)"
vserver demo exec ps ax
echo "== vserver demo exec hostname; vserver demo suexec nobody id"
vserver demo exec hostname
vserver demo suexec nobody id || true
echo "== vserver demo status"
vserver demo status
echo "== a guest root cannot mount, and sees the guest capability ceiling"
vserver demo exec sh -c 'grep CapBnd /proc/self/status; mount -t tmpfs none /tmp 2>/dev/null || echo "mount: refused"'
echo "== vserver demo stop"
vserver demo stop
