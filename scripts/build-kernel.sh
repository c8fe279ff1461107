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
DEB_SRC=$SRC
DEB_SERIES=$KERNEL_SERIES
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

# nearest_src_build: under KERNEL_SRC, the finished clean build of the commit
# nearest to HEAD (fewest commits apart), else the Debian source's clean
# build when the tree is the same kernel version. Bisect steps are close,
# so that is an incremental build.
nearest_src_build() {
	local stamp dir hash n best= best_n=
	for stamp in "$MMRACE_CACHE"/kernel/src-*-"$clean_key"/.mmrace-built; do
		[ -e "$stamp" ] && grep -qx 'variant=' "$stamp" || continue
		dir=$(dirname "$stamp")
		hash=${dir##*/src-}
		hash=${hash%%-*}
		n=$(git -C "$SRC" rev-list --count "$hash...HEAD" 2>/dev/null) || continue
		if [ -z "$best_n" ] || [ "$n" -lt "$best_n" ]; then best=$dir best_n=$n; fi
	done
	if [ -z "$best" ]; then
		local v
		v=$(make -s -C "$SRC" kernelversion 2>/dev/null) || true
		if [ -n "$v" ] && [ "$v" = "$(make -s -C "$DEB_SRC" kernelversion 2>/dev/null)" ]; then
			best=$(ls -td "$MMRACE_CACHE"/kernel/"$DEB_SERIES"-*-"$clean_key" 2>/dev/null | while read -r d; do
				[ -e "$d/.mmrace-built" ] && grep -qx 'variant=' "$d/.mmrace-built" && echo "$d" && break
			done)
		fi
	fi
	echo "$best"
}

# Start from a finished clean build when there is one: Kbuild tracks config
# and file changes, so a changed fragment, a variant patch or the next
# bisect step then recompiles what it touches instead of the whole kernel.
# Never seed from a variant build: its patched objects are newer than the
# clean sources and would be kept.
if [ ! -e "$OUT" ]; then
	if [ -n "${KERNEL_SRC:-}" ]; then
		seed=$(nearest_src_build)
	else
		# The clean build of the same fragment first, else the newest clean one.
		seed=$MMRACE_CACHE/kernel/$KERNEL_SERIES-$SRC_VERSION-$clean_key
		[ -e "$seed/.mmrace-built" ] || seed=$(grep -lx 'variant=' "$MMRACE_CACHE/kernel/"$KERNEL_SERIES-$SRC_VERSION-*/.mmrace-built 2>/dev/null |
			xargs -r ls -t | head -n1 | xargs -r dirname || true)
	fi
	if [ -n "$seed" ]; then
		log "kernel: seeding from $(basename "$seed") for an incremental build"
		cp -a "$seed" "$OUT.tmp" && rm -f "$OUT.tmp/.mmrace-built" && mv "$OUT.tmp" "$OUT"
		echo "$seed" >"$OUT/.mmrace-seed"
		# Builds from before .mmrace-kbuild existed ran at their own paths.
		if [ ! -e "$OUT/.mmrace-kbuild" ]; then
			seed_src=$(realpath "$DEB_SRC")
			[[ $(basename "$seed") != src-* ]] || seed_src=$REAL_SRC
			printf 'KBUILD_SRC=%q\nKBUILD_OUT=%q\n' "$seed_src" "$seed" >"$OUT/.mmrace-kbuild"
		fi
	fi
fi

# The source this build compiles: a variant's patched copy (hard links, so
# the clean tree stays as it was: patch replaces the files it changes), or
# the tree itself. Seeded builds run under in_kbuild_paths (lib.sh) with
# the seed's paths, so only what changed recompiles.
BUILD_SRC=$REAL_SRC
[ -z "$variant_patch" ] || BUILD_SRC=$VARIANT_SRC
mkdir -p "$OUT"
[ -e "$OUT/.mmrace-kbuild" ] ||
	printf 'KBUILD_SRC=%q\nKBUILD_OUT=%q\n' "$BUILD_SRC" "$OUT" >"$OUT/.mmrace-kbuild"
echo "$BUILD_SRC" >"$OUT/.mmrace-build-src"
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
	# Under the build's own paths (a seeded build's are its seed's), so
	# that the generated files it rewrites stay the same.
	MAKEFLAGS="${KERNEL_MAKE_VARS[*]}" in_kbuild_paths "$OUT" "$BUILD_SRC" \
		env -C @KSRC@ scripts/kconfig/merge_config.sh -n -O @KOUT@ "$FRAGMENT"
} >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log" >&2; die "kernel: config merge failed"; }
fi

missing=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$FRAGMENT" | while IFS= read -r want; do
	grep -qxF "$want" "$OUT/.config" || echo "$want"
done)
[ -z "$missing" ] || die "kernel: config options did not take (a dependency is off): $(echo $missing)"

if ! in_kbuild_paths "$OUT" "$BUILD_SRC" nice make -C @KSRC@ O=@KOUT@ -j"$JOBS" "${KERNEL_MAKE_VARS[@]}" bzImage modules >>"$OUT/build.log" 2>&1; then
	grep -E 'error|Error' "$OUT/build.log" | head -n 20 >&2
	die "kernel: build failed (log: $OUT/build.log)"
fi
[ -e "$OUT/rust/kernel.o" ] || [ -n "$(ls "$OUT"/rust/*.rmeta 2>/dev/null)" ] ||
	die "kernel: built without Rust metadata (rust/*.rmeta)"
printf 'key=%s\nvariant=%s\n' "$key" "$KERNEL_VARIANT" >"$STAMP"
log "kernel: built in $(($(date +%s) - start)) s"
echo "$OUT"
