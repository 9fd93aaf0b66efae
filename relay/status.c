/* Building the relay's snapshot, on the loop thread (see status.h). */
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "flvsink.h"
#include "output.h"
#include "recsink.h"
#include "relay/rtmp/amf.h"
#include "relay/rtmp/codecinfo.h"
#include "relay/rtmp/flv.h"
#include "server.h"
#include "session.h"

void kb_status_unref(struct kb_status *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) == 1)
        free(s);
}

const struct kb_status_stream *kb_status_stream(const struct kb_status *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_streams; i++)
        if (strcmp(s->streams[i].name, name) == 0)
            return &s->streams[i];
    return NULL;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The publisher's frame rate from its metadata ("framerate", or the older
 * "videoframerate"), for codecs whose sequence header has none. */
static double metadata_fps(const struct kb_msg *meta)
{
    if (!meta)
        return 0;
    static struct kb_amf_doc doc; /* loop thread only; 256 nodes do not belong on the stack */
    if (kb_amf_decode(&doc, meta->data, meta->len) < 0)
        return 0;
    const struct kb_amf_node *obj = kb_amf_root(&doc, 1);
    const char *keys[] = {"framerate", "videoframerate"};
    for (size_t i = 0; obj && i < 2; i++) {
        const struct kb_amf_node *v = kb_amf_prop(&doc, obj, keys[i]);
        if (v && v->type == KB_AMF_NUMBER && v->num > 0 && v->num < 1000)
            return v->num;
    }
    return 0;
}

static void media(struct kb_status_stream *o, const struct kb_stream *st)
{
    struct kb_codec_info v = {0}, a = {0};
    if (st->video_hdr) {
        kb_codec_info(st->video_hdr, &v);
        snprintf(o->vcodec, sizeof(o->vcodec), "%s", kb_flv_codec_name(st->video_hdr->codec, 1));
        o->width = v.width;
        o->height = v.height;
        o->fps = v.fps > 0 ? v.fps : metadata_fps(st->metadata);
    }
    if (st->audio_hdr) {
        kb_codec_info(st->audio_hdr, &a);
        snprintf(o->acodec, sizeof(o->acodec), "%s", kb_flv_codec_name(st->audio_hdr->codec, 0));
        o->sample_rate = a.sample_rate;
        o->channels = a.channels;
        o->silent = kb_silence_active(&st->silence);
    }
}

void kb__status_dest(struct kb_status_dest *d, const struct kb_output *out)
{
    const struct kb_push_conf *c = out->conf;
    snprintf(d->id, sizeof(d->id), "%s", c->id ? c->id : c->name);
    snprintf(d->name, sizeof(d->name), "%s", c->name);
    snprintf(d->url, sizeof(d->url), "%s", c->masked);
    d->source = c->source;
    d->state = kb_output_state_name(out->state);
    d->since = out->since;
    d->bitrate = out->bitrate;
    d->bytes = out->bytes_sent;
    d->drops = out->gate.drops;
    d->drops_video = out->gate.drops_video;
    d->drops_audio = out->gate.drops_audio;
    d->reconnects = out->reconnects;
    snprintf(d->last_error, sizeof(d->last_error), "%s", out->last_error);
    d->last_error_at = out->last_error_at;
}

/* The recording's state, and counters over kebun's run. The recorder's
 * status speaks of the current recording; totals add each recording's last
 * seen values when the next one starts. */
