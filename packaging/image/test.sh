#!/usr/bin/env bash
# Tests build.sh's own logic without a bootstrap (no network, no qemu, no
# root needed): --assemble turns a small made-up root file system into a
# disk image, which is then read back without mounting it: the partition
# table (sfdisk), the boot partition (mtools), the root and data partitions
# (debugfs). Needs dosfstools mtools e2fsprogs fdisk. Run it with
#   bash packaging/image/test.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bangfu-image-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
	echo "image test: FAIL: $*" >&2
	exit 1
}

root=$work/root
mkdir -p "$root/boot/firmware/overlays" "$root/etc/bangfu" "$root/var/lib/bangfu" "$root/usr/bin"
printf 'arm_64bit=1\n' >"$root/boot/firmware/config.txt"
printf 'console=tty1 root=LABEL=bangfu-root rootwait\n' >"$root/boot/firmware/cmdline.txt"
printf 'dtb\n' >"$root/boot/firmware/overlays/spi.dtbo"
printf 'marker\n' >"$root/etc/bangfu/marker"
printf 'not for the image\n' >"$root/var/lib/bangfu/ledger.db"
printf '#!/bin/sh\n' >"$root/usr/bin/tool"
chmod 0755 "$root/usr/bin/tool"

img=$work/out/test.img
bash "$here/build.sh" --assemble "$root" --out "$img" --boot-mb 64 --data-mb 32 >"$work/log" 2>&1 || {
	cat "$work/log" >&2
	fail "build.sh --assemble failed"
}
[ -f "$img" ] || fail "no image"

# The partition table: FAT32 (LBA) bootable, then two Linux partitions,
# each on a MiB boundary, the first 4 MiB in.
sfdisk --dump "$img" >"$work/table"
mapfile -t parts < <(grep '^/' "$work/table")
[ ${#parts[@]} -eq 3 ] || fail "want 3 partitions: $(cat "$work/table")"
grep -q 'start= *8192, size= *131072, type=c, bootable' <<<"${parts[0]}" || fail "boot partition: ${parts[0]}"
grep -q 'type=83' <<<"${parts[1]}" || fail "root partition: ${parts[1]}"
grep -q 'size= *65536, type=83' <<<"${parts[2]}" || fail "data partition: ${parts[2]}"
part() { # part N FILE: copy partition N out of the image
	local line=${parts[$(($1 - 1))]} s n
	s=$(sed -n 's/.*start= *\([0-9]*\).*/\1/p' <<<"$line")
	n=$(sed -n 's/.*size= *\([0-9]*\).*/\1/p' <<<"$line")
	[ $((s % 2048)) -eq 0 ] || fail "partition $1 at sector $s: not on a MiB boundary"
	dd if="$img" of="$2" bs=512 skip="$s" count="$n" status=none
}

part 1 "$work/p1"
fsck.vfat -n "$work/p1" >/dev/null 2>&1 || fail "boot partition does not check"
[ "$(mtype -i "$work/p1" ::/config.txt)" = arm_64bit=1 ] || fail "config.txt not on the boot partition"
mtype -i "$work/p1" ::/overlays/spi.dtbo >/dev/null || fail "overlays not copied"
minfo -i "$work/p1" :: | grep -q 'BANGFU-BOOT' || fail "boot label"

part 2 "$work/p2"
e2fsck -fn "$work/p2" >/dev/null 2>&1 || fail "root partition does not check"
[ "$(debugfs -R 'cat /etc/bangfu/marker' "$work/p2" 2>/dev/null)" = marker ] || fail "root file missing"
debugfs -R 'stat /usr/bin/tool' "$work/p2" 2>/dev/null | grep -q 'Mode:  0755' || fail "mode not kept"
debugfs -R 'stat /usr/bin/tool' "$work/p2" 2>/dev/null | grep -q 'User:     0   Group:     0' || fail "owner is not root"
for d in /boot/firmware /var/lib/bangfu; do
	[ -z "$(debugfs -R "ls -p $d" "$work/p2" 2>/dev/null | grep -v '/\.\{1,2\}/')" ] || fail "$d is not an empty mount point in the root"
done
[ "$(e2label "$work/p2")" = bangfu-root ] || fail "root label"

part 3 "$work/p3"
e2fsck -fn "$work/p3" >/dev/null 2>&1 || fail "data partition does not check"
[ "$(e2label "$work/p3")" = bangfu-data ] || fail "data label"
debugfs -R 'ls -p /' "$work/p3" 2>/dev/null | grep -q ledger && fail "the data partition carries the build's files"

# The source tree is untouched by --assemble.
[ -f "$root/var/lib/bangfu/ledger.db" ] && [ -f "$root/boot/firmware/config.txt" ] || fail "--assemble changed its input"

# The sample boot file is one the firmware accepts (same keys).
for k in cabinet_id broker platform_key board; do
	grep -q "^$k = " "$here/bangfu.txt.example" || fail "bangfu.txt.example has no $k"
done
echo "image test: ok ($(du -m --apparent-size "$img" | cut -f1) MiB image)"
