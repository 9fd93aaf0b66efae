/* /live/NAME.flv: a live stream as HTTP-FLV, for mpegts.js in a browser.
 *
 * A viewer is a sink of its stream like an RTMP player, on the relay's
 * side (relay/flvsink.c): the same shared messages, the same cache to start
 * from, the same keyframe gate bounded by player_queue. The messages cross
 * to this thread through the viewer's ring (kb_flv), and are written here
 * as FLV tags: an 11-byte tag header and the 4-byte size after it are ours,
 * the payload is the shared message's own bytes (nothing is copied). One
 * write is in flight at a time (h2o's rule); the ring fills meanwhile, and
 * the relay's gate skips to a keyframe when it is full.
 *
 * The response is chunked and ends when the relay lets go of the viewer
 * (the stream was removed, kebun stops); a client that leaves is noticed on
 * a write, and its sink is detached.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "route.h"

#define IOV_MSGS 32 ///< messages per write

struct viewer {
    h2o_generator_t super;
    struct kb_list link;       ///< h->viewers, once the response started
    struct kb_http *h;
    h2o_req_t *req;            ///< NULL once the response ended
    struct kb_flv *flv;        ///< our reference
    int writing;               ///< a write is in flight
    uint32_t inflight;         ///< ring messages that write covers
    int header_sent;
    uint64_t waiting_since;    ///< loop time audio was first seen waiting for the tick (0: none)
    uint8_t tags[IOV_MSGS][15]; ///< per message in flight: its tag header and its size
};

static void put_be24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    put_be24(p + 1, v);
}

static void finish(struct viewer *v, h2o_send_state_t state)
{
    h2o_req_t *req = v->req;
    v->req = NULL;
    kb_list_remove(&v->link);
    /* After FINAL h2o calls neither proceed nor stop. */
    h2o_send(req, NULL, 0, state);
}

/* Write what the ring holds, if no write is in flight. Each message is a
 * tag: our 11-byte header, the message's own payload, then the tag's size
 * (FLV's "previous tag size", which follows every tag). */
static void pump(struct viewer *v)
{
    if (!v->req || v->writing)
        return;
    h2o_iovec_t iov[3 * IOV_MSGS + 1];
    size_t n = 0;
    uint32_t k = 0;
    if (!v->header_sent) {
        /* "FLV", version 1, audio and video, header size 9, then the size
         * of the tag before the first: 0. */
        static const uint8_t file_header[13] = {'F', 'L', 'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0};
        iov[n++] = h2o_iovec_init(file_header, sizeof(file_header));
        v->header_sent = 1;
    }
    struct kb_msg *m;
    while (k < IOV_MSGS && (m = kb_msgring_peek(&v->flv->ring, k)) != NULL) {
        uint8_t *t = v->tags[k];
        t[0] = m->type;
        put_be24(t + 1, m->len);
        put_be24(t + 4, m->timestamp & 0xFFFFFF);
        t[7] = (uint8_t)(m->timestamp >> 24);
        put_be24(t + 8, 0); /* stream id */
        put_be32(t + 11, 11 + m->len);
        iov[n++] = h2o_iovec_init(t, 11);
        iov[n++] = h2o_iovec_init(m->data, m->len);
        iov[n++] = h2o_iovec_init(t + 11, 4);
        k++;
    }
    if (n == 0) {
        if (atomic_load(&v->flv->ended))
            finish(v, H2O_SEND_STATE_FINAL);
        return;
    }
    v->inflight = k;
    v->writing = 1;
    v->waiting_since = 0;
    h2o_send(v->req, iov, n, H2O_SEND_STATE_IN_PROGRESS);
}

/* A video frame waits in the ring (it would have been written at once,
 * but a write was in flight). */
static int video_waiting(struct viewer *v)
{
    struct kb_msg *m;
    for (uint32_t k = 0; k < IOV_MSGS && (m = kb_msgring_peek(&v->flv->ring, k)) != NULL; k++)
        if (m->type == KB_MSG_VIDEO)
            return 1;
    return 0;
}

static void on_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    (void)req;
    struct viewer *v = (struct viewer *)self;
    v->writing = 0;
    if (v->inflight)
        kb_msgring_release(&v->flv->ring, v->inflight);
    v->inflight = 0;
    /* Audio that came during the write waits for the next video frame or
     * the tick, as it would have without the write. */
    if (video_waiting(v) || atomic_load(&v->flv->ended))
        pump(v);
}

static void tell_relay_gone(struct kb_http *h, struct kb_flv *flv)
{
    atomic_store(&flv->gone, 1);
    struct kb_req *r = kb_req_new(KB_REQ_FLV_CLOSE, flv->stream, NULL);
    if (!r)
        return; /* the relay notices `gone` at the next message */
    r->flv = kb_flv_ref(flv);
    if (kb_bridge_request(h->bridge, r) < 0)
        kb_req_free(r);
}

/* The client left (a write failed). */
static void on_stop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)req;
    struct viewer *v = (struct viewer *)self;
    v->req = NULL;
    kb_list_remove(&v->link);
    tell_relay_gone(v->h, v->flv);
}

