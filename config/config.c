#include "config.h"

#include "push.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_SIZE (1 << 20) ///< a config file larger than this is a mistake

#include "keys.h"


struct parser {
    const char *path;
    char *err;
    size_t errlen, errpos;
    int n_errors;
    struct kb_config *c;
    int sec;
    int sec_line;
    struct kb_stream_conf *stream; ///< current [stream] section
    struct kb_stream_conf **tail;
    int seen_line[KB__CONF_MAX_KEYS];         ///< per current section: line a key was set on
    int server_line;               ///< line of [server], 0 while not seen
    int http_line;                 ///< line of [http], 0 while not seen
    int state;                     ///< reading the state file: [stream] push/remove only
};

static void errf(struct parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(struct parser *ps, int line, const char *fmt, ...)
{
    ps->n_errors++;
    if (!ps->err || ps->errpos + 1 >= ps->errlen)
        return;
    int n;
    if (line > 0)
        n = snprintf(ps->err + ps->errpos, ps->errlen - ps->errpos, "%s:%d: ", ps->path, line);
    else
        n = snprintf(ps->err + ps->errpos, ps->errlen - ps->errpos, "%s: ", ps->path);
    if (n < 0 || (size_t)n >= ps->errlen - ps->errpos) {
        ps->errpos = ps->errlen - 1;
        return;
    }
    ps->errpos += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(ps->err + ps->errpos, ps->errlen - ps->errpos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= ps->errlen - ps->errpos) {
        ps->errpos = ps->errlen - 1;
        return;
    }
    ps->errpos += (size_t)n;
    if (ps->errpos + 1 < ps->errlen) {
        ps->err[ps->errpos++] = '\n';
        ps->err[ps->errpos] = '\0';
    }
}

/* Something worth a log line that is not an error. */
static void note(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct parser *ps, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t have = ps->c->notes ? strlen(ps->c->notes) : 0;
    char *n = realloc(ps->c->notes, have + strlen(line) + 2);
    if (!n)
        return;
    snprintf(n + have, strlen(line) + 2, "%s\n", line);
    ps->c->notes = n;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* A number with an optional unit from `units`; the unit multiplies. */
struct unit {
    const char *name;
    uint64_t mul;
};

static int parse_with_unit(const char *v, const struct unit *units, int unit_required,
                           uint64_t *out)
{
    if (!isdigit((unsigned char)*v))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    if (*end == '\0') {
        /* Zero is zero in any unit. */
        if (unit_required && n != 0)
            return -2;
        *out = n;
        return 0;
    }
    for (const struct unit *u = units; u && u->name; u++) {
        if (strcasecmp(end, u->name) == 0) {
            if (n > UINT64_MAX / u->mul)
                return -1;
            *out = n * u->mul;
            return 0;
        }
    }
    return -1;
}

static const struct unit size_units[] = {
    {"B", 1},           {"K", KiB},         {"KB", KiB}, {"KiB", KiB}, {"M", MiB},
    {"MB", MiB},        {"MiB", MiB},       {"G", GiB},  {"GB", GiB},  {"GiB", GiB},
    {NULL, 0},
};
static const struct unit duration_units[] = {
    {"ms", 1},         {"s", 1000},           {"m", 60000}, {"min", 60000},
    {"h", 3600000},    {"d", 86400000},       {NULL, 0},
};

int kb_config_parse_listen(const char *v, struct kb_listen_conf *l)
{
    const char *colon;
    size_t hostlen;
    const char *host = v;
    if (*v == '[') {
        const char *rb = strchr(v, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        host = v + 1;
        hostlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon) {
            /* A bare port listens on every IPv4 address. */
            colon = v - 1;
            hostlen = 0;
        } else {
            hostlen = (size_t)(colon - v);
        }
    }
    if (hostlen >= sizeof(l->host) || (*v == '[' && hostlen == 0))
        return -EINVAL;
    if (hostlen == 0) {
        strcpy(l->host, "0.0.0.0");
    } else {
        memcpy(l->host, host, hostlen);
        l->host[hostlen] = '\0';
    }
    const char *port = colon + 1;
    if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
        return -EINVAL;
    unsigned long p = strtoul(port, NULL, 10);
    if (p < 1 || p > 65535)
        return -EINVAL;
    l->port = (uint16_t)p;
    unsigned char tmp[16];
    if (inet_pton(AF_INET, l->host, tmp) != 1 && inet_pton(AF_INET6, l->host, tmp) != 1)
        return -EINVAL;
    return 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KB_CONF_NAME_MAX || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '_' && ch != '-' && ch != '.')
            return 0;
    }
    return 1;
}

