/* kebun: the RTMP commands a server session answers (connect,
 * createStream, releaseStream, FCPublish, publish, play, pause,
 * FCUnpublish, deleteStream, closeStream, getStreamLength) with their
 * standard replies and status codes. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "relay/rtmp/caps.h"
#include "relay/rtmp/error.h"
#include "relay/rtmp/flv.h"
#include "server.h"
#include "session.h"

#define NAME_MAX_LEN 512 ///< longest stream name or key accepted in publish/play

static const char *sname(const struct kb_session *s)
{
    return s->stream ? s->stream->name : NULL;
}

/* _result(txn, null, null|number) */
static int reply_result(struct kb_session *s, double txn, int with_number, double number)
{
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "_result", txn);
    kb_amf_w_null(&b.w);
    if (with_number)
        kb_amf_w_number(&b.w, number);
    else
        kb_amf_w_null(&b.w); /* undefined in some servers; null is what clients accept */
    return kb_proto_cmd_end(&s->conn.proto, &b, 0);
}

static int reply_status_close(struct kb_session *s, uint32_t msid, const char *code,
                              const char *desc, const char *why)
{
    int err = kb_proto_send_status(&s->conn.proto, msid, "error", code, desc);
    kb__session_close_after_reply(s, why);
    return err;
}

/* Copy a string for logs: printable ASCII only, bounded. */
static void printable(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[o] = '\0';
}

/* A client that puts its whole URL into the application name ("live/KEY")
 * must not get its key logged: each stream key found in `buf` becomes
 * "****" (keys are at least 8 characters, so the text only shrinks). */
static void hide_keys(const struct kb_hub *hub, char *buf)
{
    for (const struct kb_stream *st = hub->streams; st; st = st->next) {
        size_t klen = strlen(st->key);
        char *p;
        while (klen >= 4 && (p = strstr(buf, st->key)) != NULL) {
            memcpy(p, "****", 4);
            memmove(p + 4, p + klen, strlen(p + klen) + 1);
        }
    }
}

static int on_connect(struct kb_session *s, const struct kb_cmd *c)
{
    const struct kb_config *conf = s->srv->conf;
    if (s->state != KB_SS_RTMP) {
        kb_log(KB_LOG_DEBUG, sname(s), s->conn.peer, "second connect ignored");
        return 0;
    }
    const struct kb_amf_node *app = kb_amf_prop(&c->doc, c->obj, "app");
    const struct kb_amf_node *enc = kb_amf_prop(&c->doc, c->obj, "objectEncoding");
    const struct kb_amf_node *fv = kb_amf_prop(&c->doc, c->obj, "flashVer");
    char appname[130] = "", flashver[64] = "";
    if (app && app->type == KB_AMF_STRING) {
        /* "live/", "live?token=..." and "live" all name the application. */
        size_t n = app->str_len;
        for (size_t i = 0; i < n; i++)
            if (app->str[i] == '?') {
                n = i;
                break;
            }
        while (n && app->str[n - 1] == '/')
            n--;
        printable(appname, sizeof(appname), app->str, n);
    }
    char shown[sizeof(appname)];
    memcpy(shown, appname, sizeof(shown));
    hide_keys(&s->srv->hub, shown);
    if (fv && fv->type == KB_AMF_STRING)
        printable(flashver, sizeof(flashver), fv->str, fv->str_len);

    if (strcmp(appname, conf->app) != 0) {
        kb_log(KB_LOG_WARN, NULL, s->conn.peer, "connect refused (unknown application '%s', serving '%s')",
               shown, conf->app);
        struct kb_cmd_builder b;
        kb_proto_cmd_begin(&b, "_error", c->txn);
        kb_amf_w_null(&b.w);
        kb_amf_w_object_begin(&b.w);
        kb_amf_w_prop_string(&b.w, "level", "error");
        kb_amf_w_prop_string(&b.w, "code", "NetConnection.Connect.Rejected");
        kb_amf_w_prop_string(&b.w, "description", "Unknown application.");
        kb_amf_w_object_end(&b.w);
        int err = kb_proto_cmd_end(&s->conn.proto, &b, 0);
        kb__session_close_after_reply(s, "unknown application");
        return err;
    }

    int err = kb_proto_send_window_ack(&s->conn.proto, (uint32_t)conf->window_ack_size);
    if (!err)
        err = kb_proto_send_peer_bw(&s->conn.proto, (uint32_t)conf->window_ack_size, 2);
    if (!err)
        err = kb_proto_send_chunk_size(&s->conn.proto, (uint32_t)conf->chunk_size);
    if (err)
        return err;

    err = kb_proto_connect_result(&s->conn.proto, c->txn,
                                  enc && enc->type == KB_AMF_NUMBER ? enc->num : 0);
    if (err)
        return err;
    s->state = KB_SS_CONNECTED;
    /* What the peer can be sent, should it play (E-RTMP v1/v2 connect). */
    char why[96], desc[140], caps[160] = "";
    memset(&s->player.caps, 0, sizeof(s->player.caps));
    if (kb_caps_parse(&s->player.caps, &c->doc, c->obj, why, sizeof(why)) > 0)
        kb_log(KB_LOG_WARN, NULL, s->conn.peer,
               "connect: Enhanced RTMP capability ignored (%s)", why);
    if (s->player.caps.declared) {
        kb_caps_describe(&s->player.caps, desc, sizeof(desc));
        snprintf(caps, sizeof(caps), " (Enhanced RTMP: %s)", desc);
    }
    kb_log(KB_LOG_INFO, NULL, s->conn.peer, "connected to app '%s'%s%s%s", appname,
           flashver[0] ? " by " : "", flashver, caps);
    return 0;
}

