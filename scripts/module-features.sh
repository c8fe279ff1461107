#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Build-time feature tests of a kernel source tree for mmrace.ko: what the
# module cannot do without, and what it adapts to. They read the tree's own
# files, never its version number, so a backport or a tree of your own is
# judged by what it has. The one place for these tests; the callers:
#   Kbuild                  every module build, by hand or by the scripts;
#   scripts/build-kernel.sh before a kernel build, to stop early;
#   scripts/build-module.sh before a module build against KDIR.
#
#   module-features.sh missing SRCTREE  one line naming each API mmrace.ko
#                                       needs and the tree lacks ("no <API>
#                                       (<file>); ..."); exit 1 when there
#                                       is any
#   module-features.sh cflags SRCTREE   -D flags for what the tree has (one
#                                       line), read by module/mmrace_compat.h
#
# What exists only at run time (the symbols the probes attach to, the
# tracepoints) is not tested here: the module's debugfs `probes` file
# reports it.
#
# POSIX sh: Kbuild runs it through $(shell).

mode=$1
src=$2
if [ -z "$src" ] || [ ! -e "$src/Makefile" ]; then
	echo "usage: module-features.sh missing|cflags SRCTREE (a kernel source tree)" >&2
	exit 2
fi

# has FILE [PATTERN]: FILE exists under the tree (and holds the extended
# regular expression PATTERN).
has() {
	[ -e "$src/$1" ] || return 1
	[ -z "$2" ] || grep -Eq "$2" "$src/$1"
}

case $mode in
missing)
	missing=
	miss() { missing="${missing:+$missing; }no $1"; }
	# The Rust side (module/mmrace_main.rs).
	if ! has rust/kernel/debugfs.rs; then
		miss "kernel::debugfs (rust/kernel/debugfs.rs)"
	else
		for f in subdir read_callback_file write_callback_file read_write_callback_file; do
			has rust/kernel/debugfs.rs "fn $f[<(]" ||
				miss "kernel::debugfs::Dir::$f (rust/kernel/debugfs.rs)"
		done
	fi
	has rust/kernel/fmt.rs || miss "kernel::fmt (rust/kernel/fmt.rs)"
	has rust/kernel/alloc/kvec.rs || miss "kernel::alloc::KVec (rust/kernel/alloc/kvec.rs)"
	has rust/ffi.rs || miss "kernel::ffi (rust/ffi.rs)"
	[ -z "$missing" ] || { echo "$missing"; exit 1; }
	;;
cflags)
	# pmd_is_valid_softleaf(): include/linux/leafops.h (the softleaf API);
	# before it, swapops.h's is_pmd_migration_entry() and, where device
	# private THPs exist, is_pmd_device_private_entry().
	flags=
	if has include/linux/leafops.h 'bool pmd_is_valid_softleaf\('; then
		flags="$flags -DMMRACE_HAVE_LEAFOPS"
	elif has include/linux/swapops.h 'is_pmd_device_private_entry\('; then
		flags="$flags -DMMRACE_HAVE_PMD_DEVICE_PRIVATE"
	fi
	# mm_flags_test() (7.3): the mm flags as a bitmap; before it,
	# test_bit() on mm->flags.
	if has include/linux/mm.h 'bool mm_flags_test\('; then
		flags="$flags -DMMRACE_HAVE_MM_FLAGS_TEST"
	fi
	echo "${flags# }"
	;;
*)
	echo "module-features.sh: unknown mode '$mode' (missing or cflags)" >&2
	exit 2
	;;
esac
