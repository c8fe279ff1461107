#!/usr/bin/env bash
# Installs and fetches everything mmrace needs to build a Rust-enabled test
# kernel and boot it under QEMU. Idempotent: every step checks first and does
# nothing when its result is already there. Results live in $MMRACE_CACHE
# (default ~/.cache/mmrace), outside the clone, so a fresh clone reuses them.
#
# Steps (each can be run alone: scripts/bootstrap.sh STEP...):
#   apt-sources  add the backports suites from the mirror already configured
#   packages     Debian packages (QEMU, rustc-web, build deps, xfsprogs, and
#                libnuma-dev + rsync for the mm selftests)
#   libclang     libclang 18.1.1 from the PyPI wheel (Debian 12's is too old)
#   bindgen      bindgen-cli via cargo install --locked
#   kernel-src   Debian's linux-source-$KERNEL_SERIES via apt-get download
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors

CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
BACKPORTS_HOST_SUITE=${CODENAME}-backports
KERNEL_SUITE=${KERNEL_SUITE:-trixie-backports}
LIBCLANG_VERSION=18.1.1
APT_SOURCES=/etc/apt/sources.list.d/mmrace.sources
APT_PIN=/etc/apt/preferences.d/mmrace

# The mirror URI the machine already uses for its own Debian suite.
debian_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		[ "$f" = "$APT_SOURCES" ] && continue
		awk -v suite="$CODENAME" '
			BEGIN { RS = ""; FS = "\n" }
			{
				uri = ""; ok = 0
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, " "); uri = u[1] }
					if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1 }
				}
				if (ok && uri != "") { print uri; exit }
			}' "$f"
	done | head -n1
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		awk -v suite="$CODENAME" '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i == suite) { print ($2 ~ /^\[/ ? $3 : $2); exit } }' "$f"
	done | head -n1
}

step_apt_sources() {
	if [ -e "$APT_SOURCES" ] && [ -e "$APT_PIN" ]; then
		log "apt-sources: $APT_SOURCES already present"
		return
	fi
	[ -n "$CODENAME" ] || die "apt-sources: cannot read VERSION_CODENAME from /etc/os-release"
	local mirror
	mirror=$(debian_mirror | head -n1)
	[ -n "$mirror" ] || die "apt-sources: no Debian mirror for suite '$CODENAME' found in /etc/apt/sources.list{,.d}"
	log "apt-sources: adding $BACKPORTS_HOST_SUITE and $KERNEL_SUITE from $mirror, pinned low"
	as_root tee "$APT_SOURCES" >/dev/null <<SRC
# Added by mmrace scripts/bootstrap.sh. Pinned low in $APT_PIN.
Types: deb
URIs: $mirror
Suites: $BACKPORTS_HOST_SUITE $KERNEL_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	# Nothing upgrades from these suites; only what is asked for by name.
	as_root tee "$APT_PIN" >/dev/null <<PIN
Package: *
Pin: release n=$BACKPORTS_HOST_SUITE
Pin-Priority: 100

Package: *
Pin: release n=$KERNEL_SUITE
Pin-Priority: 1
PIN
	as_root apt-get update -q >/dev/null ||
		die "apt-sources: 'apt-get update' failed (see its output above)"
}

# Packages and the suite they come from ("" = default).
PACKAGES=(
	build-essential flex bison bc libelf-dev libssl-dev cpio kmod
	python3 xfsprogs numactl busybox-static libnuma-dev rsync
	rustc-web rust-web-src rust-web-clippy rustfmt-web
)
BACKPORTS_PACKAGES=(qemu-system-x86)

apt_install() {
	local logf=$MMRACE_CACHE/apt-install.log
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$logf" 2>&1; then
		tail -n 20 "$logf" >&2
		die "packages: 'apt-get install $*' failed (log: $logf)"
	fi
}

