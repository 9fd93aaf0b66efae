/* kebun: a tiny test harness shared by the unit tests (libuv style).
 *
 * A test is `static int test_x(void)` returning 0 on success. The ASSERT_*
 * macros print the file, the line, both expressions and both values, then
 * return 1 from the enclosing function, so helpers that return int can use
 * them too (their callers wrap them in ASSERT_OK). main() runs each test
 * with RUN(test_x) and ends with `return test_summary();`, which makes the
 * process exit nonzero when any test failed.
 *
 * A test may leak on its failure path; a passing test must not (the suite
 * runs under ASan/LSan too).
 */
#ifndef KB_TEST_H
#define KB_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed; ///< tests that failed so far
static int test_run;    ///< tests run so far

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr,                                                                        \
                    "%s:%d: ASSERT_EQ(%s, %s) failed\n  left:  %lld (0x%llx)\n"                    \
                    "  right: %lld (0x%llx)\n",                                                    \
                    __FILE__, __LINE__, #a, #b, a_, (unsigned long long)a_, b_,                    \
                    (unsigned long long)b_);                                                       \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_NE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_) {                                                                            \
            fprintf(stderr, "%s:%d: ASSERT_NE(%s, %s) failed: both are %lld\n", __FILE__,          \
                    __LINE__, #a, #b, a_);                                                         \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* a <= b, both as unsigned 64-bit. */
#define ASSERT_LE(a, b)                                                                            \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (!(a_ <= b_)) {                                                                         \
            fprintf(stderr, "%s:%d: ASSERT_LE(%s, %s) failed\n  left:  %llu\n  right: %llu\n",     \
                    __FILE__, __LINE__, #a, #b, a_, b_);                                           \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_DBL_EQ(a, b)                                                                        \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(a_ == b_)) {                                                                         \
            fprintf(stderr,                                                                        \
                    "%s:%d: ASSERT_DBL_EQ(%s, %s) failed\n  left:  %.17g\n"                        \
                    "  right: %.17g\n",                                                            \
                    __FILE__, __LINE__, #a, #b, a_, b_);                                           \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: ASSERT_TRUE(%s) failed\n", __FILE__, __LINE__, #c);            \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_NULL(p)                                                                             \
    do {                                                                                           \
        const void *p_ = (p);                                                                      \
        if (p_ != NULL) {                                                                          \
            fprintf(stderr, "%s:%d: ASSERT_NULL(%s) failed: %p\n", __FILE__, __LINE__, #p, p_);    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_NOT_NULL(p)                                                                         \
    do {                                                                                           \
        if ((p) == NULL) {                                                                         \
            fprintf(stderr, "%s:%d: ASSERT_NOT_NULL(%s) failed\n", __FILE__, __LINE__, #p);        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* A helper returning 0 / nonzero succeeded; it printed its own message. */
#define ASSERT_OK(call)                                                                            \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s:%d: ... in %s\n", __FILE__, __LINE__, #call);                      \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr,                                                                        \
                    "%s:%d: ASSERT_STR_EQ(%s, %s) failed\n  left:  \"%s\"\n"                       \
                    "  right: \"%s\"\n",                                                           \
                    __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");           \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* haystack contains needle. */
#define ASSERT_STR_HAS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            fprintf(stderr,                                                                        \
                    "%s:%d: ASSERT_STR_HAS(%s, %s) failed\n  text:   \"%s\"\n"                     \
                    "  wanted: \"%s\"\n",                                                          \
                    __FILE__, __LINE__, #hay, #needle, h_ ? h_ : "(null)", n_);                    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define ASSERT_STR_LACKS(hay, needle)                                                              \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (h_ && strstr(h_, n_)) {                                                                \
            fprintf(stderr,                                                                        \
                    "%s:%d: ASSERT_STR_LACKS(%s, %s) failed\n  text:      \"%s\"\n"                \
                    "  must lack: \"%s\"\n",                                                       \
                    __FILE__, __LINE__, #hay, #needle, h_, n_);                                    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static inline void test_dump(const char *name, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %-6s", name);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Compare lengths, then bytes; on a mismatch show both sides around the
 * first differing byte. Returns 1 when equal. */
static inline int test_mem_eq(const void *av, size_t an, const void *bv, size_t bn,
                              const char *aname, const char *bname, const char *file, int line)
{
    const uint8_t *a = av, *b = bv;
    size_t n = an < bn ? an : bn, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    if (i == n && an == bn)
        return 1;
    fprintf(stderr, "%s:%d: ASSERT_MEM_EQ(%s, %s) failed: ", file, line, aname, bname);
    if (an != bn)
        fprintf(stderr, "lengths %zu and %zu, ", an, bn);
    fprintf(stderr, "first difference at byte %zu\n", i);
    size_t from = i > 8 ? i - 8 : 0;
    test_dump("left:", a + from, (an - from < 32 ? an - from : 32));
    test_dump("right:", b + from, (bn - from < 32 ? bn - from : 32));
    return 0;
}

#define ASSERT_MEM_EQ(a, an, b, bn)                                                                \
    do {                                                                                           \
        if (!test_mem_eq((a), (an), (b), (bn), #a, #b, __FILE__, __LINE__))                        \
            return 1;                                                                              \
    } while (0)

static inline void test_run_one(const char *name, int (*fn)(void))
{
    /* KB_TEST=substring runs only the matching tests. */
    const char *filter = getenv("KB_TEST");
    if (filter && !strstr(name, filter))
        return;
    test_run++;
    int r = fn();
    if (r)
        test_failed++;
    printf("%s %d - %s\n", r ? "not ok" : "ok", test_run, name);
    fflush(stdout);
}

#define RUN(fn) test_run_one(#fn, fn)

static inline int test_summary(void)
{
    printf("# %d tests, %d failed\n", test_run, test_failed);
    return test_failed ? 1 : 0;
}

/* A small deterministic PRNG (xorshift64*), so random tests repeat exactly. */
static inline uint32_t test_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 2685821657736338717ull) >> 32);
}

#endif
