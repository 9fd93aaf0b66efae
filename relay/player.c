#include "player.h"

#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "server.h"
#include "session.h"

static struct kb_session *of_sink(struct kb_sink *k)
{
    return (struct kb_session *)((char *)k - offsetof(struct kb_session, player.sink));
}

int kb__player_refuses(const struct kb_caps *caps, const struct kb_stream *st, char *what,
                       size_t n)
{
    return kb_stream_admits(st, caps, what, n) != KB_CAPS_OK;
}

void kb__player_refusal(struct kb_session *s, const char *stream, const char *what, char *desc,
                        size_t n)
{
    char declared[140];
    kb_caps_describe(&s->player.caps, declared, sizeof(declared));
    /* A legacy player (Debian's ffmpeg 5.1, librtmp) cannot parse an
     * extended tag: sending it would be garbage, so the play fails with a
     * status that says why. */
    kb_log(KB_LOG_WARN, stream, s->conn.peer,
           "play refused (player does not accept %s; its connect declared Enhanced RTMP: %s)",
           what, declared);
    snprintf(desc, n,
             "%s sends %s, which this player did not declare in its connect (Enhanced RTMP "
             "fourCcList, FourCcInfoMap or capsEx).",
             stream, what);
}

/* The stream sent something this player cannot take: the play fails. */
static void refuse(struct kb_session *s, const struct kb_msg *m, enum kb_caps_verdict v)
{
    char what[96], desc[200];
    kb_caps_what(v, m, what, sizeof(what));
    kb__player_refusal(s, s->stream->name, what, desc, sizeof(desc));
    uint32_t msid = s->msid;
    char why[128];
    snprintf(why, sizeof(why), "player does not accept %s", what);
    kb__session_end_role(s, why);
    if (kb_proto_send_status(&s->conn.proto, msid, "error", "NetStream.Play.Failed", desc) ||
        kb_conn_sync(&s->conn))
        kb__session_close(s, "out of memory");
    else
        kb__session_close_after_reply(s, why);
}

static void on_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct kb_session *s = of_sink(k);
    struct kb_player *p = &s->player;
    struct kb_conn *c = &s->conn;
    if (c->closing || (p->paused && !kb_msg_is_setup(m)))
        return;
    enum kb_caps_verdict v = kb_caps_admit(&p->caps, m);
    if (v == KB_CAPS_SKIP)
        return;
    if (v != KB_CAPS_OK) {
        refuse(s, m, v);
        return;
    }
    /* Bound what a slow player pins. The cached GOP it is handed on start
     * is pinned by the cache anyway, so it does not count. */
    uint64_t limit = p->catching_up ? UINT64_MAX : s->srv->conf->player_queue;
    unsigned ev;
    if (!kb_gate_admit(&p->gate, m, kb_conn_queued(c), limit, &ev)) {
        if (kb_gate_first_skip(&p->gate, ev))
            kb_log(KB_LOG_INFO, k->stream->name, c->peer,
                   "player too slow, %s (player_queue %llu bytes reached)",
                   kb_gate_skip_what(&p->gate, ev),
                   (unsigned long long)s->srv->conf->player_queue);
        return;
    }
    int err;
    if (s->msid == KB_PLAY_MSID && m->wire)
        err = kb_conn_enqueue(c, m);
    else /* a player on another stream id needs its own chunk headers */
        err = kb_conn_send_media(c, m, m->timestamp, s->msid);
    if (err)
        kb__session_close(s, "out of memory queueing media");
}

static void status(struct kb_session *s, const char *code, const char *what)
{
    char desc[160];
    snprintf(desc, sizeof(desc), "%s is now %s.", s->stream->name, what);
    if (kb_proto_send_status(&s->conn.proto, s->msid, "status", code, desc) ||
        kb_conn_sync(&s->conn))
        kb__session_close(s, "out of memory");
}

static void on_publish(struct kb_sink *k, int resumed)
{
    (void)resumed;
    struct kb_session *s = of_sink(k);
    /* The new publisher's first keyframe comes after its sequence headers. */
    kb_gate_restart(&s->player.gate);
    status(s, "NetStream.Play.PublishNotify", "published");
}

static void on_unpublish(struct kb_sink *k)
{
    status(of_sink(k), "NetStream.Play.UnpublishNotify", "unpublished");
}

static const struct kb_sink_ops player_ops = {
    .on_msg = on_msg,
    .on_publish = on_publish,
    .on_unpublish = on_unpublish,
};

/* Resume at once from the cached GOP, else at the next keyframe. */
static void catch_up(struct kb_session *s)
{
    struct kb_player *p = &s->player;
    if (!s->stream->publisher)
        return;
    p->catching_up = 1;
    kb_stream_catch_up(s->stream, &p->sink);
    p->catching_up = 0;
    kb_gate_pin(&p->gate, kb_conn_queued(&s->conn));
}

void kb__player_start(struct kb_session *s, struct kb_stream *st)
{
    struct kb_player *p = &s->player;
    p->sink = (struct kb_sink){.ops = &player_ops, .kind = KB_SINK_PLAYER, .wire = 1};
    kb_gate_init_keep_audio(&p->gate, 1);
    p->paused = 0;
    kb_stream_attach(st, &p->sink);
    catch_up(s);
}

void kb__player_pause(struct kb_session *s, int pause)
{
    struct kb_player *p = &s->player;
    p->paused = pause;
    if (!pause) {
        kb_gate_restart(&p->gate);
        catch_up(s);
    }
}

void kb__player_stop(struct kb_session *s)
{
    kb_stream_detach(&s->player.sink);
}
