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
#   HUNT_MIX       scenarios, ";"-separated words ["thp-race --swarm;oom-stall;pairs"]
#                  (add "pairs" where the driver has it)
#   DURATION       seconds per run [60]
#   SEED           the campaign's seed [random, recorded]
#   REPRO_RUNS     reruns per measurement of a new finding [8]
#   MAX_RUNS       exploring runs in this session [no limit]
#   AFTER_FINDING  seconds a guest gets after a finding [20]
#   ACCEL, CPUS, MEM_MIB, DISK_MIB (oom-stall's image, 4096)
#
# Exit: 1 the campaign has findings, 0 none, 2 harness or usage error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

DURATION=${DURATION:-60}
REPRO_RUNS=${REPRO_RUNS:-8}
HUNT_VARIANTS=${HUNT_VARIANTS:-clean}
HUNT_MIX=${HUNT_MIX:-thp-race --swarm;oom-stall;pairs}
PROFILES=${KERNEL_PROFILE:-default}
CAMPAIGN=${CAMPAIGN:-$MMRACE_ROOT/build/results/hunt-$(date -u +%Y%m%d-%H%M%S)}
GUEST_JOBS=${JOBS:-}
unset JOBS KERNEL_PROFILE # build-kernel.sh reads JOBS as make -j
for v in DURATION REPRO_RUNS ${MAX_RUNS:+MAX_RUNS} ${SEED:+SEED}; do
	case ${!v} in '' | *[!0-9]*) die "$v must be a whole number, got '${!v}'" ;; esac
done
for v in $HUNT_VARIANTS; do
	[ "$v" = clean ] || [ -e "$MMRACE_ROOT/kernel/variants/$v.patch" ] || die "HUNT_VARIANTS: no kernel/variants/$v.patch"
done
read -ra series_list <<<"$KERNEL_SERIES"
read -ra profile_list <<<"$PROFILES"
[ ${#series_list[@]} -gt 0 ] || die "KERNEL_SERIES is empty"
check_series_list "${series_list[@]}"

# The toolchain for the first series; target_json fetches each series' source.
KERNEL_SERIES=${series_list[0]} MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
prepare_binaries
mkdir -p "$CAMPAIGN"

# target_json SERIES PROFILE VARIANT: builds (or finds cached) that kernel,
# mmrace.ko and the initramfs; prints the target's JSON object.
target_json() {
	local series=$1 profile=$2 variant=$3 kdir ko initrd
	KERNEL_SERIES=$series "$MMRACE_ROOT/scripts/bootstrap.sh" kernel-src >&2 || return 2
	[ "$variant" != clean ] || variant=
	kdir=$(KERNEL_SERIES=$series KERNEL_SRC= KERNEL_PROFILE=$profile KERNEL_VARIANT=$variant \
		"$MMRACE_ROOT/scripts/build-kernel.sh") || return $?
	ko=$("$MMRACE_ROOT/scripts/build-module.sh" "$kdir") || return $?
	initrd=$("$MMRACE_ROOT/scripts/mkinitramfs.sh" "$kdir" "$DRIVER_BIN" "$ko" \
		"$MMRACE_ROOT/build/initramfs/$(basename "$kdir").cpio") || return 2
	local vjson=null
	[ -z "$variant" ] || vjson="\"$variant\""
	printf '{"series":"%s","profile":"%s","variant":%s,"kernel":"%s","initrd":"%s"}' \
		"$series" "$profile" "$vjson" "$kdir/arch/x86/boot/bzImage" "$initrd"
}

targets=()
for s in "${series_list[@]}"; do
	for p in "${profile_list[@]}"; do
		for v in $HUNT_VARIANTS; do
			log "hunt: kernel $s, profile $p, ${v/#clean/clean kernel}"
			rc=0
			t=$(target_json "$s" "$p" "$v") || rc=$?
			if [ $rc != 0 ]; then
				log "hunt: $s $p $v did not build (exit $rc): left out of the campaign"
				continue
			fi
			targets+=("$t")
		done
	done
done
[ ${#targets[@]} -gt 0 ] || die "no kernel of the campaign could be built"
(IFS=,; echo "[${targets[*]}]") >"$CAMPAIGN/targets.json"

mix_args=()
IFS=';' read -ra mix_list <<<"$HUNT_MIX"
oom=
for m in "${mix_list[@]}"; do
	[ -n "${m// /}" ] || continue
	mix_args+=(--mix "$m")
	case $m in oom-stall*) oom=1 ;; esac
done
disk_args=()
if [ -n "$oom" ]; then
	disk=$("$MMRACE_ROOT/scripts/make-xfs-disk.sh" "$CAMPAIGN/oom-stall.img" "${DISK_MIB:-4096}") || exit 2
	disk_args=(--oom-disk "$disk")
fi
first=${targets[0]}
kernel=$(echo "$first" | sed 's/.*"kernel":"\([^"]*\)".*/\1/')
initrd=$(echo "$first" | sed 's/.*"initrd":"\([^"]*\)".*/\1/')
rc=0
"$HOST_BIN" hunt --campaign "$CAMPAIGN" --targets "$CAMPAIGN/targets.json" \
	--kernel "$kernel" --initrd "$initrd" "${mix_args[@]}" "${disk_args[@]}" \
	--duration "$DURATION" --repro-runs "$REPRO_RUNS" ${SEED:+--seed "$SEED"} \
	${HOURS:+--hours "$HOURS"} ${MAX_RUNS:+--max-runs "$MAX_RUNS"} ${GUEST_JOBS:+--jobs "$GUEST_JOBS"} \
	--accel "${ACCEL:-auto}" ${CPUS:+--cpus "$CPUS"} ${MEM_MIB:+--mem-mib "$MEM_MIB"} \
	${AFTER_FINDING:+--after-finding "$AFTER_FINDING"} || rc=$?
exit $rc