step_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}" "${BACKPORTS_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} = 0 ]; then
		log "packages: all installed"
		return
	fi
	log "packages: installing ${missing[*]}"
	local plain=() bp=() p b is_bp
	for p in "${missing[@]}"; do
		is_bp=
		for b in "${BACKPORTS_PACKAGES[@]}"; do [ "$p" = "$b" ] && is_bp=1; done
		if [ -n "$is_bp" ]; then bp+=("$p"); else plain+=("$p"); fi
	done
	[ ${#plain[@]} = 0 ] || apt_install "${plain[@]}"
	# -t so that their dependencies come from backports too.
	[ ${#bp[@]} = 0 ] || apt_install -t "$BACKPORTS_HOST_SUITE" "${bp[@]}"
	[ -x "$KERNEL_RUSTC" ] || die "packages: $KERNEL_RUSTC missing after installing rustc-web"
}

step_libclang() {
	if [ -e "$LIBCLANG_DIR/libclang.so" ]; then
		log "libclang: $LIBCLANG_DIR/libclang.so present"
		return
	fi
	need python3 python3
	log "libclang: fetching the libclang==$LIBCLANG_VERSION wheel from PyPI"
	local tmp
	tmp=$(mktemp -d)
	python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2010_x86_64 \
		-d "$tmp" "libclang==$LIBCLANG_VERSION" ||
		die "libclang: 'pip download libclang==$LIBCLANG_VERSION' failed (needs python3-pip and PyPI)"
	python3 - "$tmp"/libclang-*.whl "$MMRACE_CACHE/libclang" <<'PY'
import sys, zipfile
import os
# The wheel keeps the package under <name>.data/platlib/clang/.
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        i = n.find("clang/native/")
        if i >= 0 and not n.endswith("/"):
            dst = os.path.join(sys.argv[2], n[i:])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(n) as src, open(dst, "wb") as out:
                out.write(src.read())
PY
	rm -rf "$tmp"
	[ -e "$LIBCLANG_DIR/libclang.so" ] || die "libclang: wheel had no clang/native/libclang.so"
}

step_bindgen() {
	if [ -x "$BINDGEN" ]; then
		log "bindgen: $("$BINDGEN" --version)"
		return
	fi
	need cargo cargo
	log "bindgen: cargo install --locked bindgen-cli (a few minutes, once)"
	cargo install -q --locked --root "$TOOLS_DIR" bindgen-cli ||
		die "bindgen: 'cargo install --locked bindgen-cli' failed"
}

# Prints the newest linux-source-<series> package version the archive has.
kernel_src_version() {
	apt-cache madison "linux-source-$KERNEL_SERIES" 2>/dev/null | awk '{print $3; exit}'
}

step_kernel_src() {
	local ver dir
	ver=$(kernel_src_version)
	if [ -z "$ver" ]; then
		local have
		have=$(apt-cache search --names-only '^linux-source-[0-9.]+$' | awk '{print $1}' | sed 's/linux-source-//' | sort -V | tr '\n' ' ')
		die "kernel-src: linux-source-$KERNEL_SERIES is not in the archive; series available: ${have:-none} (set KERNEL_SERIES=...)"
	fi
	dir=$SRC_DIR/linux-source-$KERNEL_SERIES-$ver
	if [ -e "$dir/Makefile" ]; then
		log "kernel-src: $dir present"
	else
		log "kernel-src: apt-get download linux-source-$KERNEL_SERIES=$ver and unpack"
		local tmp
		tmp=$(mktemp -d)
		(cd "$tmp" && apt-get download -q "linux-source-$KERNEL_SERIES=$ver" >/dev/null) ||
			die "kernel-src: 'apt-get download linux-source-$KERNEL_SERIES' failed"
		dpkg-deb -x "$tmp"/linux-source-*.deb "$tmp/x"
		mkdir -p "$dir.tmp"
		tar -xf "$tmp"/x/usr/src/linux-source-"$KERNEL_SERIES".tar.* -C "$dir.tmp" --strip-components=1
		rm -rf "$tmp" "$dir"
		mv "$dir.tmp" "$dir"
	fi
	ln -sfn "$dir" "$SRC_DIR/linux-$KERNEL_SERIES"
	printf '%s\n' "$ver" >"$SRC_DIR/linux-$KERNEL_SERIES.version"
}

main() {
	mkdir -p "$MMRACE_CACHE" "$TOOLS_DIR" "$SRC_DIR"
	local steps=("$@")
	[ ${#steps[@]} -gt 0 ] || steps=(apt-sources packages libclang bindgen kernel-src)
	for s in "${steps[@]}"; do
		case $s in
		apt-sources) step_apt_sources ;;
		packages) step_packages ;;
		libclang) step_libclang ;;
		bindgen) step_bindgen ;;
		kernel-src) step_kernel_src ;;
		*) die "unknown bootstrap step '$s'" ;;
		esac
	done
}

main "$@"
