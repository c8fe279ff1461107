#!/usr/bin/env bash
# Packs the guest's initramfs with the kernel's own usr/gen_init_cpio, which
# writes device nodes without needing root, and prints the archive's path.
#
#   scripts/mkinitramfs.sh KDIR DRIVER MODULE OUTPUT [EXTRA_FILE...]
#
# The guest's own archive: the static driver as /init, mmrace.ko, and a
# /dev/console node (without it the kernel starts /init with no stdio). The
# driver mounts what it needs and does every step with syscalls, so there is
# no shell and no library. EXTRA_FILEs land in / under their base name,
# executable.
#
#   scripts/mkinitramfs.sh --onto BASE KDIR OUTPUT GUEST_PATH=HOST_FILE...
#
# BASE (an archive made as above) with a second archive appended, the kernel
# unpacking concatenated archives in turn: the programs `exec`,
# `selftests-mm` and the bench run. Each HOST_FILE lands at GUEST_PATH,
# executable. A dynamically linked program gets its libraries and loader at
# the paths ldd names. A script (#!) gets busybox-static with its applets in
# /bin, so `#!/bin/sh` works.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

usage="usage: mkinitramfs.sh KDIR DRIVER MODULE OUTPUT [EXTRA_FILE...]
       mkinitramfs.sh --onto BASE KDIR OUTPUT GUEST_PATH=HOST_FILE..."
onto=
if [ "${1:-}" = --onto ]; then
	[ $# -ge 5 ] || die "$usage"
	onto=$2 kdir=$3 output=$4
	shift 4
	[ -f "$onto" ] || die "no archive $onto to add to"
else
	[ $# -ge 4 ] || die "$usage"
	kdir=$1 driver=$2 module=$3 output=$4
	shift 4
fi
gen=$kdir/usr/gen_init_cpio
[ -x "$gen" ] || die "$gen missing: build the kernel with CONFIG_BLK_DEV_INITRD=y"

# guest_list EXTRA_FILE...: the guest's own archive.
guest_list() {
	[ -e "$driver" ] || die "no driver binary at $driver"
	[ -e "$module" ] || die "no module at $module"
	file -L "$driver" | grep -q 'dynamically linked' &&
		die "$driver is dynamically linked: the guest has no libc (build it with +crt-static)"
	for d in /dev /proc /sys /tmp /mnt; do echo "dir $d 0755 0 0"; done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "file /init $(realpath "$driver") 0755 0 0"
	echo "file /mmrace.ko $(realpath "$module") 0644 0 0"
	for f in "$@"; do echo "file /$(basename "$f") $(realpath "$f") 0755 0 0"; done
}

# programs_list GUEST_PATH=HOST_FILE...: the programs, with what they need.
programs_list() {
	local dirs=() files=() busybox='' e guest host lib bb applet
	add_dir() {
		local d=$1
		while [ "$d" != / ] && [ -n "$d" ]; do
			case " ${dirs[*]} " in *" $d "*) ;; *) dirs+=("$d") ;; esac
			d=$(dirname "$d")
		done
	}
	for e in "$@"; do
		guest=${e%%=*} host=${e#*=}
		case $e in *=*) ;; *) die "'$e' is not GUEST_PATH=HOST_FILE" ;; esac
		case $guest in /*) ;; *) die "guest path '$guest' is not absolute" ;; esac
		[ -f "$host" ] || die "no file $host (for $guest)"
		add_dir "$(dirname "$guest")"
		files+=("file $guest $(realpath "$host") 0755 0 0")
		if [ "$(head -c 2 "$host")" = "#!" ]; then
			busybox=1
		elif file -L "$host" | grep -q 'dynamically linked'; then
			while read -r lib; do
				add_dir "$(dirname "$lib")"
				files+=("file $lib $(realpath "$lib") 0755 0 0")
			done < <(ldd "$host" | grep -o '/[^ ]*' | sort -u)
		fi
	done
	if [ -n "$busybox" ]; then
		need busybox busybox-static
		bb=$(command -v busybox)
		file -L "$bb" | grep -q 'statically linked' || die "$bb is not static: install busybox-static"
		add_dir /bin && add_dir /usr/bin
		files+=("file /bin/busybox $(realpath "$bb") 0755 0 0")
		for applet in $("$bb" --list); do
			[ "$applet" = busybox ] || files+=("slink /bin/$applet busybox 0777 0 0")
		done
		files+=("slink /usr/bin/env /bin/busybox 0777 0 0")
	fi
	# Parents first; the base archive's own directories are repeated
	# harmlessly.
	printf '%s\n' "${dirs[@]}" | awk '{ print length, $0 }' | sort -n | cut -d' ' -f2- |
		while read -r d; do echo "dir $d 0755 0 0"; done
	printf '%s\n' "${files[@]}" | sort -u
}

list=$(mktemp)
trap 'rm -f "$list" "$output.tmp"' EXIT
if [ -n "$onto" ]; then
	programs_list "$@"
else
	guest_list "$@"
fi >"$list"
mkdir -p "$(dirname "$output")"
{ [ -z "$onto" ] || cat "$onto"; "$gen" "$list"; } >"$output.tmp" || die "gen_init_cpio failed on $list"
mv "$output.tmp" "$output"
echo "$output"
