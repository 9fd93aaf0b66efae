#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "relay/rtmp/amf.h"
#include "relay/rtmp/flv.h"

static void end_broadcast(struct kb_stream *st);

static void on_grace_end(uv_timer_t *t)
{
    end_broadcast(t->data);
}

int kb_stream_apply(struct kb_stream *st, const struct kb_config *conf,
                    const struct kb_stream_conf *sc)
{
    if (!st->key || strcmp(st->key, sc->key) != 0) {
        char *key = strdup(sc->key);
        if (!key)
            return -ENOMEM;
        if (st->key)
            memset(st->key, 0, strlen(st->key));
        free(st->key);
        st->key = key;
    }
    st->gop_cache = sc->gop_cache;
    st->gop_cache_max = conf->gop_cache_max;
    st->grace_ms = conf->grace;
    return 0;
}

struct kb_stream *kb_hub_add(struct kb_hub *hub, const struct kb_config *conf,
                             const struct kb_stream_conf *sc)
{
    struct kb_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->name = strdup(sc->name);
    if (!st->name || kb_stream_apply(st, conf, sc) < 0) {
        free(st->name);
        free(st);
        return NULL;
    }
    st->hub = hub;
    uv_timer_init(hub->loop, &st->grace_timer);
    st->grace_timer.data = st;
    struct kb_stream **tail = &hub->streams;
    while (*tail)
        tail = &(*tail)->next;
    *tail = st;
    return st;
}

static void stream_free(struct kb_stream *st);

static void on_stream_closed(uv_handle_t *h)
{
    stream_free(h->data);
}

void kb_hub_remove(struct kb_hub *hub, struct kb_stream *st)
{
    for (struct kb_stream **pp = &hub->streams; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&st->grace_timer, on_stream_closed);
}

int kb_hub_init(struct kb_hub *hub, uv_loop_t *loop, const struct kb_config *conf)
{
    memset(hub, 0, sizeof(*hub));
    hub->loop = loop;
    for (const struct kb_stream_conf *sc = conf->streams; sc; sc = sc->next)
        if (!kb_hub_add(hub, conf, sc))
            return -ENOMEM;
    return 0;
}

static void gop_clear(struct kb_stream *st)
{
    for (uint32_t i = 0; i < st->gop_len; i++)
        kb_msg_unref(st->gop[i]);
    st->gop_len = 0;
    st->gop_bytes = 0;
    st->gop_valid = 0;
}

static void caches_clear(struct kb_stream *st)
{
    gop_clear(st);
    kb_msg_unref(st->metadata);
    kb_msg_unref(st->video_hdr);
    kb_msg_unref(st->audio_hdr);
    st->metadata = st->video_hdr = st->audio_hdr = NULL;
}

void kb_hub_close(struct kb_hub *hub)
{
    hub->closing = 1;
    for (struct kb_stream *st = hub->streams; st; st = st->next) {
        if (st->bcast != KB_BC_IDLE)
            end_broadcast(st);
        uv_close((uv_handle_t *)&st->grace_timer, NULL);
    }
}

static void stream_free(struct kb_stream *st)
{
    while (st->sinks)
        kb_stream_detach(st->sinks);
    caches_clear(st);
    free(st->gop);
    free(st->name);
    if (st->key)
        memset(st->key, 0, strlen(st->key));
    free(st->key);
    free(st);
}

void kb_hub_free(struct kb_hub *hub)
{
    struct kb_stream *st = hub->streams;
    while (st) {
        struct kb_stream *next = st->next;
        stream_free(st);
        st = next;
    }
    hub->streams = NULL;
}

struct kb_stream *kb_hub_find_name(struct kb_hub *hub, const char *name)
{
    for (struct kb_stream *st = hub->streams; st; st = st->next)
        if (strcmp(st->name, name) == 0)
            return st;
    return NULL;
}

struct kb_stream *kb_hub_find_key(struct kb_hub *hub, const char *key)
{
    for (struct kb_stream *st = hub->streams; st; st = st->next)
        if (strcmp(st->key, key) == 0)
            return st;
    return NULL;
}

void kb_stream_attach(struct kb_stream *st, struct kb_sink *sink)
{
    sink->stream = st;
    sink->prev = NULL;
    sink->next = st->sinks;
    if (st->sinks)
        st->sinks->prev = sink;
    st->sinks = sink;
    st->n_sinks++;
}

void kb_stream_detach(struct kb_sink *sink)
{
    struct kb_stream *st = sink->stream;
    if (!st)
        return;
    if (sink->prev)
        sink->prev->next = sink->next;
    else
        st->sinks = sink->next;
    if (sink->next)
        sink->next->prev = sink->prev;
    sink->prev = sink->next = NULL;
    sink->stream = NULL;
    st->n_sinks--;
}

static void notify(struct kb_stream *st, int event, int resumed)
{
    for (struct kb_sink *k = st->sinks, *next; k; k = next) {
        next = k->next;
        if (event == 0 && k->ops->on_publish)
            k->ops->on_publish(k, resumed);
        else if (event == 1 && k->ops->on_unpublish)
            k->ops->on_unpublish(k);
        else if (event == 2 && k->ops->on_end)
            k->ops->on_end(k);
    }
}

void kb_stream_publish(struct kb_stream *st, struct kb_session *s, uint64_t now_ms)
{
    /* A takeover (LIVE) or a return within the grace period (GRACE)
     * continues the broadcast. */
    int resumed = st->bcast != KB_BC_IDLE;
    uv_timer_stop(&st->grace_timer);
    if (!resumed)
        st->bcast_start_ms = now_ms;
    st->bcast = KB_BC_LIVE;
    st->publisher = s;
    caches_clear(st);
    st->has_video = 0;
    st->ts_started = 0;
    st->msgs_in = st->bytes_in = 0;
    st->publish_start_ms = now_ms;
    notify(st, 0, resumed);
}

