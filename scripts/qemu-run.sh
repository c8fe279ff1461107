#!/usr/bin/env bash
# `make qemu-run`: builds what is missing, boots the two-node NUMA guest,
# runs one scenario, prints the counters and the verdict.
#
# Settings (environment, or make variables): SCENARIO (smoke), DURATION
# seconds (30; for exec and selftests-mm a cap, default 600 and 1800), SEED
# (random, always printed), ARGS (extra scenario options, e.g.
# "--no-splitter"), EXEC ("PROGRAM ARG...": SCENARIO=exec's program, a file
# on this machine, packed into the initramfs), ACCEL (auto|kvm|tcg), CPUS
# (2; selftests-mm: 4), MEM_MIB (2048),
# NODE0_PCT (50: node 0's share of the memory),
# KERNEL_SERIES (7.3: the Debian linux-source the test kernel is built
# from), KDIR (your own Rust-enabled kernel build), KERNEL_SRC (your own
# kernel source tree), KERNEL_VARIANT (a patch under kernel/variants/),
# KERNEL_PROFILE, RUN_ID, RESULTS_DIR (build/results),
# QEMU_DISK (a raw disk image to attach), CRASH_TEST (sysrq|hang: the
# harness's own self-test), RUNS (N seeded runs: seeds SEED, SEED+1...;
# one merged result) and JOBS (guests at once; default: what the CPUs and
# memory hold). KERNEL_SERIES may be a list ("7.2 7.3"): RUNS runs (1 if
# unset) on each series, side by side (run_series below).
# A scenario that needs a disk (oom-stall, selftests-mm; mmrace-host
# needs-disk) gets a fresh XFS image (build/disk/SCENARIO.img, DISK_MIB
# MiB, default 4096) unless QEMU_DISK names one. SCENARIO=selftests-mm builds the kernel's selftests first
# (scripts/build-selftests.sh, cached).
#
# Exit: 0 clean, 1 kernel problem or hang, 2 harness/usage error, 3 a
# program of SCENARIO=exec/selftests-mm failed, 125 the
# kernel under test (or the module against it) did not build. With a list
# of series: 1 if any run of any series found a kernel problem, then 3,
# then 2, then 125 if a series did not build (the others still ran).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors
. "$(dirname "$0")/prepare.sh"

SCENARIO=${SCENARIO:-smoke}
# DURATION and CPUS: unset means the scenario's default (the host's).
DURATION=${DURATION:-}
SEED=${SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) ))}
ARGS=${ARGS:-}
ACCEL=${ACCEL:-auto}
MEM_MIB=${MEM_MIB:-2048}

case $DURATION in *[!0-9]*) die "DURATION must be whole seconds, got '$DURATION'" ;; esac
case $SEED in '' | *[!0-9]*) die "SEED must be a non-negative integer, got '$SEED'" ;; esac
RUNS=${RUNS:-}
GUEST_JOBS=${JOBS:-}
unset JOBS # build-kernel.sh reads JOBS as make -j
case $RUNS in *[!0-9]* | 0) die "RUNS must be a whole number >= 1, got '$RUNS'" ;; esac
case $GUEST_JOBS in *[!0-9]* | 0) die "JOBS must be a whole number >= 1, got '$GUEST_JOBS'" ;; esac

# KERNEL_SERIES may list several series ("7.2 7.3"): the same runs on each,
# side by side (run_series below).
read -ra series_list <<<"$KERNEL_SERIES"
[ ${#series_list[@]} -gt 0 ] || die "KERNEL_SERIES is empty"

# prepare_scenario KDIR INITRD: the initramfs with what exec or
# selftests-mm pack into it, in INITRD (and scenario_words, for exec).
prepare_scenario() {
	KDIR=$1 INITRD=$2
	case $SCENARIO in
	exec) prepare_exec ;;
	selftests-mm) prepare_selftests ;;
	esac
}

