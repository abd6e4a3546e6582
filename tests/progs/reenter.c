/* Calls traced functions, returns to main between them and opens files there
 * too: system calls show only inside traced functions, and a thread's nesting
 * starts again from 0 at each outermost call. */
#include <fcntl.h>
#include <unistd.h>

static void touch(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd >= 0)
		close(fd);
}

__attribute__((noinline)) void inner(const char *path)
{
	touch(path);
}

__attribute__((noinline)) void outer(const char *path)
{
	inner(path);
}

int main(void)
{
	outer("inside-1");
	touch("outside-1");
	outer("inside-2");
	touch("outside-2");
	inner("inside-3");
	touch("outside-3");
	return 0;
}
