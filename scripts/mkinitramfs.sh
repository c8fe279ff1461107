#!/usr/bin/env bash
# Packs the guest's initramfs: the static driver as /init, mmrace.ko, and a
# /dev/console node (without it the kernel starts /init with no stdio). The
# driver mounts what it needs and does every step with syscalls, so there is
# no shell and no library. Uses the kernel's own usr/gen_init_cpio, which
# writes device nodes without needing root.
#
#   scripts/mkinitramfs.sh KDIR DRIVER MODULE OUTPUT [EXTRA_FILE...]
#
# EXTRA_FILEs land in / under their base name, executable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

usage="usage: mkinitramfs.sh KDIR DRIVER MODULE OUTPUT [EXTRA_FILE...]"
kdir=${1:?$usage}
driver=${2:?$usage}
module=${3:?$usage}
output=${4:?$usage}
shift 4

gen=$kdir/usr/gen_init_cpio
[ -x "$gen" ] || die "$gen missing: build the kernel with CONFIG_BLK_DEV_INITRD=y"
[ -e "$driver" ] || die "no driver binary at $driver"
[ -e "$module" ] || die "no module at $module"
file -L "$driver" | grep -q 'dynamically linked' &&
	die "$driver is dynamically linked: the guest has no libc (build it with +crt-static)"

list=$(mktemp)
trap 'rm -f "$list"' EXIT
{
	for d in /dev /proc /sys /tmp /mnt; do echo "dir $d 0755 0 0"; done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "file /init $(realpath "$driver") 0755 0 0"
	echo "file /mmrace.ko $(realpath "$module") 0644 0 0"
	for f in "$@"; do echo "file /$(basename "$f") $(realpath "$f") 0755 0 0"; done
} >"$list"
mkdir -p "$(dirname "$output")"
"$gen" "$list" >"$output.tmp"
mv "$output.tmp" "$output"
echo "$output"
