/* Calls tick() N times (N = argv[1]): 2N events under `trace -u tick`. */
#include <stdlib.h>

volatile long sink;

__attribute__((noinline)) void tick(long i)
{
	sink += i;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	for (long i = 0; i < n; i++)
		tick(i);
	return 0;
}
