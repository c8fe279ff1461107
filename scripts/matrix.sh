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
# MATRIX_CONFIGS, plus oom-stall when its "Class:" line names the OOM path.
# Its "Expect:" line (required) is a pattern of the finding titles the
# variant causes: a cell counts a run as a catch only when its finding's
# title matches (batch --expect); other findings are listed as the cell's
# other findings, never as catches. The clean row has no expectation: any
# finding there is a false positive.
#
# Settings: MATRIX_VARIANTS (default: clean and every kernel/variants/*.patch),
# MATRIX_CONFIGS ("shell-baseline thp-race thp-race-amplified"),
# MATRIX_SEEDS (5), MATRIX_CAP (120), MATRIX_AMPLIFY
# (delay_us=1000,every_nth=1), SEED (1), MATRIX_ID (UTC time), JOBS, ACCEL,
# CPUS, MEM_MIB, DISK_MIB (oom-stall's image, 4096), KERNEL_SERIES (7.3, or
# a list).
#
# Exit: 0 the matrix is complete, 2 harness error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
trap_unexpected_errors

MATRIX_CONFIGS=${MATRIX_CONFIGS:-shell-baseline thp-race thp-race-amplified}
MATRIX_SEEDS=${MATRIX_SEEDS:-5}
MATRIX_CAP=${MATRIX_CAP:-120}
MATRIX_AMPLIFY=${MATRIX_AMPLIFY:-delay_us=1000,every_nth=1}
MATRIX_ID=${MATRIX_ID:-$(date -u +%Y%m%d-%H%M%S)}
SEED=${SEED:-1}
GUEST_JOBS=${JOBS:-}
unset JOBS # build-kernel.sh reads JOBS as make -j
for v in MATRIX_SEEDS MATRIX_CAP; do
	case ${!v} in '' | *[!0-9]* | 0) die "$v must be a whole number > 0, got '${!v}'" ;; esac
done
case $SEED in '' | *[!0-9]*) die "SEED must be a non-negative integer, got '$SEED'" ;; esac
case $MATRIX_AMPLIFY in *[!a-z0-9_=,]*) die "MATRIX_AMPLIFY: only key=value,... please, got '$MATRIX_AMPLIFY'" ;; esac
for c in $MATRIX_CONFIGS; do
	case $c in
	shell-baseline | thp-race | thp-race-amplified | oom-stall | smoke | pairs) ;;
	*=*)
		case ${c%%=*} in '' | *[!a-z0-9-]*) die "MATRIX_CONFIGS: '$c': the name before = is letters, digits and -" ;; esac
		case ${c#*=} in '' | *[!a-zA-Z0-9_=,.:+-]*) die "MATRIX_CONFIGS: '$c': the words after = are scenario words joined by commas" ;; esac
		;;
	*) die "MATRIX_CONFIGS: unknown configuration '$c' (shell-baseline, thp-race, thp-race-amplified, oom-stall, smoke, pairs or NAME=scenario,words)" ;;
	esac
done
if [ -z "${MATRIX_VARIANTS:-}" ]; then
	MATRIX_VARIANTS="clean $(ls "$MMRACE_ROOT"/kernel/variants/*.patch 2>/dev/null | xargs -rn1 basename | sed 's/\.patch$//' | tr '\n' ' ')"
fi
for v in $MATRIX_VARIANTS; do
	[ "$v" = clean ] || [ -e "$MMRACE_ROOT/kernel/variants/$v.patch" ] || die "MATRIX_VARIANTS: no kernel/variants/$v.patch"
done

