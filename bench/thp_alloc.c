/* SPDX-License-Identifier: GPL-2.0 */
/*
 * thp_alloc: the writer of seed 000's reproducer (linux-mm, June 2016,
 * "mm: thp: move pmd check inside ptl for freeze_page()"), as posted:
 * 20 MiB at 0x700000000000, MADV_HUGEPAGE, memset forever. The shell
 * baseline (bench/seed-baseline.sh) starts it, races it and SIGKILLs it.
 * Built static by scripts/bench.sh, since the guest has no libc.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	size_t size = 2 * 1024 * 1024 * 10;
	char *p = mmap((void *)0x700000000000UL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	madvise(p, size, MADV_HUGEPAGE);
	while (1)
		memset(p, 0, size);
}
