/* outer() calls inner() twice: nesting of program functions. */
volatile long sink;

__attribute__((noinline)) void inner(long i)
{
	sink += i;
}

__attribute__((noinline)) void outer(void)
{
	inner(1);
	inner(2);
}

int main(void)
{
	outer();
	return 0;
}
