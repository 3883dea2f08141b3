#!/usr/bin/env bash
# Checks the Debian packages `make package` built (`make package-check`
# runs it on every architecture's .deb):
#   - dpkg-deb --info and --contents: the files a cabinet needs are there,
#     the config and board files are conffiles, nothing is shipped in the
#     state directory, and the binary is built for the package's architecture;
#   - the maintainer scripts never remove, move or change /var/lib/bangfu;
#   - systemd-analyze verify of the unit as shipped (its binary and man page
#     taken from the package);
#   - lintian, failing on errors and warnings;
#   - on amd64, the binary runs: help, version, and check-config refuses the
#     unprovisioned sample naming the settings to fill in.
# The tools are required: a missing one is a failure, not a skip.
set -euo pipefail

fail() {
	echo "package-check: $*" >&2
	exit 1
}

missing=()
for tool in dpkg-deb systemd-analyze lintian man; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	fail "missing ${missing[*]}; install them with: apt-get install -y dpkg systemd lintian man-db"
fi
[ $# -gt 0 ] || fail "usage: packaging/check.sh PACKAGE.deb…"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ELF machine of each Debian architecture (e_machine, little-endian), and
# its class (1: 32-bit, 2: 64-bit).
declare -A machine=([armhf]=40 [arm64]=183 [amd64]=62)
declare -A class=([armhf]=1 [arm64]=2 [amd64]=2)

for deb in "$@"; do
	[ -f "$deb" ] || fail "$deb: no such package (run make package)"
	name=$(basename "$deb")
	echo "== $name"
	dpkg-deb --info "$deb"
	dpkg-deb --contents "$deb" | tee "$work/contents"
	arch=$(dpkg-deb --field "$deb" Architecture)
	[ -n "${machine[$arch]:-}" ] || fail "$name: unexpected architecture $arch"
	[ "$(dpkg-deb --field "$deb" Package)" = bangfu-cabinet ] || fail "$name: not bangfu-cabinet"
	case "$name" in *"_$arch.deb") ;; *) fail "$name: file name does not end in _$arch.deb" ;; esac

	for f in ./usr/bin/bangfu-cabinet ./usr/bin/cabinet ./lib/systemd/system/bangfu-cabinet.service \
		./usr/lib/sysusers.d/bangfu-cabinet.conf ./etc/bangfu/cabinet.json ./etc/bangfu/boards/rpi4-fridge-2door.yaml \
		./usr/share/doc/bangfu-cabinet/copyright ./usr/share/man/man1/bangfu-cabinet.1.gz; do
		awk '{print $6}' "$work/contents" | grep -qxF "$f" || fail "$name: $f missing"
	done
	if awk '{print $6}' "$work/contents" | grep -q '^\./var/'; then
		fail "$name: ships files under /var (the state directory belongs to the cabinet)"
	fi

	rm -rf "$work/root" "$work/control" "$work/unit"
	dpkg-deb --extract "$deb" "$work/root"
	dpkg-deb --control "$deb" "$work/control"
	for f in /etc/bangfu/cabinet.json /etc/bangfu/boards/rpi4-fridge-2door.yaml /etc/bangfu/boards/rpi4-ambient-1door.yaml; do
		grep -qxF "$f" "$work/control/conffiles" || fail "$name: $f is not a conffile"
	done
	for s in postinst prerm postrm; do
		[ -x "$work/control/$s" ] || fail "$name: no executable $s"
		sh -n "$work/control/$s" || fail "$name: $s: syntax error"
		if grep -nE '^[^#]*\b(rm|mv|chown|chmod|install|rmdir|find|shred)\b[^#]*/var/lib/bangfu' "$work/control/$s"; then
			fail "$name: $s touches the ledger's directory /var/lib/bangfu"
		fi
	done

	bin="$work/root/usr/bin/bangfu-cabinet"
	[ "$(od -An -tu1 -j4 -N1 "$bin" | tr -d ' ')" = "${class[$arch]}" ] || fail "$name: binary has the wrong ELF class for $arch"
	[ "$(od -An -tu2 -j18 -N2 --endian=little "$bin" | tr -d ' ')" = "${machine[$arch]}" ] || fail "$name: binary is not built for $arch"

	# The unit as shipped, its ExecStart pointed at the packaged binary (a
	# foreign architecture's binary is still an executable file for verify)
	# and man pages looked up in the package.
	mkdir "$work/unit"
	echo "-- systemd-analyze verify"
	for unit in bangfu-cabinet.service bangfu-firstboot.service; do
		[ -f "$work/root/lib/systemd/system/$unit" ] || fail "$name: $unit missing"
		sed "s#/usr/bin/bangfu-cabinet#$bin#g" "$work/root/lib/systemd/system/$unit" >"$work/unit/$unit"
		# verify exits 0 on some problems (an unknown key is only a
		# warning): any output is a failure.
		if ! out=$(MANPATH="$work/root/usr/share/man" systemd-analyze verify "$work/unit/$unit" 2>&1) || [ -n "$out" ]; then
			fail "$name: systemd-analyze verify $unit: $out"
		fi
	done
	grep -qx 'Type=notify' "$work/unit/bangfu-cabinet.service" || fail "$name: the unit is not Type=notify"
	grep -q '^WatchdogSec=' "$work/unit/bangfu-cabinet.service" || fail "$name: the unit has no WatchdogSec"
	systemd-analyze security --offline=yes --threshold=40 "$work/unit/bangfu-cabinet.service" | tail -n 1 ||
		fail "$name: the unit's exposure is above 4.0"

	echo "-- lintian"
	lintian --fail-on error,warning "$deb" || fail "$name: lintian"

	if [ "$arch" = amd64 ] && [ "$(uname -m)" = x86_64 ]; then
		echo "-- run"
		"$bin" help >/dev/null || fail "$name: help failed"
		"$bin" version
		if out=$("$bin" check-config "$work/root/etc/bangfu/cabinet.json" 2>&1); then
			fail "$name: the unprovisioned sample config validates"
		fi
		for want in cabinet_id broker platform_keys; do
			grep -q "$want" <<<"$out" || fail "$name: check-config of the sample does not name $want: $out"
		done
	fi
	echo "ok $name ($(stat -c %s "$deb") bytes)"
done
