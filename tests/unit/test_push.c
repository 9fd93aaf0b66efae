/* kebun: unit tests for push destinations (config/push.c).
 *
 * A push value is an rtmp:// or rtmps:// URL (or a preset) whose last path
 * segment, query string included, is the platform's stream key, followed
 * by options. Every parsed destination is checked for the invariants the
 * relay relies on (the masked URL never shows the key, the tcUrl is the URL
 * up to the application); every refused one for -EINVAL, a NULL result and
 * an error sentence that never contains the key.
 *
 * Cases marked "Was a bug" failed against an earlier parser: IPv6
 * literals refused with a wrong reason, and a preset key with '/' whose
 * start showed in the masked URL.
 */
#include "config/push.h"

#include "config/config.h"

#include <errno.h>
#include <stdarg.h>

#include "test.h"

static struct kb_push_conf *p; ///< the last destination parsed
static char err[512];          ///< its error sentence

/* Parse text into p; checks that the result and the return code agree. */
static int parse(const char *text)
{
    kb_push_free(p);
    p = (struct kb_push_conf *)1; /* must be overwritten on every path */
    memset(err, 0, sizeof(err));
    int rc = kb_push_parse(text, &p, err, sizeof(err));
    if (rc == 0 && !p)
        return -1000;
    if (rc != 0 && p) {
        if (p != (struct kb_push_conf *)1)
            kb_push_free(p);
        p = NULL;
        return -1001;
    }
    return rc;
}

/* Invariants every parsed destination holds, whatever the input. */
static int check_invariants(const struct kb_push_conf *d)
{
    ASSERT_NOT_NULL(d->url);
    ASSERT_NOT_NULL(d->masked);
    ASSERT_NOT_NULL(d->name);
    ASSERT_NOT_NULL(d->host);
    ASSERT_NOT_NULL(d->app);
    ASSERT_NOT_NULL(d->playpath);
    ASSERT_NOT_NULL(d->tcurl);
    ASSERT_NULL(d->next);
    ASSERT_LE(1, d->port);
    ASSERT_LE(1, strlen(d->host));
    ASSERT_LE(1, strlen(d->app));
    ASSERT_LE(1, strlen(d->playpath));
    /* The key never shows in the masked URL, which ends in the mask. */
    ASSERT_STR_LACKS(d->masked, d->playpath);
    size_t ml = strlen(d->masked);
    ASSERT_LE(4, ml);
    ASSERT_STR_EQ(d->masked + ml - 4, "****");
    /* The URL is the masked URL with the key in place of the mask. */
    ASSERT_EQ(strlen(d->url), ml - 4 + strlen(d->playpath));
    ASSERT_TRUE(strncmp(d->url, d->masked, ml - 4) == 0);
    ASSERT_STR_EQ(d->url + ml - 4, d->playpath);
    /* The tcUrl is the URL up to the application, without the key. */
    ASSERT_TRUE(strncmp(d->tcurl, d->tls ? "rtmps://" : "rtmp://", d->tls ? 8 : 7) == 0);
    ASSERT_STR_LACKS(d->tcurl, d->playpath);
    ASSERT_TRUE(strncmp(d->url, d->tcurl, strlen(d->tcurl)) == 0);
    ASSERT_EQ(d->url[strlen(d->tcurl)], '/');
    /* ca= and verify=off belong to rtmps. */
    if (!d->tls) {
        ASSERT_NULL(d->ca_file);
        ASSERT_EQ(d->verify, 1);
    }
    return 0;
}

/* text parses into these fields; name defaults to the host. */
static int expect_url(const char *text, int tls, const char *host, unsigned port, const char *app,
                      const char *key, const char *tcurl, const char *masked)
{
    int rc = parse(text);
    if (rc != 0) {
        fprintf(stderr, "\"%s\" refused (%d): %s\n", text, rc, err);
        return 1;
    }
    ASSERT_OK(check_invariants(p));
    ASSERT_EQ(p->tls, tls);
    ASSERT_STR_EQ(p->host, host);
    ASSERT_EQ(p->port, port);
    ASSERT_STR_EQ(p->app, app);
    ASSERT_STR_EQ(p->playpath, key);
    ASSERT_STR_EQ(p->tcurl, tcurl);
    ASSERT_STR_EQ(p->masked, masked);
    ASSERT_STR_EQ(p->name, host);
    ASSERT_NULL(p->ca_file);
    ASSERT_EQ(p->verify, 1);
    return 0;
}

/* text is refused with -EINVAL, a non-empty error holding every one of the
 * NULL-terminated strings that follow, and never the secret (if any). */
static int expect_error(const char *text, const char *secret, ...)
{
    int rc = parse(text);
    if (rc != -EINVAL) {
        fprintf(stderr, "\"%s\": want -EINVAL, got %d", text, rc);
        if (rc == 0)
            fprintf(stderr, " (host \"%s\" port %u app \"%s\" key \"%s\")", p->host, p->port,
                    p->app, p->playpath);
        fprintf(stderr, "\n");
        return 1;
    }
    ASSERT_NULL(p);
    if (strlen(err) < 10) {
        fprintf(stderr, "\"%s\": error \"%s\" is no sentence\n", text, err);
        return 1;
    }
    va_list ap;
    va_start(ap, secret);
    for (const char *want; (want = va_arg(ap, const char *));) {
        if (!strstr(err, want)) {
            fprintf(stderr, "\"%s\": error \"%s\" lacks \"%s\"\n", text, err, want);
            va_end(ap);
            return 1;
        }
    }
    va_end(ap);
    if (secret && strstr(err, secret)) {
        fprintf(stderr, "\"%s\": error \"%s\" shows the key \"%s\"\n", text, err, secret);
        return 1;
    }
    return 0;
}

