#!/usr/bin/env bash
# `make bisect KERNEL_SRC=<git tree> GOOD=<rev> BAD=<rev>`: a bisection that
# knows a race is a probability (syz-bisect style).
#
#   1. BAD is built and run until it is caught ESTIMATE_CATCHES times (3),
#      at most ESTIMATE_RUNS runs (10). The bug to bisect is the finding
#      title EXPECT (a regex) or, without one, exactly the title BAD's runs
#      found most often; its catch probability on BAD is p. If BAD never
#      shows it, the bisection stops here and says so.
#   2. `git bisect run` with this script as the step: each commit is built
#      (incrementally, from the nearest built commit: scripts/build-kernel.sh)
#      and run up to n times, n the smallest with (1 - p)^n < BISECT_MISS
#      (0.01); the first run whose finding has that title makes it bad (a
#      commit whose runs find something else is not bad for this bug: its
#      other findings are listed). A commit that does not build is skipped
#      (125); a harness error stops the bisection (128).
#   3. mmrace-host bisect-report: each step's verdict and confidence, the
#      first bad commit and the overall confidence, in
#      build/results/bisect-<id>/ (bisect.json, estimate/, steps/).
#
# Same settings as qemu-run: SCENARIO (default thp-race here), DURATION,
# SEED, ARGS, ACCEL, CPUS, MEM_MIB, NODE0_PCT, and JOBS (guests at once).
# KERNEL_SRC must be a clean git tree; its HEAD is restored at the end.
#
# Exit: 0 a first bad commit was named, 1 none (all good, or only skipped
# commits left), 2 harness or usage error (BAD never caught included).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"

SCENARIO=${SCENARIO:-thp-race}
DURATION=${DURATION:-30}
SEED=${SEED:-$(($(od -An -N4 -tu4 /dev/urandom)))}
ESTIMATE_RUNS=${ESTIMATE_RUNS:-10}
ESTIMATE_CATCHES=${ESTIMATE_CATCHES:-3}
BISECT_MISS=${BISECT_MISS:-0.01}
GUEST_JOBS=${GUEST_JOBS:-${JOBS:-}}
unset JOBS # build-kernel.sh reads JOBS as make -j

# build_at_head: kernel, module and initramfs of KERNEL_SRC's HEAD; sets
# BZIMAGE and INITRD, returns 125 when the kernel or the module does not
# build.
build_at_head() {
	KDIR=$(KERNEL_SRC=$KERNEL_SRC "$MMRACE_ROOT/scripts/build-kernel.sh") || return $?
	BZIMAGE=$KDIR/arch/x86/boot/bzImage
	MODULE_KO=$("$MMRACE_ROOT/scripts/build-module.sh" "$KDIR") || return $?
	prepare_initrd
}

# batch DIR ID RUNS STOP_AFTER: RUNS seeded guests, results in DIR/ID.
batch() {
	local dir=$1 id=$2 runs=$3 stop=$4
	host_run_options
	# shellcheck disable=SC2086 # ARGS is words on purpose
	"$HOST_BIN" batch "${HOST_OPTS[@]}" --runs "$runs" ${GUEST_JOBS:+--jobs "$GUEST_JOBS"} \
		${EXPECT:+--expect "$EXPECT"} \
		--stop-after-catches "$stop" --results-dir "$dir" --run-id "$id" "$SCENARIO" ${ARGS:-}
}

if [ "${1:-}" = step ]; then
	# One `git bisect run` step, in KERNEL_SRC at the commit to test.
	: "${BISECT_DIR:?step mode runs under race-bisect.sh}" "${RUNS:?}" "${HOST_BIN:?}"
	# Anything unexpected stops the bisection (128): an exit 1 here would
	# mark the commit bad.
	trap 'rc=$?; echo "[mmrace] race-bisect.sh step stopped at line $LINENO (exit $rc)" >&2; exit 128' ERR
	commit=$(git rev-parse HEAD)
	mkdir -p "$BISECT_DIR/steps"
	n=$(($(find "$BISECT_DIR/steps" -mindepth 1 -maxdepth 1 -type d | wc -l) + 1))
	id=$(printf '%02d-%s' "$n" "${commit:0:12}")
	step=$BISECT_DIR/steps/$id
	subject=$(git log -1 --format=%s)
	t=$SECONDS
	rc=0
	build_at_head || rc=$?
	if [ $rc != 0 ]; then
		mkdir -p "$step"
		echo "$commit $subject" >"$step/commit"
		if [ $rc = 125 ]; then
			touch "$step/not-built"
			log "bisect: $id does not build: skipped"
			exit 125
		fi
		log "bisect: $id: harness error while building (exit $rc): stopping"
		exit 128
	fi
	log "bisect: $id built in $((SECONDS - t)) s; up to $RUNS runs"
	rc=0
	batch "$BISECT_DIR/steps" "$id" "$RUNS" 1 || rc=$?
	echo "$commit $subject" >"$step/commit"
	case $rc in
	0 | 1) exit $rc ;;
	*) log "bisect: $id: harness error (exit $rc): stopping"; exit 128 ;;
	esac
