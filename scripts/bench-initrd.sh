#!/usr/bin/env bash
# bench-initrd.sh KDIR BASE_INITRD: prints the path of BASE_INITRD with what
# the seed's shell procedure (driver scenario shell-baseline) needs
# appended: busybox, numactl's migratepages, the seed's thp_alloc writer
# (static: the guest has no libc of its own) and bench/seed-baseline.sh.
# mmrace-host's builder calls it for make bench and make matrix's
# shell-baseline cells.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

[ $# -eq 2 ] || die "usage: bench-initrd.sh KDIR BASE_INITRD"
build=$MMRACE_ROOT/build/bench
thp_alloc=$build/thp_alloc
need gcc gcc
need migratepages numactl
mkdir -p "$build"
if [ ! -x "$thp_alloc" ] || [ "$MMRACE_ROOT/bench/thp_alloc.c" -nt "$thp_alloc" ]; then
	gcc -static -O2 -o "$thp_alloc" "$MMRACE_ROOT/bench/thp_alloc.c" || die "cannot build thp_alloc (static glibc: libc6-dev)"
fi
mp=$(command -v migratepages)
# The script brings busybox, migratepages its libraries and loader.
"$MMRACE_ROOT/scripts/mkinitramfs.sh" --onto "$2" "$1" "$build/$(basename "$1")-bench.cpio" \
	/thp_alloc="$thp_alloc" /seed-baseline.sh="$MMRACE_ROOT/bench/seed-baseline.sh" \
	/usr/bin/migratepages="$mp"
