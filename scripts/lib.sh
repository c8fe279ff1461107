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

# The kernel make variables every kernel or module build passes.
KERNEL_MAKE_VARS=("RUSTC=$KERNEL_RUSTC" "BINDGEN=$BINDGEN")
export LIBCLANG_PATH=$LIBCLANG_DIR

# in_kbuild_paths KDIR SRC CMD...: runs CMD for the kernel build KDIR whose
# source is SRC, with @KSRC@ and @KOUT@ in its words replaced by the paths
# Kbuild recorded for that build. A build seeded from an earlier one (a
# variant, a bisect step) keeps the paths of the build it was copied from,
# recorded in KDIR/.mmrace-kbuild: an absolute path change rebuilds objtool,
# and with it every object. So a private mount namespace puts SRC and KDIR
# over those paths, and only what changed recompiles. Without root (or
# unshare) CMD runs on the real paths: correct, but a full rebuild.
in_kbuild_paths() {
	local kdir=$1 src=$2 KBUILD_SRC KBUILD_OUT args
	shift 2
	KBUILD_SRC=$src KBUILD_OUT=$kdir
	# shellcheck disable=SC1091
	[ ! -e "$kdir/.mmrace-kbuild" ] || . "$kdir/.mmrace-kbuild"
	if [ "$KBUILD_SRC" != "$src" ] || [ "$KBUILD_OUT" != "$kdir" ]; then
		if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
			args=("${@//@KSRC@/$KBUILD_SRC}")
			args=("${args[@]//@KOUT@/$KBUILD_OUT}")
			mkdir -p "$KBUILD_SRC" "$KBUILD_OUT"
			unshare -m --propagation private bash -c \
				'if [ "$1" != "$2" ]; then mount --bind "$1" "$2" || exit; fi
				 if [ "$3" != "$4" ]; then mount --bind "$3" "$4" || exit; fi
				 shift 4 && exec "$@"' \
				_ "$src" "$KBUILD_SRC" "$kdir" "$KBUILD_OUT" "${args[@]}"
			return
		fi
		log "kernel: $kdir was seeded from a build at other paths; without root for a mount namespace this is a full rebuild"
		printf 'KBUILD_SRC=%q\nKBUILD_OUT=%q\n' "$src" "$kdir" >"$kdir/.mmrace-kbuild"
	fi
	args=("${@//@KSRC@/$src}")
	"${args[@]//@KOUT@/$kdir}"
}