# configs_of VARIANT: the configurations its cells run.
configs_of() {
	local patch=$MMRACE_ROOT/kernel/variants/$1.patch header
	if [ "$1" = clean ]; then
		# The false-positive rate, under everything any variant runs.
		echo "$MATRIX_CONFIGS"
		for v in $MATRIX_VARIANTS; do [ "$v" = clean ] || configs_of "$v"; done
		return
	fi
	header=$(sed '/^---/,$d' "$patch")
	if echo "$header" | grep -q '^Scenarios:'; then
		echo "$header" | sed -n 's/^Scenarios:[[:space:]]*//p' | head -n1
	else
		echo "$MATRIX_CONFIGS"
		! echo "$header" | grep -i '^Class:.*oom' >/dev/null || echo oom-stall
	fi
}

# configs_list VARIANT: its configurations, one each, space-separated.
configs_list() {
	configs_of "$1" | tr ' ' '\n' | grep . | awk '!seen[$0]++' | tr '\n' ' '
}
# config_words CONFIG: the scenario words its cells run.
config_words() {
	case $1 in
	*=*)
		local words=${1#*=}
		echo "${words//,/ }"
		;;
	thp-race-amplified) echo "thp-race --amplify $MATRIX_AMPLIFY" ;;
	*) echo "$1" ;;
	esac
}
# config_mem CONFIG: its guest's memory, MiB (oom-stall's is smaller, for
# the OOM killer to come sooner).
config_mem() {
	if [ "$1" = oom-stall ]; then echo 1024; else echo "${MEM_MIB:-2048}"; fi
}