/* What is wrong with a secret, in words (never with the value), or NULL. */
static const char *key_problem(const char *s, uint64_t min, uint64_t max, char *buf, size_t n)
{
    size_t len = strlen(s);
    if (len < min) {
        snprintf(buf, n, "is too short to be secret (at least %llu characters)",
                 (unsigned long long)min);
        return buf;
    }
    if (len > max) {
        snprintf(buf, n, "is longer than %llu characters", (unsigned long long)max);
        return buf;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch >= 0x7f || strchr("/?#&%\"", ch))
            return "may not contain spaces, control characters or any of / ? # & % \"";
    }
    return NULL;
}

static void *field(struct parser *ps, const struct kb__conf_key *k)
{
    char *base = k->sec == SEC_STREAM ? (char *)ps->stream : (char *)ps->c;
    return base + k->off;
}

static void section_label(const struct parser *ps, int sec, char *buf, size_t n)
{
    if (sec == SEC_STREAM)
        snprintf(buf, n, "[stream %s]", ps->stream->name);
    else
        snprintf(buf, n, "[%s]", sec == SEC_HTTP ? "http" : "server");
}

/* 127.0.0.0/8 and ::1: reachable from this machine only. */
static int loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Parse one value into its field. Returns 0, or -1 after reporting. */
static int set_value(struct parser *ps, const struct kb__conf_key *k, const char *v, int line)
{
    char sec[KB_CONF_NAME_MAX + 16];
    section_label(ps, k->sec, sec, sizeof(sec));
    uint64_t n = 0;
    int r;

    switch (k->type) {
    case T_STRING:
    case T_KEY: {
        /* An optional secret (its default is empty) may be left empty. */
        int unset = k->def && !k->def[0] && !v[0];
        if (k->type == T_KEY && !unset) {
            char wbuf[96];
            const char *why = key_problem(v, k->min, k->max, wbuf, sizeof(wbuf));
            if (why) {
                /* Never echo the value: it is a secret. */
                errf(ps, line, "%s %s: the %s %s", sec, k->name,
                     k->sec == SEC_STREAM ? "key" : "value", why);
                return -1;
            }
        } else if (k->type == T_STRING && (strlen(v) < k->min || strlen(v) > k->max)) {
            errf(ps, line, "%s %s: value must be %llu to %llu characters", sec, k->name,
                 (unsigned long long)k->min, (unsigned long long)k->max);
            return -1;
        }
        char **dst = field(ps, k);
        char *copy = strdup(v);
        if (!copy) {
            errf(ps, line, "out of memory");
            return -1;
        }
        free(*dst);
        *dst = copy;
        return 0;
    }
    case T_UINT:
    case T_SIZE:
    case T_DURATION:
        r = parse_with_unit(v,
                            k->type == T_SIZE       ? size_units
                            : k->type == T_DURATION ? duration_units
                                                    : NULL,
                            k->type == T_DURATION, &n);
        if (r == -2) {
            errf(ps, line, "%s %s: '%s' needs a unit (ms, s, m, h or d)", sec, k->name, v);
            return -1;
        }
        if (r < 0) {
            errf(ps, line, "%s %s: '%s' is not a valid %s%s", sec, k->name, v,
                 kb__conf_type_names[k->type],
                 k->type == T_SIZE ? " (a number with an optional K, M or G suffix)" : "");
            return -1;
        }
        if (n < k->min || n > k->max) {
            errf(ps, line, "%s %s: %s is out of range (%llu..%llu%s)", sec, k->name, v,
                 (unsigned long long)k->min, (unsigned long long)k->max,
                 k->type == T_SIZE ? " bytes" : k->type == T_DURATION ? " ms" : "");
            return -1;
        }
        *(uint64_t *)field(ps, k) = n;
        return 0;
    case T_BOOL:
        if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
            !strcmp(v, "1"))
            *(int *)field(ps, k) = 1;
        else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
                 !strcmp(v, "0"))
            *(int *)field(ps, k) = 0;
        else {
            errf(ps, line, "%s %s: '%s' is not on or off", sec, k->name, v);
            return -1;
        }
        return 0;
    case T_ENUM: {
        size_t cap = 0;
        char words[128] = "";
        for (int i = 0; k->names[i]; i++) {
            if (!strcasecmp(v, k->names[i])) {
                *(int *)field(ps, k) = i;
                return 0;
            }
            cap += (size_t)snprintf(words + cap, cap < sizeof(words) ? sizeof(words) - cap : 0,
                                    "%s%s", i ? ", " : "", k->names[i]);
        }
        errf(ps, line, "%s %s: '%s' is not one of %s", sec, k->name, v, words);
        return -1;
    }
    case T_LISTEN: {
        struct kb_listen_conf *list = field(ps, k);
        int tls = list == ps->c->listen_tls;
        int *count = tls ? &ps->c->n_listen_tls : &ps->c->n_listen;
        if (*count >= KB_CONF_MAX_LISTEN) {
            errf(ps, line, "%s %s: at most %d addresses", sec, k->name, KB_CONF_MAX_LISTEN);
            return -1;
        }
        if (kb_config_parse_listen(v, &list[*count]) < 0) {
            errf(ps, line, "%s %s: '%s' is not HOST:PORT with a numeric address", sec, k->name,
                 v);
            return -1;
        }
        if (tls && !ps->c->listen_tls_line)
            ps->c->listen_tls_line = line;
        (*count)++;
        return 0;
    }
    case T_FILE: {
        if (strlen(v) > k->max) {
            errf(ps, line, "%s %s: a path of at most %llu characters", sec, k->name,
                 (unsigned long long)k->max);
            return -1;
        }
        struct kb_conf_file *f = field(ps, k);
        char *copy = strdup(v);
        if (!copy) {
            errf(ps, line, "out of memory");
            return -1;
        }
        free(f->path);
        f->path = copy;
        f->line = line == ps->sec_line ? 0 : line; /* a default is set on the header's line */
        return 0;
    }
    case T_ADDR: {
        struct kb_http_conf *h = &ps->c->http;
        h->listen_line = line == ps->sec_line ? 0 : line;
        if (strcasecmp(v, "off") == 0) {
            h->enabled = 0;
            return 0;
        }
        if (kb_config_parse_listen(v, field(ps, k)) < 0) {
            errf(ps, line, "%s %s: '%s' is not HOST:PORT with a numeric address, or off", sec,
                 k->name, v);
            return -1;
        }
        h->enabled = 1;
        return 0;
    }
    case T_PUSH: {
        char why[200];
        struct kb_push_conf *p;
        int perr = kb_push_parse(v, &p, why, sizeof(why));
        if (perr < 0) {
            errf(ps, line, "%s %s: %s", sec, k->name, perr == -ENOMEM ? "out of memory" : why);
            return -1;
        }
        p->line = line;
        p->source = ps->state ? KB_PUSH_API : KB_PUSH_CONFIG;
        struct kb_push_conf **tail = &ps->stream->pushes;
        while (*tail) {
            if (kb_push_same(*tail, p) && ps->state) {
                /* A state file line given twice: one is enough. (One equal to
                 * a config line is sorted out by merge_state.) */
                if ((*tail)->source == KB_PUSH_API) {
                    kb_push_free(p);
                    return 0;
                }
                tail = &(*tail)->next;
                continue;
            }
            if (kb_push_same(*tail, p)) {
                errf(ps, line, "%s %s: the same destination twice (first on line %d)", sec,
                     k->name, (*tail)->line);
                kb_push_free(p);
                return -1;
            }
            tail = &(*tail)->next;
        }
        *tail = p;
        ps->stream->n_pushes++;
        return 0;
    }
    }
    return -1;
}

