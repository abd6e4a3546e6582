/*
 * Opens two files whose names live in memory that nothing has touched yet: each
 * name is in a file mapped with mmap and never read by this process, so its page
 * is not in the page tables when open is called. A BPF program cannot fault pages
 * in, so reading the name at the entry of open fails; the kernel's own copy of
 * the name (getname) faults it in, after which it can be read.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Writes `name` (with its NUL) to a file and maps it without touching it. */
static inline __attribute__((always_inline)) const char *untouched(const char *holder, const char *name)
{
	int fd = open(holder, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0 || write(fd, name, strlen(name) + 1) < 0) {
		perror(holder);
		exit(1);
	}
	void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	close(fd);
	return p;
}

__attribute__((noinline)) void via_libc(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
}

__attribute__((noinline)) void via_syscall(const char *path)
{
	long fd = syscall(SYS_open, path, O_CREAT | O_WRONLY, 0644);
	syscall(SYS_close, fd);
}

int main(void)
{
	const char *a = untouched("holder-a", "untouched-libc.txt");
	const char *b = untouched("holder-b", "untouched-syscall.txt");
	via_libc(a);
	via_syscall(b);
	return 0;
}
