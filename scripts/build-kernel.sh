#!/usr/bin/env bash
# Builds the mmrace test kernel out of tree and prints its build directory
# (bzImage, plus `modules` for the Module.symvers out-of-tree modules need).
#
# The build directory is keyed by the source package version, the profile
# and a hash of everything that shapes the kernel (config fragments, variant
# patch, this script), so an unchanged rebuild is a no-op and two
# configurations never share a tree. Exit code 125 when the kernel fails to build, so that
# `git bisect run` skips such a commit.
#
# Environment: KERNEL_SERIES (default 7.3), KERNEL_SRC (a kernel source tree
# of your own instead of Debian's linux-source, e.g. under git bisect),
# KERNEL_VARIANT (a patch name under kernel/variants/, default none),
# KERNEL_PROFILE (default, or NAME for kernel/profiles/NAME.config merged
# over the base fragment: sanitizer kernels), JOBS (default nproc + 1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

FRAGMENT=$MMRACE_ROOT/kernel/mmrace.config
SRC=$SRC_DIR/linux-$KERNEL_SERIES
JOBS=${JOBS:-$(($(nproc) + 1))}
KERNEL_VARIANT=${KERNEL_VARIANT:-}
KERNEL_PROFILE=${KERNEL_PROFILE:-default}
PROFILE_FRAGMENT=$(profile_fragment "$KERNEL_PROFILE")
# The profile's compiler, if not the default gcc (kasan: clang).
read -ra profile_vars <<<"$(profile_field "$KERNEL_PROFILE" make)"
KERNEL_MAKE_VARS+=("${profile_vars[@]}")
for v in "${profile_vars[@]}"; do
	case $v in LLVM=-*) need "clang${v#LLVM=}" "$(profile_field "$KERNEL_PROFILE" packages)" ;; esac
done

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
	[ -e "$SRC/Makefile" ] || die "no kernel source at $SRC: run KERNEL_SERIES=$KERNEL_SERIES scripts/bootstrap.sh kernel-src"
	SRC_VERSION=$(cat "$SRC_DIR/linux-$KERNEL_SERIES.version")
fi

# A tree mmrace.ko cannot be built against stops here, before the kernel
# build (minutes), with the missing API named: the same feature test Kbuild
# runs on every module build.
if ! missing=$("$MMRACE_ROOT/scripts/module-features.sh" missing "$SRC"); then
	MMRACE_DIE_CODE=125 die "mmrace.ko cannot be built against $KERNEL_SERIES-$SRC_VERSION ($SRC): $missing"
fi

variant_patch=
if [ -n "$KERNEL_VARIANT" ]; then
	variant_patch=$(variant_patch "$KERNEL_VARIANT") || exit
fi

# Bump when a change to this script changes what gets built. (The default
# profile hashes exactly what it did before profiles existed, so its cached
# trees stay valid.)
RECIPE=1
# A variant's Best: or Best-tried: header line (its best matrix
# configuration, userspace/host/src/variants.rs) does not shape the kernel:
# left out of the key, so recording a new best rebuilds nothing (and the
# keys of patches without the line are what they were).
key=$( (echo "recipe $RECIPE"; cat "$FRAGMENT" ${PROFILE_FRAGMENT:+"$PROFILE_FRAGMENT"}
	[ -z "$variant_patch" ] || grep -Ev '^Best(-tried)?:' "$variant_patch") | sha256sum | cut -c1-12)
clean_key=$( (echo "recipe $RECIPE"; cat "$FRAGMENT" ${PROFILE_FRAGMENT:+"$PROFILE_FRAGMENT"}) | sha256sum | cut -c1-12)
base_key=$( (echo "recipe $RECIPE"; cat "$FRAGMENT") | sha256sum | cut -c1-12)
ptag=
[ "$KERNEL_PROFILE" = default ] || ptag=-$KERNEL_PROFILE
name=$KERNEL_SERIES-$SRC_VERSION$ptag${KERNEL_VARIANT:+-$KERNEL_VARIANT}-$key
OUT=$MMRACE_CACHE/kernel/$name
STAMP=$OUT/.mmrace-built

REAL_SRC=$(realpath "$SRC")
VARIANT_SRC=$SRC_DIR/variant-$KERNEL_SERIES-$SRC_VERSION-$KERNEL_VARIANT-$key
# The source directory this build compiles (source_of in lib.sh): a
# variant's patched copy, else the tree itself.
build_src=$REAL_SRC
[ -z "$variant_patch" ] || build_src=$VARIANT_SRC
record_source() {
	[ "$(cat "$OUT/.mmrace-src" 2>/dev/null)" = "$build_src" ] && return
	echo "$build_src" >"$OUT/.mmrace-src.$$" && mv "$OUT/.mmrace-src.$$" "$OUT/.mmrace-src"
}