/* Levenshtein distance, for "did you mean" on unknown keys. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    }
    return d[la][lb];
}

static void apply_defaults(struct parser *ps, int sec)
{
    for (size_t i = 0; i < kb__conf_nkeys; i++) {
        const struct kb__conf_key *k = &kb__conf_keys[i];
        if (k->sec != sec || ps->seen_line[i])
            continue;
        if (!k->def) {
            if (k->repeat)
                continue; /* optional list */
            if (sec == SEC_STREAM)
                errf(ps, ps->sec_line, "[stream %s]: missing required key '%s'",
                     ps->stream->name, k->name);
            continue;
        }
        if (k->type == T_LISTEN && ps->c->n_listen)
            continue;
        set_value(ps, k, k->def, ps->sec_line);
    }
}

static void end_section(struct parser *ps)
{
    if ((ps->sec == SEC_SERVER || ps->sec == SEC_STREAM || ps->sec == SEC_HTTP) && !ps->state)
        apply_defaults(ps, ps->sec);
    memset(ps->seen_line, 0, sizeof(ps->seen_line));
    ps->sec = SEC_NONE;
    ps->stream = NULL;
}

static void begin_section(struct parser *ps, char *name, int line)
{
    end_section(ps);
    ps->sec_line = line;
    if (ps->state) {
        /* The state file: destinations of known streams. */
        struct kb_stream_conf *s = NULL;
        if (strncmp(name, "stream", 6) == 0 && isspace((unsigned char)name[6]))
            s = (struct kb_stream_conf *)kb_config_stream_by_name(ps->c, trim(name + 7));
        ps->stream = s;
        ps->sec = s ? SEC_STREAM : SEC_BROKEN;
        if (!s)
            note(ps, "%s:%d: [%s] is no stream of the config: its runtime destinations are "
                     "ignored", ps->path, line, name);
        return;
    }
    if (strcmp(name, "http") == 0) {
        if (ps->http_line) {
            errf(ps, line, "[http] appears twice (first on line %d)", ps->http_line);
            ps->sec = SEC_BROKEN;
            return;
        }
        ps->http_line = line;
        ps->sec = SEC_HTTP;
        return;
    }
    if (strcmp(name, "server") == 0) {
        if (ps->server_line) {
            errf(ps, line, "[server] appears twice (first on line %d)", ps->server_line);
            ps->sec = SEC_BROKEN;
            return;
        }
        ps->server_line = line;
        ps->sec = SEC_SERVER;
        return;
    }
    if (strncmp(name, "stream", 6) == 0 && isspace((unsigned char)name[6])) {
        char *sname = trim(name + 7);
        if (!name_ok(sname)) {
            errf(ps, line,
                 "[stream %s]: a stream name is 1 to %d letters, digits, '_', '-' or '.', "
                 "starting with a letter or digit",
                 sname, KB_CONF_NAME_MAX);
            ps->sec = SEC_BROKEN; /* skip its keys quietly */
            return;
        }
        if (kb_config_stream_by_name(ps->c, sname)) {
            errf(ps, line, "[stream %s]: stream defined twice", sname);
            ps->sec = SEC_BROKEN;
            return;
        }
        struct kb_stream_conf *s = calloc(1, sizeof(*s));
        if (!s || !(s->name = strdup(sname))) {
            free(s);
            errf(ps, line, "out of memory");
            ps->sec = SEC_BROKEN;
            return;
        }
        s->line = line;
        *ps->tail = s;
        ps->tail = &s->next;
        ps->c->n_streams++;
        ps->stream = s;
        ps->sec = SEC_STREAM;
        return;
    }
    errf(ps, line, "unknown section [%s] (expected [server], [http] or [stream NAME])", name);
    ps->sec = SEC_BROKEN;
}