static void recording(struct kb_server *srv, struct kb_stream *st, struct kb_status_rec *o)
{
    static const char *const states[] = {"idle", "waiting", "recording", "failed"};
    struct kb_recorder_status rs;
    const struct kb_stream_conf *sc = kb_config_stream_by_name(srv->conf, st->name);
    o->on = sc && sc->record && srv->recorder;
    if (!o->on)
        return;
    kb__recsink_status(srv, st, &rs);
    struct kb_rec_totals *t = &st->rec_totals;
    if (strcmp(t->dir, rs.dir) != 0) {
        t->bytes_done += t->bytes;
        t->segments_done += t->segments;
        t->dropped_done += t->dropped;
        t->bytes = t->segments = t->dropped = 0;
        snprintf(t->dir, sizeof(t->dir), "%s", rs.dir);
    }
    if (rs.bytes > t->bytes)
        t->bytes = rs.bytes;
    if (rs.segments > t->segments)
        t->segments = rs.segments;
    if (rs.dropped > t->dropped)
        t->dropped = rs.dropped;
    if (rs.state == KB_RECORDER_FAILED && !t->failed)
        t->failures++;
    t->failed = rs.state == KB_RECORDER_FAILED;
    o->state = states[rs.state <= KB_RECORDER_FAILED ? rs.state : 0];
    snprintf(o->path, sizeof(o->path), "%s", rs.dir);
    snprintf(o->file, sizeof(o->file), "%s", rs.file);
    o->bytes = rs.bytes;
    o->dropped = rs.dropped;
    o->segments = rs.segments;
    o->parts = rs.parts;
    snprintf(o->last_error, sizeof(o->last_error), "%s", rs.last_error);
    o->last_error_at = rs.last_error_at * 1000;
    o->bytes_total = t->bytes_done + t->bytes;
    o->segments_total = t->segments_done + t->segments;
    o->dropped_total = t->dropped_done + t->dropped;
    o->failures_total = t->failures;
}

struct kb_status *kb_status_build(struct kb_server *srv)
{
    /* One block: the header, the streams, then every stream's destinations. */
    uint32_t n_streams = 0, n_dests = 0;
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next)
        n_streams++;
    for (struct kb_output *o = srv->outputs; o; o = o->next)
        n_dests += !o->removing;
    size_t size = sizeof(struct kb_status) + n_streams * sizeof(struct kb_status_stream) +
                  n_dests * sizeof(struct kb_status_dest);
    struct kb_status *s = calloc(1, size);
    if (!s)
        return NULL;
    atomic_init(&s->refcnt, 1);
    int64_t now_wall = wall_ms();
    uint64_t now = uv_now(srv->loop);
    s->at = now_wall;
    s->connections = srv->net.n_conns;
    s->streams = (struct kb_status_stream *)(s + 1);
    struct kb_status_dest *dests = (struct kb_status_dest *)(s->streams + n_streams);
    static const char *const states[] = {"idle", "live", "grace"};
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        struct kb_status_stream *o = &s->streams[s->n_streams++];
        snprintf(o->name, sizeof(o->name), "%s", st->name);
        o->state = states[st->bcast];
        /* Loop times become wall times by their age. */
        o->since = st->state_ms ? now_wall - (int64_t)(now - st->state_ms) : 0;
        if (st->publisher) {
            snprintf(o->publisher, sizeof(o->publisher), "%s", st->publisher->conn.peer);
            o->publisher_since = now_wall - (int64_t)(now - st->publish_start_ms);
            media(o, st);
        }
        o->bitrate_in = st->rate_in;
        o->bytes_in = st->total_in;
        o->players = (uint32_t)st->n_sinks[KB_SINK_PLAYER];
        o->bytes_out = st->bytes_out_done + kb__flvsink_bytes(srv, st);
        KB_LIST_EACH(l, &srv->sessions) {
            struct kb_session *p = kb_container_of(l, struct kb_session, link);
            if (p->stream == st && p->state == KB_SS_PLAYING)
                o->bytes_out += p->conn.bytes_out;
        }
        o->dests = dests;
        for (struct kb_output *out = srv->outputs; out; out = out->next)
            if (!out->removing && out->stream == st)
                kb__status_dest(&o->dests[o->n_dests++], out);
        dests += o->n_dests;
        recording(srv, st, &o->rec);
    }
    return s;
}

void kb__status_post(struct kb_server *srv)
{
    if (!srv->http)
        return;
    struct kb_status *s = kb_status_build(srv);
    if (s)
        kb_bridge_post_status(&srv->bridge, s);
}
