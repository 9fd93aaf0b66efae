#include "stream.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "relay/rtmp/amf.h"
#include "relay/rtmp/flv.h"

/* Every message of a shared stream goes out on this message stream id (a
 * player's play stream; see player.c). */
#define PLAY_MSID 1

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
    kb_silence_set_mode(&st->silence, (enum kb_silence_mode)sc->silent_audio);
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
    kb_silence_init(&st->silence, (enum kb_silence_mode)sc->silent_audio, hub->silent_aac);
    if (!st->name || kb_stream_apply(st, conf, sc) < 0) {
        free(st->name);
        free(st);
        return NULL;
    }
    st->hub = hub;
    kb_list_init(&st->sinks);
    struct kb_stream **tail = &hub->streams;
    while (*tail)
        tail = &(*tail)->next;
    *tail = st;
    return st;
}

int kb_hub_init(struct kb_hub *hub, const struct kb_config *conf,
                void (*arm)(void *ud, uint64_t at), void *arm_ud)
{
    memset(hub, 0, sizeof(*hub));
    hub->chunk_size = (uint32_t)conf->chunk_size;
    hub->arm = arm;
    hub->arm_ud = arm_ud;
    for (const struct kb_stream_conf *sc = conf->streams; sc; sc = sc->next)
        if (!kb_hub_add(hub, conf, sc))
            return -ENOMEM;
    return 0;
}

void kb_hub_set_silence(struct kb_hub *hub, const struct kb_silent_aac *aac)
{
    hub->silent_aac = aac;
    for (struct kb_stream *st = hub->streams; st; st = st->next)
        st->silence.aac = aac;
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
    struct kb_msg **slots[] = {&st->metadata, &st->video_hdr, &st->audio_hdr, &st->audio_layout};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        kb_msg_unref(*slots[i]);
        *slots[i] = NULL;
    }
    for (size_t i = 0; i < KB_TRACK_HDRS; i++) {
        kb_msg_unref(st->track_hdr[i]);
        st->track_hdr[i] = NULL;
    }
    st->first_track[0] = st->first_track[1] = 0;
}

static void stream_free(struct kb_stream *st)
{
    assert(st->fanning == 0);
    KB_LIST_EACH(l, &st->sinks)
        kb_stream_detach(kb_container_of(l, struct kb_sink, link));
    caches_clear(st);
    kb_silence_free(&st->silence);
    free(st->gop);
    free(st->name);
    if (st->key)
        memset(st->key, 0, strlen(st->key));
    free(st->key);
    free(st);
}

