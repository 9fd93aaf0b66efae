/* kebun: push destinations (platform ingest URLs) as written in the config.
 *
 *   push = rtmp://a.rtmp.youtube.com/live2/KEY
 *   push = rtmps://live-api-s.facebook.com:443/rtmp/KEY?s_bl=1&s_sc=...
 *   push = youtube:KEY                      (presets: see kb_push_presets)
 *   push = rtmps://ingest.example/app/KEY ca=/etc/kebun/ca.pem name=shop
 *
 * The path's last segment (with its query string, kept intact) is the
 * stream key the destination publishes with; everything before it is the
 * application, which may itself contain slashes. Options after the URL:
 * `name=LABEL` (for logs and the API; default: the host), `ca=FILE` (trust
 * this CA file instead of the system store, rtmps only), `verify=off`
 * (accept any certificate; logged as a warning at every connect),
 * `ertmp=auto|on|off` (Enhanced RTMP: as the platform declares in its
 * connect _result, always, or never).
 */
#ifndef KB_PUSH_H
#define KB_PUSH_H

#include <stddef.h>
#include <stdint.h>

/* Enhanced RTMP towards a destination. */
enum {
    KB_PUSH_ERTMP_AUTO, ///< what the platform's connect _result declares
    KB_PUSH_ERTMP_ON,   ///< every codec kebun relays (platforms that take it unannounced)
    KB_PUSH_ERTMP_OFF,  ///< legacy FLV only
};

struct kb_push_conf {
    char *url;       ///< the full URL, key included: secret
    char *masked;    ///< the URL with its key replaced by ****, for logs and the API
    char *name;      ///< label
    int tls;         ///< rtmps
    char *host;
    uint16_t port;
    char *app;       ///< application (may contain '/')
    char *playpath;  ///< stream key with its query string: secret
    char *tcurl;     ///< rtmp[s]://host[:port]/app
    char *ca_file;   ///< NULL = system CA store
    int verify;      ///< verify the certificate and host name (rtmps)
    int ertmp;       ///< KB_PUSH_ERTMP_*
    int line;        ///< config line, for messages
    char *id;        ///< unique within its stream (the name, or name-2, ...): the API's handle
    int source;      ///< KB_PUSH_CONFIG (a push line) or KB_PUSH_API (the state file)
    struct kb_push_conf *next;
};

/* Parse one `push` value. On error returns -EINVAL and a sentence in err
 * that never contains the key. */
int kb_push_parse(const char *text, struct kb_push_conf **out, char *err, size_t errlen);
void kb_push_free(struct kb_push_conf *p);
/* A deep copy (next is NULL), or NULL. */
struct kb_push_conf *kb_push_dup(const struct kb_push_conf *p);
/* 1 when both describe the same destination (URL and options). */
int kb_push_same(const struct kb_push_conf *a, const struct kb_push_conf *b);
/* The value a `push =` line would need to describe p again (the URL with
 * its key, and the options): secret. 0, or -ENOSPC when it does not fit. */
int kb_push_format(const struct kb_push_conf *p, char *buf, size_t n);

struct kb_push_preset {
    const char *name;   ///< "youtube"
    const char *prefix; ///< URL the key is appended to
};
/* The presets, ending with a NULL name. */
extern const struct kb_push_preset kb_push_presets[];

#endif
