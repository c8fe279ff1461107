#!/usr/bin/env bash
# `make bisect KERNEL_SRC=<git tree> GOOD=<rev> BAD=<rev>`: a bisection that
# knows a race is a probability (syz-bisect style).
#
#   1. BAD is built and run until it is caught ESTIMATE_CATCHES times (3),
#      at most ESTIMATE_RUNS runs (10). The bug to bisect is the finding
#      title EXPECT (a regex) or, without one, exactly the title BAD's runs
#      found most often; its catch probability on BAD is p. If BAD never
#      shows it, the bisection stops here and says so.
#   2. git bisect, a step at a time: each commit is built (incrementally,
#      from the nearest built commit: scripts/build-kernel.sh) and run up
#      to n times, n the smallest with (1 - p)^n < BISECT_MISS (0.01); the
#      first run whose finding has that title makes it bad (a commit whose
#      runs find something else is not bad for this bug: its other
#      findings are listed). A commit that does not build is skipped; a
#      harness error stops the bisection.
#   3. The report (mmrace-host bisect-report): each step's verdict and
#      confidence, the first bad commit and the overall confidence, in
#      build/results/bisect-<id>/ (bisect.json, estimate/, steps/).
#
# Same settings as qemu-run: SCENARIO (default thp-race here), DURATION
# (30), SEED, ARGS, ACCEL, CPUS, MEM_MIB, NODE0_PCT, KERNEL_VARIANT,
# KERNEL_PROFILE, CRASH_TEST, QEMU_DISK, and JOBS (guests at once); EXPECT,
# ESTIMATE_RUNS, ESTIMATE_CATCHES, BISECT_MISS. KERNEL_SRC must be a clean
# git tree; its HEAD is restored at the end.
#
# This script turns the settings into mmrace-host bisect-run's arguments;
# mmrace-host checks them all before anything is built, then builds each
# commit (fleet/build.rs, calling the build scripts), runs the steps and
# writes the report.
#
# Exit: 0 a first bad commit was named, 1 none (all good, or only skipped
# commits left), 2 harness or usage error (BAD never caught included).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

: "${KERNEL_SRC:?KERNEL_SRC=<kernel git tree> is required}" "${GOOD:?GOOD=<rev> is required}" "${BAD:?BAD=<rev> is required}"
need git git
args=(--mmrace-root "$MMRACE_ROOT" --kernel-src "$KERNEL_SRC" --good "$GOOD" --bad "$BAD")
opt --duration "${DURATION:-}"
opt --seed "${SEED:-}"
opt --estimate-runs "${ESTIMATE_RUNS:-}"
opt --estimate-catches "${ESTIMATE_CATCHES:-}"
opt --miss "${BISECT_MISS:-}"
opt --expect "${EXPECT:-}"
opt --jobs "${GUEST_JOBS:-${JOBS:-}}"
opt --accel "${ACCEL:-}"
opt --cpus "${CPUS:-}"
opt --mem-mib "${MEM_MIB:-}"
opt --node0-pct "${NODE0_PCT:-}"
opt --kernel-series "$KERNEL_SERIES"
opt --kernel-variant "${KERNEL_VARIANT:-}"
opt --kernel-profile "${KERNEL_PROFILE:-}"
opt --crash-test "${CRASH_TEST:-}"
opt --disk "${QEMU_DISK:-}"
# shellcheck disable=SC2206 # ARGS is words on purpose
words=("${SCENARIO:-thp-race}" ${ARGS:-})
prepare_host
exec "$HOST_BIN" bisect-run "${args[@]}" -- "${words[@]}"
