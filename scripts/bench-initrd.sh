#!/usr/bin/env bash
# bench-initrd.sh KDIR BASE_INITRD: prints the path of BASE_INITRD with what
# the seed's shell procedure (driver scenario shell-baseline) needs
# appended: busybox, numactl's migratepages, the seed's thp_alloc writer and
# bench/seed-baseline.sh (prepare.sh's bench_initrd, for mmrace-host's
# builder: make matrix's shell-baseline cells).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

[ $# -eq 2 ] || die "usage: bench-initrd.sh KDIR BASE_INITRD"
bench_initrd "$1" "$2"