/* ---- URLs --------------------------------------------------------------- */

static int test_rtmp_default_port(void)
{
    ASSERT_OK(expect_url("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop", 0,
                         "a.rtmp.youtube.com", 1935, "live2", "abcd-efgh-ijkl-mnop",
                         "rtmp://a.rtmp.youtube.com/live2",
                         "rtmp://a.rtmp.youtube.com/live2/****"));
    ASSERT_OK(expect_url("rtmp://127.0.0.1/live/k", 0, "127.0.0.1", 1935, "live", "k",
                         "rtmp://127.0.0.1/live", "rtmp://127.0.0.1/live/****"));
    ASSERT_OK(expect_url("rtmp://localhost/x/y", 0, "localhost", 1935, "x", "y",
                         "rtmp://localhost/x", "rtmp://localhost/x/****"));
    return 0;
}

static int test_rtmp_explicit_port(void)
{
    /* An explicit port stays in the tcUrl, even when it is the default. */
    ASSERT_OK(expect_url("rtmp://ingest.example:1936/live/Sekrit1", 0, "ingest.example", 1936,
                         "live", "Sekrit1", "rtmp://ingest.example:1936/live",
                         "rtmp://ingest.example:1936/live/****"));
    ASSERT_OK(expect_url("rtmp://ingest.example:1935/live/Sekrit1", 0, "ingest.example", 1935,
                         "live", "Sekrit1", "rtmp://ingest.example:1935/live",
                         "rtmp://ingest.example:1935/live/****"));
    ASSERT_OK(expect_url("rtmp://10.0.0.2:1/a/b", 0, "10.0.0.2", 1, "a", "b", "rtmp://10.0.0.2:1/a",
                         "rtmp://10.0.0.2:1/a/****"));
    ASSERT_OK(expect_url("rtmp://10.0.0.2:65535/a/b", 0, "10.0.0.2", 65535, "a", "b",
                         "rtmp://10.0.0.2:65535/a", "rtmp://10.0.0.2:65535/a/****"));
    /* Leading zeros are a number too; the tcUrl carries the number. */
    ASSERT_EQ(parse("rtmp://h.example:01936/a/b"), 0);
    ASSERT_EQ(p->port, 1936);
    ASSERT_STR_EQ(p->tcurl, "rtmp://h.example:1936/a");
    ASSERT_STR_EQ(p->masked, "rtmp://h.example:01936/a/****");
    return 0;
}

static int test_rtmps(void)
{
    ASSERT_OK(expect_url("rtmps://ingest.example/live/Sekrit1", 1, "ingest.example", 443, "live",
                         "Sekrit1", "rtmps://ingest.example/live",
                         "rtmps://ingest.example/live/****"));
    ASSERT_OK(expect_url("rtmps://ingest.example:443/live/Sekrit1", 1, "ingest.example", 443,
                         "live", "Sekrit1", "rtmps://ingest.example:443/live",
                         "rtmps://ingest.example:443/live/****"));
    ASSERT_OK(expect_url("rtmps://ingest.example:8443/live/Sekrit1", 1, "ingest.example", 8443,
                         "live", "Sekrit1", "rtmps://ingest.example:8443/live",
                         "rtmps://ingest.example:8443/live/****"));
    /* rtmps on 1935 is allowed: the port does not decide TLS. */
    ASSERT_OK(expect_url("rtmps://ingest.example:1935/live/Sekrit1", 1, "ingest.example", 1935,
                         "live", "Sekrit1", "rtmps://ingest.example:1935/live",
                         "rtmps://ingest.example:1935/live/****"));
    return 0;
}

