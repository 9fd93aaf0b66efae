/* A slow disk for reads, preloaded into kebun by
 * tests/integration/test_shutdown.py: opening a file whose name ends in
 * KEBUN_TEST_SLOW_SUFFIX for reading only takes KEBUN_TEST_SLOW_MS longer.
 * With ".m4s" only an export is slowed down (the segmenter writes its
 * segments under a .tmp name); everything else goes to the C library as
 * it is. */

/* Both open and open64 are defined here: the headers must not turn one
 * into the other. */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*open_fn)(const char *, int, ...);

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);

static void maybe_wait(const char *path, int flags)
{
    const char *suffix = getenv("KEBUN_TEST_SLOW_SUFFIX");
    const char *ms = getenv("KEBUN_TEST_SLOW_MS");
    size_t n = strlen(path), k = suffix ? strlen(suffix) : 0;
    if (!k || !ms || (flags & O_ACCMODE) != O_RDONLY || n < k || strcmp(path + n - k, suffix))
        return;
    long d = strtol(ms, NULL, 10);
    struct timespec ts = {.tv_sec = d / 1000, .tv_nsec = (d % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int call(const char *name, const char *path, int flags, va_list ap)
{
    open_fn real = (open_fn)dlsym(RTLD_NEXT, name);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    maybe_wait(path, flags);
    return real ? real(path, flags, mode) : -1;
}

/* open and open64 alike: the mode argument is passed on when there is one. */
#define SLOW_OPEN(name)                                                                            \
    int name(const char *path, int flags, ...)                                                     \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        int fd = call(#name, path, flags, ap);                                                     \
        va_end(ap);                                                                                \
        return fd;                                                                                 \
    }

SLOW_OPEN(open)
SLOW_OPEN(open64)
