/* kebun: fuzz target for the configuration parser.
 *
 * The input is the text of a config file. Besides memory errors and leaks,
 * the target checks what kb_config_parse() promises: a refused file has an
 * error message that fits the buffer, however small the buffer, and an
 * accepted one holds only values the key table (config/keys.c) allows,
 * stream names and keys that find their stream and never each other, and
 * push destinations whose masked URL hides exactly their stream key. The
 * same text also goes through the parsers of `--listen` and of one `push`
 * value.
 */
#include <errno.h>
#include <string.h>

#include "config/config.h"
#include "config/keys.h"
#include "fuzz.h"

#define PATH "fuzz.conf"
#define MASK "****"

/* A parsed push destination: the URL is the masked URL with the key in
 * place of the mask, and a copy is the same destination. */
static void check_push(const struct kb_push_conf *p)
{
    KB_FUZZ_CHECK(p->url && p->masked && p->name && p->host && p->app && p->playpath && p->tcurl);
    KB_FUZZ_CHECK(p->port >= 1 && (p->tls == 0 || p->tls == 1) &&
                  (p->verify == 0 || p->verify == 1));
    KB_FUZZ_CHECK((p->ca_file == NULL && p->verify) || p->tls);
    size_t ml = strlen(p->masked), kl = strlen(p->playpath);
    KB_FUZZ_CHECK(kl >= 1 && ml > strlen(MASK) && strcmp(p->masked + ml - strlen(MASK), MASK) == 0);
    KB_FUZZ_CHECK(strlen(p->url) == ml - strlen(MASK) + kl);
    KB_FUZZ_CHECK(strncmp(p->url, p->masked, ml - strlen(MASK)) == 0);
    KB_FUZZ_CHECK(strcmp(p->url + ml - strlen(MASK), p->playpath) == 0);
    KB_FUZZ_CHECK(strncmp(p->tcurl, p->tls ? "rtmps://" : "rtmp://", p->tls ? 8 : 7) == 0);
    struct kb_push_conf *d = kb_push_dup(p);
    if (d) {
        KB_FUZZ_CHECK(kb_push_same(p, d) && d->next == NULL);
        kb_push_free(d);
    }
}

/* Every value the key table describes lies in its range: `base` is the
 * kb_config for server keys, a kb_stream_conf for stream keys. */
static void check_values(const void *base, int sec)
{
    for (size_t i = 0; i < kb__conf_nkeys; i++) {
        const struct kb__conf_key *k = &kb__conf_keys[i];
        const char *field = (const char *)base + k->off;
        if (k->sec != sec)
            continue;
        switch (k->type) {
        case T_UINT:
        case T_SIZE:
        case T_DURATION: {
            uint64_t v;
            memcpy(&v, field, sizeof(v));
            KB_FUZZ_CHECK(v >= k->min && v <= k->max);
            break;
        }
        case T_STRING:
        case T_KEY: {
            const char *v;
            memcpy(&v, field, sizeof(v));
            KB_FUZZ_CHECK(v && strlen(v) >= k->min && strlen(v) <= k->max);
            break;
        }
        case T_BOOL:
        case T_ENUM: {
            int v, n = 2;
            memcpy(&v, field, sizeof(v));
            if (k->type == T_ENUM)
                for (n = 0; k->names[n]; n++)
                    ;
            KB_FUZZ_CHECK(v >= 0 && v < n);
            break;
        }
        default: /* T_LISTEN and T_PUSH are lists, checked by the caller */
            break;
        }
    }
}

static void check_accepted(const struct kb_config *c)
{
    KB_FUZZ_CHECK(strcmp(c->path, PATH) == 0);
    KB_FUZZ_CHECK(c->n_listen >= 1 && c->n_listen <= KB_CONF_MAX_LISTEN);
    for (int i = 0; i < c->n_listen; i++)
        KB_FUZZ_CHECK(c->listen[i].port >= 1 &&
                      strnlen(c->listen[i].host, sizeof(c->listen[i].host)) <
                          sizeof(c->listen[i].host));
    check_values(c, SEC_SERVER);
    KB_FUZZ_CHECK(strcmp(kb_config_log_level_name(c->log_level), "?") != 0);
    KB_FUZZ_CHECK(c->push_retry_max >= c->push_retry_min);

    int n = 0;
    for (const struct kb_stream_conf *s = c->streams; s; s = s->next) {
        n++;
        check_values(s, SEC_STREAM);
        KB_FUZZ_CHECK(s->name && strlen(s->name) >= 1 && strlen(s->name) <= KB_CONF_NAME_MAX);
        KB_FUZZ_CHECK(s->key != NULL); /* required */
        int np = 0;
        for (const struct kb_push_conf *p = s->pushes; p; p = p->next) {
            np++;
            check_push(p);
            for (const struct kb_push_conf *q = p->next; q; q = q->next)
                KB_FUZZ_CHECK(!kb_push_same(p, q));
        }
        KB_FUZZ_CHECK(np == s->n_pushes);
        KB_FUZZ_CHECK(kb_config_stream_by_name(c, s->name) == s);
        KB_FUZZ_CHECK(kb_config_stream_by_key(c, s->key) == s);
        /* A key that is also a public name would let viewers publish. */
        KB_FUZZ_CHECK(kb_config_stream_by_key(c, s->name) == NULL);
    }
    KB_FUZZ_CHECK(n == c->n_streams);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* As kebun loads it: main.c's 4 KiB message buffer. */
    char err[4096];
    struct kb_config *c = NULL;
    int r = kb_config_parse(PATH, text, &c, err, sizeof(err));
    KB_FUZZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
    if (r == 0) {
        KB_FUZZ_CHECK(c != NULL);
        check_accepted(c);
        kb_config_free(c);
    } else {
        KB_FUZZ_CHECK(c == NULL && (r == -EINVAL || r == -ENOMEM));
        KB_FUZZ_CHECK(r == -ENOMEM || strncmp(err, PATH ":", strlen(PATH ":")) == 0);
    }

    /* The same text with a cramped message buffer, then with none. */
    char small[64];
    size_t small_len = 1 + size % sizeof(small);
    struct kb_config *c2 = NULL;
    int r2 = kb_config_parse(PATH, text, &c2, small, small_len);
    KB_FUZZ_CHECK(r2 == r && strnlen(small, small_len) < small_len);
    kb_config_free(c2);
    r2 = kb_config_parse(PATH, text, &c2, NULL, 0);
    KB_FUZZ_CHECK(r2 == r);
    kb_config_free(c2);

    /* The --listen argument goes through the same address parser. */
    struct kb_listen_conf l;
    if (kb_config_parse_listen(text, &l) == 0)
        KB_FUZZ_CHECK(l.port >= 1 && strnlen(l.host, sizeof(l.host)) < sizeof(l.host));

    /* And the text as one push value (config.c passes it trimmed). */
    char why[200];
    struct kb_push_conf *p = NULL;
    r = kb_push_parse(text, &p, why, sizeof(why));
    if (r == 0) {
        check_push(p);
        kb_push_free(p);
    } else {
        KB_FUZZ_CHECK(p == NULL && (r == -EINVAL || r == -ENOMEM));
        KB_FUZZ_CHECK(r == -ENOMEM || strnlen(why, sizeof(why)) < sizeof(why));
    }

    free(text);
    return 0;
}
