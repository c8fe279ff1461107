/*
 * Probe for kernel/variants/madv-free-ignore-gup-ref.patch, after the
 * upstream repro of 6c8e2a256915: an O_DIRECT read from a block device
 * (the block layer's own direct I/O dirties the pinned page only when
 * the read has completed) into MADV_FREE'd anonymous memory, while
 * another thread reclaims that memory with MADV_PAGEOUT. The device is
 * the guest's zram (set up here if it has no size yet), filled with a
 * pattern. After each read that returned a whole page, the page must
 * hold the pattern; zero means reclaim discarded the lazyfree page
 * under the read.
 * Usage: madv-free-ignore-gup-ref SECONDS [DEVICE]  exit 1 on the symptom.
 * Measured 2026-12-07 (exec, 2-core host, TCG, load 3.0 to 4.1): the
 * variant, LOST at 0.2 s (read 2,205: page 12 read zero); the clean
 * kernel, 110 s: 1,459,664 reads, 395,542 pageouts, 0 lost.
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
#define PAGES 16
static volatile int stop;
static unsigned char *buf;
static unsigned long pageouts;

static void *reclaimer(void *a)
{
	(void)a;
	while (!stop) {
		madvise(buf, PAGES * PG, MADV_PAGEOUT);
		pageouts++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60;
	const char *dev = argc > 2 ? argv[2] : "/dev/zram0";
	unsigned long reads = 0, lost = 0;
	time_t end = time(NULL) + secs;
	pthread_t t;
	int fd, wfd;
	static unsigned char pat[PG] __attribute__((aligned(PG)));
	FILE *f = fopen("/sys/block/zram0/disksize", "r+");

	if (f) { /* a zram of 64 MiB unless it has a size (it may be swap) */
		unsigned long sz = 0;

		if (fscanf(f, "%lu", &sz) == 1 && !sz)
			fprintf(f, "%d\n", 64 << 20);
		fclose(f);
	}
	memset(pat, 0xa5, PG);
	wfd = open(dev, O_WRONLY);
	for (int i = 0; wfd >= 0 && i < PAGES; i++)
		if (pwrite(wfd, pat, PG, (off_t)i * PG) != PG)
			return perror("pwrite"), 2;
	fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0 || wfd < 0)
		return perror(dev), 2;
	fsync(wfd);
	buf = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(buf, PAGES * PG, MADV_NOHUGEPAGE);
	pthread_create(&t, NULL, reclaimer, NULL);
	while (time(NULL) < end && !lost) {
		memset(buf, 0x11, PAGES * PG);	/* fault in, dirty */
		madvise(buf, PAGES * PG, MADV_FREE);	/* clean, lazyfree */
		for (int i = 0; i < PAGES; i++) {
			if (pread(fd, buf + i * PG, PG, (off_t)i * PG) != PG)
				continue;
			reads++;
			if (buf[i * PG] != 0xa5 || buf[i * PG + PG - 1] != 0xa5) {
				printf("LOST: page %d reads %#x after its O_DIRECT read (read %lu)\n",
				       i, buf[i * PG], reads);
				lost++;
			}
		}
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("%lu reads, %lu pageouts, %lu lost\n", reads, pageouts, lost);
	return lost ? 1 : 0;
}
