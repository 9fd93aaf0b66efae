/* kebun: the HTTP side's internal interfaces (relay/http/ only).
 *
 *   server.c     the thread, h2o's setup, accept and the connection cap,
 *                stalled downloads, shutdown
 *   respond.c    JSON and error answers, request counts for /metrics
 *   api.c        /api/v1: streams, destinations, kick, recordings
 *   recordings.c the recordings on disk (meta.json), for the API
 *   metrics.c    /metrics
 *   live.c       /live/NAME.flv: HTTP-FLV viewers
 *   files.c      the pages and /rec/ (the recordings' files), with the path
 *                checks h2o's file handler does not make
 *   route.c      what a request asks for, as pure functions (fuzzed)
 *   bridge.c     what passes between the loop thread and this one
 */
#ifndef KB_HTTP_INTERNAL_H
#define KB_HTTP_INTERNAL_H

#include <h2o.h>

#include "http.h"
#include "relay/list.h"

#if !H2O_USE_LIBUV
#error "kebun needs the libuv build of libh2o (libh2o-dev, not libh2o-evloop-dev)"
#endif

/* What handled a request, for kebun_http_requests_total. */
enum kb_handler {
    KB_H_API,
    KB_H_METRICS,
    KB_H_LIVE,
    KB_H_REC,
    KB_H_PAGE,
    KB_H_COUNT,
};

/* Status codes counted per handler: the rest go under "other". */
#define KB_CODES 12

struct kb_http {
    struct kb_http_conf conf;   ///< with its own copies of the strings
    char *recordings;
    char *web_root;
    struct kb_bridge *bridge;
    int loopback;               ///< listening on a loopback address: reads need no token

    pthread_t thread;
    int started;
    atomic_int stop_sent;       ///< kb_http_stop was called
    uv_loop_t loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_async_t wake;            ///< answers from the loop
    uv_async_t stop;            ///< kb_http_stop
    uv_timer_t sweep;           ///< stalled downloads, shutdown grace
    struct kb_list conns;       ///< accepted connections (struct kb_hconn)
    uint64_t n_conns;
    struct kb_list waiting;     ///< requests waiting for the loop (api.c; /live/ too)
    int stopping;
    uint64_t stop_at;
    uint64_t counts[KB_H_COUNT][KB_CODES]; ///< requests by handler and status

    /* Start-up: the caller waits for the listen result. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    int start_done, start_err;
};

/* An accepted connection (h2o owns the socket; this is our record of it). */
struct kb_hconn {
    uv_tcp_t tcp;               ///< first: h2o's close callback hands this back
    struct kb_list link;
    struct kb_http *h;
    size_t last_queue;          ///< write queue size at the last sweep
    uint64_t stall_since;       ///< loop time it stopped shrinking (0: moving)
};

/* Our handlers: h2o's first, then which one and the server. */
struct kb_handler_ctx {
    h2o_handler_t super;
    struct kb_http *h;
    enum kb_handler kind;
};


/* ---- server.c ---------------------------------------------------------- */

/* What every path gets first: the request count and the head-size check. */
void kb__route_common(struct kb_http *h, h2o_pathconf_t *pc, enum kb_handler kind);

/* ---- respond.c --------------------------------------------------------- */

/* Send `body` (copied) with a status and a content type. */
void kb__send(h2o_req_t *req, int status, const char *type, const char *body, size_t len);
/* Send a cJSON document (freed here). */
struct cJSON;
void kb__send_json(h2o_req_t *req, int status, struct cJSON *doc);
/* {"error": "..."} */
void kb__send_error(h2o_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *kb__reason(int status);
/* A dynamic string for h2o (allocated from the request's pool). */
h2o_iovec_t kb__pool_str(h2o_req_t *req, const char *s);
/* Count a finished request (h2o's logger hook). */
void kb__count(struct kb_http *h, enum kb_handler kind, int status);
/* The status counted in column i (0: "other"). */
int kb__count_code(int i);
/* The request head's size: the request line and every header. */
size_t kb__head_size(const h2o_req_t *req);
/* "2026-12-06T08:15:00.123Z" from UTC milliseconds. */
void kb__iso_ms(int64_t ms, char *buf, size_t n);

/* ---- api.c ------------------------------------------------------------- */

int kb__api_serve(h2o_handler_t *self, h2o_req_t *req);
/* /public/v1/: the reads buyers' pages need, without the token. */
int kb__public_serve(h2o_handler_t *self, h2o_req_t *req);
/* Send r to the loop (taken); req gets its answer when it comes back (or
 * 503 at shutdown). Returns 0 (h2o's "handled"). */
int kb__ask_relay(struct kb_http *h, h2o_req_t *req, struct kb_req *r);
/* Answers from the loop arrived. */
void kb__api_answers(struct kb_http *h, struct kb_req *list);
/* Shutdown: every waiting request gets 503. */
void kb__api_stop(struct kb_http *h);
/* After the loop: forget the requests the loop never answered. */
void kb__api_free(struct kb_http *h);

/* ---- recordings.c ------------------------------------------------------ */

/* The recordings as a JSON array, newest first; stream ("" = all), from and
 * to (UTC ms, 0 = open) filter. NULL on ENOMEM. */
struct cJSON *kb__recordings_list(struct kb_http *h, const struct kb_status *st,
                                  const char *stream, int64_t from, int64_t to);
/* One recording, or NULL (404). */
struct cJSON *kb__recording_get(struct kb_http *h, const struct kb_status *st,
                                const char *stream, const char *id);
/* 1 when the recording is the one its stream writes now. */
int kb__recording_live(const struct kb_status *st, const char *stream, const char *id);

/* ---- metrics.c --------------------------------------------------------- */

int kb__metrics_serve(h2o_handler_t *self, h2o_req_t *req);

/* ---- live.c ------------------------------------------------------------ */

int kb__live_serve(h2o_handler_t *self, h2o_req_t *req);
/* The loop answered a viewer's FLV_OPEN (req NULL: the client left
 * meanwhile): send the head and hand the socket over, or the error. */
void kb__live_opened(struct kb_http *h, h2o_req_t *req, struct kb_req *r);

/* ---- files.c ----------------------------------------------------------- */

/* Register the pages and /rec/ on the host. 0 or -1 (logged). */
int kb__files_register(struct kb_http *h, h2o_hostconf_t *host);

#endif
