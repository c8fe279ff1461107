#!/usr/bin/env bash
# Style checks, the same ones `make test` runs:
#   userspace: cargo fmt --check, cargo clippy -D warnings
#   kernel Rust: rustfmt with the kernel's .rustfmt.toml, CLIPPY=1 build
#                with warnings as errors
#   kernel C: checkpatch.pl --strict (X-macro argument use excepted)
#   imports: no import circle, no scenario importing another
#            (scripts/imports.py)
# Prints one `ok`/`not ok` line per check and exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
[ -x "$(command -v cargo)" ] || PATH=$HOME/.cargo/bin:$PATH

KDIR=${KDIR:-$("$MMRACE_ROOT/scripts/build-kernel.sh")} || exit 2
SRC=$(readlink -f "$KDIR/source")
failed=0
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "ok - lint: $name"
	else
		echo "not ok - lint: $name"
		printf '%s\n' "$out" | tail -n 40 | sed 's/^/    /'
		failed=1
	fi
}

cd "$MMRACE_ROOT"
check "import circles" python3 scripts/imports.py check
check "cargo fmt" cargo fmt --all --check
check "cargo clippy" cargo clippy -q --workspace --all-targets --locked -- -D warnings
# (The crate root: rustfmt formats its modules, inject.rs and parse.rs, too.)
check "kernel rustfmt" /usr/bin/rustfmt --check --config-path "$SRC/.rustfmt.toml" module/mmrace_main.rs
clippy_build() {
	local out=$MMRACE_ROOT/build/lint/module src
	rm -rf "$out" && mkdir -p "$out"
	local kdir_vars
	read -ra kdir_vars <<<"$(kdir_make_vars "$KDIR")"
	# A seeded kernel build names the tree it was copied from: build in
	# its view, as build-module.sh does, or make would use that older
	# tree's config (without CONFIG_KUNIT, say, skipping the KUnit suites).
	src=$(source_of "$KDIR")
	[ -n "$src" ] || src=$KDIR
	kbuild_env "$KDIR" "$src" || { echo "cannot build in $KDIR's view (needs root and unshare)"; return 1; }
	in_kbuild_env "$KDIR" "$src" make -C "$KB_O" M="$MMRACE_ROOT" MO="$out" "${KERNEL_MAKE_VARS[@]}" "${kdir_vars[@]}" \
		CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver KRUSTFLAGS="-Dwarnings" KCFLAGS="-Werror" W=1 modules \
		>"$out/log" 2>&1 || { cat "$out/log"; return 1; }
	! grep -E '^(warning|error)' "$out/log"
}
check "kernel CLIPPY=1 W=1 build" clippy_build
# MACRO_ARG_UNUSED: the X-macro expansions of mmrace_counters.h use a subset
# of each entry's fields on purpose (the enum needs only the name).
check "checkpatch" "$SRC/scripts/checkpatch.pl" --no-tree --strict --terse --ignore MACRO_ARG_UNUSED -f module/*.c module/*.h
exit $failed
