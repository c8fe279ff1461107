#!/bin/sh
# Seed 000's reproducer (linux-mm, June 2016, "mm: thp: move pmd check inside
# ptl for freeze_page()"), for busybox sh in the mmrace guest: the shell
# baseline (a) of `make bench`. Started by `mmrace-driver shell-baseline`.
#
# As posted: thp_alloc (20 MiB THP writer at 0x700000000000) in the
# background; after `sleep 0.$RANDOM`, a loop of `migratepages PID A B` /
# `migratepages PID B A` and a loop of `echo 4 > /proc/PID/clear_refs`, each
# until the writer is gone; after another `sleep 0.$RANDOM`, `kill -9` the
# writer, and again. Added as the issue asks: the shell splitter, a loop
# writing the writer's range to /sys/kernel/debug/split_huge_pages.
#
# The only other changes: RANDOM is seeded, the node pair is a setting, the
# loop ends when STOP_FILE appears, and each background loop writes its
# count of successful operations to OPS_DIR/PARTY.GEN (every 16 operations
# and when it ends), which the driver sums. The files are the cost of
# counting; the seed counted nothing.
#
# Environment: OPS_DIR STOP_FILE WRITER SEED NODE_A NODE_B SPLITTER (1|0)
# SPLIT_RANGE (start,end of the writer's mapping, hex).
set -u
: "${OPS_DIR:?}" "${STOP_FILE:?}" "${WRITER:?}" "${SEED:?}" "${NODE_A:?}" "${NODE_B:?}"
SPLITTER=${SPLITTER:-1}
SPLIT_RANGE=${SPLIT_RANGE:-0x700000000000,0x700001400000}
RANDOM=$SEED

# background_migratepages PID GEN
background_migratepages() {
	f=$OPS_DIR/migrate.$2 n=0
	while kill -0 "$1" 2>/dev/null; do
		migratepages "$1" "$NODE_A" "$NODE_B" && n=$((n + 1))
		migratepages "$1" "$NODE_B" "$NODE_A" && n=$((n + 1))
		echo $n >"$f"
	done
	echo $n >"$f"
}

# background_clear_refs PID GEN
background_clear_refs() {
	f=$OPS_DIR/clear_refs.$2 n=0 i=0
	while kill -0 "$1" 2>/dev/null; do
		echo 4 >"/proc/$1/clear_refs" 2>/dev/null && n=$((n + 1))
		i=$((i + 1))
		[ $((i & 15)) = 0 ] && echo $n >"$f"
	done
	echo $n >"$f"
}

# background_splitter PID GEN
background_splitter() {
	f=$OPS_DIR/splitter.$2 n=0 i=0
	while kill -0 "$1" 2>/dev/null; do
		echo "$1,$SPLIT_RANGE" >/sys/kernel/debug/split_huge_pages 2>/dev/null && n=$((n + 1))
		i=$((i + 1))
		[ $((i & 15)) = 0 ] && echo $n >"$f"
	done
	echo $n >"$f"
}

gen=0
while [ ! -e "$STOP_FILE" ]; do
	"$WRITER" &
	PID=$!
	gen=$((gen + 1))
	sleep 0.$RANDOM
	background_migratepages $PID $gen >/dev/null &
	background_clear_refs $PID $gen >/dev/null &
	if [ "$SPLITTER" = 1 ]; then
		background_splitter $PID $gen >/dev/null &
	fi
	sleep 0.$RANDOM
	kill -9 $PID
	echo $gen >"$OPS_DIR/kills"
done
# The last writer is dead; its loops end once the shell has reaped it.
wait
