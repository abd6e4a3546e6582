/*
 * A program for the exit-path tests. `lifecycle MODE`:
 *   sleep   calls lc_step() then sleeps 60 s (to be interrupted)
 *   crash   calls lc_step() then dereferences NULL
 *   many N  calls lc_step() N times
 *   tick N  calls lc_step() every 50 ms, N times
 *   daemon  leaves a child in a session of its own (setsid) that calls
 *           lc_step() and sleeps 60 s, and exits
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) void lc_step(long i)
{
	sink += i;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "sleep";
	lc_step(1);
	if (strcmp(mode, "crash") == 0) {
		volatile int *p = NULL;
		return *p;
	}
	if (strcmp(mode, "many") == 0) {
		long n = argc > 2 ? atol(argv[2]) : 1000;
		for (long i = 0; i < n; i++)
			lc_step(i);
		return 0;
	}
	if (strcmp(mode, "tick") == 0) {
		long n = argc > 2 ? atol(argv[2]) : 1000;
		for (long i = 0; i < n; i++) {
			usleep(50000);
			lc_step(i);
		}
		return 0;
	}
	if (strcmp(mode, "daemon") == 0) {
		if (fork() == 0) {
			setsid();
			lc_step(2);
			sleep(60);
		}
		return 0;
	}
	sleep(60);
	return 0;
}
