/*
 * file-io: the lab's program. Each of the three functions creates output.txt,
 * writes to it, then reopens it and reads it back: two opens each, made three
 * different ways.
 *
 *   native        through the C library's open(3) (glibc turns it into openat(2))
 *   with_syscall  through syscall(2) with SYS_open, so the open(2) system call itself
 *   with_asm      through the x86-64 `syscall` instruction written inline
 *
 * `./file-io buggy` makes with_asm reproduce the bug behind the lab's mysterious
 * extra "open" lines (see `buggy` below).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FILE_NAME "output.txt"
#define MESSAGE "hello from file-io\n"

static char buffer[64];

static void check(long result, const char *what)
{
	if (result < 0) {
		fprintf(stderr, "file-io: %s failed (%ld)\n", what, result);
	}
}

__attribute__((noinline)) void native(void)
{
	int fd = open(FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	check(fd, "open for writing");
	check(write(fd, MESSAGE, strlen(MESSAGE)), "write");
	close(fd);

	fd = open(FILE_NAME, O_RDONLY);
	check(fd, "open for reading");
	check(read(fd, buffer, sizeof(buffer)), "read");
	close(fd);
}

__attribute__((noinline)) void with_syscall(void)
{
	long fd = syscall(SYS_open, FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	check(fd, "SYS_open for writing");
	check(syscall(SYS_write, fd, MESSAGE, strlen(MESSAGE)), "SYS_write");
	syscall(SYS_close, fd);

	fd = syscall(SYS_open, FILE_NAME, O_RDONLY);
	check(fd, "SYS_open for reading");
	check(syscall(SYS_read, fd, buffer, sizeof(buffer)), "SYS_read");
	syscall(SYS_close, fd);
}

/*
 * One raw system call. The kernel takes the number in rax and the arguments in
 * rdi, rsi, rdx; it returns in rax and clobbers rcx and r11. Telling the compiler
 * all of that (and "memory", since the kernel reads and writes our buffers) is
 * what makes this correct.
 */
static long raw_syscall3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

/*
 * Set by `./file-io buggy`: reproduces the lab author's bug. The close is then a
 * copy of the open's inline assembly in which only the argument was changed: the
 * system call number is still SYS_open (2), so "close(fd)" really asks the kernel
 * for open((const char *)fd, 0, 0). The descriptor (3, 4, ...) is not a valid
 * pointer: the kernel answers -EFAULT, nothing is closed, and a tracer sees an
 * extra open whose file name cannot be read (bpftrace prints an empty argument).
 */
static int buggy;

__attribute__((noinline)) void with_asm(void)
{
	long close_nr = buggy ? SYS_open : SYS_close;
	long fd = raw_syscall3(SYS_open, (long)FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	check(fd, "asm open for writing");
	check(raw_syscall3(SYS_write, fd, (long)MESSAGE, strlen(MESSAGE)), "asm write");
	raw_syscall3(close_nr, fd, 0, 0);

	fd = raw_syscall3(SYS_open, (long)FILE_NAME, O_RDONLY, 0);
	check(fd, "asm open for reading");
	check(raw_syscall3(SYS_read, fd, (long)buffer, sizeof(buffer)), "asm read");
	raw_syscall3(close_nr, fd, 0, 0);
}

int main(int argc, char **argv)
{
	buggy = argc > 1 && strcmp(argv[1], "buggy") == 0;
	native();
	with_syscall();
	with_asm();
	return 0;
}
