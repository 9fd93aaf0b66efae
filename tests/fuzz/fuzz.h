/* kebun: what the fuzz targets and the replay driver share.
 *
 * A target is a libFuzzer entry point; the same object links either with
 * libFuzzer (-Dfuzz=true, clang) or with replay.c, which runs it over the
 * committed corpus in every build. Besides the sanitizers, the targets
 * check the documented contracts of the code they drive; a broken contract
 * aborts with the condition, so libFuzzer keeps the input like a crash.
 */
#ifndef KB_FUZZ_H
#define KB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void kb__fuzz_fail(const char *file, int line, const char *cond)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
    abort();
}

#define KB_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            kb__fuzz_fail(__FILE__, __LINE__, #cond);                                              \
    } while (0)

#endif
