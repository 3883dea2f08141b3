#!/usr/bin/env bash
# Builds a flashable SD-card image of a Bangfu cabinet for the Raspberry Pi
# (arm64: Pi 3 and 4 on Debian's kernel; docs/hardware.md, "A flashable
# image"), from Debian packages and our .deb:
#
#   packaging/image/build.sh [--deb FILE] [--out FILE] [--suite bookworm] [--mirror URL]
#   packaging/image/build.sh --assemble ROOTDIR --out FILE   (the last steps alone, see below)
#
# `make image` runs it with the arm64 package `make package` built. It needs
# root (mmdebstrap's root mode, files owned by root in the image), network
# access to the Debian mirror, and, on a machine that is not arm64, qemu-user
# with binfmt_misc registered for arm64 (the packages' scripts run in the
# image). Debian packages: mmdebstrap qemu-user-static binfmt-support
# dosfstools mtools e2fsprogs fdisk. No loop device and no mount: the
# partitions are made as files (mkfs.vfat + mcopy, mkfs.ext4 -d) and copied
# into the disk image behind an MBR written by sfdisk, so it runs in a
# container.
#
# The image, three partitions on an MBR (the Pi's boot ROM reads MBR):
#   1  FAT32  BANGFU-BOOT   /boot/firmware: the Pi firmware, kernel, initrd,
#                           config.txt, cmdline.txt, and bangfu.txt.example;
#                           the technician's bangfu.txt goes here
#   2  ext4   bangfu-root   /: Debian bookworm, read-mostly (see below)
#   3  ext4   bangfu-data   /var/lib/bangfu: the ledger, catalog and keys,
#                           which survive reflashing partitions 1-2 and upgrades
# Read-mostly root: mounted read-write (apt, provisioning and systemd's own
# state need it) but nothing writes to it in normal operation: the journal
# is volatile (RAM, 32 MB), /tmp is a tmpfs, noatime everywhere, and the
# cabinet's data is on its own partition.
#
# --assemble ROOTDIR skips the bootstrap: ROOTDIR is a finished root file
# system whose boot/firmware holds the boot partition's files. It is what
# packaging/image/test.sh runs, without qemu or network.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

suite=bookworm
mirror=http://deb.debian.org/debian
deb=
out=
assemble=
boot_mb=256  # FAT32: the firmware, two kernels and initrds fit with room
data_mb=256  # the ledger: years of sales
root_free_mb=512
hostname=bangfu-cabinet

usage() {
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--deb) deb=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--suite) suite=$2; shift 2 ;;
	--mirror) mirror=$2; shift 2 ;;
	--assemble) assemble=$2; shift 2 ;;
	--data-mb) data_mb=$2; shift 2 ;;
	--boot-mb) boot_mb=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "build.sh: unknown argument $1" >&2; usage ;;
	esac
done

fail() {
	echo "image: $*" >&2
	exit 1
}
log() { echo "== image: $*" >&2; }

need() {
	local missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] || fail "missing ${missing[*]}; install: apt-get install -y mmdebstrap qemu-user-static binfmt-support dosfstools mtools e2fsprogs fdisk"
}
need mkfs.vfat mcopy mmd sfdisk mkfs.ext4 e2fsck fsck.vfat dd du
[ -n "$out" ] || { [ -z "$assemble" ] || fail "--assemble needs --out"; }

start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/bangfu-image.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# bootstrap makes the root file system in $1.
bootstrap() {
	local root=$1
	need mmdebstrap
	[ "$(id -u)" = 0 ] || fail "run as root (mmdebstrap's root mode; the image's files belong to root)"
	if [ "$(dpkg --print-architecture)" != arm64 ]; then
		if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
			fail "arm64 programs cannot run here: binfmt_misc has no qemu-aarch64 entry. Install qemu-user-static and binfmt-support, then: update-binfmts --enable qemu-aarch64 (in a container the host must allow binfmt_misc)"
		fi
	fi
	if [ -z "$deb" ]; then
		deb=$(ls -t "$repo"/bin/pkg/bangfu-cabinet_*_arm64.deb 2>/dev/null | head -n 1 || true)
		[ -n "$deb" ] || fail "no bin/pkg/bangfu-cabinet_*_arm64.deb: run make package, or give --deb"
	fi
	[ -f "$deb" ] || fail "$deb: no such package"
	[ "$(dpkg-deb --field "$deb" Architecture)" = arm64 ] || fail "$deb is not an arm64 package"
	log "bootstrap Debian $suite arm64 from $mirror with $(basename "$deb")"
	# raspi-firmware is in non-free-firmware. The kernel's hooks write the
	# Pi's boot files to /boot/firmware (a plain directory here); the
	# root is found by its label. The sample boot file and the system's
	# settings come from customize.sh.
	mmdebstrap --mode=root --architectures=arm64 --variant=minbase \
		--components=main,non-free-firmware \
		--include=systemd-sysv,udev,kmod,systemd-timesyncd,systemd-resolved,iproute2,ca-certificates,adduser,dosfstools,e2fsprogs,initramfs-tools,raspi-firmware,linux-image-arm64 \
		--essential-hook='mkdir -p "$1/boot/firmware"' \
		--customize-hook="copy-in $(printf %q "$deb") /tmp" \
		--customize-hook="chroot \"\$1\" dpkg -i /tmp/$(basename "$deb")" \
		--customize-hook="rm -f \"\$1/tmp/$(basename "$deb")\"" \
		--customize-hook="$(printf %q "$here/customize.sh") \"\$1\" $hostname" \
		"$suite" "$root" "$mirror"
}

