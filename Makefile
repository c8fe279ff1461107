# mmrace: make Linux mm races happen, count them in the kernel, judge the run.
#
#   make qemu-run   build what is missing, boot the 2-node NUMA guest, run
#                   SCENARIO, print counters and verdict. GNU make turns any
#                   failing recipe into exit 2: for the verdict as an exit
#                   code (0/1/2/125) run ./mmrace run instead.
#   make test       unit tests, then QEMU tests (clean run, caught crash)
#   make bench      race rates: the seed's shell procedure vs mmrace
#   make bisect     race-aware git bisect (KERNEL_SRC=<tree> GOOD=<rev> BAD=<rev>)
#   make matrix     detection matrix: every kernel variant x configuration
#   make hunt       bug-hunting campaign: HOURS of runs over a mix of
#                   scenarios and kernels, findings deduplicated, reproduced,
#                   minimised (docs/findings.md)
#   make lint       rustfmt/clippy (userspace and kernel style), checkpatch
#
# Out-of-tree kernel module build (used by the targets above, and by hand):
#   make -C $KDIR M=$PWD modules
# Kbuild reads this directory's Kbuild file, never this Makefile.

# Settings (SCENARIO, DURATION, SEED, ... see docs/scenarios.md) reach the scripts
# as they are: make passes command-line and environment variables on to its
# recipes. No `export` line: it would pass unset variables as empty ones.

.PHONY: qemu-run test test-long bench bisect matrix hunt lint kernel module bootstrap clean

qemu-run:
	@scripts/qemu-run.sh

test:
	@scripts/test.sh

test-long:
	@TESTS=long scripts/test.sh

bench:
	@scripts/bench.sh

bisect:
	@scripts/race-bisect.sh

matrix:
	@scripts/matrix.sh

hunt:
	@scripts/hunt.sh

lint:
	@scripts/lint.sh

bootstrap:
	@scripts/bootstrap.sh

kernel:
	@scripts/build-kernel.sh

module:
	@scripts/build-module.sh "$${KDIR:-$$(scripts/build-kernel.sh)}"

clean:
	rm -rf build target
