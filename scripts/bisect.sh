#!/usr/bin/env bash
# For `git bisect run`, from the kernel source tree being bisected:
#
#   git bisect run /path/to/mmrace/scripts/bisect.sh
#
# Builds that commit with mmrace's config fragment (KERNEL_SRC=$PWD), runs
# SCENARIO (default thp-race) and maps the verdict to what bisect expects:
# 0 good (clean), 1 bad (kernel problem or hang, or a program of
# SCENARIO=exec/selftests-mm failed: exit 3), 125 skip (the kernel or
# the module did not build), 128 abort (a harness error says nothing about
# the commit; git bisect stops instead of marking it bad).
#
# EXPECT=REGEX: bad only when the finding's title matches (the title of
# the finding being bisected, e.g. EXPECT='^WARNING in __split_huge_pmd$');
# a run that found something else is good for this bug.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
KERNEL_SRC=${KERNEL_SRC:-$PWD} SCENARIO=${SCENARIO:-thp-race} "$here/qemu-run.sh"
rc=$?
if [ -n "${EXPECT:-}" ] && { [ $rc = 1 ] || [ $rc = 3 ]; }; then
	report=${RESULTS_DIR:-$root/build/results}/latest/report.json
	if ! "$root/target/release/mmrace-host" check "$report" "title~$EXPECT" >&2; then
		echo "mmrace bisect: another finding than /$EXPECT/: good for this bug" >&2
		exit 0
	fi
fi
case $rc in
0 | 1 | 125) exit $rc ;;
3) exit 1 ;;
*) echo "mmrace bisect: harness error (exit $rc), aborting the bisection" >&2; exit 128 ;;
esac
