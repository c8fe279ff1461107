#!/usr/bin/env bash
# make-xfs-disk.sh IMAGE [MIB]: makes IMAGE a fresh, sparse XFS filesystem of
# MIB MiB (default 4096) and prints its path. The oom-stall scenario's
# writers append to a file on it; the host attaches it with --disk and the
# guest driver mounts it. Only the blocks the guest writes take host space.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: make-xfs-disk.sh IMAGE [MIB]"
img=$1
mib=${2:-4096}
case $mib in '' | *[!0-9]*) die "disk size must be whole MiB, got '$mib'" ;; esac
[ "$mib" -ge 300 ] || die "disk size $mib MiB: XFS needs at least 300 MiB"
PATH=$PATH:/usr/sbin:/sbin
need mkfs.xfs xfsprogs
mkdir -p "$(dirname "$img")"
rm -f "$img"
truncate -s "${mib}M" "$img"
mkfs.xfs -q -f "$img" >&2 || die "mkfs.xfs $img failed"
echo "$img"
