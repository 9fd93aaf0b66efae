/* kebun: the relay's side of recording. Each stream with `record = on`
 * gets a sink that hands the recorder (recorder/, its own threads) the same
 * shared messages the players get, and tells it when a broadcast begins,
 * pauses (publisher gone, grace running) and ends. Nothing here waits on
 * the disk or on a lock: kb_recorder_stream_msg takes a reference and
 * appends it to the stream's lock-free queue. */
#include "recsink.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay/http/bridge.h"
#include "server.h"

struct kb__recsink {
    struct kb_sink sink;
    struct kb_recorder_stream *rs;
    int active; ///< a broadcast is being recorded
    struct kb__recsink *next;
};

static struct kb__recsink *rec_of(struct kb_sink *k)
{
    return (struct kb__recsink *)((char *)k - offsetof(struct kb__recsink, sink));
}

static void rec_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct kb__recsink *r = rec_of(k);
    if (r->active)
        kb_recorder_stream_msg(r->rs, m);
}

static void rec_publish(struct kb_sink *k, int resumed)
{
    struct kb__recsink *r = rec_of(k);
    /* A publisher returning within the grace period continues the same
     * recording; anything else is a new broadcast. */
    if (!resumed || !r->active)
        kb_recorder_stream_begin(r->rs);
    r->active = 1;
}

static void rec_unpublish(struct kb_sink *k)
{
    struct kb__recsink *r = rec_of(k);
    if (r->active)
        kb_recorder_stream_gap(r->rs);
}

static void rec_end(struct kb_sink *k)
{
    struct kb__recsink *r = rec_of(k);
    if (r->active)
        kb_recorder_stream_end(r->rs);
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

static struct kb__recsink *find(struct kb_server *srv, struct kb_stream *st)
{
    for (struct kb__recsink *r = srv->rec_sinks; r; r = r->next)
        if (r->sink.stream == st)
            return r;
    return NULL;
}

static enum kb_recorder_fsync fsync_of(const struct kb_config *c)
{
    return c->fsync == KB_CONF_FSYNC_SEGMENT ? KB_RECORDER_FSYNC_SEGMENT : KB_RECORDER_FSYNC_OFF;
}

int kb__recsink_start(struct kb_server *srv)
{
    const struct kb_config *c = srv->conf;
    struct kb_recorder_conf rc = {
        .dir = c->recordings,
        .segment_ms = (uint32_t)c->segment_duration,
        .format = c->record_format == KB_CONF_REC_MPEGTS ? KB_RECORDER_MPEGTS : KB_RECORDER_FMP4,
        .queue_bytes = c->record_queue,
        .thumb_interval_ms = (uint32_t)c->thumbnail_interval,
        .export_mp4 = c->export_mp4,
        .fsync = fsync_of(c),
        .shutdown_timeout_ms = (uint32_t)c->shutdown_timeout,
        .log = rec_log,
    };
    int r = kb_recorder_new(&rc, &srv->recorder);
    if (r < 0) {
        kb_log(KB_LOG_ERROR, NULL, NULL, "recorder cannot start in %s: %s", c->recordings,
               strerror(-r));
        return r;
    }
    return kb__recsink_sync(srv);
}

/* Attach a sink to its stream; a stream already live starts recording at
 * once, from the cached metadata, sequence headers and GOP, as a player
 * joining late would (the recorder waits for sequence headers). */
static void rec_attach(struct kb_stream *st, struct kb__recsink *r)
{
    kb_stream_attach(st, &r->sink);
    if (st->bcast != KB_BC_LIVE)
        return;
    rec_publish(&r->sink, 0);
    kb_stream_catch_up(st, &r->sink);
    kb_log(KB_LOG_INFO, st->name, NULL, "recording starts mid-broadcast (record switched on)");
}

int kb__recsink_sync(struct kb_server *srv)
{
    kb_recorder_reload(srv->recorder, fsync_of(srv->conf), (uint32_t)srv->conf->shutdown_timeout);
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        const struct kb_stream_conf *sc = kb_config_stream_by_name(srv->conf, st->name);
        struct kb__recsink *r = find(srv, st);
        int want = sc && sc->record;
        if (want) {
            struct kb_recorder_limits lim = {.max_age_ms = sc->retention_age,
                                             .max_bytes = sc->retention_size};
            struct kb_recorder_stream *rs = kb_recorder_stream_get(srv->recorder, st->name);
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
            /* A retention pass with these limits (new ones, after a
             * reload) runs at once, sparing the live recording. */
            kb_recorder_stream_limits(rs, &lim);
            if (!r->sink.stream)
                rec_attach(st, r);
        } else if (r && r->sink.stream) {
            rec_end(&r->sink);
            kb_stream_detach(&r->sink);
        }
    }
    return 0;
}