read -ra series_list <<<"$KERNEL_SERIES"
[ ${#series_list[@]} -gt 0 ] || die "KERNEL_SERIES is empty"
multi=
if [ ${#series_list[@]} -gt 1 ]; then
	multi=1
	check_series_list "${series_list[@]}"
fi
KERNEL_SERIES=${series_list[0]}

# Every configuration any row runs, checked by mmrace-host with the
# options its cells' batches get (check_settings), before anything is
# built: a bad ARGS word in a NAME=WORDS, a variant's "Scenarios:" naming
# no configuration, a bad CPUS or JOBS stop here.
for c in $(for v in $MATRIX_VARIANTS; do configs_list "$v"; done | tr ' ' '\n' | sort -u); do
	# shellcheck disable=SC2046 # the scenario words
	check_settings batch --runs "$MATRIX_SEEDS" ${GUEST_JOBS:+--jobs "$GUEST_JOBS"} \
		--seed "$SEED" --duration "$MATRIX_CAP" --accel "${ACCEL:-auto}" --cpus "${CPUS:-2}" \
		--mem-mib "$(config_mem "$c")" --run-id "${c%%=*}" $(config_words "$c") ||
		die "matrix: configuration '$c' (scenario words: $(config_words "$c")), with the settings above: refused"
done

OUT=$MMRACE_ROOT/build/results/matrix-$MATRIX_ID
[ ! -e "$OUT" ] || die "$OUT already exists: pick another MATRIX_ID"
mkdir -p "$OUT"
t0=$SECONDS
if [ -n "$multi" ]; then
	MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
	prepare_binaries
	# Every series' source first: a series the archive lacks is a usage
	# error, before hours of runs.
	for s in "${series_list[@]}"; do
		KERNEL_SERIES=$s "$MMRACE_ROOT/scripts/bootstrap.sh" kernel-src || exit 2
	done
else
	prepare_all
fi

# row_kernel SERIES VARIANT: the row's kernel, initramfs and build directory
# in kernel, initrd and kdir; fails when they cannot be built.
row_kernel() {
	if [ -n "$multi" ]; then
		local variant=$2
		[ "$variant" != clean ] || variant=
		prepare_series "$1" "$variant" && [ -e "$SERIES_BZIMAGE" ] || return 1
		kernel=$SERIES_BZIMAGE initrd=$SERIES_INITRD kdir=$SERIES_KDIR
	elif [ "$2" = clean ]; then
		kdir=$KDIR kernel=$BZIMAGE initrd=$INITRD
	else
		prepare_variant "$2" && [ -e "$VARIANT_BZIMAGE" ] || return 1
		kernel=$VARIANT_BZIMAGE initrd=$VARIANT_INITRD
		kdir=$(dirname "$(dirname "$(dirname "$(dirname "$kernel")")")")
	fi
}
cells=0
for v in $MATRIX_VARIANTS; do
	cells=$((cells + $(configs_list "$v" | wc -w) * ${#series_list[@]}))
done
log "matrix $MATRIX_ID: variants $MATRIX_VARIANTS${multi:+; series ${series_list[*]}}; $MATRIX_SEEDS seeds from $SEED, ${MATRIX_CAP}s cap; $cells cells; results in $OUT"

cell=0
for s in "${series_list[@]}"; do
	# A matrix of one series keeps its rows directly under OUT.
	base=$OUT
	[ -z "$multi" ] || base=$OUT/$s
	series=$s
	[ -n "$multi" ] || series=$(recorded_series)
	for v in $MATRIX_VARIANTS; do
		configs=$(configs_list "$v")
		row=$v${multi:+ on $s}
		if ! row_kernel "$s" "$v"; then
			log "matrix: $row did not build: its row says so"
			mkdir -p "$base/$v" && touch "$base/$v/not-built"
			for c in $configs; do mkdir -p "$base/$v/${c%%=*}"; done
			cell=$((cell + $(echo "$configs" | wc -w)))
			continue
		fi
		mkdir -p "$base/$v"
		expect=()
		if [ "$v" != clean ]; then
			pattern=$("$HOST_BIN" variant-expect "$MMRACE_ROOT/kernel/variants/$v.patch") || exit 2
			expect=(--expect "$pattern")
		fi
		for spec in $configs; do
			cell=$((cell + 1))
			c=${spec%%=*} words=$(config_words "$spec") cinitrd=$initrd
			extra=(--mem-mib "$(config_mem "$spec")")
			case $spec in
			shell-baseline) cinitrd=$(bench_initrd "$kdir" "$initrd") ;;
			oom-stall)
				disk=$("$MMRACE_ROOT/scripts/make-xfs-disk.sh" "$OUT/oom-stall.img" "${DISK_MIB:-4096}") || exit 2
				extra+=(--disk "$disk")
				;;
			pairs)
				disk=$("$MMRACE_ROOT/scripts/make-xfs-disk.sh" "$OUT/pairs.img" "${DISK_MIB:-4096}") || exit 2
				extra+=(--disk "$disk")
				;;
			esac
			[ "$v" = clean ] || extra+=(--kernel-variant "$v")
			log "matrix: cell $cell/$cells: $row x $c ($((SECONDS - t0)) s so far)"
			rc=0
			# shellcheck disable=SC2086 # the scenario words
			"$HOST_BIN" batch --kernel "$kernel" --initrd "$cinitrd" \
				--seed "$SEED" --duration "$MATRIX_CAP" --kernel-series "$series" \
				--accel "${ACCEL:-auto}" --cpus "${CPUS:-2}" "${extra[@]}" \
				--runs "$MATRIX_SEEDS" ${GUEST_JOBS:+--jobs "$GUEST_JOBS"} "${expect[@]}" \
				--results-dir "$base/$v" --run-id "$c" $words >"$base/$v/$c.out" 2>&1 || rc=$?
			# 0 clean, 1 caught: both are results; 2 is the harness.
			[ $rc -le 1 ] || log "matrix: $row x $c: harness errors (exit $rc), see $base/$v/$c.out"
			log "matrix: $row x $c: $(grep -m1 'catch probability' "$base/$v/$c.out" || tail -n1 "$base/$v/$c.out")"
		done
	done
done
rm -f "$OUT/oom-stall.img"
log "matrix: $((SECONDS - t0)) s in all"
matrix_args=("$OUT")
[ -z "$multi" ] || for s in "${series_list[@]}"; do matrix_args+=(--series "$s"); done
"$HOST_BIN" matrix "${matrix_args[@]}"
