/*
 * threaded: a second thread calls tick() every 20 ms, for ever; the program
 * prints that thread's id (not the process's) and waits. For `trace -p TID`.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) void tick(long i)
{
	sink += i;
}

static void *ticker(void *arg)
{
	(void)arg;
	printf("%d\n", gettid());
	fflush(stdout);
	for (long i = 0;; i++) {
		usleep(20000);
		tick(i);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, ticker, NULL);
	pthread_join(t, NULL);
	return 0;
}