/* Facebook's keys carry a query string: it belongs to the key, whole. */
static int test_query_string_in_key(void)
{
    static const char fb[] =
        "rtmps://live-api-s.facebook.com:443/rtmp/FB-123?s_bl=1&s_sc=abc&s_sw=0&s_vt=api-s&a=XYZ";
    ASSERT_OK(expect_url(fb, 1, "live-api-s.facebook.com", 443, "rtmp",
                         "FB-123?s_bl=1&s_sc=abc&s_sw=0&s_vt=api-s&a=XYZ",
                         "rtmps://live-api-s.facebook.com:443/rtmp",
                         "rtmps://live-api-s.facebook.com:443/rtmp/****"));
    ASSERT_STR_EQ(p->url, fb);
    /* No part of the key or its query shows in the masked URL. */
    static const char *const parts[] = {"FB-123", "s_bl", "s_sc=abc", "a=XYZ", "XYZ", "?", "&"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        ASSERT_STR_LACKS(p->masked, parts[i]);
    ASSERT_STR_LACKS(p->tcurl, "?");
    /* A '/' inside the query does not move the key/app split. */
    ASSERT_OK(expect_url("rtmp://h.example/app/KEY?next=/a/b&x=1", 0, "h.example", 1935, "app",
                         "KEY?next=/a/b&x=1", "rtmp://h.example/app", "rtmp://h.example/app/****"));
    ASSERT_STR_LACKS(p->masked, "next");
    /* A '?' in the key but an empty query, and a '=' in the key. */
    ASSERT_OK(expect_url("rtmp://h.example/app/KEY?", 0, "h.example", 1935, "app", "KEY?",
                         "rtmp://h.example/app", "rtmp://h.example/app/****"));
    ASSERT_OK(expect_url("rtmp://h.example/app/k=v", 0, "h.example", 1935, "app", "k=v",
                         "rtmp://h.example/app", "rtmp://h.example/app/****"));
    return 0;
}

/* Everything between the host and the key is the application. */
static int test_app_with_slashes(void)
{
    ASSERT_OK(expect_url("rtmp://host/app/inner/KEY", 0, "host", 1935, "app/inner", "KEY",
                         "rtmp://host/app/inner", "rtmp://host/app/inner/****"));
    ASSERT_OK(expect_url("rtmps://host:4443/a/b/c/d/KEY?q=1", 1, "host", 4443, "a/b/c/d", "KEY?q=1",
                         "rtmps://host:4443/a/b/c/d", "rtmps://host:4443/a/b/c/d/****"));
    return 0;
}

/* A long key and a long query pass whole and never show. */
static int test_long_key(void)
{
    char url[4200], key[4096];
    memset(key, 'K', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    key[100] = '?';
    snprintf(url, sizeof(url), "rtmp://h.example/app/%s", key);
    ASSERT_OK(expect_url(url, 0, "h.example", 1935, "app", key, "rtmp://h.example/app",
                         "rtmp://h.example/app/****"));
    /* A 253-character host name is the longest allowed. */
    char host[254];
    memset(host, 'h', 253);
    host[253] = '\0';
    snprintf(url, sizeof(url), "rtmp://%s/app/k", host);
    ASSERT_EQ(parse(url), 0);
    ASSERT_STR_EQ(p->host, host);
    ASSERT_OK(check_invariants(p));
    return 0;
}

/* ---- presets ------------------------------------------------------------ */

static int test_presets(void)
{
    static const struct {
        const char *text, *url, *host, *app, *tcurl, *masked;
        int tls;
        unsigned port;
    } cases[] = {
        {"youtube:abcd-efgh-ijkl-mnop", "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop",
         "a.rtmp.youtube.com", "live2", "rtmp://a.rtmp.youtube.com/live2",
         "rtmp://a.rtmp.youtube.com/live2/****", 0, 1935},
        {"youtube-rtmps:abcd-efgh-ijkl-mnop",
         "rtmps://a.rtmps.youtube.com:443/live2/abcd-efgh-ijkl-mnop", "a.rtmps.youtube.com",
         "live2", "rtmps://a.rtmps.youtube.com:443/live2",
         "rtmps://a.rtmps.youtube.com:443/live2/****", 1, 443},
        {"facebook:FB-123?s_bl=1&s_sc=abc&a=XYZ",
         "rtmps://live-api-s.facebook.com:443/rtmp/FB-123?s_bl=1&s_sc=abc&a=XYZ",
         "live-api-s.facebook.com", "rtmp", "rtmps://live-api-s.facebook.com:443/rtmp",
         "rtmps://live-api-s.facebook.com:443/rtmp/****", 1, 443},
        {"twitch:live_12345_AbCdEf", "rtmp://live.twitch.tv/app/live_12345_AbCdEf",
         "live.twitch.tv", "app", "rtmp://live.twitch.tv/app", "rtmp://live.twitch.tv/app/****", 0,
         1935},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *key = strchr(cases[i].text, ':') + 1;
        if (expect_url(cases[i].text, cases[i].tls, cases[i].host, cases[i].port, cases[i].app, key,
                       cases[i].tcurl, cases[i].masked)) {
            fprintf(stderr, "... for preset \"%s\"\n", cases[i].text);
            return 1;
        }
        ASSERT_STR_EQ(p->url, cases[i].url);
        ASSERT_STR_LACKS(p->masked, key);
    }
    return 0;
}

/* The table lists exactly the documented presets, each a valid prefix. */
static int test_preset_table(void)
{
    static const char *const documented[] = {"youtube", "youtube-rtmps", "facebook", "twitch"};
    size_t n = 0;
    for (const struct kb_push_preset *pr = kb_push_presets; pr->name; pr++, n++) {
        ASSERT_LE(n + 1, 4);
        ASSERT_STR_EQ(pr->name, documented[n]);
        ASSERT_NOT_NULL(pr->prefix);
        ASSERT_EQ(pr->prefix[strlen(pr->prefix) - 1], '/');
        /* Each prefix plus a key parses like the preset itself. */
        char a[256], b[256];
        snprintf(a, sizeof(a), "%s:Key-%zu", pr->name, n);
        snprintf(b, sizeof(b), "%sKey-%zu", pr->prefix, n);
        struct kb_push_conf *x = NULL, *y = NULL;
        ASSERT_EQ(kb_push_parse(a, &x, err, sizeof(err)), 0);
        ASSERT_EQ(kb_push_parse(b, &y, err, sizeof(err)), 0);
        ASSERT_STR_EQ(x->url, y->url);
        ASSERT_TRUE(kb_push_same(x, y));
        kb_push_free(x);
        kb_push_free(y);
    }
    ASSERT_EQ(n, 4);
    return 0;
}

static int test_preset_errors(void)
{
    ASSERT_OK(expect_error("youtube:", NULL, "stream key", NULL));
    ASSERT_OK(expect_error("twitch:", NULL, "stream key", NULL));
    ASSERT_OK(expect_error("youtube: Sup3rSecret", "Sup3rSecret", NULL));
    ASSERT_OK(expect_error("vimeo:Sup3rSecret", "Sup3rSecret", "unknown preset", "youtube",
                           "twitch", NULL));
    ASSERT_OK(expect_error("YouTube:Sup3rSecret", "Sup3rSecret", "preset", NULL));
    ASSERT_OK(expect_error("youtub:Sup3rSecret", "Sup3rSecret", "preset", NULL));
    ASSERT_OK(expect_error("youtube-rtmp:Sup3rSecret", "Sup3rSecret", "preset", NULL));
    ASSERT_OK(expect_error(":Sup3rSecret", "Sup3rSecret", NULL));
    /* A preset's key is checked like a URL's. */
    ASSERT_OK(expect_error("youtube:Sup3r\001Secret", "Sup3r", "control character", NULL));
    ASSERT_OK(expect_error("facebook:Sup3r\x7fSecret", "Sup3r", "control character", NULL));
    return 0;
}

/* Was a bug: the text after a preset's colon is the key (docs: `youtube:KEY`),
 * but a '/' in it is taken as a path separator, so the start of the key
 * becomes part of the application and shows in the masked URL (in logs and
 * the API) and in the tcUrl: "youtube:Sup3r/Secret" gives app "live2/Sup3r"
 * and a masked URL ending "live2/Sup3r/" and the mask. It should either
 * refuse a '/' in a preset's key or keep the whole key out of the masked
 * URL. */
static int test_preset_key_with_slash(void)
{
    int rc = parse("youtube:Sup3r/Secret");
    if (rc == 0) {
        ASSERT_STR_LACKS(p->masked, "Sup3r");
        ASSERT_STR_LACKS(p->tcurl, "Sup3r");
        ASSERT_STR_EQ(p->app, "live2");
    } else {
        ASSERT_EQ(rc, -EINVAL);
        ASSERT_STR_LACKS(err, "Sup3r");
        ASSERT_STR_LACKS(err, "Secret");
    }
    return 0;
}

static struct kb_push_conf *must_parse(const char *text)
{
    struct kb_push_conf *x = NULL;
    if (kb_push_parse(text, &x, err, sizeof(err)) != 0) {
        fprintf(stderr, "\"%s\" refused: %s\n", text, err);
        abort();
    }
    return x;
}

/* ---- options ------------------------------------------------------------ */

static int test_options(void)
{
    ASSERT_EQ(parse("rtmps://ingest.example/app/Sekrit1 name=shop ca=/etc/kebun/ca.pem "
                    "verify=off"),
              0);
    ASSERT_OK(check_invariants(p));
    ASSERT_STR_EQ(p->name, "shop");
    ASSERT_STR_EQ(p->ca_file, "/etc/kebun/ca.pem");
    ASSERT_EQ(p->verify, 0);
    ASSERT_STR_EQ(p->playpath, "Sekrit1");
    ASSERT_STR_EQ(p->url, "rtmps://ingest.example/app/Sekrit1");
    ASSERT_STR_LACKS(p->masked, "name=");
    ASSERT_STR_LACKS(p->masked, "ca.pem");

    /* Tabs and several spaces separate options too; order does not matter. */
    ASSERT_EQ(parse("  rtmps://ingest.example/app/Sekrit1\tverify=off   name=a.b-c_d\t"), 0);
    ASSERT_OK(check_invariants(p));
    ASSERT_STR_EQ(p->name, "a.b-c_d");
    ASSERT_NULL(p->ca_file);
    ASSERT_EQ(p->verify, 0);
    ASSERT_STR_EQ(p->playpath, "Sekrit1");

    /* Defaults: the name is the host, the system CA store, verify on. */
    ASSERT_EQ(parse("rtmps://ingest.example:443/app/Sekrit1"), 0);
    ASSERT_STR_EQ(p->name, "ingest.example");
    ASSERT_NULL(p->ca_file);
    ASSERT_EQ(p->verify, 1);

    /* verify=on is the default spelled out, allowed on rtmp too. */
    ASSERT_EQ(parse("rtmp://ingest.example/app/Sekrit1 verify=on"), 0);
    ASSERT_EQ(p->verify, 1);
    ASSERT_EQ(parse("rtmps://ingest.example/app/Sekrit1 verify=off verify=on"), 0);
    ASSERT_EQ(p->verify, 1);

    /* ca= alone keeps verifying (against that CA). */
    ASSERT_EQ(parse("rtmps://ingest.example/app/Sekrit1 ca=ca.pem"), 0);
    ASSERT_STR_EQ(p->ca_file, "ca.pem");
    ASSERT_EQ(p->verify, 1);

    /* Options follow presets too. */
    ASSERT_EQ(parse("facebook:FB-1?a=b name=fb-page verify=off"), 0);
    ASSERT_OK(check_invariants(p));
    ASSERT_STR_EQ(p->name, "fb-page");
    ASSERT_EQ(p->verify, 0);
    ASSERT_STR_EQ(p->playpath, "FB-1?a=b");
    ASSERT_EQ(parse("twitch:live_1 name=tw"), 0);
    ASSERT_STR_EQ(p->name, "tw");
    ASSERT_EQ(p->ertmp, KB_PUSH_ERTMP_AUTO);

    /* Enhanced RTMP: as declared (the default), forced on, or off; rtmp
     * and rtmps alike. */
    ASSERT_EQ(parse("youtube:Sekrit1 ertmp=on"), 0);
    ASSERT_EQ(p->ertmp, KB_PUSH_ERTMP_ON);
    ASSERT_EQ(parse("rtmps://ingest.example/app/Sekrit1 ertmp=off name=x"), 0);
    ASSERT_EQ(p->ertmp, KB_PUSH_ERTMP_OFF);
    ASSERT_EQ(parse("rtmp://ingest.example/app/Sekrit1 ertmp=on ertmp=auto"), 0);
    ASSERT_EQ(p->ertmp, KB_PUSH_ERTMP_AUTO);
    /* The value a state file keeps says it again. */
    char v[256];
    ASSERT_EQ(parse("youtube:Sekrit1 ertmp=on"), 0);
    ASSERT_EQ(kb_push_format(p, v, sizeof(v)), 0);
    ASSERT_STR_EQ(v, "rtmp://a.rtmp.youtube.com/live2/Sekrit1 name=a.rtmp.youtube.com ertmp=on");
    struct kb_push_conf *again = must_parse(v);
    ASSERT_TRUE(kb_push_same(p, again));
    ASSERT_EQ(again->ertmp, KB_PUSH_ERTMP_ON);
    kb_push_free(again);
    ASSERT_EQ(parse("youtube:Sekrit1"), 0);
    ASSERT_EQ(kb_push_format(p, v, sizeof(v)), 0);
    ASSERT_STR_LACKS(v, "ertmp");
    return 0;
}

static int test_option_errors(void)
{
    /* ca= and verify=off need TLS. */
    ASSERT_OK(expect_error("rtmp://h.example/app/Sup3rSecret ca=/etc/ca.pem", "Sup3rSecret",
                           "rtmps", NULL));
    ASSERT_OK(
        expect_error("rtmp://h.example/app/Sup3rSecret verify=off", "Sup3rSecret", "rtmps", NULL));
    ASSERT_OK(expect_error("youtube:Sup3rSecret verify=off", "Sup3rSecret", "rtmps", NULL));
    /* Unknown options are named (the name only: what follows a space may
     * be the rest of a key); the known ones listed. */
    ASSERT_OK(expect_error("rtmp://h.example/app/Sup3rSecret colour=blue", "Sup3rSecret",
                           "unknown push option", "'colour='", "name=", NULL));
    ASSERT_STR_LACKS(err, "blue");
    ASSERT_OK(expect_error("rtmps://h.example/app/Sup3rSecret verify=no", "Sup3rSecret",
                           "'verify='", NULL));
    ASSERT_OK(expect_error("rtmps://h.example/app/Sup3rSecret ertmp=yes", "Sup3rSecret",
                           "ertmp= takes auto, on or off", NULL));
    ASSERT_OK(expect_error("rtmps://h.example/app/Sup3rSecret ertmp", "Sup3rSecret", "ertmp=auto|on|off",
                           NULL));
    ASSERT_OK(expect_error("rtmps://h.example/app/Sup3rSecret s_sc=Sup3rTail", "Sup3rTail",
                           "'s_sc='", NULL));
    ASSERT_OK(
        expect_error("rtmps://h.example/app/Sup3rSecret verify", "Sup3rSecret", "verify", NULL));
    ASSERT_OK(
        expect_error("rtmps://h.example/app/Sup3rSecret name=", "Sup3rSecret", "name=", NULL));
    ASSERT_OK(expect_error("rtmps://h.example/app/Sup3rSecret ca=", "Sup3rSecret", "ca=", NULL));
    ASSERT_OK(
        expect_error("rtmps://h.example/app/Sup3rSecret NAME=x", "Sup3rSecret", "'NAME='", NULL));
    /* A second URL is no option. */
    ASSERT_OK(expect_error("rtmp://h.example/app/Sup3rSecret rtmp://other.example/app/k",
                           "Sup3rSecret", "unknown push option", NULL));
    /* A very long unknown option is cut short in the message. */
    char text[600];
    snprintf(text, sizeof(text), "rtmp://h.example/app/Sup3rSecret x%0400d", 0);
    ASSERT_OK(expect_error(text, "Sup3rSecret", "unknown push option", NULL));
    ASSERT_LE(strlen(err), 300);
    return 0;
}

/* ---- malformed URLs ----------------------------------------------------- */

static int test_url_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        /* Empty. */
        {"", "empty"},
        {"   ", "empty"},
        {"\t", "empty"},
        /* No scheme, or another one. */
        {"h.example/app/Sup3rSecret", "rtmp://"},
        {"//h.example/app/Sup3rSecret", "rtmp://"},
        {"http://h.example/app/Sup3rSecret", "rtmp://"},
        {"https://h.example/app/Sup3rSecret", "rtmp://"},
        {"rtmpt://h.example/app/Sup3rSecret", "rtmp://"},
        {"rtmpe://h.example/app/Sup3rSecret", "rtmp://"},
        {"srt://h.example:9000/app/Sup3rSecret", "rtmp://"},
        {"rtmp:/h.example/app/Sup3rSecret", ""},
        {"rtmp//h.example/app/Sup3rSecret", "rtmp://"},
        {"RTMP://h.example/app/Sup3rSecret", "rtmp://"},
        {"rtmp://", "application"},
        {"rtmps://", "application"},
        /* Missing host. */
        {"rtmp:///app/Sup3rSecret", "host"},
        {"rtmp://:1935/app/Sup3rSecret", "host"},
        {"rtmps://:443/app/Sup3rSecret", "host"},
        /* Bad host names. */
        {"rtmp://h*st/app/Sup3rSecret", "host"},
        {"rtmp://user@h.example/app/Sup3rSecret", "host"},
        /* Missing application or key. */
        {"rtmp://h.example", "application"},
        {"rtmp://h.example:1935", "application"},
        {"rtmp://h.example/", "application"},
        {"rtmp://h.example/Sup3rSecret", "application"},
        {"rtmp://h.example//Sup3rSecret", "application"},
        {"rtmp://h.example/Sup3rSecret?a=1/b", "application"},
        {"rtmp://h.example/app/", "stream key"},
        {"rtmp://h.example/app/inner/", "stream key"},
        {"rtmp://h.example/app/?Sup3rSecret", "stream key"},
        {"rtmp://h.example/app//Sup3rSecret", "empty part"},
        {"rtmp://h.example/a//b/Sup3rSecret", "empty part"},
        {"rtmps://live-api-s.facebook.com:443/rtmp/", "stream key"},
        /* Bad ports. */
        {"rtmp://h.example:0/app/Sup3rSecret", "port"},
        {"rtmp://h.example:00000/app/Sup3rSecret", "port"},
        {"rtmp://h.example:65536/app/Sup3rSecret", "port"},
        {"rtmp://h.example:70000/app/Sup3rSecret", "port"},
        {"rtmp://h.example:99999/app/Sup3rSecret", "port"},
        {"rtmp://h.example:123456/app/Sup3rSecret", "port"},
        {"rtmp://h.example:4294967297/app/Sup3rSecret", "port"}, /* 2^32 + 1 */
        {"rtmp://h.example:abc/app/Sup3rSecret", "port"},
        {"rtmp://h.example:19x5/app/Sup3rSecret", "port"},
        {"rtmp://h.example:+80/app/Sup3rSecret", "port"},
        {"rtmp://h.example:-1/app/Sup3rSecret", "port"},
        {"rtmp://h.example:/app/Sup3rSecret", "port"},
        {"rtmp://h.example:1935:1936/app/Sup3rSecret", "port"},
        {"rtmps://h.example:0x1bb/app/Sup3rSecret", "port"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (expect_error(cases[i].text, "Sup3rSecret", cases[i].want, NULL)) {
            fprintf(stderr, "... case %zu\n", i);
            return 1;
        }
    }
    /* A host name over 253 characters. */
    char url[400], host[255];
    memset(host, 'h', 254);
    host[254] = '\0';
    snprintf(url, sizeof(url), "rtmp://%s/app/Sup3rSecret", host);
    ASSERT_OK(expect_error(url, "Sup3rSecret", "host", NULL));
    return 0;
}

/* Spaces split the URL from its options; any other whitespace, control
 * character or non-ASCII byte inside the URL is refused. */
static int test_control_characters(void)
{
    static const char *const bad[] = {
        "rtmp://h.example/app/Sup3r\nSecret",   "rtmp://h.example/app/Sup3r\rSecret",
        "rtmp://h.example/app/Sup3r\vSecret",   "rtmp://h.example/app/Sup3r\fSecret",
        "rtmp://h.example/app/Sup3r\001Secret", "rtmp://h.example/app/Sup3r\033Secret",
        "rtmp://h.example/app/Sup3r\x7fSecret", "rtmp://h.example/app/Sup3r\xc3\xa9Secret",
        "rtmp://h.ex\nample/app/Sup3rSecret",   "rtmp://h.example/a\001pp/Sup3rSecret",
        "rtmp://h.example/app/Sup3rSecret\n",   "rtmp://h.example/app/Sup3rSecret\r",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (expect_error(bad[i], "Sup3r", "control character", NULL)) {
            fprintf(stderr, "... case %zu\n", i);
            return 1;
        }
        ASSERT_STR_LACKS(err, "Secret");
    }
    /* A space inside the URL leaves an unknown option after it. */
    ASSERT_OK(expect_error("rtmp://h.ex ample/app/Sup3rSecret", "Sup3rSecret", NULL));
    return 0;
}

/* A host may be an IPv4 literal; an IPv6 literal either parses (host
 * without brackets, tcUrl with them) or is refused saying so. */
static int test_ip_literals(void)
{
    ASSERT_OK(expect_url("rtmp://192.0.2.7:1935/live/k", 0, "192.0.2.7", 1935, "live", "k",
                         "rtmp://192.0.2.7:1935/live", "rtmp://192.0.2.7:1935/live/****"));
    return 0;
}

/* Was a bug: "rtmp://[::1]:1935/live/k" was refused with "the URL's port
 * is not a number" (the first ':' inside the brackets is taken for the
 * port separator). kebun listens on [V6]:PORT, so a push to one is
 * natural; it should either parse (host ::1, port 1935, app live, key k,
 * tcUrl rtmp://[::1]:1935/live) or say that IPv6 literals are not
 * supported. */
static int test_ipv6_literal(void)
{
    static const struct {
        const char *text, *host, *tcurl;
        unsigned port;
    } cases[] = {
        {"rtmp://[::1]:1935/live/k", "::1", "rtmp://[::1]:1935/live", 1935},
        {"rtmp://[::1]/live/k", "::1", "rtmp://[::1]/live", 1935},
        {"rtmps://[2001:db8::5]:8443/live/k", "2001:db8::5", "rtmps://[2001:db8::5]:8443/live",
         8443},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].text);
        if (rc == 0) {
            if (check_invariants(p) || strcmp(p->host, cases[i].host) != 0 ||
                p->port != cases[i].port || strcmp(p->app, "live") != 0 ||
                strcmp(p->playpath, "k") != 0 || strcmp(p->tcurl, cases[i].tcurl) != 0) {
                fprintf(stderr,
                        "\"%s\": host \"%s\" port %u app \"%s\" tcUrl \"%s\", want "
                        "host \"%s\" port %u app \"live\" tcUrl \"%s\"\n",
                        cases[i].text, p->host, p->port, p->app, p->tcurl, cases[i].host,
                        cases[i].port, cases[i].tcurl);
                failed = 1;
            }
        } else if (rc != -EINVAL || !strstr(err, "IPv6")) {
            fprintf(stderr,
                    "\"%s\": rc %d, error \"%s\"; want it parsed or an error saying "
                    "IPv6 literals are not supported\n",
                    cases[i].text, rc, err);
            failed = 1;
        }
    }
    /* Malformed brackets are refused in any case. */
    static const char *const bad[] = {
        "rtmp://[::1/live/k",   "rtmp://[]:1935/live/k",     "rtmp://[::1]x/live/k",
        "rtmp://[::1]:/live/k", "rtmp://[::1]:70000/live/k",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (expect_error(bad[i], NULL, NULL)) {
            failed = 1;
        }
    }
    return failed;
}

