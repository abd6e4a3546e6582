/* A tiny program without the C library: local, weak and global functions, an
 * inline syscall, and its own _start. Seed for the elf_resolve fuzz target. */
static __attribute__((noinline)) int helper(int x) { return x * 3; }

__attribute__((weak, noinline)) int weak_fn(int x) { return x + 1; }

__attribute__((noinline)) int native(int x) { return helper(x) + weak_fn(x); }

__attribute__((noinline)) long with_asm(void)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", "memory");
    return r;
}

void _start(void)
{
    native((int)with_asm());
    __asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
}