fi

: "${KERNEL_SRC:?KERNEL_SRC=<kernel git tree> is required}" "${GOOD:?GOOD=<rev> is required}" "${BAD:?BAD=<rev> is required}"
KERNEL_SRC=$(cd "$KERNEL_SRC" 2>/dev/null && pwd) || die "KERNEL_SRC=$KERNEL_SRC is not a directory"
export KERNEL_SRC
need git git
git -C "$KERNEL_SRC" rev-parse --git-dir >/dev/null 2>&1 || die "KERNEL_SRC=$KERNEL_SRC is not a git tree"
[ -z "$(git -C "$KERNEL_SRC" status --porcelain --untracked-files=no)" ] ||
	die "KERNEL_SRC=$KERNEL_SRC has local changes: commit or stash them first"
[ ! -e "$(git -C "$KERNEL_SRC" rev-parse --git-path BISECT_LOG)" ] ||
	die "KERNEL_SRC=$KERNEL_SRC is in the middle of a git bisect: 'git bisect reset' first"
good=$(git -C "$KERNEL_SRC" rev-parse --verify -q "$GOOD^{commit}") || die "GOOD=$GOOD is not a commit in $KERNEL_SRC"
bad=$(git -C "$KERNEL_SRC" rev-parse --verify -q "$BAD^{commit}") || die "BAD=$BAD is not a commit in $KERNEL_SRC"
case $SEED in '' | *[!0-9]*) die "SEED must be a non-negative integer, got '$SEED'" ;; esac

MMRACE_DIE_CODE=2 prepare_toolchain || exit 2
prepare_binaries
BISECT_DIR=$MMRACE_ROOT/build/results/bisect-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$BISECT_DIR"
orig=$(git -C "$KERNEL_SRC" symbolic-ref -q --short HEAD || git -C "$KERNEL_SRC" rev-parse HEAD)
started=
restore() {
	[ -z "$started" ] || git -C "$KERNEL_SRC" bisect reset >/dev/null 2>&1 || true
	git -C "$KERNEL_SRC" checkout -q "$orig" 2>/dev/null || true
}
trap restore EXIT
t0=$SECONDS
log "bisect: $GOOD..$BAD in $KERNEL_SRC, scenario $SCENARIO, ${DURATION}s per run, seeds from $SEED; results in $BISECT_DIR"

git -C "$KERNEL_SRC" checkout -q "$bad"
log "bisect: estimating the catch probability on BAD ($BAD): up to $ESTIMATE_RUNS runs, until $ESTIMATE_CATCHES catches"
rc=0
build_at_head || rc=$?
[ $rc = 0 ] || die "BAD=$BAD does not build (exit $rc): nothing to bisect"
rc=0
batch "$BISECT_DIR" estimate "$ESTIMATE_RUNS" "$ESTIMATE_CATCHES" || rc=$?
[ $rc -le 1 ] || die "the runs on BAD ended in harness errors (exit $rc): see $BISECT_DIR/estimate"
plan=$("$HOST_BIN" bisect-plan --miss "$BISECT_MISS" ${EXPECT:+--expect "$EXPECT"} "$BISECT_DIR/estimate") || exit 2
eval "$plan" # RUNS=<n> EXPECT=<title pattern>
printf '%s\n' "$EXPECT" >"$BISECT_DIR/expect"
log "bisect: the bug: a finding titled /$EXPECT/"
export RUNS BISECT_DIR HOST_BIN DRIVER_BIN SCENARIO DURATION SEED GUEST_JOBS ARGS EXPECT

started=1
git -C "$KERNEL_SRC" bisect start "$bad" "$good" >/dev/null
rc=0
(cd "$KERNEL_SRC" && git bisect run "$MMRACE_ROOT/scripts/race-bisect.sh" step) >"$BISECT_DIR/git-bisect-run.log" 2>&1 || rc=$?
git -C "$KERNEL_SRC" bisect log >"$BISECT_DIR/git-bisect.log" 2>/dev/null || true
first=$(sed -n 's/^\([0-9a-f]\{40\}\) is the first bad commit$/\1/p' "$BISECT_DIR/git-bisect-run.log" | head -n1)
if [ -n "$first" ]; then
	git -C "$KERNEL_SRC" log -1 --format='%H %s' "$first" >"$BISECT_DIR/first-bad"
elif [ $rc != 0 ]; then
	tail -n 15 "$BISECT_DIR/git-bisect-run.log" >&2
fi
restore
started=
log "bisect: took $((SECONDS - t0)) s"
"$HOST_BIN" bisect-report "$BISECT_DIR" || exit 2
[ -n "$first" ] || exit 1
