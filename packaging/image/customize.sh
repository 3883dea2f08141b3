#!/usr/bin/env bash
# The cabinet image's system settings, applied by build.sh (an mmdebstrap
# customize hook) to the finished root file system in $1. $2 is the host
# name. Runs on the build machine; commands in the image run through chroot
# (under qemu on a machine that is not arm64).
set -euo pipefail
root=$1
hostname=${2:-bangfu-cabinet}
here=$(cd "$(dirname "$0")" && pwd)

# Partitions by label: a card flashed from the image, or a copy of it,
# boots whatever the kernel calls the device.
cat >"$root/etc/fstab" <<'EOF'
# Bangfu cabinet image (packaging/image/build.sh): boot, root, data.
LABEL=BANGFU-BOOT  /boot/firmware   vfat   defaults,noatime,fmask=0077,dmask=0077,flush  0  2
LABEL=bangfu-root  /                ext4   defaults,noatime,commit=30,errors=remount-ro  0  1
# The ledger, catalog and keys: their own file system, kept by upgrades.
LABEL=bangfu-data  /var/lib/bangfu  ext4   defaults,noatime,nodev,nosuid,noexec          0  2
tmpfs              /tmp             tmpfs  defaults,nosuid,nodev,size=64m,mode=1777     0  0
EOF
mkdir -p "$root/boot/firmware" "$root/var/lib/bangfu"

# Read-mostly: the journal in RAM only. What the firmware logs goes to
# the platform as alarms and heartbeats; the ledger is on the data partition.
mkdir -p "$root/etc/systemd/journald.conf.d"
cat >"$root/etc/systemd/journald.conf.d/bangfu.conf" <<'EOF'
[Journal]
Storage=volatile
RuntimeMaxUse=32M
EOF

echo "$hostname" >"$root/etc/hostname"
cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$hostname
::1		localhost ip6-localhost ip6-loopback
EOF

# Wired network by DHCP; time from NTP (systemd-timesyncd, enabled by its
# package): the firmware's signatures and sales need the right time.
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=e*

[Network]
DHCP=yes
EOF
systemctl --root="$root" enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service

# Every card gets its own machine id at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# The Pi's boot files: the root by label, the console on the screen, SPI
# on for an ST7789 display; then the kernel hook writes cmdline.txt and
# config.txt into /boot/firmware again with these settings.
sed -i -e 's/^#\{0,1\}ROOTPART=.*/ROOTPART=LABEL=bangfu-root/' -e 's/^#\{0,1\}CONSOLES=.*/CONSOLES="tty1"/' "$root/etc/default/raspi-firmware"
grep -q '^ROOTPART=LABEL=bangfu-root' "$root/etc/default/raspi-firmware" || echo 'ROOTPART=LABEL=bangfu-root' >>"$root/etc/default/raspi-firmware"
cat >"$root/etc/default/raspi-firmware-custom" <<'EOF'
# Bangfu cabinet: SPI for an ST7789 display (board files: display.st7789).
dtparam=spi=on
EOF
# (The hook acts only on the "configure" of its maintainer parameters.)
for k in "$root"/lib/modules/*; do
	chroot "$root" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$(basename "$k")"
done
grep -q 'root=LABEL=bangfu-root' "$root/boot/firmware/cmdline.txt" || {
	echo "customize: cmdline.txt does not name the root by label: $(cat "$root/boot/firmware/cmdline.txt")" >&2
	exit 1
}

# The technician's boot file, as a sample to copy to bangfu.txt (CRLF: it
# is edited on Windows as often as not).
sed 's/$/\r/' "$here/bangfu.txt.example" >"$root/boot/firmware/bangfu.txt.example"

# No caches in the image.
rm -rf "$root/var/cache/apt/"*.bin "$root/var/lib/apt/lists/"* "$root/var/log/"*.log