/* The request's memory goes: drop our reference. */
static void on_dispose(void *p)
{
    struct viewer *v = p;
    v->flv->http = NULL;
    kb_list_remove(&v->link);
    kb_flv_unref(v->flv);
}

int kb__live_serve(h2o_handler_t *self, h2o_req_t *req)
{
    struct kb_http *h = ((struct kb_handler_ctx *)self)->h;
    const char *p = req->path_normalized.base;
    size_t n = req->path_normalized.len;
    static const char prefix[] = "/live/", suffix[] = ".flv";
    size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1;
    if (n <= pl + sl || memcmp(p, prefix, pl) != 0 || memcmp(p + n - sl, suffix, sl) != 0 ||
        !kb_route_name_ok(p + pl, n - pl - sl, KB_CONF_NAME_MAX)) {
        kb__send(req, 404, "text/plain; charset=utf-8", "Not Found\n", 10);
        return 0;
    }
    enum kb_method m = kb_route_method(req->method.base, req->method.len);
    if (m != KB_M_GET && m != KB_M_HEAD) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        kb__send(req, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
        return 0;
    }
    if (h->stopping) {
        kb__send(req, 503, "text/plain; charset=utf-8", "Service Unavailable\n", 20);
        return 0;
    }
    char name[KB_CONF_NAME_MAX + 1];
    memcpy(name, p + pl, n - pl - sl);
    name[n - pl - sl] = '\0';
    struct kb_flv *flv = kb_flv_new(name);
    struct kb_req *r = flv ? kb_req_new(KB_REQ_FLV_OPEN, name, m == KB_M_HEAD ? "head" : "")
                           : NULL;
    if (!r) {
        kb_flv_unref(flv);
        kb__send(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return 0;
    }
    struct viewer *v = h2o_mem_alloc_shared(&req->pool, sizeof(*v), on_dispose);
    memset(v, 0, sizeof(*v));
    kb_list_init(&v->link);
    v->h = h;
    v->req = req;
    v->flv = flv; /* the viewer's reference */
    flv->http = v;
    r->flv = kb_flv_ref(flv);
    if (kb_bridge_request(h->bridge, r) < 0) {
        kb_req_free(r);
        kb__send(req, 503, "text/plain; charset=utf-8", "Service Unavailable\n", 20);
    }
    return 0;
}

static void on_tick(uv_timer_t *t);

void kb__live_opened(struct kb_http *h, struct kb_req *r)
{
    struct viewer *v = r->flv->http;
    if (!v || !v->req) {
        /* Nobody to send to any more: the relay lets go too. */
        if (r->status == 200)
            tell_relay_gone(h, r->flv);
        return;
    }
    h2o_req_t *req = v->req;
    if (r->status != 200) {
        v->req = NULL;
        kb__send(req, r->status, "text/plain; charset=utf-8", r->error, strlen(r->error));
        return;
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        v->req = NULL;
        tell_relay_gone(h, r->flv);
        kb__send(req, 200, "video/x-flv", "", 0);
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("video/x-flv"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    /* Pages on other origins may play it. */
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-origin"),
                          0, NULL, H2O_STRLIT("*"));
    v->super.proceed = on_proceed;
    v->super.stop = on_stop;
    kb_list_push(&h->viewers, &v->link);
    if (!uv_is_active((uv_handle_t *)&h->tick)) {
        uint64_t period = h->flush_ms / 4 ? h->flush_ms / 4 : 1;
        uv_timer_start(&h->tick, on_tick, period, period);
    }
    h2o_start_response(req, &v->super);
    pump(v);
}

void kb__live_pump(struct kb_http *h)
{
    KB_LIST_EACH(l, &h->viewers)
        pump(kb_container_of(l, struct viewer, link));
    if (kb_list_empty(&h->viewers))
        uv_timer_stop(&h->tick);
}

/* Audio between video frames (and audio-only streams) is not woken for:
 * it leaves once it has waited flush_interval, unless a video frame takes
 * it first, like an RTMP player's (relay/flush.h). The tick runs a few
 * times per interval. */
static void on_tick(uv_timer_t *t)
{
    struct kb_http *h = t->data;
    uint64_t now = uv_now(&h->loop);
    KB_LIST_EACH(l, &h->viewers) {
        struct viewer *v = kb_container_of(l, struct viewer, link);
        if (v->writing || (!kb_msgring_peek(&v->flv->ring, 0) && !atomic_load(&v->flv->ended)))
            continue;
        if (!v->waiting_since)
            v->waiting_since = now;
        else if (now - v->waiting_since + 1 >= h->flush_ms)
            pump(v);
    }
    if (kb_list_empty(&h->viewers))
        uv_timer_stop(t);
}

void kb__live_stop(struct kb_http *h)
{
    KB_LIST_EACH(l, &h->viewers) {
        struct viewer *v = kb_container_of(l, struct viewer, link);
        atomic_store(&v->flv->ended, 1);
        pump(v);
    }
}
