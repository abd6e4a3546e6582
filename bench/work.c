/*
 * work: the benchmark's workloads. Each mode writes what it measured (CLOCK_MONOTONIC
 * nanoseconds) to REPORT as `key=value` lines, so the tracer's output and the
 * workload's figures never mix.
 *
 *   work start REPORT              start_ns at the top of main, then exit
 *   work lab N REPORT [RATE]       N rounds of file-io's three functions (18 events a
 *                                  round under the lab's probes)
 *   work func N REPORT [RATE]      N calls of the empty program function work_fn
 *   work libopen N REPORT [RATE]   N x libc open("output.txt") + close
 *   work sysopen N REPORT [RATE]   N x syscall(SYS_open, "output.txt") + close
 *
 * RATE, when given and not 0, paces the rounds to at most RATE a second.
 * Besides start_ns, the modes report loop_ns and loop_cpu_ns (wall clock and this
 * process's CPU time for the N rounds: uprobe and tracepoint programs run in the
 * process's context, so their cost is in its CPU time), cpu_ns (the process's CPU
 * time at the end, so a harness can tell the tracer's CPU from ours) and n.
 *
 * The only program functions are file-io's native, with_syscall, with_asm (from
 * file-io/file-io.c itself, included below) and work_fn (left out when built with
 * -DLAB_ONLY): file-io.c's error check and raw system call are macros, so the
 * default probe set of `trace ./work-lab` (every program function) is the lab's.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * The lab's own program, compiled in: its native, with_syscall and with_asm
 * (and FILE_NAME) are the ones measured here. Its main becomes file_io_main,
 * declared static first so that it has internal linkage: never called, the
 * compiler drops it, and it adds no program function to the probe set.
 */
#define main file_io_main
static int file_io_main(int argc, char **argv) __attribute__((unused));
#include "../file-io/file-io.c"
#undef main

#define INLINE static inline __attribute__((always_inline))

INLINE long long clock_ns(clockid_t clock)
{
	struct timespec t;
	clock_gettime(clock, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

INLINE long long now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

INLINE long long cpu_ns(void)
{
	return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* Waits for the next round's time when paced (period_ns > 0). */
INLINE void pace(long long period_ns, long long *next)
{
	if (period_ns <= 0)
		return;
	*next += period_ns;
	while (now_ns() < *next) {
	}
}

/* Stops the benchmark when one of its own calls fails (file-io's CHECK only reports). */
INLINE void must(long result, const char *what)
{
	if (result < 0) {
		fprintf(stderr, "work: %s failed (%ld)\n", what, result);
		exit(1);
	}
}

#ifndef LAB_ONLY
/* An empty function: the cost of its probes is all there is to measure. */
__attribute__((noinline)) void work_fn(void)
{
	__asm__ volatile("" ::: "memory");
}
#endif

/* One round of a mode. */
INLINE int round_of(const char *mode)
{
	if (strcmp(mode, "lab") == 0) {
		native();
		with_syscall();
		with_asm();
	} else if (strcmp(mode, "libopen") == 0) {
		int fd = open(FILE_NAME, O_RDONLY);
		must(fd, "open");
		close(fd);
	} else if (strcmp(mode, "sysopen") == 0) {
		long fd = syscall(SYS_open, FILE_NAME, O_RDONLY);
		must(fd, "SYS_open");
		close((int)fd);
#ifndef LAB_ONLY
	} else if (strcmp(mode, "func") == 0) {
		work_fn();
#endif
	} else {
		return -1;
	}
	return 0;
}

INLINE void report(const char *path, long long start, long long loop, long long loop_cpu, long n)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fprintf(f, "start_ns=%lld\nloop_ns=%lld\nloop_cpu_ns=%lld\nn=%ld\ncpu_ns=%lld\n", start, loop,
		loop_cpu, n, cpu_ns());
	if (fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long long start = now_ns();
	if (argc == 3 && strcmp(argv[1], "start") == 0) {
		/* Only the start time: no file I/O before it is noted. */
		FILE *f = fopen(argv[2], "w");
		if (!f || fprintf(f, "start_ns=%lld\n", start) < 0 || fclose(f) != 0) {
			perror(argv[2]);
			return 1;
		}
		return 0;
	}
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: work start REPORT | work lab|func|libopen|sysopen N REPORT [RATE]\n");
		return 2;
	}
	const char *mode = argv[1];
	long n = atol(argv[2]);
	double rate = argc > 4 ? atof(argv[4]) : 0;
	long long period = rate > 0 ? (long long)(1e9 / rate) : 0;
	/* Make the file exist before timing (the opens read it). */
	close(open(FILE_NAME, O_CREAT | O_WRONLY, 0644));
	long long t0 = now_ns(), c0 = cpu_ns(), next = t0;
	for (long i = 0; i < n; i++) {
		pace(period, &next);
		if (round_of(mode) != 0) {
			fprintf(stderr, "work: unknown mode %s\n", mode);
			return 2;
		}
	}
	long long loop = now_ns() - t0, loop_cpu = cpu_ns() - c0;
	report(argv[3], start, loop, loop_cpu, n);
	return 0;
}