static void key_value(struct parser *ps, char *line_text, int line)
{
    char *eq = strchr(line_text, '=');
    if (!eq) {
        errf(ps, line, "expected KEY = VALUE, [server] or [stream NAME]");
        return;
    }
    *eq = '\0';
    char *name = trim(line_text);
    char *value = trim(eq + 1);
    size_t vl = strlen(value);
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
        value[vl - 1] = '\0';
        value++;
    }
    if (ps->sec == SEC_NONE) {
        errf(ps, line, "key '%s' outside any section (start with [server])", name);
        return;
    }
    if (ps->sec == SEC_BROKEN)
        return;

    char secname[KB_CONF_NAME_MAX + 16];
    section_label(ps, ps->sec, secname, sizeof(secname));
    if (ps->state) {
        /* The state file holds destinations only. */
        if (strcmp(name, "remove") == 0) {
            char **r = realloc(ps->stream->removed,
                               (size_t)(ps->stream->n_removed + 1) * sizeof(*r));
            if (!r || !(r[ps->stream->n_removed] = strdup(value))) {
                if (r)
                    ps->stream->removed = r;
                errf(ps, line, "out of memory");
                return;
            }
            ps->stream->removed = r;
            ps->stream->n_removed++;
            return;
        }
        if (strcmp(name, "push") != 0) {
            errf(ps, line, "%s: '%s' does not belong in the state file (push and remove do)",
                 secname, name);
            return;
        }
    }
    for (size_t i = 0; i < kb__conf_nkeys; i++) {
        const struct kb__conf_key *k = &kb__conf_keys[i];
        if (k->sec != ps->sec || strcmp(k->name, name) != 0)
            continue;
        if (ps->seen_line[i] && !k->repeat) {
            errf(ps, line, "%s %s: set twice (first on line %d)", secname, name,
                 ps->seen_line[i]);
            return;
        }
        ps->seen_line[i] = line;
        set_value(ps, k, value, line);
        return;
    }
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < kb__conf_nkeys; i++) {
        size_t d = distance(name, kb__conf_keys[i].name);
        if (kb__conf_keys[i].sec == ps->sec && d < best_d) {
            best_d = d;
            best = kb__conf_keys[i].name;
        }
    }
    if (best)
        errf(ps, line, "%s: unknown key '%s' (did you mean '%s'?)", secname, name, best);
    else
        errf(ps, line, "%s: unknown key '%s'", secname, name);
}