/* Split a publish name into the stream key and (for NAME?key=KEY) the
 * stream name it claims. */
static void split_publish_name(const char *full, char *key, size_t keycap, char *claimed,
                               size_t claimedcap)
{
    const char *q = strchr(full, '?');
    size_t base = q ? (size_t)(q - full) : strlen(full);
    claimed[0] = '\0';
    if (q) {
        for (const char *p = q + 1; *p;) {
            const char *amp = strchr(p, '&');
            size_t n = amp ? (size_t)(amp - p) : strlen(p);
            if (n > 4 && memcmp(p, "key=", 4) == 0) {
                snprintf(claimed, claimedcap, "%.*s", (int)base, full);
                snprintf(key, keycap, "%.*s", (int)(n - 4), p + 4);
                return;
            }
            p += n + (amp ? 1 : 0);
        }
    }
    snprintf(key, keycap, "%.*s", (int)base, full);
}

static int on_publish(struct kb_session *s, const struct kb_cmd *c, const struct kb_msg *m)
{
    struct kb_server *srv = s->srv;
    char full[NAME_MAX_LEN + 1], key[NAME_MAX_LEN + 1], claimed[NAME_MAX_LEN + 1];
    if (s->state != KB_SS_CONNECTED)
        return reply_status_close(s, m->stream_id, "NetStream.Publish.BadConnection",
                                  "Connection is already publishing or playing.",
                                  "publish in the wrong state");
    if (kb_amf_str_copy(c->arg1, full, sizeof(full)) < 0 || c->arg1->str_len > NAME_MAX_LEN)
        return reply_status_close(s, m->stream_id, "NetStream.Publish.BadName",
                                  "Missing stream key.", "publish without a stream key");
    split_publish_name(full, key, sizeof(key), claimed, sizeof(claimed));

    struct kb_stream *st = kb_hub_find_key(&srv->hub, key);
    if (st && claimed[0] && strcmp(claimed, st->name) != 0)
        st = NULL; /* a key of another stream */
    if (!st) {
        struct kb_stream *named = kb_hub_find_name(&srv->hub, claimed[0] ? claimed : key);
        if (named && !claimed[0])
            kb_log(KB_LOG_WARN, named->name, s->conn.peer,
                   "publish refused (that is the public name; publish with the stream key)");
        else if (named)
            kb_log(KB_LOG_WARN, named->name, s->conn.peer, "publish refused (wrong stream key)");
        else
            kb_log(KB_LOG_WARN, NULL, s->conn.peer, "publish refused (unknown stream key)");
        return reply_status_close(s, m->stream_id, "NetStream.Publish.BadName",
                                  "Unknown stream key.", "publish refused");
    }

    uint64_t now = uv_now(srv->loop);
    struct kb_session *old = st->publisher;
    if (old && old != s) {
        /* A phone that switched networks leaves a half-open connection
         * behind; the one that holds the key now wins. Detach the old
         * session first so the stream's sinks see a handover, not an end. */
        kb_log(KB_LOG_INFO, st->name, old->conn.peer, "publisher replaced by %s", s->conn.peer);
        st->publisher = NULL;
        kb__session_end_role(old, "replaced by a new publisher");
        kb__session_close(old, "replaced by a new publisher");
    }
    s->state = KB_SS_PUBLISHING;
    s->stream = st;
    s->msid = m->stream_id;
    s->role_ms = now;
    kb_conn_set_stream(&s->conn, st->name);
    int err = kb_proto_send_user_control(&s->conn.proto, KB_UC_STREAM_BEGIN, s->msid);
    if (!err) {
        char desc[160];
        snprintf(desc, sizeof(desc), "%s is now published.", st->name);
        err = kb_proto_send_status(&s->conn.proto, s->msid, "status", "NetStream.Publish.Start", desc);
    }
    kb_log(KB_LOG_INFO, st->name, s->conn.peer, "publish started");
    kb_stream_publish(st, s, now);
    return err;
}