# attach_disk_if_needed: a fresh XFS image in QEMU_DISK
# (build/disk/SCENARIO-PID.img, DISK_MIB MiB, sparse) when the scenario
# needs one (mmrace-host needs-disk: Scenario::needs_disk) and QEMU_DISK
# names none. The PID keeps two runs at once off each other's image (one
# mkfs over the other's corrupts both); the image goes when this run ends.
attach_disk_if_needed() {
	local rc=0
	[ -z "${QEMU_DISK:-}" ] || return 0
	"$HOST_BIN" needs-disk "${scenario_words[@]}" || rc=$?
	case $rc in
	0) MADE_DISK=$MMRACE_ROOT/build/disk/$SCENARIO-$$.img
		trap 'rm -f "$MADE_DISK"' EXIT
		QEMU_DISK=$("$MMRACE_ROOT/scripts/make-xfs-disk.sh" "$MADE_DISK" "${DISK_MIB:-4096}") || exit 2 ;;
	1) ;;
	*) die "SCENARIO=$SCENARIO ARGS='$ARGS': not a scenario the host knows" ;;
	esac
}

# The runner's options shared by every kernel: all but --kernel, --initrd
# and --kernel-series.
common_args=(--seed "$SEED" --accel "$ACCEL" --mem-mib "$MEM_MIB" --node0-pct "${NODE0_PCT:-50}")
[ -z "$DURATION" ] || common_args+=(--duration "$DURATION")
[ -z "${CPUS:-}" ] || common_args+=(--cpus "$CPUS")
[ -z "${KERNEL_VARIANT:-}" ] || common_args+=(--kernel-variant "$KERNEL_VARIANT")
[ -z "${KERNEL_PROFILE:-}" ] || common_args+=(--kernel-profile "$KERNEL_PROFILE")
# Harness self-test: crash (sysrq) or hang the guest on purpose.
[ -z "${CRASH_TEST:-}" ] || common_args+=(--crash-test "$CRASH_TEST")
RESULTS_DIR=${RESULTS_DIR:-$MMRACE_ROOT/build/results}

