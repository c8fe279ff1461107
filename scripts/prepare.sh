# Sourced by the scripts that start mmrace-host: builds mmrace-host itself
# (prepare_host), and for scripts/test.sh, a kernel through `mmrace-host
# build` (fleet/build.rs: the toolchain, the static driver, the kernel,
# mmrace.ko and the initramfs, each step a no-op when up to date). Exit
# codes follow the runner's: 2 for a harness/setup failure, 125 when the
# kernel under test or the module fails to build against it.

# cargo from rustup when a minimal PATH (CI) lacks it.
[ -x "$(command -v cargo)" ] || PATH=$HOME/.cargo/bin:$PATH

# prepare_host: mmrace-host alone, in HOST_BIN (seconds when it is up to
# date), before anything else: it checks every setting, then builds the
# rest. On a machine without cargo yet, the toolchain
# (scripts/bootstrap.sh) first.
prepare_host() {
	command -v cargo >/dev/null 2>&1 ||
		KERNEL_SERIES=${KERNEL_SERIES%% *} KERNEL_PROFILE= MMRACE_DIE_CODE=2 \
			"$MMRACE_ROOT/scripts/bootstrap.sh" || exit 2
	need cargo cargo
	(cd "$MMRACE_ROOT" && cargo build -q --release --locked -p mmrace-host) ||
		die "userspace: cargo build of mmrace-host failed"
	HOST_BIN=$MMRACE_ROOT/target/release/mmrace-host
}

# built [VAR=VALUE...]: `mmrace-host build` for the kernel the settings
# name (KERNEL_SERIES, KERNEL_SRC, KDIR, KERNEL_VARIANT, KERNEL_PROFILE,
# each overridden by a VAR=VALUE), in BUILT_KDIR, BUILT_BZIMAGE,
# BUILT_MODULE_KO and BUILT_INITRD; returns its exit code (2, 125).
built() {
	local out
	prepare_host
	out=$(env "$@" bash -c '
		args=(--mmrace-root "$MMRACE_ROOT" --series "$KERNEL_SERIES")
		[ -z "${KDIR:-}" ] || args+=(--kdir "$KDIR")
		[ -z "${KERNEL_SRC:-}" ] || args+=(--kernel-src "$KERNEL_SRC")
		[ -z "${KERNEL_VARIANT:-}" ] || args+=(--kernel-variant "$KERNEL_VARIANT")
		[ -z "${KERNEL_PROFILE:-}" ] || args+=(--kernel-profile "$KERNEL_PROFILE")
		exec "$0" build "${args[@]}"' "$HOST_BIN") || return
	{ read -r BUILT_KDIR && read -r BUILT_BZIMAGE && read -r BUILT_MODULE_KO && read -r BUILT_INITRD; } <<<"$out"
}

# prepare_all: the kernel of the settings, in KDIR, BZIMAGE, MODULE_KO and
# INITRD (and HOST_BIN); exits on a failure.
prepare_all() {
	built || exit
	KDIR=$BUILT_KDIR BZIMAGE=$BUILT_BZIMAGE MODULE_KO=$BUILT_MODULE_KO INITRD=$BUILT_INITRD
}

# prepare_series SERIES: Debian's linux-source-SERIES (fetched when
# missing), its test kernel, mmrace.ko and the initramfs; 2 for a series
# the archive lacks, 125 when the kernel or mmrace.ko cannot be built.
prepare_series() { built KERNEL_SERIES="$1" KERNEL_SRC= KDIR= KERNEL_VARIANT=; }

# prepare_variant NAME: kernel/variants/NAME.patch's kernel, in
# VARIANT_BZIMAGE and VARIANT_INITRD.
prepare_variant() {
	built KDIR= KERNEL_VARIANT="$1" || return
	VARIANT_BZIMAGE=$BUILT_BZIMAGE VARIANT_INITRD=$BUILT_INITRD
}

# prepare_profile NAME: the KERNEL_PROFILE=NAME kernel, in PROFILE_BZIMAGE
# and PROFILE_INITRD.
prepare_profile() {
	built KDIR= KERNEL_PROFILE="$1" || return
	PROFILE_BZIMAGE=$BUILT_BZIMAGE PROFILE_INITRD=$BUILT_INITRD
}