/* ---- errors ------------------------------------------------------------- */

/* An error never carries the key, wherever the fault is. */
static int test_errors_never_show_key(void)
{
    static const char *const texts[] = {
        "rtmp://h.example:0/app/Sup3rSecret",
        "rtmp://h*st/app/Sup3rSecret",
        "rtmp://h.example/app/Sup3rSecret ca=x",
        "rtmp://h.example/app/Sup3rSecret?tok=Sup3rSecret bogus",
        "rtmps://h.example/app/Sup3rSecret verify=maybe",
        "ftp://h.example/app/Sup3rSecret",
        "youtube-rtmps:Sup3rSecret verify=sometimes",
        "facebook:Sup3rSecret?x=\001",
        "twitch:Sup3rSecret ca=x",
        "nosuchpreset:Sup3rSecret",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (expect_error(texts[i], "Sup3rSecret", NULL)) {
            fprintf(stderr, "... case %zu\n", i);
            return 1;
        }
    }
    return 0;
}

/* A short error buffer is cut and terminated; none at all is fine. */
static int test_small_error_buffer(void)
{
    for (size_t len = 1; len < 64; len += 5) {
        char e[64];
        memset(e, 'Z', sizeof(e));
        struct kb_push_conf *x = (struct kb_push_conf *)1;
        ASSERT_EQ(kb_push_parse("http://h/app/k", &x, e, len), -EINVAL);
        ASSERT_NULL(x);
        ASSERT_EQ(strlen(e), len - 1);
        ASSERT_EQ(e[len], 'Z');
    }
    struct kb_push_conf *x = (struct kb_push_conf *)1;
    ASSERT_EQ(kb_push_parse("rtmp://h/app/k colour=red", &x, NULL, 0), -EINVAL);
    ASSERT_NULL(x);
    ASSERT_EQ(kb_push_parse("", &x, NULL, 0), -EINVAL);
    ASSERT_NULL(x);
    return 0;
}

