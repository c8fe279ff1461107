#!/bin/sh
# Stands in for qemu-system-x86_64 in mmrace-host's tests (--qemu-binary).
# It reads the options mmrace-host passes (the accelerator, the wire file)
# and plays a guest chosen by $FAKE_QEMU_MODE:
#   clean       boots, streams protocol messages, powers off
#   crash       boots, streams a snapshot, hits a BUG and "reboots"
#   hang        boots, says hello, then goes silent
#   kvm-broken  under -accel kvm: "KVM internal error" and stuck; else clean
#   chatty      boots, says hello, prints forever (for Ctrl-C tests)
#   by-seed     for batches: the spec's seed decides; odd seeds crash 0.75 s
#               after the module loaded (a race seen at 0.25 s), even ones
#               run clean
# $FAKE_QEMU_LOG gets one "accel=..." line per start; $FAKE_QEMU_PIDS the
# pids of the fake and its children, so tests can check they were killed.

if [ "$1" = --version ]; then
	echo "QEMU emulator version 0.0.0 (mmrace fake)"
	exit 0
fi

accel= config= append= prev=
for a in "$@"; do
	[ "$prev" = -accel ] && accel=$a
	[ "$prev" = -readconfig ] && config=$a
	[ "$prev" = -append ] && append=$a
	prev=$a
done
# The wire file is the [chardev "wire"] path of the guest config.
wire=$(sed -n '/^\[chardev "wire"\]/,/^$/s/^  path = "\(.*\)"$/\1/p' "$config")
# The driver echoes the spec it was given: decode mmrace.spec (URL-safe
# base64 without padding).
spec=$(printf '%s\n' "$append" | tr ' ' '\n' | sed -n 's/^mmrace\.spec=//p' | tr '_-' '/+')
while [ $((${#spec} % 4)) != 0 ]; do spec="$spec="; done
spec=$(printf '%s' "$spec" | base64 -d)
[ -n "$FAKE_QEMU_LOG" ] && echo "accel=$accel" >>"$FAKE_QEMU_LOG"
[ -n "$FAKE_QEMU_PIDS" ] && echo $$ >>"$FAKE_QEMU_PIDS"

msg() { printf '@@MMRACE@@ %s\n' "$1" >>"$wire"; }
hello() {
	echo "[    0.000000] Linux version 7.3.4 (fake) #1 SMP PREEMPT"
	echo "[    0.512000] Run /init as init process"
	msg "{\"type\":\"hello\",\"wire\":2,\"spec\":$spec}"
	msg '{"type":"module","version":"0.1.0","probes":[{"name":"split_huge_pmd_locked","attached":true}]}'
	msg '{"type":"snapshot","t_ms":0,"counters":{"pmd_split":0,"thp_split":0},"ops":{"writer":0},"tainted":12288}'
}
background_sleep() {
	sleep 1000 &
	[ -n "$FAKE_QEMU_PIDS" ] && echo $! >>"$FAKE_QEMU_PIDS"
	wait
}
clean() {
	hello
	msg '{"type":"snapshot","t_ms":2000,"counters":{"pmd_split":40,"thp_split":6},"ops":{"writer":900},"tainted":12288}'
	msg '{"type":"result","t_ms":2050,"ok":true,"message":"smoke passed","data":{"scenario":"smoke","iterations":40,"nodes":[0,1],"migrate":true,"counters":{"pmd_split":40},"vmstat":{"thp_split_pmd":40},"data_oracle":{"verified":245640,"mismatches":0,"reported":0}}}'
	echo "mmrace: smoke passed"
	echo "[    2.600000] reboot: Power down"
	exit 0
}

case ${FAKE_QEMU_MODE:-clean} in
clean) clean ;;
crash)
	hello
	msg '{"type":"snapshot","t_ms":1000,"counters":{"pmd_split":25,"thp_split":3},"ops":{"writer":400},"tainted":12288}'
	echo "[    1.200000] ------------[ cut here ]------------"
	echo "[    1.200100] kernel BUG at mm/huge_memory.c:3050!"
	echo "[    1.200200] Oops: invalid opcode: 0000 [#1] SMP NOPTI"
	echo "[    1.200300] Kernel panic - not syncing: Fatal exception"
	exit 0
	;;
hang)
	hello
	background_sleep
	;;
kvm-broken)
	if [ "$accel" = kvm ]; then
		echo "KVM internal error. Suberror: 1" >&2
		echo "emulation failure" >&2
		background_sleep
	fi
	clean
	;;
by-seed)
	seed=$(printf '%s' "$spec" | sed -n 's/.*"seed":\([0-9]*\).*/\1/p')
	[ -n "$seed" ] || { echo "fake-qemu: no seed in the spec" >&2; exit 1; }
	if [ $((seed % 2)) = 0 ]; then
		clean
	fi
	hello
	echo "[    0.600000] mmrace: mmrace 0.1.0 debugfs 1 loaded"
	msg '{"type":"event","t_ms":250,"what":"first_pmd_race","detail":"250"}'
	msg '{"type":"snapshot","t_ms":1000,"counters":{"pmd_split":25,"thp_split":3},"ops":{"writer":400}}'
	echo "[    1.350000] kernel BUG at mm/huge_memory.c:3050!"
	echo "[    1.350300] Kernel panic - not syncing: Fatal exception"
	exit 0
	;;
chatty)
	hello
	while :; do
		echo "[    1.000000] still running"
		sleep 0.1
	done
	;;
*)
	echo "fake-qemu: unknown FAKE_QEMU_MODE $FAKE_QEMU_MODE" >&2
	exit 1
	;;
esac
