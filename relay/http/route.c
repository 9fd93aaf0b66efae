#include "route.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum kb_method kb_route_method(const char *m, size_t n)
{
    static const struct {
        const char *name;
        enum kb_method m;
    } methods[] = {{"GET", KB_M_GET}, {"HEAD", KB_M_HEAD}, {"POST", KB_M_POST},
                   {"DELETE", KB_M_DELETE}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0)
            return methods[i].m;
    return KB_M_OTHER;
}

int kb_route_name_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return 0;
    }
    return 1;
}

/* Split the path after the prefix into at most `max` segments (one
 * trailing '/' is fine). Returns the count, or -1 for an empty segment or
 * too many. */
static int segments(const char *p, size_t n, const char **seg, size_t *len, int max)
{
    if (n > 0 && p[n - 1] == '/')
        n--;
    if (n == 0)
        return 0;
    int k = 0;
    for (size_t i = 0;;) {
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        if (j == i || k == max)
            return -1;
        seg[k] = p + i;
        len[k] = j - i;
        k++;
        if (j == n)
            return k;
        i = j + 1;
    }
}

static int copy_name(char *dst, size_t cap, const char *s, size_t n, size_t max)
{
    if (!kb_route_name_ok(s, n, max) || n >= cap)
        return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

static int seg_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

static enum kb_route match(const char *prefix, const char *path, size_t n,
                           struct kb_route_match *out)
{
    memset(out, 0, sizeof(*out));
    out->route = KB_R_NONE;
    out->allow = "";
    size_t pl = strlen(prefix);
    if (n < pl || memcmp(path, prefix, pl) != 0)
        return KB_R_NONE;
    const char *seg[5];
    size_t len[5];
    int k = segments(path + pl, n - pl, seg, len, 5);
    enum kb_route r = KB_R_NONE;
    if (k >= 1 && seg_is(seg[0], len[0], "streams")) {
        if (k == 1)
            r = KB_R_STREAMS;
        else if (!copy_name(out->name, sizeof(out->name), seg[1], len[1], KB_CONF_NAME_MAX))
            r = KB_R_NONE;
        else if (k == 2)
            r = KB_R_STREAM;
        else if (k == 3 && seg_is(seg[2], len[2], "destinations"))
            r = KB_R_DESTS;
        else if (k == 3 && seg_is(seg[2], len[2], "kick"))
            r = KB_R_KICK;
        else if (k == 4 && seg_is(seg[2], len[2], "destinations") &&
                 copy_name(out->id, sizeof(out->id), seg[3], len[3], KB_ROUTE_ID_MAX))
            r = KB_R_DEST;
    } else if (k >= 1 && seg_is(seg[0], len[0], "recordings")) {
        if (k == 1)
            r = KB_R_RECORDINGS;
        else if (k == 3 &&
                 copy_name(out->name, sizeof(out->name), seg[1], len[1], KB_CONF_NAME_MAX) &&
                 copy_name(out->id, sizeof(out->id), seg[2], len[2], KB_ROUTE_ID_MAX))
            r = KB_R_RECORDING;
    }
    static const char *const allow[] = {
        [KB_R_NONE] = "",           [KB_R_STREAMS] = "GET, HEAD", [KB_R_STREAM] = "GET, HEAD",
        [KB_R_DESTS] = "POST",      [KB_R_DEST] = "DELETE",       [KB_R_KICK] = "POST",
        [KB_R_RECORDINGS] = "GET, HEAD", [KB_R_RECORDING] = "GET, HEAD, DELETE",
    };
    if (r == KB_R_NONE)
        out->name[0] = out->id[0] = '\0';
    out->route = r;
    out->allow = allow[r];
    return r;
}

enum kb_route kb_route_api(const char *path, size_t n, struct kb_route_match *out)
{
    return match("/api/v1/", path, n, out);
}

enum kb_route kb_route_public(const char *path, size_t n, struct kb_route_match *out)
{
    enum kb_route r = match("/public/v1/", path, n, out);
    if (r == KB_R_STREAMS || r == KB_R_STREAM || r == KB_R_RECORDINGS || r == KB_R_RECORDING) {
        out->allow = "GET, HEAD";
        return r;
    }
    memset(out, 0, sizeof(*out));
    out->allow = "";
    return out->route = KB_R_NONE;
}

int kb_route_allows(enum kb_route r, enum kb_method m)
{
    switch (r) {
    case KB_R_STREAMS:
    case KB_R_STREAM:
    case KB_R_RECORDINGS:
        return m == KB_M_GET || m == KB_M_HEAD;
    case KB_R_DESTS:
    case KB_R_KICK:
        return m == KB_M_POST;
    case KB_R_DEST:
        return m == KB_M_DELETE;
    case KB_R_RECORDING:
        return m == KB_M_GET || m == KB_M_HEAD || m == KB_M_DELETE;
    case KB_R_NONE:
        break;
    }
    return 0;
}

int kb_route_mutates(enum kb_method m)
{
    return m != KB_M_GET && m != KB_M_HEAD;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (and '+' as a space). -1 when malformed,
 * too long or holding a NUL. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int kb_query_param(const char *q, size_t qn, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    size_t i = 0;
    while (i < qn) {
        size_t j = i;
        while (j < qn && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        size_t name_len = eq ? (size_t)(eq - (q + i)) : j - i;
        if (name_len == kl && memcmp(q + i, key, kl) == 0) {
            const char *v = eq ? eq + 1 : q + j;
            return decode(v, (size_t)(q + j - v), out, cap) < 0 ? -1 : 1;
        }
        i = j + 1;
    }
    return 0;
}

/* A value that goes on one line of the state file may hold none. */
static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
            return 1;
    return 0;
}

int kb_body_push(const char *body, size_t n, char *out, size_t cap, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)body[i]))
        i++;
    if (i == n) {
        snprintf(err, errlen, "the body is empty: send {\"push\": \"URL or preset:KEY\"}");
        return -1;
    }
    if (body[i] == '{') {
        cJSON *doc = cJSON_ParseWithLength(body, n);
        if (!doc) {
            snprintf(err, errlen, "the body is not valid JSON");
            return -1;
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "push");
        int ok = cJSON_IsString(v) && v->valuestring;
        size_t vl = ok ? strlen(v->valuestring) : 0;
        if (!ok)
            snprintf(err, errlen, "the JSON body needs a string \"push\"");
        else if (vl == 0 || vl >= cap) {
            snprintf(err, errlen, "\"push\" must be 1 to %zu characters", cap - 1);
            ok = 0;
        } else if (has_control(v->valuestring, vl)) {
            snprintf(err, errlen, "\"push\" holds a control character (one line only)");
            ok = 0;
        } else {
            memcpy(out, v->valuestring, vl + 1);
        }
        /* The value holds a key: clear cJSON's copy before it is freed. */
        if (cJSON_IsString(v) && v->valuestring)
            memset(v->valuestring, 0, strlen(v->valuestring));
        cJSON_Delete(doc);
        return ok ? 0 : -1;
    }
    /* Plain text: the value, as on a push = line, trimmed. */
    size_t e = n;
    while (e > i && isspace((unsigned char)body[e - 1]))
        e--;
    if (e - i >= cap) {
        snprintf(err, errlen, "the push value is longer than %zu characters", cap - 1);
        return -1;
    }
    if (has_control(body + i, e - i)) {
        snprintf(err, errlen, "the push value holds a control character (one line only)");
        return -1;
    }
    memcpy(out, body + i, e - i);
    out[e - i] = '\0';
    return 0;
}

int kb_token_ok(const char *given, size_t n, const char *token)
{
    static const char bearer[] = "Bearer ";
    size_t bl = sizeof(bearer) - 1, tl = strlen(token);
    if (tl == 0 || n < bl || strncasecmp(given, bearer, bl) != 0)
        return 0;
    given += bl;
    n -= bl;
    /* Every byte is looked at whatever matches, so the time taken says
     * nothing about how much of the token was right. */
    unsigned diff = (unsigned)(n ^ tl);
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(i < n ? given[i] : 0) ^ (unsigned char)token[i];
    return diff == 0;
}
