#include "push.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct kb_push_preset kb_push_presets[] = {
    {"youtube", "rtmp://a.rtmp.youtube.com/live2/"},
    {"youtube-rtmps", "rtmps://a.rtmps.youtube.com:443/live2/"},
    {"facebook", "rtmps://live-api-s.facebook.com:443/rtmp/"},
    {"twitch", "rtmp://live.twitch.tv/app/"},
    {NULL, NULL},
};

void kb_push_free(struct kb_push_conf *p)
{
    if (!p)
        return;
    if (p->url)
        memset(p->url, 0, strlen(p->url));
    if (p->playpath)
        memset(p->playpath, 0, strlen(p->playpath));
    free(p->url);
    free(p->masked);
    free(p->name);
    free(p->host);
    free(p->app);
    free(p->playpath);
    free(p->tcurl);
    free(p->ca_file);
    free(p->id);
    free(p);
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -EINVAL;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int host_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return 0;
    }
    return 1;
}

static int v6_ok(const char *h, size_t n)
{
    if (n < 2 || n > 45)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
            return 0;
    return memchr(h, ':', n) != NULL;
}

/* Split "scheme://host[:port]/app.../key[?query]" into p's fields; host
 * may be an IPv6 literal in brackets. */
static int parse_url(struct kb_push_conf *p, const char *u, char *err, size_t errlen)
{
    const char *rest;
    if (strncmp(u, "rtmp://", 7) == 0) {
        rest = u + 7;
        p->tls = 0;
    } else if (strncmp(u, "rtmps://", 8) == 0) {
        rest = u + 8;
        p->tls = 1;
    } else {
        return fail(err, errlen,
                    "a push destination is an rtmp:// or rtmps:// URL or a preset "
                    "(youtube:KEY, youtube-rtmps:KEY, facebook:KEY, twitch:KEY)");
    }
    for (const char *c = u; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return fail(err, errlen, "the URL contains a space or control character");

    const char *slash = strchr(rest, '/');
    if (!slash)
        return fail(err, errlen, "the URL has no application and stream key after the host");
    const char *host = rest, *hostend = slash, *after = rest;
    int v6 = rest[0] == '[';
    if (v6) {
        /* An IPv6 literal: [2001:db8::5]:1935 */
        const char *close = memchr(rest, ']', (size_t)(slash - rest));
        host = rest + 1;
        if (!close || close == host || !v6_ok(host, (size_t)(close - host)))
            return fail(err, errlen, "the URL's IPv6 address is malformed (rtmp://[ADDR]:PORT/...)");
        if (close + 1 != slash && close[1] != ':')
            return fail(err, errlen, "the URL's IPv6 address is followed by something other "
                                     "than :PORT");
        hostend = close;
        after = close + 1;
    }
    const char *colon = memchr(after, ':', (size_t)(slash - after));
    unsigned long port = p->tls ? 443 : 1935;
    int explicit_port = 0;
    if (colon) {
        if (!v6)
            hostend = colon;
        const char *ps = colon + 1;
        size_t pl = (size_t)(slash - ps);
        if (pl == 0 || pl > 5 || strspn(ps, "0123456789") < pl)
            return fail(err, errlen, "the URL's port is not a number");
        port = strtoul(ps, NULL, 10);
        if (port < 1 || port > 65535)
            return fail(err, errlen, "the URL's port is out of range");
        explicit_port = 1;
    }
    if (!v6 && !host_ok(host, (size_t)(hostend - host)))
        return fail(err, errlen, "the URL's host name is empty or not a valid name");

    /* The query string belongs to the key (Facebook's keys carry one). */
    const char *path = slash + 1;
    const char *q = strchr(path, '?');
    const char *pathend = q ? q : path + strlen(path);
    const char *last = NULL;
    for (const char *c = path; c < pathend; c++)
        if (*c == '/')
            last = c;
    if (!last || last == path)
        return fail(err, errlen, "the URL needs an application and a stream key: "
                                 "rtmp://HOST/APP/KEY");
    if (last + 1 >= pathend)
        return fail(err, errlen, "the URL ends without a stream key");
    for (const char *c = path; c < last; c++)
        if (c[0] == '/' && c[1] == '/')
            return fail(err, errlen, "the URL's application has an empty part ('//')");

    p->host = dupn(host, (size_t)(hostend - host));
    p->port = (uint16_t)port;
    p->app = dupn(path, (size_t)(last - path));
    p->playpath = strdup(last + 1);
    size_t tl = strlen(u) + 16;
    p->tcurl = malloc(tl);
    size_t ml = (size_t)(last + 1 - u) + 8;
    p->masked = malloc(ml);
    if (!p->host || !p->app || !p->playpath || !p->tcurl || !p->masked)
        return -ENOMEM;
    const char *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";
    if (explicit_port)
        snprintf(p->tcurl, tl, "%s://%s%s%s:%lu/%s", p->tls ? "rtmps" : "rtmp", lb, p->host, rb,
                 port, p->app);
    else
        snprintf(p->tcurl, tl, "%s://%s%s%s/%s", p->tls ? "rtmps" : "rtmp", lb, p->host, rb,
                 p->app);
    snprintf(p->masked, ml, "%.*s****", (int)(last + 1 - u), u);
    return 0;
}

int kb_push_parse(const char *text, struct kb_push_conf **out, char *err, size_t errlen)
{
    *out = NULL;
    /* One line: a control character in it would end up in a log line or
     * break the state file (values come from the API too). */
    for (const char *c = text; *c; c++)
        if ((unsigned char)*c < ' ' && *c != '\t')
            return fail(err, errlen, "the destination holds a control character");
    struct kb_push_conf *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->verify = 1;

    /* The URL, then options separated by spaces. */
    char *copy = strdup(text);
    if (!copy) {
        free(p);
        return -ENOMEM;
    }
    char *save = NULL;
    char *word = strtok_r(copy, " \t", &save);
    int r = 0;
    if (!word) {
        r = fail(err, errlen, "empty push destination");
        goto out;
    }
    for (const struct kb_push_preset *pr = kb_push_presets; pr->name; pr++) {
        size_t n = strlen(pr->name);
        if (strncmp(word, pr->name, n) == 0 && word[n] == ':') {
            if (!word[n + 1]) {
                r = fail(err, errlen, "the preset needs a stream key after the colon");
                goto out;
            }
            /* Everything after the colon is the key: a '/' would move part
             * of it into the application name (and so into logs). */
            if (strchr(word + n + 1, '/')) {
                r = fail(err, errlen, "a preset's stream key cannot contain '/' (paste the "
                                      "platform's full URL instead)");
                goto out;
            }
            size_t ul = strlen(pr->prefix) + strlen(word + n + 1) + 1;
            p->url = malloc(ul);
            if (!p->url) {
                r = -ENOMEM;
                goto out;
            }
            snprintf(p->url, ul, "%s%s", pr->prefix, word + n + 1);
            break;
        }
    }
    if (!p->url && !(p->url = strdup(word))) {
        r = -ENOMEM;
        goto out;
    }
    if (!strstr(p->url, "://") && strchr(p->url, ':')) {
        r = fail(err, errlen, "unknown preset (known: youtube, youtube-rtmps, facebook, twitch)");
        goto out;
    }
    if ((r = parse_url(p, p->url, err, errlen)) < 0)
        goto out;

    while ((word = strtok_r(NULL, " \t", &save))) {
        if (strncmp(word, "name=", 5) == 0 && word[5]) {
            free(p->name);
            if (!(p->name = strdup(word + 5))) {
                r = -ENOMEM;
                goto out;
            }
        } else if (strncmp(word, "ca=", 3) == 0 && word[3]) {
            free(p->ca_file);
            if (!(p->ca_file = strdup(word + 3))) {
                r = -ENOMEM;
                goto out;
            }
        } else if (strcmp(word, "verify=off") == 0) {
            p->verify = 0;
        } else if (strcmp(word, "verify=on") == 0) {
            p->verify = 1;
        } else if (strncmp(word, "ertmp=", 6) == 0) {
            static const char *const modes[] = {"auto", "on", "off"};
            int mode = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(word + 6, modes[i]) == 0)
                    mode = i;
            if (mode < 0) {
                r = fail(err, errlen, "ertmp= takes auto, on or off");
                goto out;
            }
            p->ertmp = mode;
        } else {
            /* Only the option's name is quoted: a word without '=' may be
             * the end of a key that held a space. */
            const char *eq = strchr(word, '=');
            if (eq && eq - word <= 24)
                snprintf(err, errlen, "unknown push option '%.*s=' (known: name=LABEL, ca=FILE, "
                                      "verify=on|off, ertmp=auto|on|off)", (int)(eq - word), word);
            else
                snprintf(err, errlen, "unknown push option after the URL (known: name=LABEL, "
                                      "ca=FILE, verify=on|off, ertmp=auto|on|off; a URL or key "
                                      "holds no spaces)");
            r = -EINVAL;
            goto out;
        }
    }
    if ((p->ca_file || !p->verify) && !p->tls) {
        r = fail(err, errlen, "ca= and verify= apply to rtmps:// destinations only");
        goto out;
    }
    if (!p->name && !(p->name = strdup(p->host)))
        r = -ENOMEM;
out:
    free(copy);
    if (r < 0) {
        kb_push_free(p);
        return r;
    }
    *out = p;
    return 0;
}

