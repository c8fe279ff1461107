#!/usr/bin/env bash
# `make hunt` / `./mmrace hunt`: a bug-hunting campaign (mmrace-host hunt).
# For HOURS (or until Ctrl-C), JOBS guests at once, each run drawn from the
# mix HUNT_MIX over the kernels KERNEL_SERIES x KERNEL_PROFILE x
# HUNT_VARIANTS, seeded and kept; findings deduplicated by title signature;
# each new finding rerun REPRO_RUNS times (its reproduction probability),
# minimised, and given a reproducer (CAMPAIGN/findings/<sig>/REPRODUCER.md).
# docs/findings.md describes titles, signatures and the campaign.
#
# Settings:
#   HOURS          hours to hunt [until interrupted]
#   CAMPAIGN       the campaign directory [build/results/hunt-<UTC time>];
#                  an existing one resumes (same settings)
#   JOBS           guests at once [what CPUs and memory hold]
#   KERNEL_SERIES  series, a list ["7.3"]
#   KERNEL_PROFILE profiles, a list ["default"]
#   HUNT_VARIANTS  kernel variants, a list; "clean" is the unpatched kernel
#                  ["clean"]
#   HUNT_MIX       scenarios, ";"-separated words ["thp-race --swarm;oom-stall;
#                  pairs --swarm --kinds <every kind>;
#                  pairs --swarm --overlap-ms 100 --kinds <every kind>"]
#   DURATION       seconds per run [60]
#   SEED           the campaign's seed [random, recorded]
#   REPRO_RUNS     reruns per measurement of a new finding [8]
#   MAX_RUNS       exploring runs in this session [no limit]
#   AFTER_FINDING  seconds a guest gets after a finding [20]
#   ACCEL, CPUS, MEM_MIB, DISK_MIB (the campaign's XFS image, 4096)
#
# This script turns the settings into mmrace-host hunt-run's arguments;
# mmrace-host checks them all before anything is built, then builds each
# kernel (fleet/build.rs, calling the build scripts; one that does not
# build is left out), writes CAMPAIGN/targets.json and hunts
# (hunt/setup.rs).
#
# Exit: 1 the campaign has findings, 0 none, 2 harness or usage error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

args=(--mmrace-root "$MMRACE_ROOT")
[ -n "${KERNEL_SERIES// /}" ] || die "KERNEL_SERIES is empty"
opt --campaign "${CAMPAIGN:-}"
opts --series "$KERNEL_SERIES"
opts --profile "${KERNEL_PROFILE:-}"
opts --variant "${HUNT_VARIANTS:-}"
# HUNT_MIX: ";"-separated scenarios, each its words.
IFS=';' read -ra mix_list <<<"${HUNT_MIX:-}"
for m in "${mix_list[@]}"; do
	[ -z "${m// /}" ] || args+=(--mix "$m")
done
opt --disk-mib "${DISK_MIB:-}"
opt --hours "${HOURS:-}"
opt --jobs "${JOBS:-}"
opt --duration "${DURATION:-}"
opt --seed "${SEED:-}"
opt --repro-runs "${REPRO_RUNS:-}"
opt --max-runs "${MAX_RUNS:-}"
opt --after-finding "${AFTER_FINDING:-}"
opt --accel "${ACCEL:-}"
opt --cpus "${CPUS:-}"
opt --mem-mib "${MEM_MIB:-}"
prepare_host
exec "$HOST_BIN" hunt-run "${args[@]}"
