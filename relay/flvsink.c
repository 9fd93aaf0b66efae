/* The relay's side of an HTTP-FLV viewer: a sink of its stream, counted as
 * a player, that pushes each message through its keyframe gate (bounded by
 * player_queue, like an RTMP player) into the viewer's ring, which the
 * HTTP thread writes out (relay/http/live.c). Loop thread only. */
#include "flvsink.h"

#include <stdlib.h>

#include "log.h"
#include "relay/rtmp/gate.h"
#include "server.h"

#define FLV_WAKE_BYTES (64 * 1024) ///< queued bytes that do not wait for the tick

struct kb_flvsink {
    struct kb_sink sink;
    struct kb_gate gate;
    struct kb_flv *flv;   ///< our reference
    struct kb_server *srv;
    int catching_up;      ///< being handed the cache (pinned by it: not counted)
    struct kb_list link;  ///< srv->flv_viewers
};

static struct kb_flvsink *of_sink(struct kb_sink *k)
{
    return kb_container_of(k, struct kb_flvsink, sink);
}

static void release(struct kb_flvsink *f, int ended)
{
    if (ended) {
        atomic_store(&f->flv->ended, 1);
        kb_bridge_media(&f->srv->bridge); /* the HTTP side finishes the response */
    }
    kb_stream_detach(&f->sink);
    kb_list_remove(&f->link);
    f->flv->relay = NULL;
    kb_flv_unref(f->flv);
    free(f);
}

static void on_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct kb_flvsink *f = of_sink(k);
    if (atomic_load(&f->flv->gone))
        return; /* its FLV_CLOSE is on the way */
    if (m->type != KB_MSG_AUDIO && m->type != KB_MSG_VIDEO && m->type != KB_MSG_DATA_AMF0)
        return;
    struct kb_msgring *ring = &f->flv->ring;
    uint64_t limit = f->catching_up ? UINT64_MAX : f->srv->conf->player_queue;
    uint64_t queued = kb_msgring_queued(ring);
    unsigned ev;
    if (!kb_gate_admit(&f->gate, m, queued, limit, &ev)) {
        if (kb_gate_first_skip(&f->gate, ev))
            kb_log(KB_LOG_INFO, k->stream->name, NULL,
                   "http-flv viewer too slow, %s (player_queue %llu bytes reached)",
                   kb_gate_skip_what(&f->gate, ev),
                   (unsigned long long)f->srv->conf->player_queue);
        return;
    }
    if (kb_msgring_push(ring, m) < 0) {
        /* Every slot taken: as good as full. The gate waits for a keyframe
         * that fits again. */
        kb_gate_admit(&f->gate, m, UINT64_MAX, 0, NULL);
        return;
    }
    /* Writes follow the video, as for RTMP players (relay/flush.h): a video
     * frame wakes the HTTP thread and carries the audio queued before it;
     * audio alone waits for its flush tick, so a 30 fps stream costs about
     * 30 writes a second per viewer, not one per message. */
    int video = (m->flags & (KB_MSGF_VIDEO | KB_MSGF_SEQHDR)) == KB_MSGF_VIDEO;
    if (video || kb_msg_is_setup(m) || queued + m->len >= FLV_WAKE_BYTES)
        kb_bridge_media(&f->srv->bridge);
}

static void on_publish(struct kb_sink *k, int resumed)
{
    (void)resumed;
    kb_gate_restart(&of_sink(k)->gate);
}

static const struct kb_sink_ops flv_ops = {
    .on_msg = on_msg,
    .on_publish = on_publish,
};

int kb__flvsink_open(struct kb_server *srv, struct kb_stream *st, struct kb_flv *flv)
{
    struct kb_flvsink *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->sink = (struct kb_sink){.ops = &flv_ops, .kind = KB_SINK_PLAYER};
    kb_gate_init_keep_audio(&f->gate, 1);
    f->flv = kb_flv_ref(flv);
    f->srv = srv;
    flv->relay = f;
    kb_list_push(&srv->flv_viewers, &f->link);
    kb_stream_attach(st, &f->sink);
    if (st->publisher) {
        f->catching_up = 1;
        kb_stream_catch_up(st, &f->sink);
        f->catching_up = 0;
        kb_gate_pin(&f->gate, kb_msgring_queued(&flv->ring));
    }
    kb_log(KB_LOG_INFO, st->name, NULL, "http-flv viewer started%s",
           st->publisher ? "" : " (waiting for the publisher)");
    return 0;
}

void kb__flvsink_close(struct kb_server *srv, struct kb_flv *flv)
{
    (void)srv;
    struct kb_flvsink *f = flv->relay;
    if (!f)
        return;
    if (f->sink.stream) {
        struct kb_stream *st = f->sink.stream;
        st->bytes_out_done += atomic_load(&flv->ring.bytes_out);
        kb_log(KB_LOG_INFO, st->name, NULL, "http-flv viewer stopped, %llu messages dropped (%llu video, %llu audio)",
               (unsigned long long)f->gate.drops, (unsigned long long)f->gate.drops_video,
               (unsigned long long)f->gate.drops_audio);
    }
    release(f, 0);
}

void kb__flvsink_end_stream(struct kb_server *srv, struct kb_stream *st)
{
    KB_LIST_EACH(l, &srv->flv_viewers) {
        struct kb_flvsink *f = kb_container_of(l, struct kb_flvsink, link);
        if (!st || f->sink.stream == st)
            release(f, 1);
    }
}

uint64_t kb__flvsink_bytes(struct kb_server *srv, const struct kb_stream *st)
{
    uint64_t n = 0;
    KB_LIST_EACH(l, &srv->flv_viewers) {
        struct kb_flvsink *f = kb_container_of(l, struct kb_flvsink, link);
        if (f->sink.stream == st)
            n += atomic_load(&f->flv->ring.bytes_out);
    }
    return n;
}
