/*
 * Opens files whose names hold what a terminal obeys or what forges the
 * trace's own lines, and a name longer than a probe reads; its command name
 * (comm) holds ESC too, and so does one of its functions' names. None of the
 * files exists: the opens fail, and are
 * traced all the same.
 *
 * The name given as argument 1, if any, is opened first (a command argument
 * that is not UTF-8).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const names[] = {
	"esc-\033]0;owned\007-\033[2J-end",	/* sets the window title, clears the screen */
	"nl-x\n.. exit open\n> forged",		/* forges the lab's lines */
	"byte-\377-\303\251-\302\233-end",	/* not UTF-8; é; C1 CSI */
	"tab-\t-cr-\r-del-\177-bs-\\n-end",	/* a real backslash then n */
};

/* One open through libc (-L open) and one through the system call (-s open). */
__attribute__((noinline)) void open_one(const char *name)
{
	int fd = open(name, O_RDONLY);
	if (fd >= 0)
		close(fd);
	fd = syscall(SYS_open, name, O_RDONLY);
	if (fd >= 0)
		close(fd);
}

__attribute__((noinline)) void open_names(int argc, char **argv)
{
	if (argc > 1)
		open_one(argv[1]);
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		open_one(names[i]);
}

/* 300 bytes: more than the 255 a probe reads. */
__attribute__((noinline)) void open_long(void)
{
	char name[301];
	memset(name, 'x', 300);
	memcpy(name, "long-", 5);
	name[300] = 0;
	open_one(name);
}

/* A function whose symbol holds ESC (the quotes make the assembler take it). */
__attribute__((noinline)) void evil_name(void) __asm__("\"fn\033[2J\"");
void evil_name(void)
{
	__asm__ volatile("");
}

int main(int argc, char **argv)
{
	prctl(PR_SET_NAME, "cm\033[2Jd\n", 0, 0, 0);
	open_names(argc, argv);
	open_long();
	evil_name();
	return 0;
}
