/*
 * burst N: calls hit() N times in a tight loop, so a tracer with
 * uprobe+uretprobe on hit() is sent exactly 2N events.
 *
 * The loop runs pinned to CPU 0 under SCHED_FIFO: on a one-CPU machine the
 * tracer (SCHED_OTHER) cannot run until the loop ends (unless the kernel's RT
 * throttling lets it in for a moment), so a small ring fills and the kernel
 * drops events, including the last ones. The kernel reports drops in the ring
 * (PERF_RECORD_LOST) only with the next event it manages to write, which never
 * comes for those last ones: only a count kept by the tracer's own programs
 * accounts for all of them.
 *
 * Prints nothing; exit status 1 with a message when the scheduling calls fail,
 * 2 on a bad argument.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/* The traced function: not inlined, not merged away. */
__attribute__((noinline)) long hit(long i)
{
	__asm__ volatile("" ::: "memory");
	return i + 1;
}

int main(int argc, char **argv)
{
	char *end = NULL;
	long n = argc == 2 ? strtol(argv[1], &end, 10) : -1;
	if (n < 1 || *end != '\0') {
		fprintf(stderr, "usage: burst N (N >= 1 calls)\n");
		return 2;
	}
	cpu_set_t cpu0;
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	if (sched_setaffinity(0, sizeof(cpu0), &cpu0) != 0) {
		perror("burst: sched_setaffinity(CPU 0)");
		return 1;
	}
	struct sched_param fifo = { .sched_priority = 1 };
	if (sched_setscheduler(0, SCHED_FIFO, &fifo) != 0) {
		perror("burst: sched_setscheduler(SCHED_FIFO)");
		return 1;
	}
	long sum = 0;
	for (long i = 0; i < n; i++)
		sum += hit(i);
	/* sum = 1 + 2 + ... + n: checked so the calls cannot be optimised away. */
	return sum == n * (n + 1) / 2 ? 0 : 3;
}
