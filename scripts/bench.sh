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
# BENCH_ID (default: UTC time), and ACCEL CPUS MEM_MIB as for qemu-run.
# About 4 x BENCH_DURATION + 15 s per seed, plus the variant boots: 13 min
# with the defaults under TCG on 2 cores.
#
# Exit: 0 when every run went as expected (clean kernel runs clean), 1 when
# a clean-kernel run was not clean, 2 harness error, 125 not built.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"

BENCH_DURATION=${BENCH_DURATION:-45}
BENCH_SEEDS=${BENCH_SEEDS:-1 2 3}
BENCH_VARIANT_CAP=${BENCH_VARIANT_CAP:-120}
BENCH_VARIANT=${BENCH_VARIANT-pmd-trust-unlocked-check}
BENCH_AMPLIFY=${BENCH_AMPLIFY:-delay_us=1000,every_nth=1}
BENCH_THP_ARGS=${BENCH_THP_ARGS:-}
BENCH_ID=${BENCH_ID:-$(date -u +%Y%m%d-%H%M%S)}
ACCEL=${ACCEL:-auto}
CPUS=${CPUS:-2}
MEM_MIB=${MEM_MIB:-2048}

for v in BENCH_DURATION BENCH_VARIANT_CAP; do
	case ${!v} in '' | *[!0-9]* | 0) die "$v must be whole seconds > 0, got '${!v}'" ;; esac
done
for s in $BENCH_SEEDS; do
	case $s in *[!0-9]*) die "BENCH_SEEDS must be non-negative integers, got '$s'" ;; esac
done
[ -n "${BENCH_SEEDS// /}" ] || die "BENCH_SEEDS is empty"
case $BENCH_AMPLIFY in *[!A-Za-z0-9_=,\;+.]*) die "BENCH_AMPLIFY: only items like key=value,... or at=SYMBOL,... separated by ';' please, got '$BENCH_AMPLIFY'" ;; esac
case $BENCH_THP_ARGS in *[\"]*) die "BENCH_THP_ARGS cannot hold quotes or backslashes" ;; esac

# Phases mem (~2 x 3 s), a, b, overhead, c, loops; the rest is slack for setup,
# the overhead phase's module unloads and loads, and a loaded host: there
# mem's two migrations of 256 MiB alone took 47 s, and 80 s in all left no
# time for overhead and c. A cap: the boot ends when the phases do.
total=$((5 * BENCH_DURATION + 240))

# The settings, checked before anything is built: the variant's name, and
# the boots' options and scenario words by mmrace-host (check_settings;
# the bench scenario's --thp-args as thp-race's own).
[ -z "$BENCH_VARIANT" ] || variant_patch "$BENCH_VARIANT" >/dev/null
check_opts=(--seed 1 --accel "$ACCEL" --cpus "$CPUS" --mem-mib "$MEM_MIB"
	${KERNEL_PROFILE:+--kernel-profile "$KERNEL_PROFILE"})
check_settings run "${check_opts[@]}" --duration "$total" bench --phase-secs "$BENCH_DURATION" \
	--amplify "$BENCH_AMPLIFY" --thp-args "$BENCH_THP_ARGS" || exit 2
# shellcheck disable=SC2086 # BENCH_THP_ARGS is words on purpose
check_settings run "${check_opts[@]}" --duration "$BENCH_VARIANT_CAP" \
	thp-race $BENCH_THP_ARGS --amplify "$BENCH_AMPLIFY" || exit 2

OUT=$MMRACE_ROOT/build/results/bench-$BENCH_ID
BENCH_BUILD=$MMRACE_ROOT/build/bench
mkdir -p "$OUT" "$BENCH_BUILD"
t0=$SECONDS

prepare_all

# guest RUN_ID SEED DURATION KERNEL INITRD SCENARIO [OPTION...]: one boot,
# results in $OUT/RUN_ID; prints its verdict line, returns the runner's code.
guest() {
	local id=$1 seed=$2 duration=$3 kernel=$4 initrd=$5 rc=0
	shift 5
	"$HOST_BIN" run --quiet --kernel "$kernel" --initrd "$initrd" \
		--seed "$seed" --duration "$duration" \
		--accel "$ACCEL" --cpus "$CPUS" --mem-mib "$MEM_MIB" \
		${KERNEL_PROFILE:+--kernel-profile "$KERNEL_PROFILE"} \
		--results-dir "$OUT" --run-id "$id" "$@" >"$OUT/$id.out" 2>&1 || rc=$?
	log "$id: exit $rc ($(($SECONDS - t0)) s so far), $(grep -m1 -i 'verdict' "$OUT/$id.out" || tail -n 1 "$OUT/$id.out")"
	return $rc
}

BENCH_INITRD=$(bench_initrd "$KDIR" "$INITRD")
log "bench $BENCH_ID: seeds $BENCH_SEEDS, ${BENCH_DURATION}s per phase, one boot per seed ($total s each), results in $OUT"
failed=0
for seed in $BENCH_SEEDS; do
	guest "clean-s$seed" "$seed" "$total" "$BZIMAGE" "$BENCH_INITRD" \
		bench --phase-secs "$BENCH_DURATION" --amplify "$BENCH_AMPLIFY" --thp-args "$BENCH_THP_ARGS" || failed=1
done

if [ -n "$BENCH_VARIANT" ]; then
	if prepare_variant "$BENCH_VARIANT" && [ -e "$VARIANT_BZIMAGE" ]; then
		VARIANT_BENCH_INITRD=$(bench_initrd "$(dirname "$(dirname "$(dirname "$(dirname "$VARIANT_BZIMAGE")")")")" "$VARIANT_INITRD")
		seed=$(set -- $BENCH_SEEDS; echo "$1")
		log "variant $BENCH_VARIANT: one boot each for a, b, c, capped at ${BENCH_VARIANT_CAP}s"
		# Exit 1 is the expected outcome (the crash); the summary reads the reports.
		# shellcheck disable=SC2086 # BENCH_THP_ARGS is words on purpose
		guest variant-a "$seed" "$BENCH_VARIANT_CAP" "$VARIANT_BZIMAGE" "$VARIANT_BENCH_INITRD" \
			--kernel-variant "$BENCH_VARIANT" shell-baseline || true
		guest variant-b "$seed" "$BENCH_VARIANT_CAP" "$VARIANT_BZIMAGE" "$VARIANT_BENCH_INITRD" \
			--kernel-variant "$BENCH_VARIANT" thp-race $BENCH_THP_ARGS || true
		guest variant-c "$seed" "$BENCH_VARIANT_CAP" "$VARIANT_BZIMAGE" "$VARIANT_BENCH_INITRD" \
			--kernel-variant "$BENCH_VARIANT" thp-race $BENCH_THP_ARGS --amplify "$BENCH_AMPLIFY" || true
	else
		log "variant $BENCH_VARIANT did not build: no variant timings"
	fi
fi

log "summary ($(($SECONDS - t0)) s in all)"
# bench-summary: 0 fine, 1 a phase or run failed (listed under the table).
rc=0
"$HOST_BIN" bench-summary "$OUT" --variant "${BENCH_VARIANT:-none}" --cap "$BENCH_VARIANT_CAP" || rc=$?
[ $rc -le 1 ] || die "mmrace-host bench-summary failed on $OUT"
[ $rc = 0 ] || failed=1
exit $failed
