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
		[ "${KERNEL_PROFILE:-default}" = default ] ||
			MMRACE_DIE_CODE=2 die "KERNEL_PROFILE=$KERNEL_PROFILE builds the test kernel; KDIR=$KDIR is a kernel of your own (configure its sanitizers there)"
		KDIR_GIVEN=1
		KDIR=$(cd "$KDIR" && pwd)
	else
		KDIR=$("$MMRACE_ROOT/scripts/build-kernel.sh") || exit $?
	fi
	BZIMAGE=$KDIR/arch/x86/boot/bzImage
	[ -e "$BZIMAGE" ] || die "no $BZIMAGE in KDIR=$KDIR: build bzImage there first"
}

prepare_module() {
	MODULE_KO=$("$MMRACE_ROOT/scripts/build-module.sh" "$KDIR") || exit $?
}

prepare_binaries() {
	need cargo cargo
	log "userspace: building mmrace-driver (static) and mmrace-host"
	(cd "$MMRACE_ROOT" &&
		RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
			-p mmrace-driver --target "$DRIVER_TARGET") ||
		die "userspace: cargo build failed"
	DRIVER_BIN=$MMRACE_ROOT/target/$DRIVER_TARGET/release/mmrace-driver
	prepare_host
}

# prepare_host: mmrace-host alone, in HOST_BIN (seconds when it is up to
# date): what check_settings needs before anything else is built. On a
# machine without cargo yet, the toolchain (scripts/bootstrap.sh) first.
prepare_host() {
	command -v cargo >/dev/null 2>&1 ||
		KERNEL_SERIES=${KERNEL_SERIES%% *} MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
	need cargo cargo
	(cd "$MMRACE_ROOT" && cargo build -q --release --locked -p mmrace-host) ||
		die "userspace: cargo build of mmrace-host failed"
	HOST_BIN=$MMRACE_ROOT/target/release/mmrace-host
}

# check_settings HOST_COMMAND...: has mmrace-host build the run's spec
# from HOST_COMMAND (`run` or `batch --runs N`, its options, the scenario
# words) with --check-only, exactly as the run will, before anything else
# is built: a bad setting (SCENARIO, ARGS, DURATION, SEED, CPUS, MEM_MIB,
# KERNEL_PROFILE, RUNS, JOBS, RUN_ID...) fails here (status 2) with the
# reason and the valid values, within seconds.
check_settings() {
	prepare_host
	"$HOST_BIN" "$1" --check-only "${@:2}" >/dev/null || return 2
}

# set_scenario_words: the scenario words the host gets, SCENARIO then ARGS,
# in the array scenario_words. SCENARIO=exec: `exec ARGS -- /exec/NAME
# ARG...` for EXEC="PROGRAM ARG..." (PROGRAM, a file on this machine, in
# EXEC_PROG: prepare_exec packs it at /exec/NAME).
set_scenario_words() {
	local words
	# shellcheck disable=SC2206 # ARGS is words on purpose
	scenario_words=("$SCENARIO" $ARGS)
	[ "$SCENARIO" = exec ] || return 0
	[ -n "${EXEC:-}" ] || die "SCENARIO=exec needs EXEC=\"PROGRAM [ARG...]\" (a program on this machine)"
	read -r -a words <<<"$EXEC"
	EXEC_PROG=${words[0]}
	[ -f "$EXEC_PROG" ] || die "EXEC: '$EXEC_PROG' is not a file on this machine"
	# shellcheck disable=SC2206 # ARGS is words on purpose
	scenario_words=(exec $ARGS -- "/exec/$(basename "$EXEC_PROG")" "${words[@]:1}")
}

# prepare_initrd [EXTRA_FILE...]
prepare_initrd() {
	INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" "$KDIR" "$DRIVER_BIN" "$MODULE_KO" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$KDIR").cpio" "$@")
}

# prepare_built VAR=VALUE: the test kernel scripts/build-kernel.sh builds
# with VAR=VALUE set (KERNEL_VARIANT=..., KERNEL_PROFILE=...), mmrace.ko
# against it and its initramfs, in BUILT_BZIMAGE and BUILT_INITRD.
prepare_built() {
	local kdir ko
	kdir=$(env "$1" "$MMRACE_ROOT/scripts/build-kernel.sh") || return
	ko=$("$MMRACE_ROOT/scripts/build-module.sh" "$kdir") || return
	BUILT_BZIMAGE=$kdir/arch/x86/boot/bzImage
	BUILT_INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" "$kdir" "$DRIVER_BIN" "$ko" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$kdir").cpio")
}

# prepare_variant NAME: prepare_built for kernel/variants/NAME.patch, in
# VARIANT_BZIMAGE and VARIANT_INITRD.
prepare_variant() {
	prepare_built "KERNEL_VARIANT=$1" || return
	VARIANT_BZIMAGE=$BUILT_BZIMAGE VARIANT_INITRD=$BUILT_INITRD
}

# prepare_exec: SCENARIO=exec. Packs EXEC's program (a file on this
# machine) into the initramfs at /exec/NAME, with busybox for a script,
# and makes the scenario words `exec ARGS -- /exec/NAME ARG...`
# (set_scenario_words).
prepare_exec() {
	set_scenario_words
	INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" --onto "$INITRD" "$KDIR" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$KDIR")-exec.cpio" \
		"/exec/$(basename "$EXEC_PROG")=$EXEC_PROG")
}

