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

# The source the kernel was built from (a variant's patched copy, a
# KERNEL_SRC tree), and the view of the paths its Kbuild files name: a
# seeded build (scripts/build-kernel.sh) names the build it was copied
# from, and `make -C KDIR` would build against that tree instead.
src=$(source_of "$KDIR")
[ -n "$src" ] || src=$KDIR
kbuild_env "$KDIR" "$src" ||
	die "KDIR=$KDIR was built at other paths ($(objtree_of "$KDIR"), source $(srctree_of "$KDIR")): building mmrace.ko against it needs root and unshare (a private mount namespace) and those directories"

# The kernel's own APIs (the feature test Kbuild runs too, as one line).
if ! missing=$("$MMRACE_ROOT/scripts/module-features.sh" missing "$src"); then
	MMRACE_DIE_CODE=125 die "mmrace.ko cannot be built against $src: $missing"
fi

# The module must be compiled by the rustc the kernel was built with.
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$KDIR/.config")
have=$("$KERNEL_RUSTC" --version 2>/dev/null || true)
[ "$want" = "$have" ] ||
	die "KDIR=$KDIR was built with '$want' but $KERNEL_RUSTC is '$have': set KERNEL_RUSTC to the kernel's rustc"

# A clang-built kernel (KERNEL_PROFILE=kasan) needs its LLVM= for modules too.
read -ra kdir_vars <<<"$(kdir_make_vars "$KDIR")"

kname=$(basename "$KDIR")
OUT=$MMRACE_ROOT/build/module/$kname
mkdir -p "$OUT"
flags=$("$MMRACE_ROOT/scripts/module-features.sh" cflags "$src")
log "module: building mmrace.ko against $KDIR (feature flags: ${flags:-none})"
if ! in_kbuild_env "$KDIR" "$src" make -C "$KB_O" M="$MMRACE_ROOT" MO="$OUT" "${KERNEL_MAKE_VARS[@]}" "${kdir_vars[@]}" modules >"$OUT/build.log" 2>&1; then
	grep -E 'error|ERROR' -A5 "$OUT/build.log" | head -n 30 >&2
	MMRACE_DIE_CODE=125 die "module: build failed against $KDIR (log: $OUT/build.log)"
fi
# A module built against another tree than the kernel it goes with fails
# finit_module in the guest (ENOEXEC for another release): say so here.
need modinfo kmod
release=$(cat "$KDIR/include/config/kernel.release")
vermagic=$(modinfo -F vermagic "$OUT/mmrace.ko")
[ "${vermagic%% *}" = "$release" ] ||
	die "module: $OUT/mmrace.ko was built for release '${vermagic%% *}', the kernel in $KDIR is '$release' (a stale kernel build? its Kbuild files name $KB_O)"
echo "$OUT/mmrace.ko"