# Every setting is checked before anything is built: the series and
# variant names here, the rest by mmrace-host (check_settings) from the
# options and scenario words the run or batch will get. A bad one exits 2
# within seconds.
check_series_list "${series_list[@]}"
# A KDIR of the user's is built already: its variant and profile are names.
[ -n "${KDIR:-}" ] || [ -z "${KERNEL_VARIANT:-}" ] || variant_patch "$KERNEL_VARIANT" >/dev/null
[ -n "${KDIR:-}" ] || [ -z "${KERNEL_PROFILE:-}" ] || profile_fragment "$KERNEL_PROFILE" >/dev/null
set_scenario_words
check_command=(run)
# RUNS, or several series (RUNS 1 each): batches.
if [ -n "$RUNS" ] || [ ${#series_list[@]} -gt 1 ]; then
	check_command=(batch --runs "${RUNS:-1}" ${GUEST_JOBS:+--jobs "$GUEST_JOBS"})
fi
check_settings "${check_command[@]}" "${common_args[@]}" ${RUN_ID:+--run-id "$RUN_ID"} \
	${QEMU_DISK:+--disk "$QEMU_DISK"} "${scenario_words[@]}" || exit 2

# run_series: RUNS runs (default 1) on each series of KERNEL_SERIES. Every
# series' kernel, mmrace.ko and initramfs are built first, once; a series
# that cannot be built (exit 125: a missing API, a variant patch that does
# not apply) is marked not built and the others still run. Then one batch
# per series into RESULTS_DIR/RUN_ID/SERIES/, and `mmrace-host series`
# puts them side by side (its exit code: 1 any run of any series caught a
# kernel problem, 3 a test program failed, 2 a harness error, 125 a series
# did not build, else 0).
run_series() {
	local s rc reason tmp id out
	local -A kernel=() initrd=() not_built=()
	KERNEL_SERIES=${series_list[0]} MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
	# Every series' source first: one the archive lacks is a usage error,
	# before any build.
	for s in "${series_list[@]:1}"; do
		KERNEL_SERIES=$s "$MMRACE_ROOT/scripts/bootstrap.sh" kernel-src || exit 2
	done
	prepare_binaries
	tmp=$(mktemp)
	for s in "${series_list[@]}"; do
		log "series $s: kernel, mmrace.ko and initramfs"
		: >"$tmp"
		rc=0
		prepare_series "$s" "${KERNEL_VARIANT:-}" 2> >(tee "$tmp" >&2) || rc=$?
		wait $! 2>/dev/null || true # the tee, so $tmp is complete
		case $rc in
		0) ;;
		125)
			reason=$(sed -n 's/^\[mmrace\] error: //p' "$tmp" | tail -n1)
			not_built[$s]=${reason:-its kernel or mmrace.ko did not build}
			log "series $s: not built; the other series still run"
			continue
			;;
		*) rm -f "$tmp"; die "series $s: cannot prepare it (exit $rc)" ;;
		esac
		KERNEL_SERIES=$s prepare_scenario "$SERIES_KDIR" "$SERIES_INITRD"
		kernel[$s]=$SERIES_BZIMAGE initrd[$s]=$INITRD
	done
	rm -f "$tmp"
	attach_disk_if_needed
	[ -z "${QEMU_DISK:-}" ] || common_args+=(--disk "$QEMU_DISK")
	id=${RUN_ID:-$(date -u +%Y%m%d-%H%M%S)-$SCENARIO-s$SEED-series}
	out=$RESULTS_DIR/$id
	[ -z "$(ls -A "$out" 2>/dev/null)" ] || die "$out already holds results: pick another RUN_ID"
	mkdir -p "$out"
	trap 'interrupted=1' INT
	for s in "${series_list[@]}"; do
		if [ -n "${not_built[$s]:-}" ]; then
			mkdir -p "$out/$s" && printf '%s\n' "${not_built[$s]}" >"$out/$s/not-built"
			continue
		fi
		[ -z "${interrupted:-}" ] || break
		log "series $s: ${RUNS:-1} runs of $SCENARIO, seeds from $SEED"
		# The batch's exit code is in its merged.json and its summary in
		# summary.txt, which the comparison reads; stderr shows progress.
		"$HOST_BIN" batch --runs "${RUNS:-1}" ${GUEST_JOBS:+--jobs "$GUEST_JOBS"} \
			--kernel "${kernel[$s]}" --initrd "${initrd[$s]}" --kernel-series "$s" \
			"${common_args[@]}" --results-dir "$out" --run-id "$s" "${scenario_words[@]}" >/dev/null || true
	done
	rm -f "$out/latest" "${MADE_DISK:-}"
	ln -sfn "$id" "$RESULTS_DIR/latest"
	exec "$HOST_BIN" series "$out" "${series_list[@]}"
}
[ ${#series_list[@]} -eq 1 ] || run_series
KERNEL_SERIES=${series_list[0]}

prepare_all
prepare_scenario "$KDIR" "$INITRD"
attach_disk_if_needed
log "run: scenario=$SCENARIO duration=${DURATION:-default} seed=$SEED accel=$ACCEL kernel=$(basename "$KDIR")"
# The host builds the run's spec from these options and the scenario words
# (SCENARIO, then ARGS split into words) and hands it to the guest whole.
run_args=(run --kernel "$BZIMAGE" --initrd "$INITRD" --kernel-series "$(recorded_series)"
	"${common_args[@]}" --results-dir "$RESULTS_DIR")
[ -z "${RUN_ID:-}" ] || run_args+=(--run-id "$RUN_ID")
[ -z "${QEMU_DISK:-}" ] || run_args+=(--disk "$QEMU_DISK")
if [ -n "$RUNS" ]; then
	# RUNS seeded runs of the same spec, merged (mmrace-host batch takes
	# run's options).
	log "batch: $RUNS runs, seeds from $SEED${GUEST_JOBS:+, $GUEST_JOBS at once}"
	run_args=(batch --runs "$RUNS" ${GUEST_JOBS:+--jobs "$GUEST_JOBS"} "${run_args[@]:1}")
fi
# Not exec'd when this run made the disk: the EXIT trap removes it after
# (the host's exit status, the verdict, is this script's).
[ -n "${MADE_DISK:-}" ] || exec "$HOST_BIN" "${run_args[@]}" "${scenario_words[@]}"
"$HOST_BIN" "${run_args[@]}" "${scenario_words[@]}" || exit $?