# One build of a tree at a time: two callers of the same configuration (a
# test and a matrix, two helpers) wait for each other, and the second then
# finds the tree built.
mkdir -p "$MMRACE_CACHE/kernel"
exec 9>"$OUT.lock"
flock 9

if [ -e "$STAMP" ] && [ -e "$OUT/arch/x86/boot/bzImage" ] && [[ $SRC_VERSION != *-dirty ]]; then
	# (Trees built before .mmrace-src existed get it here.)
	record_source
	log "kernel: $name up to date"
	echo "$OUT"
	exit 0
fi
prepare_variant_src() {
	[ -n "$variant_patch" ] && [ ! -e "$VARIANT_SRC/.mmrace-patched" ] || return 0
	# A dry run on the clean tree first: the hard-linked copy takes half a
	# minute on a busy machine, a patch that does not apply should not.
	patch -d "$REAL_SRC" -p1 -s --batch --dry-run <"$variant_patch" >/dev/null 2>&1 ||
		die "kernel: variant $KERNEL_VARIANT does not apply to $KERNEL_SERIES-$SRC_VERSION"
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

# clean_builds GLOB: the stamps of finished clean (no variant) builds of
# this profile among $MMRACE_CACHE/kernel/GLOB. A stamp without a profile
# line predates profiles: the default profile.
clean_builds() {
	# shellcheck disable=SC2086 # $1 is a glob on purpose
	grep -lx 'variant=' "$MMRACE_CACHE/kernel/"$1/.mmrace-built 2>/dev/null |
		while read -r st; do
			[ "$(sed -n 's/^profile=//p' "$st")" = "${KERNEL_PROFILE/#default/}" ] && echo "$st"
		done
}
# kernel_version DIR: VERSION.PATCHLEVEL.SUBLEVEL EXTRAVERSION of a source.
kernel_version() { sed -n '1,6s/^\(VERSION\|PATCHLEVEL\|SUBLEVEL\|EXTRAVERSION\) = *//p' "$1/Makefile" | tr '\n' ' '; }
# nearest_src_build: under KERNEL_SRC, the stamp of the finished clean build
# of the commit nearest to HEAD (fewest commits apart: bisect steps are
# close), else of the newest clean build of a Debian source of the same
# kernel version (the same files, bar the commits since). Only builds of the
# same fragments (clean_key).
nearest_src_build() {
	local st hash n best='' best_n='' v
	for st in $(clean_builds "src-*-$clean_key"); do
		hash=${st#"$MMRACE_CACHE"/kernel/src-}
		hash=${hash%%-*}
		n=$(git -C "$SRC" rev-list --count "$hash...HEAD" 2>/dev/null) || continue
		if [ -z "$best_n" ] || [ "$n" -lt "$best_n" ]; then best=$st best_n=$n; fi
	done
	if [ -z "$best" ]; then
		v=$(kernel_version "$SRC")
		for st in $(clean_builds "[0-9]*-$clean_key" | xargs -r ls -t); do
			[ "$(kernel_version "$(source_of "$(dirname "$st")")")" != "$v" ] || { best=$st; break; }
		done
	fi
	echo "$best"
}

# Start from the newest finished clean build of the same source when there is
# one: Kbuild tracks config and file changes, so a changed fragment, a
# profile or a variant patch then recompiles what it touches instead of the
# whole kernel. Never seed from a variant build: its patched objects are
# newer than the clean sources and would be kept. Never seed across
# compilers (a profile with its own make variables): nothing would be kept.
if [ ! -e "$OUT" ]; then
	# The clean build of the same fragments first, then (for a profile) the
	# default profile's clean build of the same base fragment, else the
	# newest clean build of the same profile.
	seed=$MMRACE_CACHE/kernel/$KERNEL_SERIES-$SRC_VERSION$ptag-$clean_key/.mmrace-built
	base_seed=$MMRACE_CACHE/kernel/$KERNEL_SERIES-$SRC_VERSION-$base_key/.mmrace-built
	[ -e "$seed" ] || [ ${#profile_vars[@]} != 0 ] || seed=$base_seed
	if [ ! -e "$seed" ] && [ -n "${KERNEL_SRC:-}" ]; then
		seed=$(nearest_src_build)
	elif [ ! -e "$seed" ]; then
		seed=$(clean_builds "$KERNEL_SERIES-$SRC_VERSION-*" | xargs -r ls -t | head -n1 || true)
	fi
	if [ -n "$seed" ]; then
		seed=$(dirname "$seed")
		log "kernel: seeding from $(basename "$seed") for an incremental build"
		# The copy keeps the seed's Kbuild files, and with them the paths
		# it is built at (objtree_of, srctree_of). The seed's stamp and
		# bzImage go: only this build's success (the stamp, written last)
		# makes this tree a built kernel, and an interrupted build leaves
		# no image of another configuration.
		rm -rf "$OUT.tmp" # an interrupted copy: cp would nest the seed in it
		cp -a "$seed" "$OUT.tmp" &&
			rm -f "$OUT.tmp/.mmrace-built" "$OUT.tmp/.mmrace-src" "$OUT.tmp/arch/x86/boot/bzImage" &&
			mv "$OUT.tmp" "$OUT"
		echo "$seed" >"$OUT/.mmrace-seed"
		objtree_of "$seed" >"$OUT/.mmrace-objtree"
	fi
fi

# Where the build runs. A seeded tree is built where its Kbuild files say it
# is (objtree_of, srctree_of: the paths of the clean build it descends
# from): a private mount namespace puts the tree over that build directory
# and the source it compiles (a variant's hard-linked copy with its patch
# applied: patch replaces the files it changes, so the clean tree stays as
# it was; a KERNEL_SRC tree at the commit under test) over that source
# path (kbuild_env in lib.sh). Every path Kbuild recorded then stays the
# same, so only what the profile's options, the variant's patch or the
# commit touch recompiles.
mkdir -p "$OUT"
if ! kbuild_env "$OUT" "$build_src"; then
	log "kernel: building in the tree's own paths (a full build; incremental needs root, unshare and the tree it was seeded from)"
	rm -f "$OUT/.mmrace-objtree"
fi
BUILD_O=$KB_O
BUILD_SRC=$KB_SRC
# in_build_env CMD...: CMD, which names the source as $BUILD_SRC and the
# build directory as $BUILD_O, in that view of the paths.
in_build_env() { in_kbuild_env "$OUT" "$build_src" "$@"; }
record_source
log "kernel: building $name in $OUT (log: $OUT/build.log)"
export MMRACE_DIE_CODE=125
start=$(date +%s)
if [ -n "$variant_patch" ] && [ "$(cat "$OUT/.mmrace-seed" 2>/dev/null)" = "$MMRACE_CACHE/kernel/$KERNEL_SERIES-$SRC_VERSION$ptag-$clean_key" ]; then
	# Seeded from the clean build of the same fragments: the config is
	# already the merged one.
	: >"$OUT/build.log"
elif [ "$(cat "$OUT/.mmrace-merged" 2>/dev/null)" = "$key" ] && [[ $SRC_VERSION != *-dirty ]]; then
	# An interrupted build of this very configuration: merging again would
	# rewrite the generated headers and rebuild what was already built
	# (the Rust crates first).
	: >"$OUT/build.log"
else {
	# allnoconfig with the fragments (base, then profile) as
	# KCONFIG_ALLCONFIG, then check that every requested value made it
	# (merge_config warns but does not fail). merge_config.sh runs a plain
	# `make`; variable assignments in MAKEFLAGS act as command-line ones,
	# which is what overrides the kernel Makefile's `RUSTC = rustc` (Kconfig
	# probes rustc for CONFIG_RUST).
	in_build_env env -C "$BUILD_SRC" MAKEFLAGS="${KERNEL_MAKE_VARS[*]}" \
		scripts/kconfig/merge_config.sh -n -O "$BUILD_O" "$FRAGMENT" ${PROFILE_FRAGMENT:+"$PROFILE_FRAGMENT"}
} >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log" >&2; die "kernel: config merge failed"; }
fi

# Each option's last value over the fragments, as merge_config applies them.
missing=$(awk 'match($0, /^CONFIG_[A-Z0-9_]+=/) {
		n = substr($0, 1, RLENGTH - 1); if (!(n in v)) order[++c] = n; v[n] = $0 }
	END { for (i = 1; i <= c; i++) print v[order[i]] }' "$FRAGMENT" ${PROFILE_FRAGMENT:+"$PROFILE_FRAGMENT"} |
	while IFS= read -r want; do
		grep -qxF "$want" "$OUT/.config" || echo "$want"
	done)
[ -z "$missing" ] || die "kernel: config options did not take (a dependency is off): $(echo $missing)"
echo "$key" >"$OUT/.mmrace-merged"

if ! in_build_env nice make -C "$BUILD_SRC" O="$BUILD_O" -j"$JOBS" "${KERNEL_MAKE_VARS[@]}" bzImage modules >>"$OUT/build.log" 2>&1; then
	grep -E 'error|Error' "$OUT/build.log" | head -n 20 >&2
	die "kernel: build failed (log: $OUT/build.log)"
fi
[ -e "$OUT/rust/kernel.o" ] || [ -n "$(ls "$OUT"/rust/*.rmeta 2>/dev/null)" ] ||
	die "kernel: built without Rust metadata (rust/*.rmeta)"
printf 'key=%s\nvariant=%s\nprofile=%s\n' "$key" "$KERNEL_VARIANT" "${KERNEL_PROFILE/#default/}" >"$STAMP"
log "kernel: built in $(($(date +%s) - start)) s"
echo "$OUT"
