#!/usr/bin/env bash
# Builds the kernel's own tools/testing/selftests/mm programs that
# selftests-mm runs, statically linked (the guest has no libc), from the
# kernel source in use, and prints the directory holding them.
#
#   scripts/build-selftests.sh BINARY...
#
# The source is KERNEL_SRC, else KDIR's `source` link (a KDIR of your own),
# else Debian's linux-source-$KERNEL_SERIES from the cache. The result is
# cached under $MMRACE_CACHE/selftests-mm/, keyed by the source version and
# the list of programs, so a warm call is a no-op. The selftests Makefile
# writes local_config.* into its own directory, so the build runs in a
# hard-linked copy of the source (make only adds files there) that is
# deleted after: the cached source stays as Debian shipped it. A program the
# tree does not have (folio_split_race_test is recent) is left out; the
# driver reports it as not built. Exit 2 when the build fails.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

[ $# -gt 0 ] || die "usage: build-selftests.sh BINARY..."
if [ -n "${KERNEL_SRC:-}" ]; then
	SRC=$(cd "$KERNEL_SRC" && pwd)
	SRC_VERSION=src-$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null || echo nogit)
	git -C "$SRC" diff --quiet HEAD -- tools/testing/selftests/mm 2>/dev/null || SRC_VERSION=$SRC_VERSION-dirty-$(date +%s)
elif [ -n "${KDIR_GIVEN:-}" ] && [ -e "${KDIR:-}/source/Makefile" ]; then
	SRC=$(realpath "$KDIR/source")
	SRC_VERSION=kdir-$(make -s -C "$SRC" kernelversion 2>/dev/null)-$(echo "$SRC" | sha256sum | cut -c1-8)
else
	SRC=$(realpath "$SRC_DIR/linux-$KERNEL_SERIES")
	[ -e "$SRC/Makefile" ] || die "no kernel source at $SRC: run scripts/bootstrap.sh"
	SRC_VERSION=$KERNEL_SERIES-$(cat "$SRC_DIR/linux-$KERNEL_SERIES.version")
fi
MM=tools/testing/selftests/mm
[ -e "$SRC/$MM/Makefile" ] || die "$SRC has no $MM"

# Bump when a change to this script changes what gets built.
RECIPE=1
key=$(echo "recipe $RECIPE $*" | sha256sum | cut -c1-12)
OUT=$MMRACE_CACHE/selftests-mm/$SRC_VERSION-$key
if [ -e "$OUT/.mmrace-built" ]; then
	log "selftests-mm: $(basename "$OUT") up to date"
	echo "$OUT"
	exit 0
fi

need gcc build-essential
need rsync rsync # make headers installs them with rsync
[ -e /usr/lib/x86_64-linux-gnu/libnuma.a ] || die "no static libnuma (migration needs it): install the Debian package 'libnuma-dev'"
targets=()
for b in "$@"; do
	if [ -e "$SRC/$MM/$b.c" ]; then
		targets+=("$b")
	else
		log "selftests-mm: $b is not in this tree ($MM/$b.c): left out"
	fi
done

mkdir -p "$MMRACE_CACHE/selftests-mm"
work=$(mktemp -d "$MMRACE_CACHE/selftests-mm/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "selftests-mm: building ${targets[*]} from $SRC (log: $OUT.log)"
start=$(date +%s)
{
	mkdir -p "$work/out" && cp -al "$SRC" "$work/src" &&
		nice make -s -C "$work/src" O="$work/hdr" headers &&
		nice make -C "$work/src/$MM" -j"$(($(nproc) + 1))" OUTPUT="$work/out" \
			KHDR_INCLUDES="-isystem $work/hdr/usr/include" LDFLAGS=-static \
			"${targets[@]/#/$work/out/}"
} >"$OUT.log" 2>&1 || {
	grep -E 'error|Error' "$OUT.log" | head -n 20 >&2
	die "selftests-mm: build failed (log: $OUT.log)"
}
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
for b in "${targets[@]}"; do
	file -L "$work/out/$b" | grep -q 'statically linked' || die "selftests-mm: $b is not statically linked"
	cp "$work/out/$b" "$OUT.tmp/"
done
printf '%s\n' "${targets[@]}" >"$OUT.tmp/.mmrace-built"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "selftests-mm: built in $(($(date +%s) - start)) s"
echo "$OUT"
