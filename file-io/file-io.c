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

/*
 * Reports a failed call on stderr (and carries on, as the lab's program does).
 * CHECK and RAW_SYSCALL3 below are macros, not functions, on purpose: the lab's
 * program defines native, with_syscall, with_asm and main only, and a tracer that
 * traces every function of the program (`trace ./file-io`) must see those alone.
 * A static helper is a real function at -O0 (what `gcc -g -o file-io file-io.c`
 * gives), -O1 and -Os: its `> check` / `< check` lines would break the lab's
 * output.
 */
#define CHECK(result, what)                                                    \
	do {                                                                   \
		long check_result = (result);                                  \
		if (check_result < 0) {                                        \
			fprintf(stderr, "file-io: %s failed (%ld)\n", (what), \
				check_result);                                 \
		}                                                              \
	} while (0)

__attribute__((noinline)) void native(void)
{
	int fd = open(FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd, "open for writing");
	CHECK(write(fd, MESSAGE, strlen(MESSAGE)), "write");
	close(fd);

	fd = open(FILE_NAME, O_RDONLY);
	CHECK(fd, "open for reading");
	CHECK(read(fd, buffer, sizeof(buffer)), "read");
	close(fd);
}

__attribute__((noinline)) void with_syscall(void)
{
	long fd = syscall(SYS_open, FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd, "SYS_open for writing");
	CHECK(syscall(SYS_write, fd, MESSAGE, strlen(MESSAGE)), "SYS_write");
	syscall(SYS_close, fd);

	fd = syscall(SYS_open, FILE_NAME, O_RDONLY);
	CHECK(fd, "SYS_open for reading");
	CHECK(syscall(SYS_read, fd, buffer, sizeof(buffer)), "SYS_read");
	syscall(SYS_close, fd);
}

/*
 * One raw system call, as an expression whose value is the kernel's answer (a GNU
 * C statement expression, so that no function of its own appears in the program).
 * The kernel takes the number in rax and the arguments in rdi, rsi, rdx; it
 * returns in rax and clobbers rcx and r11. Telling the compiler all of that (and
 * "memory", since the kernel reads and writes our buffers) is what makes this
 * correct. The arguments are evaluated into variables first, so an argument that
 * calls a function (strlen) is done before any register is loaded.
 */
#define RAW_SYSCALL3(nr, a, b, c)                                              \
	({                                                                     \
		long raw_nr = (long)(nr), raw_a = (long)(a);                   \
		long raw_b = (long)(b), raw_c = (long)(c), raw_ret;            \
		__asm__ volatile("syscall"                                     \
				 : "=a"(raw_ret)                               \
				 : "a"(raw_nr), "D"(raw_a), "S"(raw_b),        \
				   "d"(raw_c)                                  \
				 : "rcx", "r11", "memory");                    \
		raw_ret;                                                       \
	})

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
	long fd = RAW_SYSCALL3(SYS_open, (long)FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd, "asm open for writing");
	CHECK(RAW_SYSCALL3(SYS_write, fd, (long)MESSAGE, strlen(MESSAGE)), "asm write");
	RAW_SYSCALL3(close_nr, fd, 0, 0);

	fd = RAW_SYSCALL3(SYS_open, (long)FILE_NAME, O_RDONLY, 0);
	CHECK(fd, "asm open for reading");
	CHECK(RAW_SYSCALL3(SYS_read, fd, (long)buffer, sizeof(buffer)), "asm read");
	RAW_SYSCALL3(close_nr, fd, 0, 0);
}

int main(int argc, char **argv)
{
	buggy = argc > 1 && strcmp(argv[1], "buggy") == 0;
	native();
	with_syscall();
	with_asm();
	return 0;
}
