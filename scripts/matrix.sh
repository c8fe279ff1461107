#!/usr/bin/env bash
# `make matrix`: the detection matrix. Every kernel variant (and the clean
# kernel, for the false-positive rate) against every configuration:
#
#   shell-baseline      the seed's 2016 shell procedure (driver scenario
#                       shell-baseline, with busybox and the seed's writer
#                       in the initramfs, as make bench)
#   thp-race            thp-race with its defaults
#   thp-race-amplified  thp-race --amplify MATRIX_AMPLIFY
#   oom-stall           oom-stall, for variants that name it (below)
#   pairs               pairs with its defaults (every pair of mm operations
#                       on fresh objects, data verified every round; the
#                       XFS disk attached for its O_DIRECT op)
#   smoke               optional (MATRIX_CONFIGS): the race-only check, a
#                       variant must stay clean under it
#   best                each variant's own best configuration, its patch
#                       header's "Best:" (or "Best-tried:") line, as
#                       best-VARIANT; the clean row runs every one of them.
#                       MATRIX_CONFIGS=best alone: nothing else
#   NAME=WORDS          your own: NAME (letters, digits, -) runs the
#                       scenario words WORDS, commas for spaces, e.g.
#                       thp-race-narrow=thp-race,--no-churn,--no-fork,--phase-ms,0
#
# KERNEL_SERIES may list several series ("7.2 7.3"): then every row is run on
# each series, a row per (variant, series), cells under
# build/results/matrix-<MATRIX_ID>/<series>/<variant>/<config>/; a variant
# whose patch does not apply to a series (or a series mmrace.ko cannot be
# built against) shows "not built" in that series' row.
#
# Each cell is a batch (mmrace-host batch) of MATRIX_SEEDS seeded runs
# (seeds SEED, SEED+1...), each capped at MATRIX_CAP seconds (a catch ends
# a run early), JOBS guests at once. `mmrace-host matrix` then prints the
# table (caught/runs, median and maximum time to catch, the 95 % interval of
# the catch probability) and the goal against the matrix's own numbers, and
# writes matrix.json, matrix.txt and matrix.svg (heat map) into
# build/results/matrix-<MATRIX_ID>/.
#
# A variant patch's header may say which configurations apply, in a line
# "Scenarios: thp-race oom-stall ..." above the diff; without one it gets
# MATRIX_CONFIGS, plus oom-stall when its "Class:" line names the OOM path;
# with one, it also gets the NAME=WORDS configurations of MATRIX_CONFIGS
# whose WORDS run a scenario the line names. An entry VARIANT:SPEC of
# MATRIX_CONFIGS is for that variant only, instead of its header's and
# the plain entries (hugetlb-migrate-late-flush:forced=pairs,--pair,...).
# Its "Expect:" line (required) is a pattern of the finding titles the
# variant causes: a cell counts a run as a catch only when its finding's
# title matches (batch --expect); other findings are listed as the cell's
# other findings, never as catches. The clean row has no expectation: any
# finding there is a false positive.
#
# Settings: MATRIX_VARIANTS (default: clean and every kernel/variants/*.patch),
# MATRIX_CONFIGS ("shell-baseline thp-race thp-race-amplified"),
# MATRIX_SEEDS (5), MATRIX_CAP (120), MATRIX_AMPLIFY
# (delay_us=1000,every_nth=1), AFTER_FINDING (seconds a guest gets after a
# finding that leaves it running: 20), SEED (1), MATRIX_ID (UTC time), JOBS, ACCEL,
# CPUS, MEM_MIB, DISK_MIB (oom-stall's and pairs' image, 4096),
# KERNEL_SERIES (7.3, or a list), KERNEL_PROFILE, KDIR and KERNEL_SRC (one
# series only).
#
# This script turns the settings into mmrace-host matrix-run's arguments;
# mmrace-host checks them all before anything is built, then builds each
# row's kernel (fleet/build.rs, calling the build scripts), runs the cells
# and writes the table.
#
# Exit: 0 the matrix is complete, 2 harness error (125: a single series'
# own kernel did not build).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

args=(--mmrace-root "$MMRACE_ROOT")
opt --id "${MATRIX_ID:-}"
opts --variant "${MATRIX_VARIANTS:-}"
opts --config "${MATRIX_CONFIGS:-}"
opt --seeds "${MATRIX_SEEDS:-}"
opt --cap "${MATRIX_CAP:-}"
opt --amplify "${MATRIX_AMPLIFY:-}"
opt --after-finding "${AFTER_FINDING:-}"
opt --seed "${SEED:-}"
opt --jobs "${JOBS:-}"
opt --accel "${ACCEL:-}"
opt --cpus "${CPUS:-}"
opt --mem-mib "${MEM_MIB:-}"
opt --disk-mib "${DISK_MIB:-}"
opts --series "$KERNEL_SERIES"
opt --kernel-profile "${KERNEL_PROFILE:-}"
opt --kdir "${KDIR:-}"
opt --kernel-src "${KERNEL_SRC:-}"
prepare_host
exec "$HOST_BIN" matrix-run "${args[@]}"
