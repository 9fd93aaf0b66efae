/* kebun: the relay's side of recording. Each stream with `record = on`
 * gets a sink that hands the recorder (recorder/, its own thread) the same
 * shared messages the players get, and tells it when a broadcast begins,
 * pauses (publisher gone, grace running) and ends. Nothing here waits on
 * the disk: kb_rec_msg only takes a reference and queues it. */
#include "record.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay/http/bridge.h"
#include "server.h"

struct kb_rec_sink {
    struct kb_sink sink;
    struct kb_rec_stream *rs;
    int active; ///< a broadcast is being recorded
    struct kb_rec_sink *next;
};

static struct kb_rec_sink *rec_of(struct kb_sink *k)
{
    return (struct kb_rec_sink *)((char *)k - offsetof(struct kb_rec_sink, sink));
}

static void rec_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct kb_rec_sink *r = rec_of(k);
    if (r->active)
        kb_rec_msg(r->rs, m);
}

static void rec_publish(struct kb_sink *k, int resumed)
{
    struct kb_rec_sink *r = rec_of(k);
    /* A publisher returning within the grace period continues the same
     * recording; anything else is a new broadcast. */
    if (!resumed || !r->active)
        kb_rec_begin(r->rs);
    r->active = 1;
}

static void rec_unpublish(struct kb_sink *k)
{
    struct kb_rec_sink *r = rec_of(k);
    if (r->active)
        kb_rec_gap(r->rs);
}

static void rec_end(struct kb_sink *k)
{
    struct kb_rec_sink *r = rec_of(k);
    if (r->active)
        kb_rec_end(r->rs);
    r->active = 0;
}

static const struct kb_sink_ops rec_ops = {
    .on_msg = rec_msg,
    .on_publish = rec_publish,
    .on_unpublish = rec_unpublish,
    .on_end = rec_end,
};

/* The recorder thread logs through the same logger; kb_vlog writes each
 * line with one call, so lines from both threads never interleave. */
static void rec_log(int level, const char *stream, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void rec_log(int level, const char *stream, const char *fmt, va_list ap)
{
    kb_vlog((enum kb_log_level)level, stream, NULL, fmt, ap);
}

static struct kb_rec_sink *find(struct kb_server *srv, struct kb_stream *st)
{
    for (struct kb_rec_sink *r = srv->rec_sinks; r; r = r->next)
        if (r->sink.stream == st)
            return r;
    return NULL;
}

int kb_record_start(struct kb_server *srv)
{
    const struct kb_config *c = srv->conf;
    struct kb_recorder_conf rc = {
        .dir = c->recordings,
        .segment_ms = (uint32_t)c->segment_duration,
        .format = c->record_format == KB_CONF_REC_MPEGTS ? KB_REC_MPEGTS : KB_REC_FMP4,
        .queue_bytes = c->record_queue,
        .thumb_interval_ms = (uint32_t)c->thumbnail_interval,
        .export_mp4 = c->export_mp4,
        .log = rec_log,
    };
    int r = kb_recorder_new(&rc, &srv->recorder);
    if (r < 0) {
        kb_log(KB_LOG_ERROR, NULL, NULL, "recorder cannot start in %s: %s", c->recordings,
               strerror(-r));
        return r;
    }
    return kb_record_sync(srv);
}

/* Attach a sink to its stream; a stream already live starts recording at
 * once, from the cached metadata, sequence headers and GOP, as a player
 * joining late would (the recorder waits for sequence headers). */
static void rec_attach(struct kb_stream *st, struct kb_rec_sink *r)
{
    kb_stream_attach(st, &r->sink);
    if (st->bcast != KB_BC_LIVE)
        return;
    rec_publish(&r->sink, 0);
    kb_stream_catch_up(st, &r->sink);
    kb_log(KB_LOG_INFO, st->name, NULL, "recording starts mid-broadcast (record switched on)");
}

int kb_record_sync(struct kb_server *srv)
{
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        const struct kb_stream_conf *sc = kb_config_stream_by_name(srv->conf, st->name);
        struct kb_rec_sink *r = find(srv, st);
        int want = sc && sc->record;
        if (want) {
            /* For a stream the recorder knows, this applies new retention
             * limits (a reload) at once. */
            struct kb_rec_limits lim = {.max_age_ms = sc->retention_age,
                                        .max_bytes = sc->retention_size};
            struct kb_rec_stream *rs = kb_recorder_stream(srv->recorder, st->name, &lim);
            if (!rs) {
                kb_log(KB_LOG_ERROR, st->name, NULL, "not recorded (name refused by the "
                                                     "recorder)");
                continue;
            }
            if (!r) {
                r = calloc(1, sizeof(*r));
                if (!r)
                    return -ENOMEM;
                r->rs = rs;
                r->sink.ops = &rec_ops;
                r->sink.kind = KB_SINK_RECORDER;
                r->next = srv->rec_sinks;
                srv->rec_sinks = r;
            }
            if (!r->sink.stream)
                rec_attach(st, r);
        } else if (r && r->sink.stream) {
            rec_end(&r->sink);
            kb_stream_detach(&r->sink);
        }
    }
    return 0;
}

void kb_record_status(struct kb_server *srv, struct kb_stream *st, struct kb_rec_status *out)
{
    struct kb_rec_sink *r = find(srv, st);
    if (r && r->sink.stream)
        kb_rec_status(r->rs, out);
    else
        memset(out, 0, sizeof(*out));
}

void kb_record_stop(struct kb_server *srv)
{
    /* Broadcasts have ended (the hub told the sinks); finishing the open
     * recordings and joining the thread happens in kb_recorder_free. */
    for (struct kb_rec_sink *r = srv->rec_sinks; r; r = r->next)
        kb_stream_detach(&r->sink);
}

void kb_record_free(struct kb_server *srv)
{
    kb_recorder_free(srv->recorder);
    srv->recorder = NULL;
    while (srv->rec_sinks) {
        struct kb_rec_sink *r = srv->rec_sinks;
        srv->rec_sinks = r->next;
        free(r);
    }
}

int kb__record_delete(struct kb_server *srv, struct kb_req *r)
{
    (void)srv;
    r->status = 501;
    snprintf(r->error, sizeof(r->error), "deleting recordings is not built yet");
    return -1;
}
