/*
 * Probe for kernel/variants/map-pages-punched-folio.patch: fault-around
 * against a hole punch on one memfd (small folios). R loops: MADV_DONTNEED
 * of a 64 KiB window, then a read of one page of it (fault-around maps the
 * window's cached folios). P loops: punch a page, read it through the
 * mapping (must be zero), pwrite it again. Non-zero: a folio no longer in
 * the file, mapped by fault-around. At the end, mapping against pread.
 * Usage: SECONDS [PAGES [INJECT]], exit 1 on the symptom; INJECT, a delay
 * (docs/amplification.md): next_uptodate_folio+0x123,delay_us=200,every_nth=0,probability_pct=50
 * Measured 2026-12-07 (exec, 2-core host, TCG, load 7 to 11): variant, 256
 * pages, 110 s: 0 stale (24,832 punches); 16 pages, 100 s: 0 (7,136); 16
 * pages with that delay at the trylock: STALE at 7.3 s (punch 417); the
 * clean kernel with that delay, 100 s: 0 (3,520 punches).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096
static int fd, npages = 256, stop;
static volatile unsigned char *map;
static unsigned long faults, punches, stale;

static void *reader(void *a)
{
	(void)a;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		for (int w = 0; w < npages; w += 16) {
			madvise((void *)(map + (size_t)w * PG), 16 * PG, MADV_DONTNEED);
			(void)map[(size_t)(w + (faults & 15)) * PG];
			faults++;
		}
	}
	return NULL;
}

static void *puncher(void *a)
{
	static char buf[PG];
	(void)a;
	memset(buf, 0x5a, PG);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		for (int p = 0; p < npages; p++) {
			off_t off = (off_t)p * PG;
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, PG))
				perror("fallocate"), exit(2);
			punches++;
			if (map[off] != 0 || map[off + PG - 1] != 0)
				stale++, printf("STALE: page %d reads %#x after its punch (punch %lu)\n",
						p, map[off], punches);
			if (pwrite(fd, buf, PG, off) != PG)
				perror("pwrite"), exit(2);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60;
	pthread_t r, p;
	char buf[PG];

	if (argc > 2)
		npages = atoi(argv[2]);
	if (argc > 3) { /* mmrace.ko's inject/add line, commas for spaces */
		FILE *f = fopen("/sys/kernel/debug/mmrace/inject/add", "w");

		for (char *c = argv[3]; *c; c++)
			*c = *c == ',' ? ' ' : *c;
		if (!f || fprintf(f, "%s\n", argv[3]) < 0 || fclose(f))
			return perror("inject/add"), 2;
	}
	fd = memfd_create("punch", 0);
	if (fd < 0 || ftruncate(fd, (off_t)npages * PG))
		return perror("memfd"), 2;
	map = mmap(NULL, (size_t)npages * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return perror("mmap"), 2;
	madvise((void *)map, (size_t)npages * PG, MADV_NOHUGEPAGE);
	pthread_create(&r, NULL, reader, NULL);
	pthread_create(&p, NULL, puncher, NULL);
	for (int s = 0; s < secs && !stale; s++) {
		sleep(1);
		if (s % 10 == 9)
			printf("%ds: %lu faults, %lu punches\n", s + 1, faults, punches);
	}
	stop = 1;
	pthread_join(r, NULL);
	pthread_join(p, NULL);
	for (int q = 0; q < npages; q++) {
		if (pread(fd, buf, PG, (off_t)q * PG) != PG)
			return perror("pread"), 2;
		if (map[(size_t)q * PG] != (unsigned char)buf[0])
			stale++, printf("STALE at end: page %d maps %#x, file %#x\n", q,
					map[(size_t)q * PG], (unsigned char)buf[0]);
	}
	printf("%lu faults, %lu punches, %lu stale\n", faults, punches, stale);
	return stale ? 1 : 0;
}
