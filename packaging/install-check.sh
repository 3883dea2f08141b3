#!/usr/bin/env bash
# Installs the package on this machine as a technician would and checks
# what an install, a reinstall over a technician's edit and a purge do
# (`make install-check`). It changes the system it runs on (a user, a
# unit, files under /etc/bangfu), so it runs only as root and only when
# BANGFU_INSTALL_CHECK=1 says the machine may be changed: CI's fresh
# machine sets it.
#   - apt installs the .deb with its dependencies; dpkg reports it
#     installed, the service user exists, the binary runs, the unit is in
#     place and enabled, and the config and board files are conffiles;
#   - a reinstall keeps the technician's edit of cabinet.json;
#   - a purge removes the package and its conffiles but leaves the ledger
#     directory /var/lib/bangfu, byte for byte, and the service user.
set -euo pipefail

fail() {
	echo "install-check: $*" >&2
	exit 1
}

[ $# -eq 1 ] || fail "usage: packaging/install-check.sh PACKAGE_amd64.deb"
deb=$(realpath "$1")
[ -f "$deb" ] || fail "$1: no such package (run make package)"
[ "${BANGFU_INSTALL_CHECK:-}" = 1 ] || fail "it installs the package on this machine; set BANGFU_INSTALL_CHECK=1 where that is wanted (CI does)"
[ "$(id -u)" = 0 ] || fail "it must run as root (it installs a package)"
for tool in apt-get dpkg dpkg-query sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || fail "missing $tool"
done
if dpkg-query -W bangfu-cabinet >/dev/null 2>&1; then
	fail "bangfu-cabinet is already installed here; this check wants a machine without it"
fi

# A ledger left by an earlier install: nothing may touch it.
state=/var/lib/bangfu
mkdir -p "$state"
sentinel="$state/install-check.ledger"
head -c 4096 /dev/urandom >"$sentinel"
before=$(sha256sum "$sentinel")

echo "-- install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
status=$(dpkg-query -W -f='${Status}' bangfu-cabinet)
[ "$status" = "install ok installed" ] || fail "dpkg says: $status"
getent passwd bangfu >/dev/null || fail "no bangfu user"
bangfu-cabinet version | grep -q '^cabinet ' || fail "bangfu-cabinet version does not run"
[ -f /lib/systemd/system/bangfu-cabinet.service ] || fail "no unit"
[ -L /etc/systemd/system/multi-user.target.wants/bangfu-cabinet.service ] || fail "the unit is not enabled"
conffiles=$(dpkg-query -W -f='${Conffiles}' bangfu-cabinet)
for f in /etc/bangfu/cabinet.json /etc/bangfu/boards/rpi4-ambient-1door.yaml; do
	grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done

echo "-- reinstall over a technician's edit"
sed -i 's/"cabinet_id": *"[^"]*"/"cabinet_id": "INSTALL-CHECK-1"/' /etc/bangfu/cabinet.json
grep -q INSTALL-CHECK-1 /etc/bangfu/cabinet.json || fail "could not edit cabinet.json (no cabinet_id?)"
DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$deb" >/dev/null
grep -q INSTALL-CHECK-1 /etc/bangfu/cabinet.json || fail "the reinstall replaced the technician's cabinet.json"

echo "-- purge"
DEBIAN_FRONTEND=noninteractive dpkg --purge bangfu-cabinet >/dev/null 2>"$state.purge.log" || {
	cat "$state.purge.log" >&2
	fail "purge failed"
}
rm -f "$state.purge.log"
if dpkg-query -W -f='${Status}' bangfu-cabinet 2>/dev/null | grep -q installed; then
	fail "still installed after the purge"
fi
[ ! -e /etc/bangfu/cabinet.json ] || fail "the purge left /etc/bangfu/cabinet.json"
[ "$(sha256sum "$sentinel")" = "$before" ] || fail "the ledger in $state changed"
getent passwd bangfu >/dev/null || fail "the purge removed the bangfu user (the ledger's owner)"
rm -f "$sentinel"
echo "ok $(basename "$deb"): installs, keeps a technician's config, purges without touching $state"
