/*
 * bpf-progs: prints how many BPF programs the kernel has loaded (walking their
 * ids with BPF_PROG_GET_NEXT_ID), so a test can check that a tracer left none
 * behind. Needs root (CAP_SYS_ADMIN). Exit status 1 with a message on error.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	union bpf_attr attr;
	unsigned int id = 0;
	long count = 0;
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.start_id = id;
		if (syscall(SYS_bpf, BPF_PROG_GET_NEXT_ID, &attr, sizeof(attr)) != 0) {
			if (errno == ENOENT)
				break;
			perror("bpf-progs: BPF_PROG_GET_NEXT_ID");
			return 1;
		}
		id = attr.next_id;
		count++;
	}
	printf("%ld\n", count);
	return 0;
}
