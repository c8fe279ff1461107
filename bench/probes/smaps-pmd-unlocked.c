// SPDX-License-Identifier: GPL-2.0
/*
 * Probe for kernel/variants/smaps-pmd-unlocked (smaps_pte_range() accounts
 * a huge pmd without pmd_trans_huge_lock()). Usage: probe SECONDS [FILE]
 *
 * Maps one 2 MiB-aligned private anonymous THP (MADV_HUGEPAGE, stamped), and
 * runs two threads, one pinned to each CPU: a mover that migrates it between
 * node 0 and node 1 (mbind MPOL_BIND with MPOL_MF_MOVE: the huge pmd becomes
 * a migration entry and a new huge pmd, again and again), and a reader of
 * /proc/self/FILE (default smaps_rollup; smaps walks the same way). The
 * variant's walker reads the pmd once to decide and again for
 * vm_normal_page_pmd(): a migration entry installed between the two reads is
 * decoded as a present pmd ("BUG: Bad page map", caught by the harness).
 * After the run the stamps are checked (exit 1 on a lost one). Prints the
 * moves, the reads and vmstat's thp_migration_success every 10 s.
 *
 * Measured 2026-12-07 (this 2-core host, TCG, 2 vCPUs, load 8.2 to 9.0;
 * SCENARIO=exec DURATION=120 SEED=1): on the variant "WARNING in
 * softleaf_to_page" (a migration entry decoded after its migration ended:
 * the folio no longer locked) 5.0 s after the module's load, about 40 THP
 * migrations a second and 2,200 smaps_rollup reads, then "kernel BUG in
 * smaps_account" (VM_BUG_ON_FOLIO(!folio_test_large): the freed THP);
 * on the clean kernel clean for 110 s (4,800 THP migrations, 236,194
 * smaps_rollup reads; load 7.0).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEN (2UL << 20)
static char *region;
static const char *file = "smaps_rollup";
static volatile int stop;
static volatile long moves, reads;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *mover(void *arg)
{
	pin(0);
	for (unsigned long n = 0; !stop; n++) {
		unsigned long mask = 1UL << (n & 1);

		/* MPOL_BIND 2, MPOL_MF_MOVE 1 << 1 */
		if (!syscall(SYS_mbind, region, LEN, 2, &mask, 64, 1 << 1))
			moves++;
	}
	return arg;
}

static void *reader(void *arg)
{
	char path[64], buf[65536];

	pin(1);
	snprintf(path, sizeof(path), "/proc/self/%s", file);
	while (!stop) {
		int fd = open(path, O_RDONLY);

		while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
			;
		if (fd >= 0)
			close(fd);
		reads++;
	}
	return arg;
}

static long vmstat(const char *name)
{
	char line[128];
	long v = -1;
	size_t n = strlen(name);
	FILE *f = fopen("/proc/vmstat", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ' ')
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60;
	pthread_t m, r;
	char *raw;

	if (argc > 2)
		file = argv[2];
	raw = mmap(NULL, 2 * LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return 2;
	region = (char *)(((uintptr_t)raw + LEN - 1) & ~(LEN - 1));
	madvise(region, LEN, MADV_HUGEPAGE);
	for (unsigned long i = 0; i < LEN; i += 4096)
		*(uint64_t *)(region + i) = i | 1;
	pthread_create(&m, NULL, mover, NULL);
	pthread_create(&r, NULL, reader, NULL);
	for (int s = 0; s < secs; s++) {
		sleep(1);
		if (s % 10 == 9) {
			printf("t=%ds moves %ld reads %ld thp_migration_success %ld\n",
			       s + 1, moves, reads,
			       vmstat("thp_migration_success"));
			fflush(stdout);
		}
	}
	stop = 1;
	pthread_join(m, NULL);
	pthread_join(r, NULL);
	for (unsigned long i = 0; i < LEN; i += 4096)
		if (*(uint64_t *)(region + i) != (i | 1)) {
			printf("CORRUPTION at %#lx\n", i);
			return 1;
		}
	printf("clean: moves %ld reads %ld\n", moves, reads);
	return 0;
}
