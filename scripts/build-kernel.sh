#!/usr/bin/env bash
# Builds the mmrace test kernel out of tree and prints its build directory
# (bzImage, plus `modules` for the Module.symvers out-of-tree modules need).
#
# The build directory is keyed by the source package version and a hash of
# everything that shapes the kernel (config fragment, variant patch, this
# script), so an unchanged rebuild is a no-op and two configurations never
# share a tree. Exit code 125 when the kernel fails to build, so that
# `git bisect run` skips such a commit.
#
# Environment: KERNEL_SERIES (default 7.3), KERNEL_SRC (a kernel source tree
# of your own instead of Debian's linux-source, e.g. under git bisect),
# KERNEL_VARIANT (a patch name under kernel/variants/, default none), JOBS
# (default nproc + 1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

FRAGMENT=$MMRACE_ROOT/kernel/mmrace.config
SRC=$SRC_DIR/linux-$KERNEL_SERIES
JOBS=${JOBS:-$(($(nproc) + 1))}
KERNEL_VARIANT=${KERNEL_VARIANT:-}

[ -x "$BINDGEN" ] || die "no bindgen at $BINDGEN: run scripts/bootstrap.sh bindgen"
[ -x "$KERNEL_RUSTC" ] || die "no $KERNEL_RUSTC: install the Debian packages rustc-web rust-web-src"
if [ -n "${KERNEL_SRC:-}" ]; then
	# A source tree of the user's (git bisect run): cached per commit; a
	# tree with local changes is always handed to make (it is incremental).
	SRC=$(cd "$KERNEL_SRC" 2>/dev/null && pwd) || die "KERNEL_SRC=$KERNEL_SRC is not a directory"
	[ -e "$SRC/Makefile" ] || die "KERNEL_SRC=$SRC has no kernel Makefile"
	[ ! -e "$SRC/.config" ] || die "KERNEL_SRC=$SRC has an in-tree build (.config): run 'make mrproper' there, mmrace builds out of tree"
	KERNEL_SERIES=src
	SRC_VERSION=$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null || echo nogit)
	git -C "$SRC" diff --quiet HEAD 2>/dev/null || SRC_VERSION=$SRC_VERSION-dirty
else
	[ -e "$SRC/Makefile" ] || die "no kernel source at $SRC: run scripts/bootstrap.sh"
	SRC_VERSION=$(cat "$SRC_DIR/linux-$KERNEL_SERIES.version")
fi

variant_patch=
if [ -n "$KERNEL_VARIANT" ]; then
	variant_patch=$MMRACE_ROOT/kernel/variants/$KERNEL_VARIANT.patch
	[ -e "$variant_patch" ] || die "no kernel variant '$KERNEL_VARIANT': have $(ls "$MMRACE_ROOT/kernel/variants/" 2>/dev/null | sed -n 's/\.patch$//p' | tr '\n' ' ')"
fi

# Bump when a change to this script changes what gets built.
RECIPE=1
key=$( (echo "recipe $RECIPE"; cat "$FRAGMENT" ${variant_patch:+"$variant_patch"}) | sha256sum | cut -c1-12)
clean_key=$( (echo "recipe $RECIPE"; cat "$FRAGMENT") | sha256sum | cut -c1-12)
name=$KERNEL_SERIES-$SRC_VERSION${KERNEL_VARIANT:+-$KERNEL_VARIANT}-$key
OUT=$MMRACE_CACHE/kernel/$name
STAMP=$OUT/.mmrace-built

if [ -e "$STAMP" ] && [ -e "$OUT/arch/x86/boot/bzImage" ] && [[ $SRC_VERSION != *-dirty ]]; then
	log "kernel: $name up to date"
	echo "$OUT"
	exit 0
fi

REAL_SRC=$(realpath "$SRC")
VARIANT_SRC=$SRC_DIR/variant-$KERNEL_SERIES-$SRC_VERSION-$KERNEL_VARIANT-$key
prepare_variant_src() {
	[ -n "$variant_patch" ] && [ ! -e "$VARIANT_SRC/.mmrace-patched" ] || return 0
	rm -rf "$VARIANT_SRC.tmp"
	cp -al "$REAL_SRC" "$VARIANT_SRC.tmp"
	if ! (cd "$VARIANT_SRC.tmp" && patch -p1 -s --batch --no-backup-if-mismatch <"$variant_patch"); then
		rm -rf "$VARIANT_SRC.tmp"
		die "kernel: variant $KERNEL_VARIANT does not apply to $KERNEL_SERIES-$SRC_VERSION"
	fi
	touch "$VARIANT_SRC.tmp/.mmrace-patched"
	mv "$VARIANT_SRC.tmp" "$VARIANT_SRC"
}

# A variant patch that does not apply fails here, before anything is copied.
MMRACE_DIE_CODE=125 prepare_variant_src