/* ---- same / dup / free -------------------------------------------------- */

static int test_same(void)
{
    static const char *const base = "rtmps://h.example/app/KEY name=n ca=c.pem verify=off";
    static const struct {
        const char *text;
        int same;
    } cases[] = {
        {"rtmps://h.example/app/KEY name=n ca=c.pem verify=off", 1},
        {"rtmps://h.example/app/KEY\tverify=off  ca=c.pem name=n", 1}, /* order, spacing */
        {"rtmps://h.example/app/KEY2 name=n ca=c.pem verify=off", 0},  /* key */
        {"rtmps://h.example/app/KEY?x=1 name=n ca=c.pem verify=off", 0},
        {"rtmps://h.example/app2/KEY name=n ca=c.pem verify=off", 0}, /* app */
        {"rtmps://g.example/app/KEY name=n ca=c.pem verify=off", 0},  /* host */
        {"rtmps://h.example:444/app/KEY name=n ca=c.pem verify=off", 0},
        {"rtmp://h.example/app/KEY name=n", 0},                      /* scheme */
        {"rtmps://h.example/app/KEY name=m ca=c.pem verify=off", 0}, /* name */
        {"rtmps://h.example/app/KEY ca=c.pem verify=off", 0},        /* default name */
        {"rtmps://h.example/app/KEY name=n ca=d.pem verify=off", 0}, /* CA */
        {"rtmps://h.example/app/KEY name=n verify=off", 0},          /* no CA */
        {"rtmps://h.example/app/KEY name=n ca=c.pem", 0},            /* verify */
        {"rtmps://h.example/app/KEY name=n ca=c.pem verify=off ertmp=auto", 1},
        {"rtmps://h.example/app/KEY name=n ca=c.pem verify=off ertmp=on", 0}, /* E-RTMP */
    };
    struct kb_push_conf *a = must_parse(base);
    ASSERT_TRUE(kb_push_same(a, a));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kb_push_conf *b = must_parse(cases[i].text);
        int s1 = kb_push_same(a, b), s2 = kb_push_same(b, a);
        kb_push_free(b);
        if (s1 != cases[i].same || s2 != cases[i].same) {
            fprintf(stderr, "same(\"%s\", \"%s\") = %d / %d, want %d\n", base, cases[i].text, s1,
                    s2, cases[i].same);
            kb_push_free(a);
            return 1;
        }
    }
    kb_push_free(a);
    /* A preset is the same destination as the URL it stands for; the
     * default name (the host) is the same as naming the host. */
    a = must_parse("youtube:abcd-efgh");
    struct kb_push_conf *b = must_parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh");
    struct kb_push_conf *c = must_parse("youtube:abcd-efgh name=a.rtmp.youtube.com");
    int ab = kb_push_same(a, b), ac = kb_push_same(a, c);
    kb_push_free(a);
    kb_push_free(b);
    kb_push_free(c);
    ASSERT_EQ(ab, 1);
    ASSERT_EQ(ac, 1);
    return 0;
}

