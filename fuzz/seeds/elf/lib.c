/* A tiny shared library: two versions of one function (api@VER_1 and the
 * default api@@VER_2), an IFUNC, and a plain export. */
__attribute__((noinline)) int lib_fn(void) { return 7; }

int old_api(void) { return 1; }
int new_api(void) { return 2; }
__asm__(".symver old_api, api@VER_1");
__asm__(".symver new_api, api@@VER_2");

static int fast_impl(void) { return 3; }
static void *resolve_fast(void) { return (void *)fast_impl; }
int fast(void) __attribute__((ifunc("resolve_fast")));
