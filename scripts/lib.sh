# Shared helpers for mmrace's shell scripts: logging, errors, cache paths.
# Sourced, never executed.

MMRACE_ROOT=${MMRACE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MMRACE_CACHE=${MMRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmrace}
KERNEL_SERIES=${KERNEL_SERIES:-7.3}
export MMRACE_ROOT MMRACE_CACHE KERNEL_SERIES

# Where the bootstrap puts what it fetches or builds.
TOOLS_DIR=$MMRACE_CACHE/tools
LIBCLANG_DIR=$MMRACE_CACHE/libclang/clang/native
SRC_DIR=$MMRACE_CACHE/src
BINDGEN=$TOOLS_DIR/bin/bindgen
KERNEL_RUSTC=${KERNEL_RUSTC:-/usr/bin/rustc}

log() { printf '[mmrace] %s\n' "$*" >&2; }
die() {
	printf '[mmrace] error: %s\n' "$*" >&2
	exit "${MMRACE_DIE_CODE:-2}"
}

# For `set -e` scripts: a failing command names the script and line instead
# of ending it silently. The exit code is kept (125 from a kernel that did
# not build must reach git bisect as 125).
trap_unexpected_errors() {
	trap 'rc=$?; printf "[mmrace] %s stopped at line %s (exit %s)\n" "${BASH_SOURCE[0]##*/}" "$LINENO" "$rc" >&2; exit $rc' ERR
}

# need CMD PACKAGE: fail with the Debian package to install when CMD is absent.
need() {
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' not found: install the Debian package '$2' (or run scripts/bootstrap.sh)"
}

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "'$*' needs root: run as root or install sudo"
	fi
}

# One awk for every kernel build. 7.x generates <asm/cpufeaturemasks.h>
# with an awk `for (k in array)` loop, whose order is the implementation's:
# gawk and mawk write the same masks in another order. Installing gawk
# switches /usr/bin/awk (Debian's alternatives), the header then changes,
# and a build seeded from a tree made with the other awk recompiles nearly
# every object (a 7.2 variant build took 17 min instead of a minute).
# mawk is Debian's required awk, so always there.
KERNEL_AWK=$(command -v mawk || command -v awk || true)

# The kernel make variables every kernel or module build passes.
KERNEL_MAKE_VARS=("RUSTC=$KERNEL_RUSTC" "BINDGEN=$BINDGEN" ${KERNEL_AWK:+"AWK=$KERNEL_AWK"})

# Kernel profiles (KERNEL_PROFILE): `default` is kernel/mmrace.config alone,
# any other NAME adds kernel/profiles/NAME.config over it. A fragment's
# "# mmrace-make: VAR=VALUE..." line names the make variables its kernel
# needs (its compiler), "# mmrace-packages: PKG..." the Debian packages.
PROFILES_DIR=$MMRACE_ROOT/kernel/profiles
profile_names() { echo default $(ls "$PROFILES_DIR" 2>/dev/null | sed -n 's/\.config$//p'); }
# profile_fragment NAME: the fragment's path, nothing for default; dies on
# an unknown NAME.
profile_fragment() {
	[ "$1" != default ] || return 0
	[ -e "$PROFILES_DIR/$1.config" ] ||
		die "no kernel profile '$1': have $(profile_names)"
	echo "$PROFILES_DIR/$1.config"
}
# Kernel variants (KERNEL_VARIANT): kernel/variants/NAME.patch.
VARIANTS_DIR=$MMRACE_ROOT/kernel/variants
variant_names() { ls "$VARIANTS_DIR" 2>/dev/null | sed -n 's/\.patch$//p' | tr '\n' ' '; }
# variant_patch NAME: the patch's path; dies on an unknown NAME.
variant_patch() {
	[ -e "$VARIANTS_DIR/$1.patch" ] || die "no kernel variant '$1': have $(variant_names)"
	echo "$VARIANTS_DIR/$1.patch"
}
# profile_field NAME FIELD: the words of the fragment's "# mmrace-FIELD:" line.
profile_field() {
	local f
	f=$(profile_fragment "$1") || exit
	[ -z "$f" ] || sed -n "s/^# mmrace-$2: *//p" "$f"
}

