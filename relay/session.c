#include "session.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "relay/rtmp/error.h"
#include "server.h"

/* A refused peer that does not read its refusal is closed after this. */
#define REFUSAL_TIMEOUT_MS 5000

static struct kb_session *of_conn(struct kb_conn *c)
{
    return (struct kb_session *)c;
}

void kb__session_close(struct kb_session *s, const char *why)
{
    kb_conn_close(&s->conn, why);
}

void kb__session_close_after_reply(struct kb_session *s, const char *why)
{
    kb_conn_close_after_flush(&s->conn, why, REFUSAL_TIMEOUT_MS);
}

void kb__session_end_role(struct kb_session *s, const char *why)
{
    struct kb_stream *st = s->stream;
    if (!st)
        return;
    assert(s->state == KB_SS_PUBLISHING || s->state == KB_SS_PLAYING);
    uint64_t now = uv_now(s->srv->loop);
    double secs = (double)(now - s->role_ms) / 1000.0;
    if (s->state == KB_SS_PUBLISHING) {
        kb_log(KB_LOG_INFO, st->name, s->conn.peer,
               "publish stopped after %.1f s, %llu messages, %llu bytes (%s)", secs,
               (unsigned long long)st->msgs_in, (unsigned long long)st->bytes_in, why);
        if (st->publisher == s)
            kb_stream_unpublish(st, now);
    } else {
        kb_log(KB_LOG_INFO, st->name, s->conn.peer,
               "play stopped after %.1f s, %llu bytes sent, %llu messages dropped (%llu video, "
               "%llu audio) (%s)",
               secs, (unsigned long long)s->conn.bytes_out, (unsigned long long)s->player.gate.drops,
               (unsigned long long)s->player.gate.drops_video,
               (unsigned long long)s->player.gate.drops_audio, why);
        st->bytes_out_done += s->conn.bytes_out;
        kb__player_stop(s);
    }
    s->stream = NULL;
    s->state = KB_SS_CONNECTED;
}

static int on_message(struct kb_conn *c, struct kb_msg *m);

/* What silent audio did with the stream (relay/silence.h). */
static void log_silence(struct kb_session *s, struct kb_silence *sil)
{
    const char *name = s->stream->name, *peer = s->conn.peer;
    if (sil->events & KB_SILENCE_EV_ON) {
        if (sil->held_ms)
            kb_log(KB_LOG_INFO, name, peer,
                   "silent audio: no audio in the first %.1f s of video, adding silent AAC "
                   "(%d Hz stereo) from the first video frame (silent_audio auto)",
                   (double)sil->held_ms / 1000.0, sil->aac->rate);
        else
            kb_log(KB_LOG_INFO, name, peer,
                   "silent audio: adding silent AAC (%d Hz stereo) from the first video frame "
                   "(%s)",
                   sil->aac->rate,
                   sil->mode == KB_SILENCE_ON ? "silent_audio on" : "it had silence before");
    }
    if (sil->events & KB_SILENCE_EV_WAITING)
        kb_log(KB_LOG_INFO, name, peer,
               "silent audio: the publisher's audio began; switching to it at the next keyframe");
    if (sil->events & KB_SILENCE_EV_SWITCH)
        kb_log(KB_LOG_INFO, name, peer,
               "silent audio: switched to the publisher's audio at a keyframe, after %llu silent "
               "frames", (unsigned long long)sil->frames);
    sil->events = 0;
}

static int publish_msg(struct kb_session *s, struct kb_msg *m)
{
    struct kb_stream *st = s->stream;
    int err = kb_stream_push(st, m);
    if (st->silence.events)
        log_silence(s, &st->silence);
    return err;
}

/* Aggregate messages pack several FLV tags in one message; split them and
 * handle each as if it had arrived alone. */
static int on_aggregate(struct kb_session *s, const struct kb_msg *m)
{
    const uint8_t *p = m->data;
    size_t n = m->len, off = 0;
    int have_base = 0;
    uint32_t base = 0;
    while (n - off >= 11 && !s->conn.closing) {
        uint8_t type = p[off];
        uint32_t size = kb_get_be24(p + off + 1);
        uint32_t ts = kb_get_be24(p + off + 4) | (uint32_t)p[off + 7] << 24;
        if (n - off - 11 < size) {
            snprintf(s->conn.proto.rd.why, sizeof(s->conn.proto.rd.why),
                     "aggregate message: a %u-byte tag at byte %zu runs past its end (%zu bytes)",
                     size, off, n);
            return KB_ECHUNK;
        }
        if (!have_base) {
            base = ts;
            have_base = 1;
        }
        if (type == KB_MSG_AUDIO || type == KB_MSG_VIDEO || type == KB_MSG_DATA_AMF0) {
            struct kb_msg *sub = kb_msg_new_copy(type, m->timestamp + (ts - base), m->stream_id,
                                                 p + off + 11, size);
            if (!sub)
                return -ENOMEM;
            int err = on_message(&s->conn, sub);
            if (err)
                return err;
        }
        off += 11 + size;
        /* Each tag is followed by its back-pointer. */
        off += n - off >= 4 ? 4 : n - off;
    }
    return 0;
}

static int on_message(struct kb_conn *c, struct kb_msg *m)
{
    struct kb_session *s = of_conn(c);
    int publishing = s->state == KB_SS_PUBLISHING && s->stream;
    int err = 0;
    switch (m->type) {
    case KB_MSG_COMMAND_AMF0:
    case KB_MSG_COMMAND_AMF3:
        err = kb__session_command(s, m);
        break;
    case KB_MSG_AUDIO:
    case KB_MSG_VIDEO:
    case KB_MSG_DATA_AMF0:
        if (publishing)
            return publish_msg(s, m); /* takes the reference */
        break;
    case KB_MSG_AGGREGATE:
        if (publishing)
            err = on_aggregate(s, m);
        break;
    default:
        break;
    }
    kb_msg_unref(m);
    return err;
}

static void on_handshake_done(struct kb_conn *c)
{
    of_conn(c)->state = KB_SS_RTMP;
}

static void on_closed(struct kb_conn *c, const char *why)
{
    struct kb_session *s = of_conn(c);
    kb__session_end_role(s, why);
    kb_list_remove(&s->link);
}

static const struct kb_conn_ops session_ops = {
    .on_handshake_done = on_handshake_done,
    .on_message = on_message,
    .on_closed = on_closed,
};

void kb__session_accept(struct kb_server *srv, uv_stream_t *listener)
{
    struct kb_conn *c = kb_conn_accept(&srv->net, listener, sizeof(struct kb_session),
                                       &session_ops, srv);
    if (!c)
        return;
    struct kb_session *s = of_conn(c);
    s->srv = srv;
    s->state = KB_SS_HANDSHAKE;
    s->next_msid = 1;
    kb_list_push(&srv->sessions, &s->link);
}

void kb__session_sweep(struct kb_session *s, uint64_t now)
{
    const struct kb_config *conf = s->srv->conf;
    struct kb_conn *c = &s->conn;
    if (c->closing || c->close_after_flush)
        return; /* the goodbye has its own deadline (kb_net_sweep) */
    if (s->state < KB_SS_PUBLISHING && now - c->start_ms > conf->handshake_timeout) {
        kb__session_close(s, "no publish or play in time (handshake_timeout)");
        return;
    }
    if (s->state == KB_SS_PUBLISHING && now - c->last_in_ms > conf->publish_timeout)
        kb__session_close(s, "publisher sent nothing (publish_timeout)");
}