void kb_hub_remove(struct kb_hub *hub, struct kb_stream *st)
{
    assert(st->bcast == KB_BC_IDLE && !st->publisher);
    for (struct kb_stream **pp = &hub->streams; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    stream_free(st);
}

void kb_hub_free(struct kb_hub *hub)
{
    while (hub->streams) {
        struct kb_stream *st = hub->streams;
        hub->streams = st->next;
        stream_free(st);
    }
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

/* ---- sinks ----------------------------------------------------------- */

void kb_stream_attach(struct kb_stream *st, struct kb_sink *sink)
{
    assert(!sink->stream && sink->kind < KB_SINK_KINDS);
    sink->stream = st;
    sink->gone = 0;
    kb_list_push(&st->sinks, &sink->link);
    st->n_sinks[sink->kind]++;
    st->n_wire += sink->wire != 0;
}

void kb_stream_detach(struct kb_sink *sink)
{
    struct kb_stream *st = sink->stream;
    if (!st)
        return;
    sink->stream = NULL;
    st->n_sinks[sink->kind]--;
    st->n_wire -= sink->wire != 0;
    assert(st->n_sinks[sink->kind] >= 0 && st->n_wire >= 0);
    /* A sink may close another sink's connection while the stream hands
     * out a message (a publisher cut off by a player's fault, say): the
     * list the fan-out walks must not change under it, so the sink is only
     * marked and unlinked once the fan-out is over. */
    if (st->fanning) {
        sink->gone = 1;
        st->sinks_gone = 1;
        return;
    }
    kb_list_remove(&sink->link);
}

static void fanout_begin(struct kb_stream *st)
{
    st->fanning++;
}

static void fanout_end(struct kb_stream *st)
{
    assert(st->fanning > 0);
    if (--st->fanning || !st->sinks_gone)
        return;
    st->sinks_gone = 0;
    KB_LIST_EACH(l, &st->sinks) {
        struct kb_sink *k = kb_container_of(l, struct kb_sink, link);
        if (k->gone) {
            k->gone = 0;
            kb_list_remove(&k->link);
        }
    }
}

/* What a sink hears about the broadcast. */
enum sink_event { EV_PUBLISH, EV_UNPUBLISH, EV_END };

static void tell_sinks(struct kb_stream *st, enum sink_event ev, int resumed)
{
    fanout_begin(st);
    KB_LIST_EACH(l, &st->sinks) {
        struct kb_sink *k = kb_container_of(l, struct kb_sink, link);
        if (k->gone)
            continue;
        const struct kb_sink_ops *ops = k->ops;
        if (ev == EV_PUBLISH && ops->on_publish)
            ops->on_publish(k, resumed);
        else if (ev == EV_UNPUBLISH && ops->on_unpublish)
            ops->on_unpublish(k);
        else if (ev == EV_END && ops->on_end)
            ops->on_end(k);
    }
    fanout_end(st);
}

/* Hand one message to one sink, with the players' chunked form built when
 * the sink wants it (cached messages may predate every such sink). */
static void deliver(struct kb_stream *st, struct kb_sink *k, struct kb_msg *m)
{
    if (k->wire && !m->wire && kb_msg_wire(m, st->hub->chunk_size, PLAY_MSID) < 0)
        return; /* out of memory: the sink sees a gap and resumes at a keyframe */
    k->ops->on_msg(k, m);
}

/* ---- broadcasts -------------------------------------------------------- */

void kb_stream_publish(struct kb_stream *st, struct kb_session *publisher, uint64_t now_ms)
{
    assert(!st->publisher);
    /* A takeover (LIVE) or a return within the grace period (GRACE)
     * continues the broadcast. */
    int resumed = st->bcast != KB_BC_IDLE;
    if (!resumed)
        st->bcast_start_ms = now_ms;
    st->bcast = KB_BC_LIVE;
    st->state_ms = now_ms;
    st->grace_until = 0;
    st->publisher = publisher;
    caches_clear(st);
    st->has_video = 0;
    st->ts_started = 0;
    kb_silence_session(&st->silence, resumed);
    st->msgs_in = st->bytes_in = 0;
    st->publish_start_ms = now_ms;
    tell_sinks(st, EV_PUBLISH, resumed);
}

static void end_broadcast(struct kb_stream *st)
{
    st->bcast = KB_BC_IDLE;
    /* At the deadline, or at once (grace 0, shutdown). */
    st->state_ms = st->grace_until ? st->grace_until : st->state_ms;
    st->grace_until = 0;
    tell_sinks(st, EV_END, 0);
}

static int hand_out(void *ud, struct kb_msg *m);

void kb_stream_unpublish(struct kb_stream *st, uint64_t now_ms)
{
    assert(st->bcast == KB_BC_LIVE);
    /* What silent audio held while it waited for audio goes out first (a
     * message that cannot be handed out is lost with the publisher). */
    kb_silence_flush(&st->silence, hand_out, st);
    st->publisher = NULL;
    caches_clear(st);
    st->ts_started = 0;
    st->bcast = KB_BC_GRACE;
    st->state_ms = now_ms;
    tell_sinks(st, EV_UNPUBLISH, 0);
    if (st->grace_ms == 0 || st->hub->closing) {
        end_broadcast(st);
        return;
    }
    st->grace_until = now_ms + st->grace_ms;
    if (st->hub->arm)
        st->hub->arm(st->hub->arm_ud, st->grace_until);
}

uint64_t kb_hub_expire(struct kb_hub *hub, uint64_t now)
{
    uint64_t next = 0;
    for (struct kb_stream *st = hub->streams; st; st = st->next) {
        if (st->bcast != KB_BC_GRACE)
            continue;
        if (now >= st->grace_until)
            end_broadcast(st);
        else if (!next || st->grace_until < next)
            next = st->grace_until;
    }
    return next;
}

void kb_hub_close(struct kb_hub *hub)
{
    hub->closing = 1;
    for (struct kb_stream *st = hub->streams; st; st = st->next)
        if (st->bcast != KB_BC_IDLE)
            end_broadcast(st);
}

/* ---- messages -------------------------------------------------------- */

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
    n->codec = m->codec;
    kb_msg_unref(m);
    return n;
}

static void gop_add(struct kb_stream *st, struct kb_msg *m)
{
    if (m->flags & KB_MSGF_KEY) {
        gop_clear(st);
        st->gop_valid = 1;
    }
    if (!st->gop_valid)
        return;
    if (st->gop_len >= KB_GOP_MAX_MSGS || st->gop_bytes + m->len > st->gop_cache_max) {
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

/* The first track id of a multitrack message, or -1. */
static int track_of(const struct kb_msg *m)
{
    struct kb_flv_tag t;
    if (!(m->flags & KB_MSGF_MULTITRACK) ||
        kb_flv_tag_parse(m->data, m->len, m->type == KB_MSG_VIDEO, &t) < 0)
        return -1;
    return t.track_id;
}

/* An E-RTMP multitrack publisher sends one sequence header per track: the
 * first track's goes where a plain stream's does, each other track's into
 * a slot of its own, so a late joiner gets every track's. */
static struct kb_msg **track_slot(struct kb_stream *st, const struct kb_msg *m)
{
    int kind = m->flags & KB_MSGF_VIDEO ? 0 : 1, id = track_of(m);
    struct kb_msg **main = kind == 0 ? &st->video_hdr : &st->audio_hdr;
    if (id < 0)
        return main;
    if (!st->first_track[kind])
        st->first_track[kind] = 1 + id;
    if (st->first_track[kind] == 1 + id)
        return main;
    struct kb_msg **free_slot = NULL;
    for (size_t i = 0; i < KB_TRACK_HDRS; i++) {
        struct kb_msg *h = st->track_hdr[i];
        if (!h && !free_slot)
            free_slot = &st->track_hdr[i];
        else if (h && h->type == m->type && track_of(h) == id)
            return &st->track_hdr[i];
    }
    return free_slot; /* NULL past KB_TRACK_HDRS tracks: then only the GOP cache keeps it */
}

/* The cache slot a setup message replaces, or NULL. */
static struct kb_msg **setup_slot(struct kb_stream *st, const struct kb_msg *m)
{
    if (m->flags & KB_MSGF_METADATA)
        return &st->metadata;
    if (m->flags & KB_MSGF_LAYOUT)
        return &st->audio_layout;
    if (m->flags & KB_MSGF_SEQHDR)
        return track_slot(st, m);
    return NULL;
}

int kb_stream_push(struct kb_stream *st, struct kb_msg *m)
{
    kb_flv_classify(m);
    if (m->type == KB_MSG_DATA_AMF0 && (m->flags & KB_MSGF_METADATA))
        m = strip_set_data_frame(m);
    if (m->flags & KB_MSGF_VIDEO)
        st->has_video = 1;
    /* A multitrack stream is joined at its first track's keyframes (the
     * other tracks' follow at the same time when their GOPs are aligned):
     * another track's keyframe must not restart the GOP cache or end a
     * skip with the first track in the middle of its GOP. */
    if ((m->flags & (KB_MSGF_MULTITRACK | KB_MSGF_KEY)) == (KB_MSGF_MULTITRACK | KB_MSGF_KEY) &&
        st->first_track[0] && track_of(m) + 1 != st->first_track[0])
        m->flags &= (uint16_t)~KB_MSGF_KEY;
    /* Without video every audio frame is a place to start. */
    if (!st->has_video && (m->flags & KB_MSGF_AUDIO) && !kb_msg_is_setup(m))
        m->flags |= KB_MSGF_KEY;
    m->timestamp = rebase(st, m->timestamp);
    st->msgs_in++;
    st->bytes_in += m->len;
    st->total_in += m->len;
    return kb_silence_push(&st->silence, m, hand_out, st);
}

/* A message on the stream's timeline goes to the caches and the sinks. */
static int hand_out(void *ud, struct kb_msg *m)
{
    struct kb_stream *st = ud;
    /* Built once here, every player sends the very same bytes. */
    if (st->n_wire && kb_msg_wire(m, st->hub->chunk_size, PLAY_MSID) < 0) {
        kb_msg_unref(m);
        return -ENOMEM;
    }

    struct kb_msg **slot = setup_slot(st, m);
    if (slot)
        keep(slot, m);
    else if (st->gop_cache && (m->flags & (KB_MSGF_AUDIO | KB_MSGF_VIDEO)))
        gop_add(st, m);

    fanout_begin(st);
    KB_LIST_EACH(l, &st->sinks) {
        struct kb_sink *k = kb_container_of(l, struct kb_sink, link);
        if (!k->gone)
            deliver(st, k, m);
    }
    fanout_end(st);
    kb_msg_unref(m);
    return 0;
}

int kb_stream_catch_up(struct kb_stream *st, struct kb_sink *sink)
{
    struct kb_msg *setup[4 + KB_TRACK_HDRS] = {st->metadata, st->video_hdr, st->audio_hdr,
                                               st->audio_layout};
    memcpy(setup + 4, st->track_hdr, sizeof(st->track_hdr));
    fanout_begin(st);
    /* The sink may detach itself on the way (its connection failed). */
    for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]) && sink->stream == st; i++)
        if (setup[i])
            deliver(st, sink, setup[i]);
    int got_key = st->gop_cache && st->gop_valid && st->gop_len > 0;
    for (uint32_t i = 0; got_key && i < st->gop_len && sink->stream == st; i++)
        deliver(st, sink, st->gop[i]);
    fanout_end(st);
    return got_key;
}

enum kb_caps_verdict kb_stream_admits(const struct kb_stream *st, const struct kb_caps *caps,
                                      char *what, size_t n)
{
    const struct kb_msg *setup[3 + KB_TRACK_HDRS] = {st->video_hdr, st->audio_hdr,
                                                     st->audio_layout};
    memcpy(setup + 3, st->track_hdr, sizeof(st->track_hdr));
    for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++) {
        enum kb_caps_verdict v = setup[i] ? kb_caps_admit(caps, setup[i]) : KB_CAPS_OK;
        if (v != KB_CAPS_OK && v != KB_CAPS_SKIP) {
            if (what && n)
                kb_caps_what(v, setup[i], what, n);
            return v;
        }
    }
    return KB_CAPS_OK;
}