static int send_play_start(struct kb_session *s)
{
    struct kb_stream *st = s->stream;
    char desc[160];
    int err = kb_proto_send_user_control(&s->conn.proto, KB_UC_STREAM_BEGIN, s->msid);
    snprintf(desc, sizeof(desc), "Playing and resetting %s.", st->name);
    if (!err)
        err = kb_proto_send_status(&s->conn.proto, s->msid, "status", "NetStream.Play.Reset", desc);
    snprintf(desc, sizeof(desc), "Started playing %s.", st->name);
    if (!err)
        err = kb_proto_send_status(&s->conn.proto, s->msid, "status", "NetStream.Play.Start", desc);
    if (!err) {
        /* Flash players needed this before they would touch the media. */
        struct kb_buf body = {0};
        struct kb_amf_w w = {.out = &body};
        kb_amf_w_string(&w, "|RtmpSampleAccess");
        kb_amf_w_bool(&w, 1);
        kb_amf_w_bool(&w, 1);
        err = w.err;
        if (!err)
            err = kb_proto_send(&s->conn.proto, KB_CSID_DATA, KB_MSG_DATA_AMF0, 0, s->msid, body.data,
                                (uint32_t)body.len);
        kb_buf_free(&body);
    }
    return err;
}

static int on_play(struct kb_session *s, const struct kb_cmd *c, const struct kb_msg *m)
{
    struct kb_server *srv = s->srv;
    char name[NAME_MAX_LEN + 1];
    if (s->state != KB_SS_CONNECTED)
        return reply_status_close(s, m->stream_id, "NetStream.Play.Failed",
                                  "Connection is already publishing or playing.",
                                  "play in the wrong state");
    if (kb_amf_str_copy(c->arg1, name, sizeof(name)) < 0 || c->arg1->str_len > NAME_MAX_LEN)
        return reply_status_close(s, m->stream_id, "NetStream.Play.StreamNotFound",
                                  "Missing stream name.", "play without a name");
    char *q = strchr(name, '?');
    if (q)
        *q = '\0';
    struct kb_stream *st = kb_hub_find_name(&srv->hub, name);
    if (!st) {
        if (kb_hub_find_key(&srv->hub, name))
            kb_log(KB_LOG_WARN, NULL, s->conn.peer,
                   "play refused (that is a stream key; play the public name)");
        else {
            char shown[72];
            printable(shown, sizeof(shown), name, strlen(name));
            kb_log(KB_LOG_INFO, NULL, s->conn.peer, "play refused (no stream named '%s')", shown);
        }
        return reply_status_close(s, m->stream_id, "NetStream.Play.StreamNotFound",
                                  "No such stream.", "play of an unknown stream");
    }
    char what[96];
    if (kb__player_refuses(&s->player.caps, st, what, sizeof(what))) {
        char desc[200];
        kb__player_refusal(s, st->name, what, desc, sizeof(desc));
        return reply_status_close(s, m->stream_id, "NetStream.Play.Failed", desc,
                                  "player does not accept the stream's codec");
    }
    s->state = KB_SS_PLAYING;
    s->stream = st;
    s->msid = m->stream_id;
    s->role_ms = uv_now(srv->loop);
    kb_conn_set_stream(&s->conn, st->name);
    int err = send_play_start(s);
    if (err)
        return err;
    kb_log(KB_LOG_INFO, st->name, s->conn.peer, "play started%s",
           st->publisher ? "" : " (waiting for the publisher)");
    /* Play.Start leaves before the first media. */
    err = kb_conn_sync(&s->conn);
    if (!err)
        kb__player_start(s, st);
    return err;
}

