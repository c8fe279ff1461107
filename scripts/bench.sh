#!/usr/bin/env bash
# `make bench`: race rates of seed 000's own shell reproducer against
# mmrace's driver, on the same kernel, node layout and duration.
#
#   1. For each seed in BENCH_SEEDS, one boot of the clean test kernel runs
#      the driver's `bench` scenario: phase mem (memcpy bandwidth, idle
#      migrate_pages throughput), then (a) the shell baseline
#      (bench/seed-baseline.sh under busybox, the seed's thp_alloc and
#      numactl's migratepages), (b) thp-race, (overhead) thp-race in short
#      segments with mmrace.ko loaded and unloaded alternately (probe
#      overhead), (c) thp-race --amplify, (loops) four pairs each as a
#      minimal standalone two-thread loop and as `pairs --pair`, each phase
#      for BENCH_DURATION seconds, back to back.
#   2. One boot of the race-only variant kernel (pmd-trust-unlocked-check)
#      for each of (a), (b), (c), each capped at BENCH_VARIANT_CAP seconds:
#      how long until it crashes.
#   3. mmrace-host bench-summary: medians and min-max over the seeds, the
#      ratios (b)/(a) and (c)/(a), build/results/bench-ID/bench.json and
#      pmd_race.svg (cumulative pmd_race over time for a, b, c), from the
#      runs' typed reports.
#
# Settings (environment): BENCH_DURATION (45), BENCH_SEEDS ("1 2 3"),
# BENCH_VARIANT_CAP (120), BENCH_VARIANT (pmd-trust-unlocked-check; empty:
# skip step 2), BENCH_AMPLIFY (the driver's --amplify value for (c),
# default delay_us=1000,every_nth=1), BENCH_THP_ARGS (extra thp-race options
# for (b) and (c), e.g. "--racer-ops dontneed"),
# BENCH_ID (default: UTC time), and ACCEL CPUS MEM_MIB KERNEL_SERIES
# KERNEL_PROFILE KDIR KERNEL_SRC as for qemu-run.
# About 4 x BENCH_DURATION + 15 s per seed, plus the variant boots: 13 min
# with the defaults under TCG on 2 cores.
#
# This script turns the settings into mmrace-host bench-run's arguments;
# mmrace-host checks them all before anything is built (each boot's
# options and scenario words), then builds the kernels (fleet/build.rs,
# calling the build scripts), boots and summarises (fleet/bench_run.rs).
#
# Exit: 0 when every run went as expected (clean kernel runs clean), 1 when
# a clean-kernel run was not clean, 2 harness error, 125 not built.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

args=(--mmrace-root "$MMRACE_ROOT")
opt --duration "${BENCH_DURATION:-}"
if [ -n "${BENCH_SEEDS+set}" ]; then
	read -ra seeds <<<"$BENCH_SEEDS"
	[ ${#seeds[@]} -gt 0 ] || die "BENCH_SEEDS is empty"
	for s in "${seeds[@]}"; do args+=(--seed "$s"); done
fi
opt --variant-cap "${BENCH_VARIANT_CAP:-}"
# BENCH_VARIANT unset: the default variant; set empty: no variant boots.
if [ -n "${BENCH_VARIANT+set}" ] && [ -z "$BENCH_VARIANT" ]; then
	args+=(--no-variant)
fi
opt --variant "${BENCH_VARIANT:-}"
opt --amplify "${BENCH_AMPLIFY:-}"
[ -z "${BENCH_THP_ARGS:-}" ] || args+=("--thp-args=$BENCH_THP_ARGS")
opt --id "${BENCH_ID:-}"
opt --accel "${ACCEL:-}"
opt --cpus "${CPUS:-}"
opt --mem-mib "${MEM_MIB:-}"
opt --kernel-profile "${KERNEL_PROFILE:-}"
opt --kernel-series "$KERNEL_SERIES"
opt --kdir "${KDIR:-}"
opt --kernel-src "${KERNEL_SRC:-}"
prepare_host
exec "$HOST_BIN" bench-run "${args[@]}"
