#!/usr/bin/env bash
# `make qemu-run`: builds what is missing, boots the two-node NUMA guest,
# runs one scenario, prints the counters and the verdict.
#
# Settings (environment, or make variables): SCENARIO (smoke), DURATION
# seconds (30), SEED (random, always printed), ARGS (extra scenario options,
# e.g. "--no-splitter"), ACCEL (auto|kvm|tcg), CPUS (2), MEM_MIB (2048),
# NODE0_PCT (50: node 0's share of the memory),
# KDIR (your own Rust-enabled kernel build), KERNEL_VARIANT (a patch under
# kernel/variants/), KERNEL_PROFILE, RUN_ID, RESULTS_DIR (build/results),
# QEMU_DISK (a raw disk image to attach), CRASH_TEST (sysrq|hang: the
# harness's own self-test).
# SCENARIO=oom-stall gets a fresh XFS image (build/disk/oom-stall.img,
# DISK_MIB MiB, default 4096) unless QEMU_DISK names one.
#
# Exit: 0 clean, 1 kernel problem or hang, 2 harness/usage error, 125 the
# kernel under test (or the module against it) did not build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap_unexpected_errors
. "$(dirname "$0")/prepare.sh"

SCENARIO=${SCENARIO:-smoke}
DURATION=${DURATION:-30}
SEED=${SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) ))}
ARGS=${ARGS:-}
ACCEL=${ACCEL:-auto}
CPUS=${CPUS:-2}
MEM_MIB=${MEM_MIB:-2048}

case $DURATION in '' | *[!0-9]*) die "DURATION must be whole seconds, got '$DURATION'" ;; esac
case $SEED in '' | *[!0-9]*) die "SEED must be a non-negative integer, got '$SEED'" ;; esac

prepare_all
if [ "$SCENARIO" = oom-stall ] && [ -z "${QEMU_DISK:-}" ]; then
	QEMU_DISK=$("$MMRACE_ROOT/scripts/make-xfs-disk.sh" \
		"$MMRACE_ROOT/build/disk/oom-stall.img" "${DISK_MIB:-4096}") || exit 2
fi
log "run: scenario=$SCENARIO duration=${DURATION}s seed=$SEED accel=$ACCEL kernel=$(basename "$KDIR")"
# The host builds the run's spec from these options and the scenario words
# (SCENARIO, then ARGS split into words) and hands it to the guest whole.
run_args=(run --kernel "$BZIMAGE" --initrd "$INITRD"
	--seed "$SEED" --duration "$DURATION" --kernel-series "$(recorded_series)"
	--accel "$ACCEL" --cpus "$CPUS" --mem-mib "$MEM_MIB" --node0-pct "${NODE0_PCT:-50}"
	--results-dir "${RESULTS_DIR:-$MMRACE_ROOT/build/results}")
[ -z "${KERNEL_VARIANT:-}" ] || run_args+=(--kernel-variant "$KERNEL_VARIANT")
[ -z "${KERNEL_PROFILE:-}" ] || run_args+=(--kernel-profile "$KERNEL_PROFILE")
[ -z "${RUN_ID:-}" ] || run_args+=(--run-id "$RUN_ID")
# Harness self-test: crash (sysrq) or hang the guest on purpose.
[ -z "${CRASH_TEST:-}" ] || run_args+=(--crash-test "$CRASH_TEST")
[ -z "${QEMU_DISK:-}" ] || run_args+=(--disk "$QEMU_DISK")
# shellcheck disable=SC2086 # ARGS is words on purpose
exec "$HOST_BIN" "${run_args[@]}" "$SCENARIO" $ARGS