# prepare_selftests: SCENARIO=selftests-mm. Builds the kernel's mm
# selftests (cached) and packs them into the initramfs at /selftests/mm.
prepare_selftests() {
	local dir f entries=()
	dir=$("$MMRACE_ROOT/scripts/build-selftests.sh" $("$HOST_BIN" selftests-mm-binaries)) || exit 2
	for f in "$dir"/*; do entries+=("/selftests/mm/$(basename "$f")=$f"); done
	INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" --onto "$INITRD" "$KDIR" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$KDIR")-selftests-mm.cpio" "${entries[@]}")
}

# prepare_profile NAME: prepare_built for KERNEL_PROFILE=NAME, in
# PROFILE_BZIMAGE and PROFILE_INITRD.
prepare_profile() {
	prepare_built "KERNEL_PROFILE=$1" || return
	PROFILE_BZIMAGE=$BUILT_BZIMAGE PROFILE_INITRD=$BUILT_INITRD
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

# prepare_series SERIES [VARIANT]: Debian's linux-source-SERIES (fetched
# when missing), its test kernel (with kernel/variants/VARIANT.patch if
# given), mmrace.ko against it and its initramfs, in SERIES_KDIR,
# SERIES_BZIMAGE, SERIES_MODULE_KO and SERIES_INITRD; for runs over a list
# of series (make matrix, RUNS). Needs DRIVER_BIN (prepare_binaries).
# Returns 2 for a series the archive lacks, 125 when the kernel or mmrace.ko
# cannot be built (a series without an API the module needs stops before
# the kernel build, naming it), so a list can go on with the next series.
prepare_series() {
	local series=$1 variant=${2:-}
	KERNEL_SERIES=$series "$MMRACE_ROOT/scripts/bootstrap.sh" kernel-src || return 2
	SERIES_KDIR=$(KERNEL_SERIES=$series KERNEL_SRC= KERNEL_VARIANT=$variant \
		"$MMRACE_ROOT/scripts/build-kernel.sh") || return $?
	SERIES_MODULE_KO=$("$MMRACE_ROOT/scripts/build-module.sh" "$SERIES_KDIR") || return $?
	SERIES_BZIMAGE=$SERIES_KDIR/arch/x86/boot/bzImage
	SERIES_INITRD=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" "$SERIES_KDIR" "$DRIVER_BIN" \
		"$SERIES_MODULE_KO" "$MMRACE_ROOT/build/initramfs/$(basename "$SERIES_KDIR").cpio") || return 2
}

prepare_all() {
	case $KERNEL_SERIES in *[[:space:]]*)
		MMRACE_DIE_CODE=2 die "KERNEL_SERIES='$KERNEL_SERIES' is a list: ./mmrace run (make qemu-run) and make matrix take one, this takes one series"
		;;
	esac
	MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
	prepare_kernel
	prepare_module
	prepare_binaries
	prepare_initrd "$@"
}

# host_run_options: the runner's options for the settings (SEED, DURATION,
# ACCEL, CPUS, MEM_MIB, NODE0_PCT, KERNEL_VARIANT, KERNEL_PROFILE,
# CRASH_TEST, QEMU_DISK) on BZIMAGE and INITRD, in the array HOST_OPTS;
# `run` and `batch` take them, then the scenario words (SCENARIO, ARGS).
host_run_options() {
	HOST_OPTS=(--kernel "$BZIMAGE" --initrd "$INITRD"
		--seed "$SEED" --duration "$DURATION" --kernel-series "$(recorded_series)"
		--accel "${ACCEL:-auto}" --cpus "${CPUS:-2}" --mem-mib "${MEM_MIB:-2048}"
		--node0-pct "${NODE0_PCT:-50}")
	[ -z "${KERNEL_VARIANT:-}" ] || HOST_OPTS+=(--kernel-variant "$KERNEL_VARIANT")
	[ -z "${KERNEL_PROFILE:-}" ] || HOST_OPTS+=(--kernel-profile "$KERNEL_PROFILE")
	# Harness self-test: crash (sysrq) or hang the guest on purpose.
	[ -z "${CRASH_TEST:-}" ] || HOST_OPTS+=(--crash-test "$CRASH_TEST")
	[ -z "${QEMU_DISK:-}" ] || HOST_OPTS+=(--disk "$QEMU_DISK")
}

# What the seed's shell procedure (driver scenario shell-baseline) needs in
# the guest: busybox, numactl's migratepages, the seed's thp_alloc writer
# and bench/seed-baseline.sh. Used by make bench and make matrix.
BENCH_BUILD=$MMRACE_ROOT/build/bench

# bench_initrd KDIR BASE_INITRD: prints the path of BASE_INITRD with what
# the shell baseline needs appended.
bench_initrd() {
	local thp_alloc=$BENCH_BUILD/thp_alloc mp
	need gcc gcc
	need migratepages numactl
	mkdir -p "$BENCH_BUILD"
	# The seed's writer, static: the guest has no libc of its own.
	if [ ! -x "$thp_alloc" ] || [ "$MMRACE_ROOT/bench/thp_alloc.c" -nt "$thp_alloc" ]; then
		gcc -static -O2 -o "$thp_alloc" "$MMRACE_ROOT/bench/thp_alloc.c" || die "cannot build thp_alloc (static glibc: libc6-dev)"
	fi
	mp=$(command -v migratepages)
	# The script brings busybox, migratepages its libraries and loader.
	"$MMRACE_ROOT/scripts/mkinitramfs.sh" --onto "$2" "$1" "$BENCH_BUILD/$(basename "$1")-bench.cpio" \
		/thp_alloc="$thp_alloc" /seed-baseline.sh="$MMRACE_ROOT/bench/seed-baseline.sh" \
		/usr/bin/migratepages="$mp"
}