static void check_streams(struct parser *ps)
{
    for (struct kb_stream_conf *s = ps->c->streams; s; s = s->next) {
        if (!s->key)
            continue;
        /* Report a shared key once per later stream, against the first. */
        int first = 1;
        for (struct kb_stream_conf *u = ps->c->streams; u != s; u = u->next)
            if (u->key && strcmp(u->key, s->key) == 0)
                first = 0;
        for (struct kb_stream_conf *t = ps->c->streams; t; t = t->next) {
            if (first && t != s && t->key && strcmp(s->key, t->key) == 0 && t->line > s->line)
                errf(ps, t->line, "[stream %s]: same key as [stream %s] (line %d)", t->name,
                     s->name, s->line);
            if (strcmp(s->key, t->name) == 0)
                errf(ps, s->line,
                     "[stream %s]: key equals the public name of [stream %s]; a key must be "
                     "secret",
                     s->name, t->name);
        }
    }
}

/* Feed every line of `text` to the parser. 0 or -ENOMEM. */
static int parse_lines(struct parser *ps, const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return -ENOMEM;
    int line = 0;
    for (char *next = copy; next;) {
        char *l = next;
        next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        line++;
        char *t = trim(l);
        if (*t == '\0' || *t == '#' || *t == ';')
            continue;
        if (*t == '[') {
            size_t tl = strlen(t);
            if (t[tl - 1] != ']') {
                errf(ps, line, "section header without closing ']'");
                ps->sec = SEC_BROKEN;
                continue;
            }
            t[tl - 1] = '\0';
            begin_section(ps, trim(t + 1), line);
            continue;
        }
        key_value(ps, t, line);
    }
    end_section(ps);
    free(copy);
    return 0;
}

/* Each destination of a stream gets an id unique within it: its name, or
 * name-2, name-3, ... in order (the config's first, then the API's). An id
 * once given stays: removing one destination renames no other. Characters
 * an URL path cannot carry become '-'. */
static int assign_ids(struct kb_stream_conf *s)
{
    for (struct kb_push_conf *p = s->pushes; p; p = p->next) {
        if (p->id)
            continue;
        char base[128], id[160];
        snprintf(base, sizeof(base), "%s", p->name);
        for (char *c = base; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != '-')
                *c = '-';
        if (base[0] == '.')
            base[0] = '-';
        for (int n = 1;; n++) {
            if (n == 1)
                snprintf(id, sizeof(id), "%s", base);
            else
                snprintf(id, sizeof(id), "%s-%d", base, n);
            int taken = 0;
            for (struct kb_push_conf *q = s->pushes; q && !taken; q = q->next)
                taken = q != p && q->id && strcmp(q->id, id) == 0;
            if (!taken)
                break;
        }
        if (!(p->id = strdup(id)))
            return -ENOMEM;
    }
    return 0;
}

/* The config's destinations the API removed stay out. */
static void drop_removed(struct kb_stream_conf *s)
{
    for (struct kb_push_conf **pp = &s->pushes; *pp;) {
        struct kb_push_conf *p = *pp;
        int gone = 0;
        for (int i = 0; i < s->n_removed && !gone; i++)
            gone = p->source == KB_PUSH_CONFIG && strcmp(s->removed[i], p->id) == 0;
        if (gone) {
            *pp = p->next;
            kb_push_free(p);
            s->n_pushes--;
        } else {
            pp = &p->next;
        }
    }
}