static void end_broadcast(struct kb_stream *st)
{
    uv_timer_stop(&st->grace_timer);
    st->bcast = KB_BC_IDLE;
    notify(st, 2, 0);
}

void kb_stream_unpublish(struct kb_stream *st)
{
    st->publisher = NULL;
    caches_clear(st);
    st->ts_started = 0;
    st->bcast = KB_BC_GRACE;
    notify(st, 1, 0);
    if (st->grace_ms == 0 || st->hub->closing)
        end_broadcast(st);
    else
        uv_timer_start(&st->grace_timer, on_grace_end, st->grace_ms, 0);
}

/* Map a publisher timestamp onto the stream's timeline. The first message
 * of each publish session lands just after the last one handed out, so a
 * returning publisher continues the timeline instead of restarting it. */
static uint32_t rebase(struct kb_stream *st, uint32_t ts)
{
    if (!st->ts_started) {
        st->ts_started = 1;
        st->ts_floor = st->ts_any ? st->ts_last + 1 : 0;
        st->ts_offset = st->ts_floor - ts;
    }
    uint32_t out = ts + st->ts_offset;
    /* Interleaved audio and video may start a few ms before the session's
     * first message; never hand out a time before the session's start. */
    if ((int32_t)(out - st->ts_floor) < 0)
        out = st->ts_floor;
    if (!st->ts_any || (int32_t)(out - st->ts_last) > 0)
        st->ts_last = out;
    st->ts_any = 1;
    return out;
}

/* @setDataFrame("onMetaData", {...}) is how encoders ask the server to keep
 * metadata; players expect the plain onMetaData({...}) form. */
static struct kb_msg *strip_set_data_frame(struct kb_msg *m)
{
    size_t off = 0, len;
    const char *s;
    if (kb_amf_read_string(m->data, m->len, &off, &s, &len) < 0 || len != 13 ||
        memcmp(s, "@setDataFrame", 13) != 0)
        return m;
    struct kb_msg *n =
        kb_msg_new_copy(m->type, m->timestamp, m->stream_id, m->data + off, m->len - (uint32_t)off);
    if (!n)
        return m;
    n->flags = m->flags;
    kb_msg_unref(m);
    return n;
}

static void gop_add(struct kb_stream *st, struct kb_msg *m, uint64_t max_bytes)
{
    if (m->flags & KB_MSGF_KEY) {
        gop_clear(st);
        st->gop_valid = 1;
    }
    if (!st->gop_valid)
        return;
    if (st->gop_len >= KB_GOP_MAX_MSGS || st->gop_bytes + m->len > max_bytes) {
        /* Too long to keep: new players will wait for the next keyframe. */
        gop_clear(st);
        return;
    }
    if (st->gop_len == st->gop_cap) {
        uint32_t cap = st->gop_cap ? st->gop_cap * 2 : 256;
        struct kb_msg **g = realloc(st->gop, cap * sizeof(*g));
        if (!g) {
            gop_clear(st);
            return;
        }
        st->gop = g;
        st->gop_cap = cap;
    }
    st->gop[st->gop_len++] = kb_msg_ref(m);
    st->gop_bytes += m->len;
}

static void keep(struct kb_msg **slot, struct kb_msg *m)
{
    kb_msg_unref(*slot);
    *slot = kb_msg_ref(m);
}

int kb_stream_push(struct kb_stream *st, struct kb_msg *m)
{
    kb_flv_classify(m);
    if (m->type == KB_MSG_DATA_AMF0 && (m->flags & KB_MSGF_METADATA))
        m = strip_set_data_frame(m);
    if (m->flags & KB_MSGF_VIDEO)
        st->has_video = 1;
    /* Without video every audio frame is a place to start. */
    if (!st->has_video && (m->flags & KB_MSGF_AUDIO) && !(m->flags & KB_MSGF_SEQHDR))
        m->flags |= KB_MSGF_KEY;
    m->timestamp = rebase(st, m->timestamp);
    st->msgs_in++;
    st->bytes_in += m->len;

    if (m->flags & KB_MSGF_METADATA)
        keep(&st->metadata, m);
    else if (m->flags & KB_MSGF_SEQHDR)
        keep(m->flags & KB_MSGF_VIDEO ? &st->video_hdr : &st->audio_hdr, m);
    else if (st->gop_cache && (m->flags & (KB_MSGF_AUDIO | KB_MSGF_VIDEO)))
        gop_add(st, m, st->gop_cache_max);

    for (struct kb_sink *k = st->sinks, *next; k; k = next) {
        next = k->next;
        k->ops->on_msg(k, m);
    }
    kb_msg_unref(m);
    return 0;
}

int kb_stream_catch_up(struct kb_stream *st, struct kb_sink *sink)
{
    if (st->metadata)
        sink->ops->on_msg(sink, st->metadata);
    if (st->video_hdr)
        sink->ops->on_msg(sink, st->video_hdr);
    if (st->audio_hdr)
        sink->ops->on_msg(sink, st->audio_hdr);
    if (!st->gop_cache || !st->gop_valid || st->gop_len == 0)
        return 0;
    for (uint32_t i = 0; i < st->gop_len && sink->stream == st; i++)
        sink->ops->on_msg(sink, st->gop[i]);
    return 1;
}