# kdir_make_vars KDIR: the make variables a build against that kernel tree
# needs besides KERNEL_MAKE_VARS. A clang-built tree needs LLVM= (Kbuild
# would otherwise take gcc and fail on clang-only flags): LLVM=-MAJOR when
# that clang is installed under its versioned name, else LLVM=1.
kdir_make_vars() {
	grep -qx 'CONFIG_CC_IS_CLANG=y' "$1/.config" 2>/dev/null || return 0
	local major
	major=$(sed -n 's/^CONFIG_CLANG_VERSION=\([0-9]*\)[0-9]\{4\}$/\1/p' "$1/.config")
	if [ -n "$major" ] && command -v "clang-$major" >/dev/null; then
		echo "LLVM=-$major"
	else
		echo "LLVM=1"
	fi
}
export LIBCLANG_PATH=$LIBCLANG_DIR

# Where a kernel build tree's Kbuild files say it is. Kbuild itself records
# both paths of the build that last ran in it: its build directory in the
# generated TREE/Makefile (KBUILD_OUTPUT), its source in the TREE/source
# link. A tree built at its own paths names itself. A tree that
# scripts/build-kernel.sh seeded from an earlier build (a variant, a
# profile, a bisect step: an incremental build) names that build's paths,
# and must be built and used there (in_kbuild_env): an absolute path
# change rebuilds objtool and with it every object, and a module built
# with `make -C TREE` would otherwise compile against the tree TREE/Makefile
# names, not TREE.
# objtree_of TREE: the build directory path (.mmrace-objtree for a seeded
# tree that has no Makefile yet).
objtree_of() {
	local o
	o=$(sed -n 's/^export KBUILD_OUTPUT = //p' "$1/Makefile" 2>/dev/null)
	[ -n "$o" ] || o=$(cat "$1/.mmrace-objtree" 2>/dev/null) || o=$1
	echo "$o"
}
# srctree_of TREE: the source path, empty for a tree not built yet.
srctree_of() { readlink "$1/source" 2>/dev/null || true; }
# source_of TREE: the source directory the tree was built from (a variant's
# patched copy, the KERNEL_SRC tree at the commit built), which
# in_kbuild_env puts at srctree_of's path; recorded by build-kernel.sh.
source_of() { cat "$1/.mmrace-src" 2>/dev/null || srctree_of "$1"; }

# kbuild_env TREE SRC: the view in which a build in TREE from the source
# directory SRC keeps TREE's recorded paths: sets KB_O and KB_SRC (the
# paths to name to make) and KB_NS (set when a private mount namespace
# must put TREE and SRC at those paths, which needs root and unshare).
# Returns 1 when the recorded paths cannot be had (no root, or a path
# whose directory is gone): the caller then builds at TREE's own paths (a
# full kernel build) or stops (a module must be built at the kernel's).
kbuild_env() {
	local tree=$1 src=$2
	KB_O=$(objtree_of "$tree") KB_SRC=$(srctree_of "$tree") KB_NS=
	[ -n "$KB_SRC" ] || KB_SRC=$src
	[ "$KB_O" != "$tree" ] || [ "$KB_SRC" != "$src" ] || return 0
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && [ -d "$KB_O" ] && [ -d "$KB_SRC" ]; then
		KB_NS=1
		return 0
	fi
	KB_O=$tree KB_SRC=$src
	return 1
}
# in_kbuild_env TREE SRC CMD...: CMD in kbuild_env's view (call kbuild_env
# first: CMD names the paths as $KB_O and $KB_SRC).
in_kbuild_env() {
	local tree=$1 src=$2
	shift 2
	if [ -z "$KB_NS" ]; then
		"$@"
		return
	fi
	unshare -m --propagation private bash -c \
		'{ [ "$1" = "$2" ] || mount --bind "$1" "$2"; } && { [ "$3" = "$4" ] || mount --bind "$3" "$4"; } && shift 4 && exec "$@"' \
		_ "$src" "$KB_SRC" "$tree" "$KB_O" "$@"
}

# The thin scripts turn settings into mmrace-host's arguments in their
# array `args`:
# opt FLAG VALUE: FLAG VALUE when VALUE is set (an empty setting is the default).
opt() { [ -z "$2" ] || args+=("$1" "$2"); }
# opts FLAG WORDS: FLAG WORD for each word of a list setting.
opts() {
	local w list
	read -ra list <<<"$2"
	for w in "${list[@]}"; do args+=("$1" "$w"); done
}
