/*
 * For the -f tests: the process calls work(0), forks a child that calls work(1),
 * waits for it, then starts a thread that calls work(2) and joins it. It prints
 * "pid CHILD THREAD" (the ids the tracer will show) on stderr.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long sink;
static volatile pid_t thread_tid;

__attribute__((noinline)) void work(long who)
{
	sink += who;
}

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	work(2);
	return NULL;
}

int main(void)
{
	work(0);
	pid_t child = fork();
	if (child == 0) {
		work(1);
		_exit(0);
	}
	waitpid(child, NULL, 0);
	pthread_t t;
	pthread_create(&t, NULL, thread_main, NULL);
	pthread_join(t, NULL);
	fprintf(stderr, "%d %d %d\n", getpid(), child, thread_tid);
	return 0;
}
