/* kebun: the web side, on a thread and a libuv loop of its own.
 *
 * h2o (Debian's libh2o 2.2.5, the libuv build; HTTP/1.1 only) serves the
 * JSON API, /metrics, HTTP-FLV, the pages and the recordings' files. It
 * reads files with blocking calls on its own loop, so a cold disk never
 * stalls the RTMP loop; it sees the relay only through the bridge
 * (relay/http/bridge.h): snapshots in, requests out, answers back.
 */
#ifndef KB_HTTP_H
#define KB_HTTP_H

#include "bridge.h"
#include "config/config.h"

struct kb_http;

struct kb_http_params {
    const struct kb_http_conf *conf; ///< copied
    const char *recordings;          ///< the recordings root (served under /rec/)
    const char *web_root;            ///< the pages' directory
    struct kb_bridge *bridge;        ///< outlives the HTTP side
};

/* Start the thread and listen. Returns 0 once it listens, or a negative
 * libuv error after logging which address failed. */
int kb_http_start(const struct kb_http_params *p, struct kb_http **out);
/* Any thread: finish what is in flight (live viewers get the end of their
 * stream, waiting API requests 503) and stop. */
void kb_http_stop(struct kb_http *h);
/* Wait for the thread and free everything. NULL is fine. */
void kb_http_free(struct kb_http *h);

#endif
