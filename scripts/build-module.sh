#!/usr/bin/env bash
# Builds mmrace.ko against a kernel build tree and prints the module's path.
#
#   scripts/build-module.sh KDIR
#
# KDIR is a kernel build directory (O= of a Rust-enabled kernel build). The
# module is built the standard out-of-tree way (make -C KDIR M=<repo>), with
# its objects under build/module/<kernel>/ (MO=) so the source tree stays
# clean and two kernels never share objects. Exit 125 when the build fails
# against this kernel (git bisect run skips it), 2 when KDIR is unusable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

KDIR=${1:?usage: build-module.sh KDIR}
KDIR=$(cd "$KDIR" 2>/dev/null && pwd) || die "KDIR '$1' is not a directory"

# One clear error for each way a kernel tree cannot build a Rust module.
[ -e "$KDIR/.config" ] || die "KDIR=$KDIR has no .config: point KDIR at a configured kernel build directory (the O= of your build)"
grep -qx 'CONFIG_RUST=y' "$KDIR/.config" ||
	die "KDIR=$KDIR was built without CONFIG_RUST: enable CONFIG_RUST=y (see kernel/mmrace.config), rebuild, then retry"
ls "$KDIR"/rust/*.rmeta >/dev/null 2>&1 ||
	die "KDIR=$KDIR has no Rust metadata (rust/*.rmeta): build the kernel itself first (make O=... vmlinux modules) with CONFIG_RUST=y"
[ -e "$KDIR/Module.symvers" ] ||
	die "KDIR=$KDIR has no Module.symvers: run 'make modules' in that build"

# The module must be compiled by the rustc the kernel was built with.
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$KDIR/.config")
have=$("$KERNEL_RUSTC" --version 2>/dev/null || true)
[ "$want" = "$have" ] ||
	die "KDIR=$KDIR was built with '$want' but $KERNEL_RUSTC is '$have': set KERNEL_RUSTC to the kernel's rustc"

kname=$(basename "$KDIR")
OUT=$MMRACE_ROOT/build/module/$kname
mkdir -p "$OUT"
log "module: building mmrace.ko against $KDIR"
# A seeded kernel build (variant, bisect step) is used at the paths it was
# built at (scripts/lib.sh in_kbuild_paths); its source is recorded there.
ksrc=$KDIR/source
[ ! -e "$KDIR/.mmrace-build-src" ] || ksrc=$(cat "$KDIR/.mmrace-build-src")
if ! in_kbuild_paths "$KDIR" "$ksrc" make -C @KOUT@ M="$MMRACE_ROOT" MO="$OUT" "${KERNEL_MAKE_VARS[@]}" modules >"$OUT/build.log" 2>&1; then
	grep -E 'error|ERROR' -A5 "$OUT/build.log" | head -n 30 >&2
	MMRACE_DIE_CODE=125 die "module: build failed against $KDIR (log: $OUT/build.log)"
fi
echo "$OUT/mmrace.ko"
