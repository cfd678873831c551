/*
 * tools/workloads/mmaprand.c — random page reads through a shared read-only mmap of a file.
 *
 *   mmaprand [-r] [-s SEED] FILE TOUCHES
 *
 * Maps FILE, reads one byte from TOUCHES pages chosen uniformly at random (xorshift64*, seeded
 * by SEED, default 1) and prints what it did. -r applies MADV_RANDOM first (no fault-around
 * readahead beyond the faulting page). Builds with any C99 compiler; link with -static for
 * systems without a C library.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mmaprand [-r] [-s SEED] FILE TOUCHES\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = 1, touches;
	int madv_random = 0, opt;

	while ((opt = getopt(argc, argv, "rs:h")) != -1) {
		switch (opt) {
		case 'r':
			madv_random = 1;
			break;
		case 's':
			if (parse_u64(optarg, &seed)) {
				fprintf(stderr, "mmaprand: error: bad seed '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	const char *path = argv[optind];
	if (parse_u64(argv[optind + 1], &touches)) {
		fprintf(stderr, "mmaprand: error: bad TOUCHES '%s'\n", argv[optind + 1]);
		return 2;
	}
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "mmaprand: error: %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		fprintf(stderr, "mmaprand: error: %s: empty or unreadable\n", path);
		return 1;
	}
	long psz = sysconf(_SC_PAGESIZE);
	uint64_t pages = ((uint64_t)st.st_size + (uint64_t)psz - 1) / (uint64_t)psz;
	volatile unsigned char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "mmaprand: error: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (madv_random && madvise((void *)map, (size_t)st.st_size, MADV_RANDOM) < 0)
		fprintf(stderr, "mmaprand: warning: madvise(MADV_RANDOM): %s\n", strerror(errno));

	rng_state = seed ? seed : 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long sum = 0;
	unsigned char *seen = calloc((size_t)pages, 1);
	uint64_t distinct = 0;
	for (uint64_t i = 0; i < touches; i++) {
		uint64_t pg = rng_next() % pages;
		sum += map[pg * (uint64_t)psz];
		if (seen && !seen[pg]) {
			seen[pg] = 1;
			distinct++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("mmaprand: %s: %llu pages of %ld bytes mapped shared read-only%s; %llu random touches "
	       "(seed %llu) hit %llu distinct pages in %.3f s (checksum %lu)\n",
	       path, (unsigned long long)pages, psz, madv_random ? " with MADV_RANDOM" : "",
	       (unsigned long long)touches, (unsigned long long)seed, (unsigned long long)distinct,
	       secs, sum);
	munmap((void *)map, (size_t)st.st_size);
	close(fd);
	free(seen);
	return 0;
}
