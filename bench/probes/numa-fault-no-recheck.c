// SPDX-License-Identifier: GPL-2.0
/*
 * Probe for kernel/variants/numa-fault-no-recheck (do_numa_page() without
 * the locked pte_same() recheck). Usage: probe SECONDS [ZAPPERS [PAGES [US [READERS]]]]
 *
 * Turns automatic NUMA balancing on (the guest boots with it off) with a
 * 10 ms scan period, maps PAGES (default 512) private anonymous small pages
 * (MADV_NOHUGEPAGE: ptes, so the hinting fault is do_numa_page()), and runs
 * two threads, one pinned to each CPU (each its own node), that read every
 * page and store the page's stamp where they find zero, and ZAPPERS (default
 * 1) threads that MADV_DONTNEED the whole region every 0 to US (default
 * 1000) microseconds. READERS 1: one reader on CPU 0 and the zappers
 * pinned to CPU 1, so reader and zapper always run at once. Every page
 * must hold zero or its stamp; anything else (a pte rebuilt from a zapped or
 * migrating one) ends the probe with exit 1. The kernel's own reports
 * (Bad page map, page-table-check BUG) end it through the harness.
 * Prints /proc/vmstat's NUMA counters every 10 s.
 *
 * Measured 2026-12-07 (this 2-core host, TCG, 2 vCPUs; SCENARIO=exec
 * DURATION=120 SEED=1) on the variant: clean both ways in 100 s, the
 * hinting faults paced by the scanner: "100 1" 669 numa_hint_faults (1983
 * pte updates, load 8.4), "100 1 1 20" 819 (838, load 6.4). "100 1 1 0 1"
 * (one reader, the zapper on the other CPU): caught 2 of 3 (BUG: Bad page
 * map in __zap_vma_range at 27.9 s, pfn 0 mapped; BUG: Bad page state in
 * do_wp_page at 94.1 s; clean with 917 hinting faults; load 2.8 to 4.0);
 * the clean kernel clean for 100 s (1,072 hinting faults, load 3.1).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
static unsigned long NPG = 512, LEN = 512 * PG, US = 1000, READERS = 2;
static char *region;
static volatile int stop;

static uint64_t stamp(unsigned long i) { return 0x5eed000000000000ULL | i; }

static void put(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(val, f) < 0 || fclose(f))
		fprintf(stderr, "cannot set %s\n", path);
}

static void vmstat(const char *when)
{
	char line[128];
	FILE *f = fopen("/proc/vmstat", "r");

	printf("%s:", when);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "numa_hint_faults ", 17) ||
		    !strncmp(line, "numa_pte_updates", 16) ||
		    !strncmp(line, "numa_pages_migrated", 19))
			printf(" %.*s", (int)strcspn(line, "\n"), line);
	printf("\n");
	fflush(stdout);
	if (f)
		fclose(f);
}

static void *reader(void *arg)
{
	long cpu = (long)arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (!stop)
		for (unsigned long i = 0; i < NPG; i++) {
			volatile uint64_t *p = (uint64_t *)(region + i * PG);
			uint64_t v = *p;

			if (v == 0)
				*p = stamp(i);
			else if (v != stamp(i)) {
				printf("CORRUPTION page %lu: %#llx, want 0 or %#llx\n",
				       i, (unsigned long long)v,
				       (unsigned long long)stamp(i));
				fflush(stdout);
				exit(1);
			}
		}
	return NULL;
}

static void *zapper(void *arg)
{
	unsigned int seed = (unsigned long)arg;

	if (READERS == 1) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(1, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	while (!stop) {
		madvise(region, LEN, MADV_DONTNEED);
		if (US)
			usleep(rand_r(&seed) % US);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60;
	long zappers = argc > 2 ? atol(argv[2]) : 1;
	pthread_t t[8];
	long n = 0;

	if (argc > 3)
		NPG = atol(argv[3]), LEN = NPG * PG;
	if (argc > 4)
		US = atol(argv[4]);
	if (argc > 5)
		READERS = atol(argv[5]) == 1 ? 1 : 2;

	put("/proc/sys/kernel/numa_balancing", "1");
	put("/sys/kernel/debug/sched/numa_balancing/scan_delay_ms", "0");
	put("/sys/kernel/debug/sched/numa_balancing/scan_period_min_ms", "10");
	put("/sys/kernel/debug/sched/numa_balancing/scan_period_max_ms", "100");
	region = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || madvise(region, LEN, MADV_NOHUGEPAGE))
		return 2;
	vmstat("start");
	for (long c = 0; c < (long)READERS; c++)
		pthread_create(&t[n++], NULL, reader, (void *)c);
	for (long z = 0; z < zappers && n < 8; z++)
		pthread_create(&t[n++], NULL, zapper, (void *)(z + 1));
	for (int s = 0; s < secs; s++) {
		sleep(1);
		if (s % 10 == 9)
			vmstat("t");
	}
	stop = 1;
	while (n--)
		pthread_join(t[n], NULL);
	vmstat("end");
	printf("clean\n");
	return 0;
}
