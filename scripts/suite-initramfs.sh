#!/usr/bin/env bash
# The guest's initramfs plus the programs `exec` and `selftests-mm` run:
# prints the path of BASE with a second cpio archive appended (the kernel
# unpacks concatenated archives in turn).
#
#   scripts/suite-initramfs.sh KDIR BASE OUTPUT GUEST_PATH=HOST_FILE...
#
# Each HOST_FILE lands at GUEST_PATH, executable. A dynamically linked
# program gets its libraries and loader at the paths ldd names. A script
# (#!) gets busybox-static with its applets in /bin, so `#!/bin/sh` works.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

usage="usage: suite-initramfs.sh KDIR BASE OUTPUT GUEST_PATH=HOST_FILE..."
kdir=${1:?$usage}
base=${2:?$usage}
output=${3:?$usage}
shift 3
[ $# -gt 0 ] || die "$usage"

list=$(mktemp)
trap 'rm -f "$list"' EXIT
dirs=() busybox=
add_dir() {
	local d=$1
	while [ "$d" != / ] && [ -n "$d" ]; do
		case " ${dirs[*]} " in *" $d "*) ;; *) dirs+=("$d") ;; esac
		d=$(dirname "$d")
	done
}
files=()
for e in "$@"; do
	guest=${e%%=*} host=${e#*=}
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
{
	# Parents first; the base archive's own directories are repeated
	# harmlessly.
	printf '%s\n' "${dirs[@]}" | awk '{ print length, $0 }' | sort -n | cut -d' ' -f2- |
		while read -r d; do echo "dir $d 0755 0 0"; done
	printf '%s\n' "${files[@]}" | sort -u
} >"$list"
mkdir -p "$(dirname "$output")"
"$kdir/usr/gen_init_cpio" "$list" >"$output.extras" || die "gen_init_cpio failed on $list"
cat "$base" "$output.extras" >"$output.tmp"
rm -f "$output.extras"
mv "$output.tmp" "$output"
echo "$output"