/* Read a whole file of at most MAX_FILE_SIZE into a NUL-terminated buffer
 * (*len bytes before the NUL). 0, or a negative errno with the reason in
 * why, which does not name the file. */
static int slurp(const char *path, char **out, size_t *len, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(why, whylen, "cannot open: %s", strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
        fclose(f);
        snprintf(why, whylen, "not a regular file of at most 1 MiB");
        return -EINVAL;
    }
    char *text = malloc((size_t)st.st_size + 1);
    if (!text) {
        fclose(f);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    size_t n = fread(text, 1, (size_t)st.st_size, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(text);
        snprintf(why, whylen, "read error");
        return -EIO;
    }
    text[n] = '\0';
    *out = text;
    *len = n;
    return 0;
}

/* Read a whole text file. 0, or a negative errno with a sentence in err
 * (which always ends with a newline). */
static int read_text(const char *path, char **out, char *err, size_t errlen)
{
    char why[160];
    size_t n;
    int r = slurp(path, out, &n, why, sizeof(why));
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        snprintf(err, errlen, "%s: %s\n", path, why);
        return r;
    }
    if (strlen(*out) != n) {
        free(*out);
        *out = NULL;
        snprintf(err, errlen, "%s: contains a NUL byte; is it a text file?\n", path);
        return -EINVAL;
    }
    return 0;
}

static void file_free(struct kb_conf_file *f)
{
    if (f->text)
        explicit_bzero(f->text, f->len); /* a private key */
    free(f->text);
    f->text = NULL;
    f->len = 0;
}

/* Whether a PEM text has a private key block (PRIVATE KEY, RSA PRIVATE
 * KEY, EC PRIVATE KEY, ...). */
static int has_private_key(const char *text)
{
    static const char begin[] = "-----BEGIN ";
    for (const char *p = strstr(text, begin); p; p = strstr(p + 1, begin)) {
        const char *label = p + strlen(begin);
        const char *end = strstr(label, "-----");
        const char *nl = strchr(label, '\n');
        size_t n = end ? (size_t)(end - label) : 0;
        if (end && (!nl || end < nl) && n >= 11 && memcmp(end - 11, "PRIVATE KEY", 11) == 0)
            return 1;
    }
    return 0;
}

/* Read the certificate or key file of listen_tls and check what a text
 * file can tell. Only OpenSSL can tell the rest (that the blocks decode,
 * that the key is the certificate's): the relay does, when it builds its
 * TLS context, with the same FILE:LINE messages. Nothing of the contents
 * is ever echoed. */