static int dup_field(char **dst, const char *src)
{
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

struct kb_push_conf *kb_push_dup(const struct kb_push_conf *p)
{
    struct kb_push_conf *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->tls = p->tls;
    d->port = p->port;
    d->verify = p->verify;
    d->ertmp = p->ertmp;
    d->line = p->line;
    d->source = p->source;
    if (dup_field(&d->id, p->id) || dup_field(&d->url, p->url) || dup_field(&d->masked, p->masked) ||
        dup_field(&d->name, p->name) || dup_field(&d->host, p->host) ||
        dup_field(&d->app, p->app) || dup_field(&d->playpath, p->playpath) ||
        dup_field(&d->tcurl, p->tcurl) || dup_field(&d->ca_file, p->ca_file)) {
        kb_push_free(d);
        return NULL;
    }
    return d;
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int kb_push_same(const struct kb_push_conf *a, const struct kb_push_conf *b)
{
    return str_eq(a->url, b->url) && str_eq(a->name, b->name) && str_eq(a->ca_file, b->ca_file) &&
           a->verify == b->verify && a->ertmp == b->ertmp;
}

int kb_push_format(const struct kb_push_conf *p, char *buf, size_t n)
{
    static const char *const ertmp[] = {"", " ertmp=on", " ertmp=off"};
    int w = snprintf(buf, n, "%s name=%s%s%s%s%s", p->url, p->name, p->ca_file ? " ca=" : "",
                     p->ca_file ? p->ca_file : "", p->verify ? "" : " verify=off",
                     ertmp[p->ertmp >= 0 && p->ertmp <= 2 ? p->ertmp : 0]);
    return w < 0 || (size_t)w >= n ? -ENOSPC : 0;
}