static int dup_matches(const struct kb_push_conf *s)
{
    struct kb_push_conf *d = kb_push_dup(s);
    ASSERT_NOT_NULL(d);
    ASSERT_NULL(d->next);
    ASSERT_TRUE(kb_push_same(s, d));
    ASSERT_TRUE(kb_push_same(d, s));
    ASSERT_STR_EQ(d->url, s->url);
    ASSERT_STR_EQ(d->masked, s->masked);
    ASSERT_STR_EQ(d->name, s->name);
    ASSERT_STR_EQ(d->host, s->host);
    ASSERT_STR_EQ(d->app, s->app);
    ASSERT_STR_EQ(d->playpath, s->playpath);
    ASSERT_STR_EQ(d->tcurl, s->tcurl);
    ASSERT_EQ(d->tls, s->tls);
    ASSERT_EQ(d->port, s->port);
    ASSERT_EQ(d->verify, s->verify);
    ASSERT_EQ(d->ertmp, s->ertmp);
    ASSERT_EQ(d->line, s->line);
    /* Deep: no string is shared. */
    ASSERT_TRUE(d->url != s->url && d->masked != s->masked && d->name != s->name);
    ASSERT_TRUE(d->host != s->host && d->app != s->app && d->playpath != s->playpath);
    ASSERT_TRUE(d->tcurl != s->tcurl);
    if (s->ca_file) {
        ASSERT_STR_EQ(d->ca_file, s->ca_file);
        ASSERT_TRUE(d->ca_file != s->ca_file);
    } else {
        ASSERT_NULL(d->ca_file);
    }
    ASSERT_OK(check_invariants(d));
    kb_push_free(d);
    return 0;
}

