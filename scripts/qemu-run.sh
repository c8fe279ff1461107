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
# KDIR (your own Rust-enabled kernel build), KERNEL_VARIANT (a patch under
# kernel/variants/), KERNEL_PROFILE, RUN_ID, RESULTS_DIR (build/results),
# QEMU_DISK (a raw disk image to attach), CRASH_TEST (sysrq|hang: the
# harness's own self-test).
# SCENARIO=oom-stall and selftests-mm get a fresh XFS image
# (build/disk/SCENARIO.img, DISK_MIB MiB, default 4096) unless QEMU_DISK
# names one. SCENARIO=selftests-mm builds the kernel's selftests first
# (scripts/build-selftests.sh, cached).
#
# Exit: 0 clean, 1 kernel problem or hang, 2 harness/usage error, 3 a
# program of SCENARIO=exec/selftests-mm failed, 125 the
# kernel under test (or the module against it) did not build.
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

prepare_all
# shellcheck disable=SC2206 # ARGS is words on purpose
scenario_words=("$SCENARIO" $ARGS)
case $SCENARIO in
exec) prepare_exec ;;
selftests-mm) prepare_selftests ;;
esac
case $SCENARIO in oom-stall | selftests-mm)
	if [ -z "${QEMU_DISK:-}" ]; then
		QEMU_DISK=$("$MMRACE_ROOT/scripts/make-xfs-disk.sh" \
			"$MMRACE_ROOT/build/disk/$SCENARIO.img" "${DISK_MIB:-4096}") || exit 2
	fi
	;;
esac
log "run: scenario=$SCENARIO duration=${DURATION:-default} seed=$SEED accel=$ACCEL kernel=$(basename "$KDIR")"
# The host builds the run's spec from these options and the scenario words
# (SCENARIO, then ARGS split into words) and hands it to the guest whole.
run_args=(run --kernel "$BZIMAGE" --initrd "$INITRD"
	--seed "$SEED" --kernel-series "$(recorded_series)"
	--accel "$ACCEL" --mem-mib "$MEM_MIB" --node0-pct "${NODE0_PCT:-50}"
	--results-dir "${RESULTS_DIR:-$MMRACE_ROOT/build/results}")
[ -z "$DURATION" ] || run_args+=(--duration "$DURATION")
[ -z "${CPUS:-}" ] || run_args+=(--cpus "$CPUS")
[ -z "${KERNEL_VARIANT:-}" ] || run_args+=(--kernel-variant "$KERNEL_VARIANT")
[ -z "${KERNEL_PROFILE:-}" ] || run_args+=(--kernel-profile "$KERNEL_PROFILE")
[ -z "${RUN_ID:-}" ] || run_args+=(--run-id "$RUN_ID")
# Harness self-test: crash (sysrq) or hang the guest on purpose.
[ -z "${CRASH_TEST:-}" ] || run_args+=(--crash-test "$CRASH_TEST")
[ -z "${QEMU_DISK:-}" ] || run_args+=(--disk "$QEMU_DISK")
exec "$HOST_BIN" "${run_args[@]}" "${scenario_words[@]}"