root=$work/root
if [ -n "$assemble" ]; then
	[ -d "$assemble/boot/firmware" ] || fail "--assemble $assemble: no boot/firmware in it"
	root=$assemble
else
	if [ -z "$out" ]; then
		ver=$(dpkg-deb --field "${deb:-$(ls -t "$repo"/bin/pkg/bangfu-cabinet_*_arm64.deb | head -n 1)}" Version)
		out=$repo/bin/image/bangfu-cabinet_${ver}_arm64.img
	fi
	bootstrap "$root"
fi
mkdir -p "$(dirname "$out")"

# The boot partition: FAT32, its files copied in with mtools.
log "boot partition (${boot_mb} MiB FAT32)"
mkfs.vfat -F 32 -n BANGFU-BOOT -C "$work/boot.img" $((boot_mb * 1024)) >/dev/null
if [ -n "$(ls -A "$root/boot/firmware")" ]; then
	mcopy -s -p -m -i "$work/boot.img" "$root/boot/firmware/"* ::/
fi
fsck.vfat -n "$work/boot.img" >/dev/null || fail "the boot partition does not check"

# The root: everything but the boot and data partitions' contents (their
# mount points stay, empty). mkfs.ext4 -d copies a directory, owners and
# modes included, with no mount.
log "root partition"
stage=$work/rootfs
if [ -n "$assemble" ]; then
	mkdir -p "$stage"
	cp -a "$root/." "$stage/"
else
	mv "$root" "$stage"
fi
find "$stage/boot/firmware" -mindepth 1 -delete
mkdir -p "$stage/var/lib/bangfu"
find "$stage/var/lib/bangfu" -mindepth 1 -delete
used_mb=$(du -sm --apparent-size "$stage" | cut -f1)
root_mb=$(((used_mb * 13 / 10 + root_free_mb + 63) / 64 * 64))
mkfs.ext4 -q -F -L bangfu-root -d "$stage" -E root_owner=0:0 "$work/root.img" "${root_mb}M"
e2fsck -fn "$work/root.img" >/dev/null 2>&1 || fail "the root partition does not check"

# The data partition: empty, root's until the firmware's service first
# starts (systemd's StateDirectory gives it to the bangfu user).
log "data partition (${data_mb} MiB ext4)"
mkdir -p "$work/data"
chmod 0700 "$work/data"
mkfs.ext4 -q -F -L bangfu-data -d "$work/data" -E root_owner=0:0 "$work/data.img" "${data_mb}M"
e2fsck -fn "$work/data.img" >/dev/null 2>&1 || fail "the data partition does not check"

# The disk: 4 MiB before the first partition (SD cards' erase blocks),
# every partition on a MiB boundary.
log "disk image $out"
mib=2048 # sectors
b_start=$((4 * mib))
b_size=$((boot_mb * mib))
r_start=$((b_start + b_size))
r_size=$((root_mb * mib))
d_start=$((r_start + r_size))
d_size=$((data_mb * mib))
total_mb=$(((d_start + d_size) / mib))
rm -f "$out"
truncate -s "${total_mb}M" "$out"
sfdisk --quiet "$out" <<EOF
label: dos
unit: sectors

start=$b_start, size=$b_size, type=c, bootable
start=$r_start, size=$r_size, type=83
start=$d_start, size=$d_size, type=83
EOF
for p in boot:$b_start root:$r_start data:$d_start; do
	dd if="$work/${p%%:*}.img" of="$out" bs=1M seek=$((${p##*:} / mib)) conv=notrunc,sparse status=none
done
sfdisk --list "$out" >&2

secs=$(($(date +%s) - start))
log "done in ${secs}s: $out, $(du -m --apparent-size "$out" | cut -f1) MiB ($(du -m "$out" | cut -f1) MiB allocated; root ${root_mb} MiB, ${used_mb} MiB used)"
echo "$out"
