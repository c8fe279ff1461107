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
# unset) on each series, side by side.
# A scenario that needs a disk (oom-stall, selftests-mm, pairs:
# Scenario::needs_disk) gets a fresh XFS image (build/disk/SCENARIO-PID.img,
# DISK_MIB MiB, default 4096; removed after) unless QEMU_DISK names one.
# SCENARIO=selftests-mm builds the kernel's selftests first
# (scripts/build-selftests.sh, cached).
#
# This script turns the settings into mmrace-host qemu-run's arguments;
# mmrace-host checks them all before anything is built (a bad one exits 2
# within seconds, naming the valid values), then builds what is missing
# (fleet/build.rs, calling the build scripts) and boots the guests
# (fleet/qemu_run.rs).
#
# Exit: 0 clean, 1 kernel problem or hang, 2 harness/usage error, 3 a
# program of SCENARIO=exec/selftests-mm failed, 125 the
# kernel under test (or the module against it) did not build. With a list
# of series: 1 if any run of any series found a kernel problem, then 3,
# then 2, then 125 if a series did not build (the others still ran).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

args=(--mmrace-root "$MMRACE_ROOT")
[ -n "${KERNEL_SERIES// /}" ] || die "KERNEL_SERIES is empty"
opts --series "$KERNEL_SERIES"
opt --kdir "${KDIR:-}"
opt --kernel-src "${KERNEL_SRC:-}"
opt --kernel-variant "${KERNEL_VARIANT:-}"
opt --kernel-profile "${KERNEL_PROFILE:-}"
opt --exec "${EXEC:-}"
opt --runs "${RUNS:-}"
opt --jobs "${JOBS:-}"
opt --disk-mib "${DISK_MIB:-}"
opt --disk "${QEMU_DISK:-}"
opt --seed "${SEED:-}"
opt --duration "${DURATION:-}"
opt --accel "${ACCEL:-}"
opt --cpus "${CPUS:-}"
opt --mem-mib "${MEM_MIB:-}"
opt --node0-pct "${NODE0_PCT:-}"
opt --crash-test "${CRASH_TEST:-}"
opt --results-dir "${RESULTS_DIR:-}"
opt --run-id "${RUN_ID:-}"
# shellcheck disable=SC2206 # ARGS is words on purpose
words=("${SCENARIO:-smoke}" ${ARGS:-})
prepare_host
exec "$HOST_BIN" qemu-run "${args[@]}" -- "${words[@]}"
