# Sourced by qemu-run.sh, test.sh and bench.sh: builds whatever is missing,
# from toolchain to initramfs, and sets
#   KDIR BZIMAGE MODULE_KO DRIVER_BIN HOST_BIN INITRD
# Each step is a no-op when its result is up to date. Exit codes follow the
# runner's: 2 for a harness/setup failure, 125 when the kernel under test or
# the module fails to build against it (git bisect run skips such commits).

DRIVER_TARGET=x86_64-unknown-linux-gnu

# cargo from rustup when a minimal PATH (CI) lacks it.
[ -x "$(command -v cargo)" ] || PATH=$HOME/.cargo/bin:$PATH

prepare_toolchain() {
	if [ -n "${KDIR:-}" ]; then
		# A user's own kernel build: only the packages are needed.
		"$MMRACE_ROOT/scripts/bootstrap.sh" apt-sources packages
	else
		"$MMRACE_ROOT/scripts/bootstrap.sh"
	fi
}

prepare_kernel() {
	if [ -n "${KDIR:-}" ]; then
		KDIR_GIVEN=1
		KDIR=$(cd "$KDIR" && pwd)
	else
		KDIR=$("$MMRACE_ROOT/scripts/build-kernel.sh")
	fi
	BZIMAGE=$KDIR/arch/x86/boot/bzImage
	[ -e "$BZIMAGE" ] || die "no $BZIMAGE in KDIR=$KDIR: build bzImage there first"
}

prepare_module() {
	MODULE_KO=$("$MMRACE_ROOT/scripts/build-module.sh" "$KDIR")
}

prepare_binaries() {
	need cargo cargo
	log "userspace: building mmrace-driver (static) and mmrace-host"
	(cd "$MMRACE_ROOT" &&
		RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
			-p mmrace-driver --target "$DRIVER_TARGET" &&
		cargo build -q --release --locked -p mmrace-host) ||
		die "userspace: cargo build failed"
	DRIVER_BIN=$MMRACE_ROOT/target/$DRIVER_TARGET/release/mmrace-driver
	HOST_BIN=$MMRACE_ROOT/target/release/mmrace-host
}

# prepare_initrd [EXTRA_FILE...]
prepare_initrd() {
	INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" "$KDIR" "$DRIVER_BIN" "$MODULE_KO" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$KDIR").cpio" "$@")
}

# prepare_variant NAME: the test kernel with kernel/variants/NAME.patch, its
# module and initramfs, in VARIANT_BZIMAGE and VARIANT_INITRD.
prepare_variant() {
	local vkdir vko
	vkdir=$(KERNEL_VARIANT=$1 "$MMRACE_ROOT/scripts/build-kernel.sh")
	vko=$("$MMRACE_ROOT/scripts/build-module.sh" "$vkdir")
	VARIANT_BZIMAGE=$vkdir/arch/x86/boot/bzImage
	VARIANT_INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" "$vkdir" "$DRIVER_BIN" "$vko" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$vkdir").cpio")
}

# prepare_exec: SCENARIO=exec. Packs EXEC's program (a file on this
# machine) into the initramfs at /exec/NAME, with busybox for a script,
# and makes the scenario words `exec ARGS -- /exec/NAME ARG...`.
prepare_exec() {
	local words prog guest
	[ -n "${EXEC:-}" ] || die "SCENARIO=exec needs EXEC=\"PROGRAM [ARG...]\" (a program on this machine)"
	read -r -a words <<<"$EXEC"
	prog=${words[0]}
	[ -f "$prog" ] || die "EXEC: '$prog' is not a file on this machine"
	guest=/exec/$(basename "$prog")
	INITRD=$("$MMRACE_ROOT/scripts/suite-initramfs.sh" "$KDIR" "$INITRD" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$KDIR")-exec.cpio" "$guest=$prog")
	# shellcheck disable=SC2206 # ARGS is words on purpose
	scenario_words=(exec $ARGS -- "$guest" "${words[@]:1}")
}

# prepare_selftests: SCENARIO=selftests-mm. Builds the kernel's mm
# selftests (cached) and packs them into the initramfs at /selftests/mm.
prepare_selftests() {
	local dir f entries=()
	dir=$("$MMRACE_ROOT/scripts/build-selftests.sh" $("$HOST_BIN" selftests-mm-binaries)) || exit 2
	for f in "$dir"/*; do entries+=("/selftests/mm/$(basename "$f")=$f"); done
	INITRD=$("$MMRACE_ROOT/scripts/suite-initramfs.sh" "$KDIR" "$INITRD" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$KDIR")-selftests-mm.cpio" "${entries[@]}")
}

# The kernel series a run records in its spec: KERNEL_SERIES, `src` for a
# KERNEL_SRC tree, nothing for a KDIR of the user's.
recorded_series() {
	if [ -n "${KDIR_GIVEN:-}" ]; then
		echo ""
	elif [ -n "${KERNEL_SRC:-}" ]; then
		echo src
	else
		echo "$KERNEL_SERIES"
	fi
}

prepare_all() {
	MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
	prepare_kernel
	prepare_module
	prepare_binaries
	prepare_initrd "$@"
}
