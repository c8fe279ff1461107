#!/usr/bin/env bash
# `make test` (and CI): builds what is missing, then runs
#   1. the userspace unit tests (cargo test),
#   2. the style checks (scripts/lint.sh),
#   3. QEMU tests on the real test kernel with mmrace.ko loaded.
# Prints one `ok`/`not ok` line per test and ends with "N passed, M failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prepare.sh"
cd "$MMRACE_ROOT"

RESULTS=$MMRACE_ROOT/build/test-results
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
passed=0
failed=0
t0=$(date +%s)

# run_test NAME CMD...: one test, its output kept in $RESULTS/NAME.log.
run_test() {
	local name=$1 start=$(date +%s)
	shift
	if "$@" >"$RESULTS/$name.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok - $name ($(($(date +%s) - start)) s)"
	else
		failed=$((failed + 1))
		echo "not ok - $name ($(($(date +%s) - start)) s)"
		tail -n 25 "$RESULTS/$name.log" | sed 's/^/    /'
	fi
}

# expect_exit CODE CMD...: CMD must exit with CODE.
expect_exit() {
	local want=$1 rc
	shift
	"$@"
	rc=$?
	[ "$rc" = "$want" ] || { echo "exit code $rc, want $want"; return 1; }
}

# guest RUN_ID DRIVER_ARGS [HOST_OPTION...]: one guest run, report in
# $MMRACE_ROOT/build/results/RUN_ID/report.json.
guest() {
	local id=$1 args=$2
	shift 2
	"$HOST_BIN" run --quiet --kernel "$BZIMAGE" --initrd "$INITRD" \
		--scenario "$(echo "$args" | awk '{print $NF}')" --seed 1 --duration 10 \
		--driver-args "$args" --results-dir "$RESULTS/runs" --run-id "$id" "$@"
}
report() { python3 tests/check_report.py "$RESULTS/runs/$1/report.json" "${@:2}"; }

echo "== building (toolchain, kernel, module, driver, initramfs)"
prepare_all
echo "   kernel $KDIR, $(($(date +%s) - t0)) s so far"

echo "== unit tests"
run_test unit-tests cargo test -q --workspace --locked
grep -h "test result" "$RESULTS/unit-tests.log" | sed 's/^/    /'

echo "== style"
run_test lint scripts/lint.sh

echo "== harness checks"
run_test kernel-cache-noop bash -c "scripts/build-kernel.sh 2>&1 >/dev/null | grep -q 'up to date'"
run_test usage-bad-duration expect_exit 2 env DURATION=abc scripts/qemu-run.sh
run_test usage-kdir-without-rust bash -c "
	d=\$(mktemp -d) && echo 'CONFIG_MODULES=y' >\$d/.config &&
	out=\$(scripts/build-module.sh \$d 2>&1); rc=\$?; echo \"\$out\";
	[ \$rc = 2 ] && echo \"\$out\" | grep -q CONFIG_RUST"
run_test usage-missing-kernel expect_exit 2 "$HOST_BIN" run --kernel /nonexistent --initrd "$INITRD" \
	--driver-args smoke --scenario smoke --seed 1 --duration 1

echo "== QEMU: smoke on the clean kernel"
smoke_checks() {
	guest smoke "--duration 8 --seed 1 smoke" || { echo "runner exit $?"; return 1; }
	report smoke verdict=clean probes-attached \
		moved=softdirty_clear,pmd_split,pmd_split_done,thp_split,thp_migrate,migrate_pages \
		equal=pmd_split_done:thp_split_pmd equal=thp_split:thp_split_page+thp_split_page_failed \
		equal=thp_migrate:thp_migration_success equal=thp_migrate_failed:thp_migration_fail \
		equal=migrate_pages:pgmigrate_success
}
run_test qemu-smoke-clean smoke_checks

echo "== QEMU: a real kernel crash is caught"
crash_checks() {
	expect_exit 1 guest crash "--duration 30 --seed 1 --crash-test sysrq smoke" &&
		report crash verdict=kernel-problem "class~panic" has-last-snapshot
}
run_test qemu-crash-caught crash_checks

echo "== QEMU: a silent guest is a hang"
hang_checks() {
	expect_exit 1 guest hang "--duration 30 --seed 1 --crash-test hang smoke" --hang-timeout 15 &&
		report hang verdict=hang has-last-snapshot
}
run_test qemu-hang-caught hang_checks

echo "== $(($(date +%s) - t0)) s in all"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