void kb__recsink_status(struct kb_server *srv, struct kb_stream *st,
                        struct kb_recorder_status *out)
{
    struct kb__recsink *r = find(srv, st);
    if (r && r->sink.stream)
        kb_recorder_stream_status(r->rs, out);
    else
        memset(out, 0, sizeof(*out));
}

void kb__recsink_stop(struct kb_server *srv)
{
    /* Broadcasts have ended (the hub told the sinks); finishing the open
     * recordings, waiting for their exports and joining the threads happens
     * in kb_recorder_free. */
    for (struct kb__recsink *r = srv->rec_sinks; r; r = r->next)
        kb_stream_detach(&r->sink);
}

void kb__recsink_free(struct kb_server *srv)
{
    kb_recorder_free(srv->recorder);
    srv->recorder = NULL;
    while (srv->rec_sinks) {
        struct kb__recsink *r = srv->rec_sinks;
        srv->rec_sinks = r->next;
        free(r);
    }
}

/* The job thread deleted (or refused to delete) a recording: answer the
 * API through the bridge, which any thread may do. */
struct deletion {
    struct kb_bridge *bridge;
    struct kb_req *req;
};

static void deleted(void *ud, int err)
{
    struct deletion *d = ud;
    struct kb_req *r = d->req;
    if (err == 0) {
        r->status = 200;
        snprintf(r->info, sizeof(r->info), "%s/%.150s", r->stream, r->arg);
    } else if (err == -EBUSY) {
        r->status = 409;
        snprintf(r->error, sizeof(r->error), "recording %s/%.150s is still open", r->stream,
                 r->arg);
    } else if (err == -ENOENT) {
        r->status = 404;
        snprintf(r->error, sizeof(r->error), "no recording %s/%.150s", r->stream, r->arg);
    } else {
        r->status = err == -ECANCELED ? 503 : 500;
        snprintf(r->error, sizeof(r->error), "cannot delete recording %s/%.100s: %.60s", r->stream,
                 r->arg, err == -ECANCELED ? "kebun is shutting down" : strerror(-err));
    }
    kb_bridge_answer(d->bridge, r);
    free(d);
}

int kb__recsink_delete(struct kb_server *srv, struct kb_req *r)
{
    char rel[KB_CONF_NAME_MAX + sizeof(r->arg) + 2];
    struct deletion *d = malloc(sizeof(*d));
    snprintf(rel, sizeof(rel), "%s/%s", r->stream, r->arg);
    int err = d ? kb_recorder_delete(srv->recorder, rel, deleted, d) : -ENOMEM;
    if (err == 0) {
        d->bridge = &srv->bridge;
        d->req = r;
        return 0;
    }
    free(d);
    r->status = err == -EINVAL ? 404 : err == -ESHUTDOWN ? 503 : 500;
    snprintf(r->error, sizeof(r->error), "%s",
             err == -EINVAL      ? "no such recording"
             : err == -ESHUTDOWN ? "kebun is shutting down"
                                 : "out of memory");
    return err;
}
