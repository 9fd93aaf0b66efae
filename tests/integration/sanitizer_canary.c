/* Does on purpose what kebun must never do, one fault per run, so that
 * test_sanitizers.py can prove the sanitizer build reports it in the words
 * kbtest looks for in kebun's log:
 *   sanitizer_canary leak       memory left unreachable at exit (LeakSanitizer)
 *   sanitizer_canary overflow   a write past a heap block (AddressSanitizer)
 *   sanitizer_canary undefined  a signed integer overflow (UBSan)
 * The values come from the command line so the compiler cannot fold the
 * fault away. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile kept;

/* Blocks whose only pointer is dropped. Several of them, made out of line
 * and with their addresses printed, so that neither the optimiser removes
 * the allocation nor a stale copy of one pointer on the stack hides them
 * all from LeakSanitizer. */
__attribute__((noinline)) static int leak(size_t n)
{
    for (int i = 0; i < 16; i++) {
        kept = malloc(n);
        if (!kept)
            return 2;
        memset(kept, 1, n);
        printf("%p\n", kept);
        kept = NULL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    size_t n = (size_t)argc * 16;

    if (strcmp(what, "leak") == 0)
        return leak(n);
    if (strcmp(what, "overflow") == 0) {
        char *p = malloc(n);
        if (!p)
            return 2;
        memset(p, 0, n + (size_t)argc);
        printf("%d\n", p[0]);
        free(p);
        return 0;
    }
    if (strcmp(what, "undefined") == 0) {
        int big = INT_MAX - 1 + (argc - 2);
        printf("%d\n", big + argc);
        return 0;
    }
    fprintf(stderr, "usage: sanitizer_canary leak|overflow|undefined\n");
    return 2;
}
