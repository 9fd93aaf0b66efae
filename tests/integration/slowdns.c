/* A getaddrinfo that answers slowly, preloaded into kebun by
 * test_push_dns.py to stand in for a name server that takes longer than
 * push_timeout. Only the name in KEBUN_TEST_SLOW_HOST is slowed down (by
 * KEBUN_TEST_SLOW_MS) and it resolves to 127.0.0.1; every other name goes
 * to the C library. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    const char *slow = getenv("KEBUN_TEST_SLOW_HOST");
    const char *ms = getenv("KEBUN_TEST_SLOW_MS");
    if (!real)
        return EAI_SYSTEM;
    if (node && slow && strcmp(node, slow) == 0) {
        long d = ms ? strtol(ms, NULL, 10) : 0;
        struct timespec ts = {.tv_sec = d / 1000, .tv_nsec = (d % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}