# Start from the newest finished clean build of the same source when there is
# one: Kbuild tracks config and file changes, so a changed fragment or a
# variant patch then recompiles what it touches instead of the whole kernel.
# Never seed from a variant build: its patched objects are newer than the
# clean sources and would be kept.
if [ ! -e "$OUT" ]; then
	# The clean build of the same fragment first, else the newest clean one.
	seed=$MMRACE_CACHE/kernel/$KERNEL_SERIES-$SRC_VERSION-$clean_key/.mmrace-built
	# (Under KERNEL_SRC, any earlier commit's build: bisect steps are close.)
	seed_glob=$KERNEL_SERIES-$SRC_VERSION-*
	[ -z "${KERNEL_SRC:-}" ] || seed_glob=src-*
	[ -e "$seed" ] || seed=$(grep -lx 'variant=' "$MMRACE_CACHE/kernel/"$seed_glob/.mmrace-built 2>/dev/null |
		xargs -r ls -t | head -n1 || true)
	if [ -n "$seed" ]; then
		seed=$(dirname "$seed")
		log "kernel: seeding from $(basename "$seed") for an incremental build"
		cp -a "$seed" "$OUT.tmp" && rm -f "$OUT.tmp/.mmrace-built" && mv "$OUT.tmp" "$OUT"
		echo "$seed" >"$OUT/.mmrace-seed"
	fi
fi

# A variant is built from a hard-linked copy of the source with its patch
# applied (patch replaces the files it changes, so the clean tree stays as it
# was). For the build, a private mount namespace puts the copy over the clean
# source path and the variant's build directory over the path of the clean
# build it was seeded from: every path Kbuild recorded stays the same (an
# absolute path change rebuilds objtool, and with it every object), so only
# the patched files recompile.
build_in_src() {
	local vsrc=$VARIANT_SRC
	if [ -z "$variant_patch" ]; then
		"$@"
		return
	fi
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && [ -e "$OUT/.mmrace-seed" ]; then
		local seed_out
		seed_out=$(cat "$OUT/.mmrace-seed")
		unshare -m --propagation private bash -c \
			'mount --bind "$1" "$2" && mount --bind "$3" "$4" && shift 4 && exec "$@"' \
			_ "$vsrc" "$REAL_SRC" "$OUT" "$seed_out" "${@/#O=$OUT/O=$seed_out}"
	else
		log "kernel: building the variant from its own tree (a full build; incremental needs root and a clean build to seed from)"
		"${@/#$REAL_SRC/$vsrc}"
	fi
}
mkdir -p "$OUT"
log "kernel: building $name in $OUT (log: $OUT/build.log)"
export MMRACE_DIE_CODE=125
start=$(date +%s)
if [ -n "$variant_patch" ] && [ "$(cat "$OUT/.mmrace-seed" 2>/dev/null)" = "$MMRACE_CACHE/kernel/$KERNEL_SERIES-$SRC_VERSION-$clean_key" ]; then
	# Seeded from the clean build of the same fragment: the config is
	# already the merged one, and re-merging under another O= path would
	# touch generated files.
	: >"$OUT/build.log"
else {
	# allnoconfig with the fragment as KCONFIG_ALLCONFIG, then check that
	# every requested value made it (merge_config warns but does not fail).
	# merge_config.sh runs a plain `make`; variable assignments in MAKEFLAGS
	# act as command-line ones, which is what overrides the kernel
	# Makefile's `RUSTC = rustc` (Kconfig probes rustc for CONFIG_RUST).
	(cd "$REAL_SRC" && MAKEFLAGS="${KERNEL_MAKE_VARS[*]}" scripts/kconfig/merge_config.sh -n -O "$OUT" "$FRAGMENT")
} >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log" >&2; die "kernel: config merge failed"; }
fi

missing=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$FRAGMENT" | while IFS= read -r want; do
	grep -qxF "$want" "$OUT/.config" || echo "$want"
done)
[ -z "$missing" ] || die "kernel: config options did not take (a dependency is off): $(echo $missing)"

if ! build_in_src nice make -C "$REAL_SRC" O="$OUT" -j"$JOBS" "${KERNEL_MAKE_VARS[@]}" bzImage modules >>"$OUT/build.log" 2>&1; then
	grep -E 'error|Error' "$OUT/build.log" | head -n 20 >&2
	die "kernel: build failed (log: $OUT/build.log)"
fi
[ -e "$OUT/rust/kernel.o" ] || [ -n "$(ls "$OUT"/rust/*.rmeta 2>/dev/null)" ] ||
	die "kernel: built without Rust metadata (rust/*.rmeta)"
printf 'key=%s\nvariant=%s\n' "$key" "$KERNEL_VARIANT" >"$STAMP"
log "kernel: built in $(($(date +%s) - start)) s"
echo "$OUT"
