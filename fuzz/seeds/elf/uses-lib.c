/* A tiny dynamic program importing versioned functions from lib.c. */
extern int lib_fn(void);
extern int api(void);
extern int fast(void);

__attribute__((noinline)) int native(void) { return lib_fn() + api() + fast(); }

void _start(void)
{
    native();
    __asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
}