static int on_pause(struct kb_session *s, const struct kb_cmd *c)
{
    if (s->state != KB_SS_PLAYING)
        return 0;
    /* pause(txn, null, pause flag, position) */
    struct kb_player *p = &s->player;
    int pause = c->arg1 && c->arg1->type == KB_AMF_BOOLEAN ? c->arg1->num != 0 : !p->paused;
    if (pause == p->paused)
        return 0;
    int err = kb_proto_send_status(&s->conn.proto, s->msid, "status",
                                   pause ? "NetStream.Pause.Notify" : "NetStream.Unpause.Notify",
                                   pause ? "Paused live stream." : "Unpaused live stream.");
    if (!err)
        err = kb_conn_sync(&s->conn);
    if (!err)
        kb__player_pause(s, pause);
    return err;
}

static int on_close_stream(struct kb_session *s, const struct kb_cmd *c, const struct kb_msg *m,
                           int unpublish)
{
    if (s->state != KB_SS_PUBLISHING && s->state != KB_SS_PLAYING)
        return 0;
    uint32_t msid = m->stream_id;
    /* deleteStream names the stream id in its first argument. */
    if (!unpublish)
        kb_amf_u32(c->arg1, &msid);
    if (!unpublish && msid != s->msid)
        return 0;
    int err = 0;
    if (s->state == KB_SS_PUBLISHING) {
        char desc[160];
        snprintf(desc, sizeof(desc), "%s is now unpublished.", s->stream->name);
        err = kb_proto_send_status(&s->conn.proto, s->msid, "status", "NetStream.Unpublish.Success",
                                   desc);
    }
    kb__session_end_role(s, unpublish ? "FCUnpublish" : "stream closed by peer");
    return err;
}

int kb__session_command(struct kb_session *s, const struct kb_msg *m)
{
    struct kb_cmd c;
    int err = kb_cmd_parse(&c, m);
    if (err < 0)
        return err;
    const struct kb_amf_node *n = c.name;
    if (kb_amf_str_eq(n, "connect"))
        return on_connect(s, &c);
    if (s->state < KB_SS_CONNECTED) {
        /* Anything before connect is a confused or hostile peer. */
        return KB_ECMD;
    }
    if (kb_amf_str_eq(n, "createStream")) {
        if (s->next_msid >= 64)
            return KB_ECMD; /* nobody needs more; don't let a peer count forever */
        return reply_result(s, c.txn, 1, s->next_msid++);
    }
    if (kb_amf_str_eq(n, "releaseStream") || kb_amf_str_eq(n, "FCPublish"))
        return c.txn ? reply_result(s, c.txn, 0, 0) : 0;
    if (kb_amf_str_eq(n, "publish"))
        return on_publish(s, &c, m);
    if (kb_amf_str_eq(n, "play"))
        return on_play(s, &c, m);
    if (kb_amf_str_eq(n, "pause") || kb_amf_str_eq(n, "pauseRaw"))
        return on_pause(s, &c);
    if (kb_amf_str_eq(n, "FCUnpublish")) {
        err = c.txn ? reply_result(s, c.txn, 0, 0) : 0;
        return err ? err : on_close_stream(s, &c, m, 1);
    }
    if (kb_amf_str_eq(n, "deleteStream") || kb_amf_str_eq(n, "closeStream"))
        return on_close_stream(s, &c, m, 0);
    if (kb_amf_str_eq(n, "getStreamLength"))
        return reply_result(s, c.txn, 1, 0);
    if (kb_log_enabled(KB_LOG_DEBUG)) {
        char shown[64];
        printable(shown, sizeof(shown), n->str, n->str_len);
        kb_log(KB_LOG_DEBUG, sname(s), s->conn.peer, "ignored command '%s'", shown);
    }
    return 0;
}