static int test_dup(void)
{
    struct kb_push_conf *a = must_parse("rtmps://h.example:8443/a/b/KEY?q=1 name=x ca=c.pem "
                                        "verify=off");
    struct kb_push_conf *b = must_parse("twitch:live_1 ertmp=off");
    a->line = 42;
    a->next = b; /* a copy never takes the list along */
    int r = dup_matches(a) || dup_matches(b);
    a->next = NULL;
    /* The copy outlives its source. */
    struct kb_push_conf *d = kb_push_dup(a);
    kb_push_free(a);
    kb_push_free(b);
    ASSERT_EQ(r, 0);
    ASSERT_NOT_NULL(d);
    ASSERT_STR_EQ(d->playpath, "KEY?q=1");
    ASSERT_STR_EQ(d->ca_file, "c.pem");
    ASSERT_EQ(d->line, 42);
    kb_push_free(d);
    kb_push_free(NULL);
    return 0;
}

/* ---- through the configuration file -------------------------------------- */

static int test_in_config(void)
{
    struct kb_config *c = NULL;
    char e[2048];
    ASSERT_EQ(kb_config_parse("t.conf",
                              "[stream a]\nkey = abcdefgh12\n"
                              "push = youtube:yt-key-1\n"
                              "push = rtmps://live-api-s.facebook.com:443/rtmp/FB-1?s=1 name=fb\n",
                              &c, e, sizeof(e)),
              0);
    ASSERT_NOT_NULL(c);
    const struct kb_stream_conf *s = c->streams;
    ASSERT_EQ(s->n_pushes, 2);
    ASSERT_STR_EQ(s->pushes->name, "a.rtmp.youtube.com");
    ASSERT_EQ(s->pushes->line, 3);
    ASSERT_STR_EQ(s->pushes->next->name, "fb");
    ASSERT_STR_EQ(s->pushes->next->playpath, "FB-1?s=1");
    ASSERT_EQ(s->pushes->next->line, 4);
    ASSERT_NULL(s->pushes->next->next);
    kb_config_free(c);

    /* A bad destination: its line, the key name, the reason, not the key. */
    c = NULL;
    ASSERT_EQ(kb_config_parse("t.conf",
                              "[stream a]\nkey = abcdefgh12\n\npush = rtmp://h:0/a/Sup3rS\n", &c, e,
                              sizeof(e)),
              -EINVAL);
    ASSERT_NULL(c);
    ASSERT_STR_HAS(e, "t.conf:4: [stream a] push:");
    ASSERT_STR_HAS(e, "port");
    ASSERT_STR_LACKS(e, "Sup3rS");

    /* The same destination twice (a preset and its URL). */
    ASSERT_EQ(kb_config_parse("t.conf",
                              "[stream a]\nkey = abcdefgh12\npush = twitch:Sup3rS\n"
                              "push = rtmp://live.twitch.tv/app/Sup3rS\n",
                              &c, e, sizeof(e)),
              -EINVAL);
    ASSERT_NULL(c);
    ASSERT_STR_HAS(e, "t.conf:4:");
    ASSERT_STR_HAS(e, "first on line 3");
    ASSERT_STR_LACKS(e, "Sup3rS");
    return 0;
}

int main(void)
{
    RUN(test_rtmp_default_port);
    RUN(test_rtmp_explicit_port);
    RUN(test_rtmps);
    RUN(test_query_string_in_key);
    RUN(test_app_with_slashes);
    RUN(test_long_key);
    RUN(test_presets);
    RUN(test_preset_table);
    RUN(test_preset_errors);
    RUN(test_preset_key_with_slash);
    RUN(test_options);
    RUN(test_option_errors);
    RUN(test_url_errors);
    RUN(test_control_characters);
    RUN(test_ip_literals);
    RUN(test_ipv6_literal);
    RUN(test_errors_never_show_key);
    RUN(test_small_error_buffer);
    RUN(test_same);
    RUN(test_dup);
    RUN(test_in_config);
    kb_push_free(p);
    return test_summary();
}
