/* kebun: fuzz target for what an API request asks for (relay/http/route.c)
 * and the push value a destination's body carries (config/push.c).
 *
 * The input is "METHOD\nPATH\nQUERY\nBODY" (missing parts are empty). The
 * target checks what the functions promise: a route names only names kebun
 * could have made, its method check agrees with its Allow list, a query
 * value is decoded without a NUL and fits its buffer, a body's push value
 * is one line, and the error for a refused value never contains it; a
 * value that parses describes itself again (kb_push_format) as the same
 * destination; the token check accepts only the exact bearer token.
 */
#include <string.h>

#include "config/push.h"
#include "fuzz.h"
#include "relay/http/route.h"

static const char *part(const char **p, const char *end, size_t *len)
{
    const char *s = *p;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    *len = nl ? (size_t)(nl - s) : (size_t)(end - s);
    *p = nl ? nl + 1 : end;
    return s;
}

static void check_route(const char *method, size_t ml, const char *path, size_t pl)
{
    struct kb_route_match m;
    enum kb_route r = kb_route_api(path, pl, &m);
    KB_FUZZ_CHECK(r == m.route && m.allow != NULL);
    if (r == KB_R_NONE) {
        KB_FUZZ_CHECK(m.name[0] == '\0' && m.id[0] == '\0');
    } else {
        KB_FUZZ_CHECK(pl >= 8 && memcmp(path, "/api/v1/", 8) == 0);
        KB_FUZZ_CHECK(m.name[0] == '\0' || kb_route_name_ok(m.name, strlen(m.name),
                                                            KB_CONF_NAME_MAX));
        KB_FUZZ_CHECK(m.id[0] == '\0' || kb_route_name_ok(m.id, strlen(m.id), KB_ROUTE_ID_MAX));
    }
    enum kb_method me = kb_route_method(method, ml);
    static const char *const names[] = {"GET", "HEAD", "POST", "DELETE"};
    if (me != KB_M_OTHER)
        KB_FUZZ_CHECK(strlen(names[me]) == ml && memcmp(names[me], method, ml) == 0);
    /* The Allow list names exactly the methods the route takes. */
    for (int k = KB_M_GET; k <= KB_M_DELETE; k++)
        KB_FUZZ_CHECK(kb_route_allows(r, (enum kb_method)k) == (strstr(m.allow, names[k]) != NULL));
    /* The public view: reads only, the same names. */
    struct kb_route_match p;
    enum kb_route pr = kb_route_public(path, pl, &p);
    KB_FUZZ_CHECK(pr == p.route && p.allow != NULL);
    KB_FUZZ_CHECK(pr == KB_R_NONE || pr == KB_R_STREAMS || pr == KB_R_STREAM ||
                  pr == KB_R_RECORDINGS || pr == KB_R_RECORDING);
    if (pr == KB_R_NONE)
        KB_FUZZ_CHECK(p.name[0] == '\0' && p.id[0] == '\0' && p.allow[0] == '\0');
    else
        KB_FUZZ_CHECK(pl >= 11 && memcmp(path, "/public/v1/", 11) == 0 &&
                      strcmp(p.allow, "GET, HEAD") == 0 &&
                      (p.name[0] == '\0' ||
                       kb_route_name_ok(p.name, strlen(p.name), KB_CONF_NAME_MAX)));
}

static void check_query(const char *q, size_t ql)
{
    static const char *const keys[] = {"stream", "from", "to", ""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char out[64];
        memset(out, 'X', sizeof(out));
        int r = kb_query_param(q, ql, keys[i], out, sizeof(out));
        KB_FUZZ_CHECK(r >= -1 && r <= 1);
        if (r == 1)
            KB_FUZZ_CHECK(memchr(out, '\0', sizeof(out)) != NULL);
    }
}

static void check_body(const char *body, size_t bl)
{
    char value[1024], err[256];
    memset(err, 0, sizeof(err));
    if (kb_body_push(body, bl, value, sizeof(value), err, sizeof(err)) < 0) {
        KB_FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
        return;
    }
    size_t vl = strlen(value);
    KB_FUZZ_CHECK(vl < sizeof(value));
    for (size_t i = 0; i < vl; i++)
        KB_FUZZ_CHECK((unsigned char)value[i] >= ' ' && value[i] != 0x7f);
    struct kb_push_conf *p;
    char why[200];
    if (kb_push_parse(value, &p, why, sizeof(why)) < 0) {
        /* The refusal never carries the value (it may hold a key). A short
         * value may be a piece of the message's own words ("youtube-r"). */
        KB_FUZZ_CHECK(vl < 24 || strstr(why, value) == NULL);
        return;
    }
    char again[1400];
    if (kb_push_format(p, again, sizeof(again)) == 0) {
        struct kb_push_conf *q;
        KB_FUZZ_CHECK(kb_push_parse(again, &q, why, sizeof(why)) == 0);
        KB_FUZZ_CHECK(kb_push_same(p, q));
        kb_push_free(q);
    }
    kb_push_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    size_t ml, pl, ql, bl;
    const char *method = part(&p, end, &ml);
    const char *path = part(&p, end, &pl);
    const char *query = part(&p, end, &ql);
    const char *body = p;
    bl = (size_t)(end - p);
    check_route(method, ml, path, pl);
    check_query(query, ql);
    check_body(body, bl);
    /* Only the exact "Bearer TOKEN" passes. */
    static const char token[] = "fuzz-token-0123456789";
    int ok = kb_token_ok((const char *)data, size, token);
    KB_FUZZ_CHECK(!ok || (size == 7 + sizeof(token) - 1 &&
                          memcmp(data + 7, token, sizeof(token) - 1) == 0));
    return 0;
}
