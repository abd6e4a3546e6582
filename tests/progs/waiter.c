/*
 * waiter: blocks reading stdin, then opens a file three ways, like file-io.
 * Tests use it to keep a traced program (and so the tracer's loaded programs)
 * alive while they look at the kernel's side with bpftool, then close its stdin
 * to let it finish.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) void work(void)
{
	int fd = open("/dev/null", O_RDONLY);
	close(fd);
	fd = syscall(SYS_open, "/dev/null", O_RDONLY);
	close(fd);
}

int main(void)
{
	char c;
	while (read(0, &c, 1) > 0) {
	}
	work();
	return 0;
}