static void read_pem(struct parser *ps, const char *name, struct kb_conf_file *f, int key)
{
    char why[160];
    int r = slurp(f->path, &f->text, &f->len, why, sizeof(why));
    if (r < 0) {
        errf(ps, f->line, "[server] %s: %s: %s", name, f->path, why);
        return;
    }
    const char *problem = NULL;
    if (strlen(f->text) != f->len)
        problem = "is not PEM text (a DER file? convert it with openssl x509 -inform der, or "
                  "openssl pkey -inform der)";
    else if (!key && !strstr(f->text, "-----BEGIN CERTIFICATE-----"))
        problem = "holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
    else if (key && (strstr(f->text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
                     strstr(f->text, "Proc-Type: 4,ENCRYPTED")))
        problem = "is encrypted with a passphrase, which kebun cannot ask for (write it out "
                  "without one: openssl pkey -in KEY -out KEY.plain)";
    else if (key && !has_private_key(f->text))
        problem = "holds no PEM private key (-----BEGIN PRIVATE KEY-----)";
    if (problem) {
        errf(ps, f->line, "[server] %s: %s %s", name, f->path, problem);
        file_free(f);
    }
}

/* Two listening sockets that cannot both be bound: the same port on the
 * same address, or on the wildcard address of its family. */
static int same_socket(const struct kb_listen_conf *a, const struct kb_listen_conf *b)
{
    int v6 = strchr(a->host, ':') != NULL;
    if (a->port != b->port || v6 != (strchr(b->host, ':') != NULL))
        return 0;
    const char *any = v6 ? "::" : "0.0.0.0";
    return strcmp(a->host, b->host) == 0 || strcmp(a->host, any) == 0 ||
           strcmp(b->host, any) == 0;
}

/* RTMPS: listen_tls needs a certificate and its key. The files are read
 * and checked whenever they are named (a mistake shows before it matters);
 * without listen_tls they are only worth a note (RTMPS is simply off). */
static void check_tls(struct parser *ps)
{
    struct kb_config *c = ps->c;
    struct kb_conf_file *cert = &c->tls_cert, *key = &c->tls_key;
    /* A path that failed its own check is NULL (and reported). */
    int have_cert = cert->path && cert->path[0], have_key = key->path && key->path[0];
    if (have_cert)
        read_pem(ps, "tls_cert", cert, 0);
    if (have_key)
        read_pem(ps, "tls_key", key, 1);
    if (!c->n_listen_tls) {
        if (have_cert || have_key)
            note(ps, "%s:%d: [server] %s is set but listen_tls is not: RTMPS is off", ps->path,
                 have_cert ? cert->line : key->line, have_cert ? "tls_cert" : "tls_key");
        file_free(cert);
        file_free(key);
        return;
    }
    for (int i = 0; i < c->n_listen_tls; i++) {
        const struct kb_listen_conf *l = &c->listen_tls[i];
        int clash = 0;
        for (int j = 0; j < c->n_listen && !clash; j++)
            clash = same_socket(l, &c->listen[j]);
        for (int j = 0; j < i && !clash; j++)
            clash = same_socket(l, &c->listen_tls[j]) ? 2 : 0;
        int v6 = strchr(l->host, ':') != NULL;
        if (clash)
            errf(ps, c->listen_tls_line, "[server] listen_tls: %s%s%s:%u %s", v6 ? "[" : "",
                 l->host, v6 ? "]" : "", l->port,
                 clash == 2 ? "is given twice"
                            : "is also a plain RTMP address (listen): one port speaks one or "
                              "the other");
    }
    if (!have_cert && cert->path)
        errf(ps, c->listen_tls_line,
             "[server] listen_tls needs tls_cert (the PEM file of the certificate to serve)");
    if (!have_key && key->path)
        errf(ps, c->listen_tls_line,
             "[server] listen_tls needs tls_key (the PEM file of the certificate's private key)");
}

/* Checks across keys and sections, once every key has a valid value. */
static void check_whole(struct parser *ps)
{
    struct kb_config *c = ps->c;
    check_streams(ps);
    check_tls(ps);
    if (!ps->n_errors && c->push_retry_max < c->push_retry_min)
        errf(ps, ps->server_line, "[server] push_retry_max is shorter than push_retry_min");
    const struct kb_http_conf *h = &c->http;
    if (!ps->n_errors && h->enabled && !h->token[0] && !loopback(h->listen.host))
        errf(ps, h->listen_line ? h->listen_line : ps->http_line,
             "[http] listen: %s is reachable from other machines, so the API needs a token "
             "(set [http] token, or listen on 127.0.0.1)",
             h->listen.host);
}

int kb_config_parse(const char *path, const char *text, struct kb_config **out, char *err,
                    size_t errlen)
{
    struct parser ps = {.path = path, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    ps.c = calloc(1, sizeof(*ps.c));
    if (!ps.c)
        return -ENOMEM;
    ps.c->path = strdup(path);
    ps.tail = &ps.c->streams;
    if (!ps.c->path || parse_lines(&ps, text) < 0) {
        kb_config_free(ps.c);
        return -ENOMEM;
    }
    /* Sections left out still get their defaults. */
    static const int implied[] = {SEC_SERVER, SEC_HTTP};
    for (size_t i = 0; i < sizeof(implied) / sizeof(implied[0]); i++) {
        if ((implied[i] == SEC_SERVER ? ps.server_line : ps.http_line) != 0)
            continue;
        ps.sec = implied[i];
        ps.sec_line = 0;
        end_section(&ps);
    }
    check_whole(&ps);
    size_t rl = strlen(ps.c->recordings ? ps.c->recordings : "") + 32;
    if (!ps.n_errors && (ps.c->state_path = malloc(rl)) != NULL)
        snprintf(ps.c->state_path, rl, "%s/.kebun-destinations.conf", ps.c->recordings);
    else if (!ps.n_errors)
        errf(&ps, 0, "out of memory");
    for (struct kb_stream_conf *s = ps.c->streams; s && !ps.n_errors; s = s->next)
        if (assign_ids(s) < 0)
            errf(&ps, 0, "out of memory");
    if (ps.n_errors) {
        kb_config_free(ps.c);
        return -EINVAL;
    }
    *out = ps.c;
    return 0;
}

/* Merge the state file (destinations added and removed through the API)
 * into a parsed config. A missing file is an empty one. */
static int merge_state(struct kb_config *c, char *err, size_t errlen)
{
    char *text = NULL;
    int r = read_text(c->state_path, &text, err, errlen);
    if (r == -ENOENT) {
        if (err && errlen)
            err[0] = '\0';
        return 0;
    }
    if (r < 0)
        return r;
    struct parser ps = {.path = c->state_path, .err = err, .errlen = errlen, .c = c, .state = 1};
    r = parse_lines(&ps, text);
    free(text);
    if (r < 0)
        return r;
    for (struct kb_stream_conf *s = c->streams; s && !ps.n_errors; s = s->next) {
        drop_removed(s);
        /* Added through the API and then to the file as well: the file's
         * line wins (it is the one people see). */
        for (struct kb_push_conf **pp = &s->pushes; *pp;) {
            struct kb_push_conf *p = *pp;
            int dup = 0;
            for (struct kb_push_conf *q = s->pushes; q && !dup && p->source == KB_PUSH_API;
                 q = q->next)
                dup = q->source == KB_PUSH_CONFIG && kb_push_same(q, p);
            if (dup) {
                *pp = p->next;
                kb_push_free(p);
                s->n_pushes--;
            } else {
                pp = &p->next;
            }
        }
        if (assign_ids(s) < 0)
            return -ENOMEM;
    }
    return ps.n_errors ? -EINVAL : 0;
}

int kb_config_load(const char *path, struct kb_config **out, char *err, size_t errlen)
{
    *out = NULL;
    char *text = NULL;
    int r = read_text(path, &text, err, errlen);
    if (r < 0)
        return r;
    r = kb_config_parse(path, text, out, err, errlen);
    free(text);
    if (r == 0 && (r = merge_state(*out, err, errlen)) < 0) {
        kb_config_free(*out);
        *out = NULL;
    }
    return r;
}

void kb_config_free(struct kb_config *c)
{
    if (!c)
        return;
    struct kb_stream_conf *s = c->streams;
    while (s) {
        struct kb_stream_conf *next = s->next;
        free(s->name);
        free(s->key);
        for (int i = 0; i < s->n_removed; i++)
            free(s->removed[i]);
        free(s->removed);
        while (s->pushes) {
            struct kb_push_conf *p = s->pushes;
            s->pushes = p->next;
            kb_push_free(p);
        }
        free(s);
        s = next;
    }
    free(c->path);
    free(c->app);
    file_free(&c->tls_cert);
    file_free(&c->tls_key);
    free(c->tls_cert.path);
    free(c->tls_key.path);
    free(c->http.token);
    free(c->http.web_root);
    free(c->state_path);
    free(c->notes);
    free(c->recordings);
    free(c);
}

const struct kb_stream_conf *kb_config_stream_by_name(const struct kb_config *c,
                                                      const char *name)
{
    for (const struct kb_stream_conf *s = c->streams; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

const struct kb_stream_conf *kb_config_stream_by_key(const struct kb_config *c,
                                                     const char *key)
{
    for (const struct kb_stream_conf *s = c->streams; s; s = s->next)
        if (s->key && strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

const struct kb_conf_doc *kb_config_doc(size_t i)
{
    static struct kb_conf_doc docs[KB__CONF_MAX_KEYS + 1];
    if (i >= kb__conf_nkeys)
        return &docs[kb__conf_nkeys];
    docs[i] = (struct kb_conf_doc){
        .section = kb__conf_keys[i].sec == SEC_SERVER ? "server"
                   : kb__conf_keys[i].sec == SEC_HTTP ? "http"
                                                      : "stream",
        .name = kb__conf_keys[i].name,
        .type = kb__conf_type_names[kb__conf_keys[i].type],
        .def = kb__conf_keys[i].def,
        .required = !kb__conf_keys[i].def && !kb__conf_keys[i].repeat,
        .repeat = kb__conf_keys[i].repeat,
        .doc = kb__conf_keys[i].doc,
    };
    return &docs[i];
}

const char *kb_config_log_level_name(int level)
{
    return level >= 0 && level < 4 ? kb__conf_level_names[level] : "?";
}
