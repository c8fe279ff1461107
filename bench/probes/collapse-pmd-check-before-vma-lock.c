// SPDX-License-Identifier: GPL-2.0
/*
 * Probe for kernel/variants/collapse-pmd-check-before-vma-lock
 * (collapse_huge_page() rechecks the pmd before vma_start_write()).
 * Usage: probe SECONDS
 *
 * The upstream report's shape: one 2 MiB-aligned private anonymous range
 * mapped by ptes (THP "madvise" mode, no MADV_HUGEPAGE: every fault is a
 * small page), a collapser thread that stores to all 512 pages and calls
 * MADV_COLLAPSE, again and again, and a zapper thread that MADV_DONTNEEDs
 * the whole range every 0-200 us. MADV_DONTNEED runs under the per-VMA read
 * lock only and, with CONFIG_PT_RECLAIM, frees the pte table it emptied:
 * freed after the collapse's check and before its vma_start_write(), the
 * collapse goes on with a pmd whose table is gone (an Oops, Bad page map or
 * page-table-check BUG, caught by the harness). Every page must read zero
 * or the collapser's stamp (exit 1 otherwise). Prints the collapses tried
 * and done and the zaps every 10 s. Restores the THP mode at the end.
 *
 * Measured 2026-12-07 (this 2-core host, TCG, 2 vCPUs, load 9.4; SCENARIO=exec
 * DURATION=120 SEED=1): on the variant "BUG: Bad page map in
 * __zap_vma_range" (pte f000ff53f000ff53: BIOS data at pfn 0 read as ptes)
 * 2.6 s after the module's load, then "Oops: Bad pagetable"; on the clean
 * kernel clean for 110 s (80,422 collapses tried, 79,666 done, 8,376 zaps;
 * load 9.1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LEN (2UL << 20)
#define PG 4096UL
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define THP "/sys/kernel/mm/transparent_hugepage/enabled"
static char *region;
static volatile int stop;
static volatile long tried, done, zaps;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void check(unsigned long i, uint64_t v)
{
	if (v && v != (0xc011a95e00000000ULL | i)) {
		printf("CORRUPTION page %lu: %#llx\n", i, (unsigned long long)v);
		fflush(stdout);
		exit(1);
	}
}

static void *collapser(void *arg)
{
	pin(0);
	while (!stop) {
		for (unsigned long i = 0; i < LEN / PG; i++) {
			volatile uint64_t *p = (uint64_t *)(region + i * PG);

			check(i, *p);
			*p = 0xc011a95e00000000ULL | i;
		}
		tried++;
		if (!madvise(region, LEN, MADV_COLLAPSE))
			done++;
	}
	return arg;
}

static void *zapper(void *arg)
{
	unsigned int seed = 1;

	pin(1);
	while (!stop) {
		madvise(region, LEN, MADV_DONTNEED);
		zaps++;
		usleep(rand_r(&seed) % 200);
	}
	return arg;
}

static void thp_mode(const char *mode, char *old, size_t n)
{
	FILE *f = fopen(THP, "r");

	if (old && f && fgets(old, n, f)) {
		char *s = strchr(old, '[');

		if (s) {
			memmove(old, s + 1, strlen(s));
			old[strcspn(old, "]")] = 0;
		}
	}
	if (f)
		fclose(f);
	f = fopen(THP, "w");
	if (!f || fputs(mode, f) < 0 || fclose(f))
		fprintf(stderr, "cannot set %s to %s\n", THP, mode);
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60;
	char old[128] = "always";
	pthread_t c, z;
	char *raw;

	thp_mode("madvise", old, sizeof(old));
	raw = mmap(NULL, 2 * LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return 2;
	region = (char *)(((uintptr_t)raw + LEN - 1) & ~(LEN - 1));
	pthread_create(&c, NULL, collapser, NULL);
	pthread_create(&z, NULL, zapper, NULL);
	for (int s = 0; s < secs; s++) {
		sleep(1);
		if (s % 10 == 9) {
			printf("t=%ds collapses %ld tried %ld done, zaps %ld\n",
			       s + 1, tried, done, zaps);
			fflush(stdout);
		}
	}
	stop = 1;
	pthread_join(c, NULL);
	pthread_join(z, NULL);
	thp_mode(old, NULL, 0);
	printf("clean: collapses %ld tried %ld done, zaps %ld\n", tried, done,
	       zaps);
	return 0;
}
