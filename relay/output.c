#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "conn.h"
#include "log.h"
#include "relay/rtmp/amf.h"
#include "relay/rtmp/error.h"
#include "server.h"
#include "tls.h"

#define OUT_CHUNK 4096 ///< chunk size we publish with (what ffmpeg and OBS use)
/* A connection must stay live this long before its failure resets the
 * backoff: a platform that accepts and then hangs up at once (a refused
 * key, often) must not be hammered at the shortest delay. */
#define STABLE_MS 10000

/* Where the publish conversation stands. */
enum {
    PH_NONE,
    PH_RESOLVE,
    PH_TRANSPORT, ///< TCP, TLS, RTMP handshake: the connection's stage says which
    PH_CONNECT,   ///< connect sent
    PH_MEDIA,     ///< connected; waiting for the stream's first audio or video
    PH_CREATE,    ///< createStream sent
    PH_PUBLISH,   ///< publish sent
    PH_LIVE,
};

static const char *phase_name(const struct kb_output *o)
{
    static const char *const names[] = {
        "idle", "resolving", "connecting", "waiting for connect",
        "waiting for the stream's first media", "waiting for createStream",
        "waiting for publish", "live",
    };
    if (o->phase == PH_TRANSPORT && o->c)
        return kb_conn_stage_name(o->c->stage);
    return names[o->phase];
}

int64_t kb_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct kb_output *sink_output(struct kb_sink *k)
{
    return (struct kb_output *)((char *)k - offsetof(struct kb_output, sink));
}

const char *kb_output_state_name(enum kb_output_state s)
{
    static const char *const names[] = {"idle",   "connecting", "live",
                                        "retrying", "failed",   "refused"};
    return s <= KB_OUT_REFUSED ? names[s] : "?";
}

static void set_state(struct kb_output *o, enum kb_output_state st)
{
    if (o->state != st) {
        o->state = st;
        o->since = kb_wall_ms();
    }
}

static void olog(struct kb_output *o, enum kb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void olog(struct kb_output *o, enum kb_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kb_log(level, o->stream_name, o->conf->masked, "push %s: %s", o->conf->name, msg);
}

static void maybe_free(struct kb_output *o)
{
    if (!o->removing || o->handles > 0 || o->c)
        return;
    struct kb_server *srv = o->srv;
    for (struct kb_output **pp = &srv->outputs; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    if (o->addrs)
        uv_freeaddrinfo(o->addrs);
    kb_push_free(o->conf);
    free(o);
}

static void on_timer_close(uv_handle_t *h)
{
    struct kb_output *o = h->data;
    o->handles--;
    maybe_free(o);
}

static void attempt(struct kb_output *o);
static void start(struct kb_output *o);
static void on_timer(uv_timer_t *t);

/* The output is the role of its client connection. */
static void on_handshake_done(struct kb_conn *c);
static int on_message(struct kb_conn *c, struct kb_msg *m);
static void on_closed(struct kb_conn *c, const char *why);
static const struct kb_conn_ops conn_ops = {
    .on_handshake_done = on_handshake_done,
    .on_message = on_message,
    .on_closed = on_closed,
};

static void schedule_retry(struct kb_output *o)
{
    const struct kb_config *c = o->srv->conf;
    if (o->removing)
        return;
    if (o->stream->bcast == KB_BC_IDLE) {
        set_state(o, KB_OUT_IDLE);
        return;
    }
    o->attempt++;
    o->delay_ms = o->delay_ms ? o->delay_ms * 2 : c->push_retry_min;
    if (o->delay_ms > c->push_retry_max)
        o->delay_ms = c->push_retry_max;
    /* Jitter, so destinations that failed together do not retry in step. */
    uint64_t d = o->delay_ms * (80 + (uint64_t)(rand() % 41)) / 100;
    if (d > c->push_retry_max)
        d = c->push_retry_max; /* the maximum is a promise, jitter or not */
    set_state(o, KB_OUT_RETRYING);
    olog(o, KB_LOG_INFO, "retrying in %.1f s (attempt %u)", (double)d / 1000.0, o->attempt + 1);
    uv_timer_start(&o->timer, on_timer, d, 0);
}

/* Record why this attempt failed and end it; on_closed (or, with
 * no connection, this function) schedules the next one. */
static void fail(struct kb_output *o, const char *why)
{
    snprintf(o->last_error, sizeof(o->last_error), "%s", why);
    o->last_error_at = kb_wall_ms();
    olog(o, KB_LOG_WARN, "%s", why);
    uv_timer_stop(&o->timer);
    if (o->c) {
        o->phase = PH_NONE; /* so closing does not try another address */
        kb_conn_close(o->c, why);
    } else {
        schedule_retry(o);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct kb_output *o = t->data;
    if (o->state == KB_OUT_RETRYING) {
        o->reconnects++;
        attempt(o);
        return;
    }
    if (o->state == KB_OUT_CONNECTING) {
        char why[128];
        snprintf(why, sizeof(why), "timed out %s after %.0f s", phase_name(o),
                 (double)o->srv->conf->push_timeout / 1000.0);
        fail(o, why);
        return;
    }
}

static void try_next_address(struct kb_output *o)
{
    struct addrinfo *ai = o->addr_next;
    if (!ai) {
        fail(o, o->last_error[0] ? o->last_error : "no address to connect to");
        return;
    }
    o->addr_next = ai->ai_next;
    struct kb_tls *tls = NULL;
    if (o->conf->tls) {
        char err[160];
        int r = kb_tls_client_new(&tls, o->conf->host, o->conf->ca_file, o->conf->verify, err,
                                  sizeof(err));
        if (r < 0) {
            /* A CA file that does not load will not load on retry either. */
            snprintf(o->last_error, sizeof(o->last_error), "%s", err);
            o->last_error_at = kb_wall_ms();
            olog(o, KB_LOG_ERROR, "%s (fix the config and reload)", err);
            uv_timer_stop(&o->timer);
            set_state(o, KB_OUT_FAILED);
            return;
        }
        if (!o->conf->verify)
            olog(o, KB_LOG_WARN, "certificate verification is off (verify=off)");
    }
    o->phase = PH_TRANSPORT;
    int err = 0;
    o->c = kb_conn_connect(&o->srv->net, ai->ai_addr, tls, &conn_ops, o, &err);
    if (!o->c) {
        snprintf(o->last_error, sizeof(o->last_error), "connect failed: %s", uv_strerror(err));
        try_next_address(o);
    }
}

static void start_lookup(struct kb_output *o);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct kb_output *o = req->data;
    o->resolving = 0;
    o->handles--;
    /* An answer that comes after its attempt timed out serves the next
     * attempt if that one is already waiting for it (see attempt), and is
     * dropped otherwise. */
    int wanted = !o->removing && o->state == KB_OUT_CONNECTING && o->phase == PH_RESOLVE;
    if (!wanted || status == UV_ECANCELED || status == UV_EAI_CANCELED) {
        if (res)
            uv_freeaddrinfo(res);
        if (wanted)
            start_lookup(o);
        else
            maybe_free(o);
        return;
    }
    if (status < 0) {
        char why[160];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", o->conf->host, uv_strerror(status));
        fail(o, why);
        return;
    }
    if (o->addrs)
        uv_freeaddrinfo(o->addrs);
    o->addrs = o->addr_next = res;
    o->last_error[0] = '\0';
    try_next_address(o);
}

static void start_lookup(struct kb_output *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[8];
    snprintf(port, sizeof(port), "%u", o->conf->port);
    o->gai.data = o;
    /* Name resolution runs on libuv's thread pool, never on the loop. */
    int r = uv_getaddrinfo(o->srv->loop, &o->gai, on_resolved, o->conf->host, port, &hints);
    if (r < 0) {
        char why[160];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", o->conf->host, uv_strerror(r));
        fail(o, why);
        return;
    }
    o->resolving = 1;
    o->handles++;
}

static void attempt(struct kb_output *o)
{
    set_state(o, KB_OUT_CONNECTING);
    o->phase = PH_RESOLVE;
    uv_timer_start(&o->timer, on_timer, o->srv->conf->push_timeout, 0);
    /* A lookup that outlived its attempt (a name server that does not
     * answer) is still using o->gai: this attempt takes its answer rather
     * than starting a second lookup on the same request. */
    if (!o->resolving)
        start_lookup(o);
}

static int send_cmd(struct kb_output *o, struct kb_cmd_builder *b, uint32_t msid)
{
    return kb_proto_cmd_end(&o->c->proto, b, msid);
}

static void on_handshake_done(struct kb_conn *c)
{
    struct kb_output *o = c->ud;
    const struct kb_push_conf *p = o->conf;
    int err = kb_proto_send_chunk_size(&c->proto, OUT_CHUNK);
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "connect", o->txn = 1);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "app", p->app);
    kb_amf_w_prop_string(&b.w, "type", "nonprivate");
    kb_amf_w_prop_string(&b.w, "flashVer", "FMLE/3.0 (compatible; kebun)");
    kb_amf_w_prop_string(&b.w, "tcUrl", p->tcurl);
    /* What a publisher of E-RTMP declares (as FFmpeg's rtmp_enhanced_codecs
     * and OBS do); legacy platforms skip properties they do not know. */
    if (p->ertmp != KB_PUSH_ERTMP_OFF)
        kb_caps_write_ours(&b.w);
    kb_amf_w_object_end(&b.w);
    if (!err)
        err = send_cmd(o, &b, 0);
    else
        kb_buf_free(&b.body);
    if (err) {
        fail(o, "out of memory");
        return;
    }
    o->phase = PH_CONNECT;
}

static int send_name_cmd(struct kb_output *o, const char *name, double txn)
{
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, name, txn);
    kb_amf_w_null(&b.w);
    kb_amf_w_string(&b.w, o->conf->playpath);
    return send_cmd(o, &b, 0);
}

/* Catch up like a new player: metadata and sequence headers at time 0, then
 * the cached GOP (or wait for the next keyframe). */
static void go_live(struct kb_output *o)
{
    o->phase = PH_LIVE;
    uv_timer_stop(&o->timer);
    set_state(o, KB_OUT_LIVE);
    o->live_at = uv_now(o->srv->loop);
    o->have_base = 0;
    kb_gate_start(&o->gate); /* drop counts go on across connections */
    olog(o, KB_LOG_INFO, "live");
    o->catching_up = 1;
    kb_stream_catch_up(o->stream, &o->sink);
    o->catching_up = 0;
    if (o->c) /* (a failure on the way hangs up) */
        kb_gate_pin(&o->gate, kb_conn_queued(o->c));
}

static void hang_up(struct kb_output *o, enum kb_output_state next, const char *why);

/* The platform cannot take what the stream sends (Enhanced RTMP it did not
 * declare): sending it anyway would be garbage on its side, and the other
 * track alone (audio without its video) a broken broadcast. So it is not
 * published to (or unpublished at once), and its state says why until the
 * stream's codecs change, a reload, or the next broadcast. */
static void refuse(struct kb_output *o, enum kb_caps_verdict v, const char *what)
{
    o->refused = v;
    char declared[140];
    kb_caps_describe(&o->caps, declared, sizeof(declared));
    snprintf(o->last_error, sizeof(o->last_error), "destination does not accept %s", what);
    o->last_error_at = kb_wall_ms();
    olog(o, KB_LOG_WARN,
         "%s (it declared Enhanced RTMP: %s%s); not published until the stream's codecs "
         "change or a reload",
         o->last_error, declared,
         o->conf->ertmp == KB_PUSH_ERTMP_OFF ? "; ertmp=off" : "");
    hang_up(o, KB_OUT_REFUSED, o->last_error);
}

/* What the platform takes: its connect _result's declaration (in either
 * object), or what `ertmp=` says instead. */
static void read_caps(struct kb_output *o, const struct kb_cmd *c)
{
    memset(&o->caps, 0, sizeof(o->caps));
    if (o->conf->ertmp == KB_PUSH_ERTMP_OFF)
        return;
    char why[96];
    int bad = kb_caps_parse(&o->caps, &c->doc, c->obj, why, sizeof(why));
    if (!bad)
        bad = kb_caps_parse(&o->caps, &c->doc, c->arg1, why, sizeof(why));
    else
        kb_caps_parse(&o->caps, &c->doc, c->arg1, NULL, 0);
    if (bad)
        olog(o, KB_LOG_WARN, "platform's Enhanced RTMP capability ignored (%s)", why);
    if (o->conf->ertmp == KB_PUSH_ERTMP_ON) {
        struct kb_caps all;
        kb_caps_all(&all);
        for (int i = 0; i < KB_CAPS_CODECS; i++)
            o->caps.codec[i] |= all.codec[i];
        o->caps.caps_ex |= all.caps_ex;
        o->caps.declared = 1;
    }
    if (o->caps.declared) {
        char d[140];
        kb_caps_describe(&o->caps, d, sizeof(d));
        olog(o, KB_LOG_DEBUG, "takes Enhanced RTMP: %s%s", d,
             o->conf->ertmp == KB_PUSH_ERTMP_ON ? " (ertmp=on)" : "");
    }
}

/* The stream has sent audio or video in this publish session (a sequence
 * header, or frames of a codec without one). */
static int has_media(const struct kb_stream *st)
{
    return st->video_hdr || st->audio_hdr || st->gop_len > 0;
}

/* Connected, and the stream's codecs are known: publish, or refuse when
 * the platform did not declare them. Nothing is published before that, so
 * a platform that cannot take the stream never sees a publish. */
static int publish_or_refuse(struct kb_output *o)
{
    char what[96];
    enum kb_caps_verdict v = kb_stream_admits(o->stream, &o->caps, what, sizeof(what));
    if (v != KB_CAPS_OK) {
        refuse(o, v, what);
        return 0;
    }
    o->phase = PH_CREATE;
    int err = send_name_cmd(o, "releaseStream", 2);
    if (!err)
        err = send_name_cmd(o, "FCPublish", 3);
    if (!err) {
        struct kb_cmd_builder b;
        kb_proto_cmd_begin(&b, "createStream", o->txn = 4);
        kb_amf_w_null(&b.w);
        err = send_cmd(o, &b, 0);
    }
    if (!err)
        err = kb_conn_sync(o->c);
    return err;
}

static void on_status(struct kb_output *o, const struct kb_cmd *c)
{
    const struct kb_amf_node *info = c->arg1;
    char code[96] = "", desc[128] = "", level[16] = "";
    kb_amf_str_copy(kb_amf_prop(&c->doc, info, "code"), code, sizeof(code));
    kb_amf_str_copy(kb_amf_prop(&c->doc, info, "description"), desc, sizeof(desc));
    kb_amf_str_copy(kb_amf_prop(&c->doc, info, "level"), level, sizeof(level));
    if (strcmp(code, "NetStream.Publish.Start") == 0) {
        if (o->phase == PH_PUBLISH)
            go_live(o);
        return;
    }
    if (strcmp(level, "error") == 0) {
        char why[192];
        /* The platform's description may echo the key; keep only the code. */
        snprintf(why, sizeof(why), "platform refused the publish: %s", code[0] ? code : "error");
        fail(o, why);
    }
}

static int on_message(struct kb_conn *conn, struct kb_msg *m)
{
    struct kb_output *o = conn->ud;
    int err = 0;
    if (m->type != KB_MSG_COMMAND_AMF0 && m->type != KB_MSG_COMMAND_AMF3) {
        kb_msg_unref(m);
        return 0;
    }
    struct kb_cmd c;
    err = kb_cmd_parse(&c, m);
    if (err < 0) {
        kb_msg_unref(m);
        return err;
    }
    if (kb_amf_str_eq(c.name, "_result")) {
        if (o->phase == PH_CONNECT && c.txn == 1) {
            read_caps(o, &c);
            /* Publish only once it is clear what the platform will get. */
            o->phase = PH_MEDIA;
            if (has_media(o->stream))
                err = publish_or_refuse(o);
        } else if (o->phase == PH_CREATE && c.txn == 4) {
            if (kb_amf_u32(c.arg1, &o->msid) < 0) {
                fail(o, "platform answered createStream without a valid stream id");
            } else {
                o->phase = PH_PUBLISH;
                struct kb_cmd_builder b;
                kb_proto_cmd_begin(&b, "publish", 5);
                kb_amf_w_null(&b.w);
                kb_amf_w_string(&b.w, o->conf->playpath);
                kb_amf_w_string(&b.w, "live");
                err = send_cmd(o, &b, o->msid);
            }
        }
    } else if (kb_amf_str_eq(c.name, "_error")) {
        char code[96] = "";
        kb_amf_str_copy(kb_amf_prop(&c.doc, c.arg1, "code"), code, sizeof(code));
        char why[160];
        snprintf(why, sizeof(why), "platform refused %s: %s",
                 o->phase == PH_CONNECT ? "the connection" : "a command",
                 code[0] ? code : "_error");
        /* releaseStream and FCPublish errors are harmless (nginx-rtmp and
         * some platforms do not know them). */
        if (c.txn != 2 && c.txn != 3)
            fail(o, why);
    } else if (kb_amf_str_eq(c.name, "onStatus")) {
        on_status(o, &c);
    }
    kb_msg_unref(m);
    return err;
}

static void on_closed(struct kb_conn *c, const char *why)
{
    struct kb_output *o = c->ud;
    if (o->c != c)
        return;
    int phase = o->phase;
    enum kb_conn_stage stage = c->stage;
    o->c = NULL;
    o->phase = PH_NONE;
    if (o->removing) {
        maybe_free(o);
        return;
    }
    if (o->state != KB_OUT_CONNECTING && o->state != KB_OUT_LIVE)
        return; /* ended on purpose */
    if (phase == PH_TRANSPORT && stage == KB_CONN_TCP && o->addr_next) {
        snprintf(o->last_error, sizeof(o->last_error), "%s", why);
        try_next_address(o);
        return;
    }
    if (phase != PH_NONE) {
        /* Closed under us (the platform hung up, a write failed, TLS). */
        char msg[192];
        uint64_t live_ms = uv_now(o->srv->loop) - o->live_at;
        if (phase == PH_PUBLISH || (phase == PH_LIVE && live_ms < 2000))
            snprintf(msg, sizeof(msg), "platform closed the connection %s publish (stream key "
                                       "refused?): %s",
                     phase == PH_PUBLISH ? "after our" : "right after accepting the", why);
        else if (phase == PH_LIVE)
            snprintf(msg, sizeof(msg), "connection lost while live: %s", why);
        else if (phase == PH_TRANSPORT)
            snprintf(msg, sizeof(msg), "%s while %s", why, kb_conn_stage_name(stage));
        else
            snprintf(msg, sizeof(msg), "%s while %s", why, phase_name(o));
        snprintf(o->last_error, sizeof(o->last_error), "%s", msg);
        o->last_error_at = kb_wall_ms();
        olog(o, KB_LOG_WARN, "%s", msg);
    }
    if (phase == PH_LIVE && uv_now(o->srv->loop) - o->live_at >= STABLE_MS) {
        o->attempt = 0;
        o->delay_ms = 0;
    }
    uv_timer_stop(&o->timer);
    schedule_retry(o);
}

/* The stream keeps metadata in the players' form (plain onMetaData); a
 * platform is a server, so it gets what a publisher sends:
 * @setDataFrame("onMetaData", {...}). */
static struct kb_msg *as_set_data_frame(const struct kb_msg *m)
{
    static const uint8_t set_data_frame[] = {0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D',
                                             'a',  't',  'a',  'F', 'r', 'a', 'm', 'e'};
    struct kb_msg *w = kb_msg_new(m->type, m->timestamp, m->stream_id,
                                  m->len + (uint32_t)sizeof(set_data_frame));
    if (!w)
        return NULL;
    memcpy(w->data, set_data_frame, sizeof(set_data_frame));
    memcpy(w->data + sizeof(set_data_frame), m->data, m->len);
    w->len = m->len + (uint32_t)sizeof(set_data_frame);
    w->flags = m->flags;
    return w;
}

static void send_msg(struct kb_output *o, struct kb_msg *m)
{
    if (!o->c)
        return;
    unsigned ev;
    /* The cached GOP a new connection is handed is pinned by the cache
     * anyway, so it does not count against the queue (as for players). */
    uint64_t limit = o->catching_up ? UINT64_MAX : o->srv->conf->push_queue;
    if (!kb_gate_admit(&o->gate, m, kb_conn_queued(o->c), limit, &ev)) {
        if (ev & (KB_GATE_EV_SKIP | KB_GATE_EV_AUDIO_SKIP))
            olog(o, KB_LOG_WARN, "platform too slow, %s (push_queue reached)",
                 kb_gate_skip_what(&o->gate, ev));
        return;
    }
    if (!o->have_base && !kb_msg_is_setup(m)) {
        o->have_base = 1;
        o->ts_base = m->timestamp;
    }
    /* Timestamps start at 0 for each connection; setup messages that come
     * before the first frame go at 0 too. */
    uint32_t ts = 0;
    if (o->have_base && (int32_t)(m->timestamp - o->ts_base) > 0)
        ts = m->timestamp - o->ts_base;
    struct kb_msg *wrapped = NULL;
    if ((m->flags & KB_MSGF_METADATA) && m->type == KB_MSG_DATA_AMF0) {
        wrapped = as_set_data_frame(m);
        if (!wrapped) {
            fail(o, "out of memory");
            return;
        }
    }
    int err = kb_conn_send_media(o->c, wrapped ? wrapped : m, ts, o->msid);
    kb_msg_unref(wrapped);
    if (err < 0) {
        fail(o, "out of memory");
        return;
    }
    o->msgs_sent++;
    o->bytes_sent += m->len;
}

static void sink_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct kb_output *o = sink_output(k);
    if (o->phase == PH_MEDIA && (m->flags & (KB_MSGF_AUDIO | KB_MSGF_VIDEO))) {
        if (publish_or_refuse(o) < 0)
            fail(o, "out of memory");
    } else if (o->state == KB_OUT_LIVE) {
        enum kb_caps_verdict v = kb_caps_admit(&o->caps, m);
        if (v == KB_CAPS_OK) {
            send_msg(o, m);
        } else if (v != KB_CAPS_SKIP) {
            char what[96];
            kb_caps_what(v, m, what, sizeof(what));
            refuse(o, v, what);
        }
    } else if (o->state == KB_OUT_REFUSED && (m->flags & (KB_MSGF_SEQHDR | KB_MSGF_LAYOUT)) &&
               o->refused != KB_CAPS_NO_MODEX &&
               kb_stream_admits(o->stream, &o->caps, NULL, 0) == KB_CAPS_OK) {
        /* New sequence headers the platform takes (the phone switched to
         * H.264, say): try again. A refusal for ModEx came from frames,
         * which no header says anything about: that one waits for the
         * next broadcast or a reload. */
        olog(o, KB_LOG_INFO, "the stream's codecs changed: trying again");
        start(o);
    }
}

static void start(struct kb_output *o)
{
    o->attempt = 0;
    o->delay_ms = 0;
    o->last_error[0] = '\0';
    attempt(o);
}

void kb_output_reloaded(struct kb_output *o)
{
    /* "failed" waits for the config to be fixed (a CA file that did not
     * load): a reload that keeps the destination is that moment. */
    if ((o->state != KB_OUT_FAILED && o->state != KB_OUT_REFUSED) || o->removing)
        return;
    if (o->stream->bcast == KB_BC_IDLE) {
        set_state(o, KB_OUT_IDLE);
        return;
    }
    olog(o, KB_LOG_INFO, "trying again after the reload");
    start(o);
}

static void sink_publish(struct kb_sink *k, int resumed)
{
    struct kb_output *o = sink_output(k);
    if (o->state == KB_OUT_IDLE || o->state == KB_OUT_FAILED || o->state == KB_OUT_REFUSED) {
        start(o);
    } else if (o->state == KB_OUT_LIVE) {
        /* The publisher came back: its first keyframe comes after its
         * sequence headers; the timeline (and our timestamps) continue. */
        kb_gate_restart(&o->gate);
    }
    (void)resumed;
}

/* Let go of the platform's connection and enter `next`: FCUnpublish and
 * deleteStream when live. The connection is handed off to close by itself
 * once they are written (or when the session sweep gives up on a peer that
 * stopped reading), so the output is free to start again at once. */
static void hang_up(struct kb_output *o, enum kb_output_state next, const char *why)
{
    uv_timer_stop(&o->timer);
    if (o->resolving)
        uv_cancel((uv_req_t *)&o->gai);
    struct kb_conn *c = o->c;
    int live = o->state == KB_OUT_LIVE;
    set_state(o, next);
    o->phase = PH_NONE;
    if (!c)
        return;
    int err = 0;
    if (live) {
        err = send_name_cmd(o, "FCUnpublish", 6);
        if (!err) {
            struct kb_cmd_builder b;
            kb_proto_cmd_begin(&b, "deleteStream", 7);
            kb_amf_w_null(&b.w);
            kb_amf_w_number(&b.w, o->msid);
            err = send_cmd(o, &b, 0);
        }
        if (!err)
            err = kb_conn_sync(c);
        olog(o, KB_LOG_INFO, "%s: unpublished after %llu messages", why,
             (unsigned long long)o->msgs_sent);
    }
    /* The goodbye outlives the output's interest in the connection. */
    kb_conn_disown(c);
    o->c = NULL;
    if (live && !err)
        kb_conn_close_after_flush(c, why, o->srv->conf->push_timeout);
    else
        kb_conn_close(c, why);
}

/* End the platform's broadcast. */
static void finish(struct kb_output *o)
{
    hang_up(o, KB_OUT_IDLE, "broadcast ended");
}

static void sink_end(struct kb_sink *k)
{
    finish(sink_output(k));
}

static const struct kb_sink_ops output_sink_ops = {
    .on_msg = sink_msg,
    .on_publish = sink_publish,
    .on_end = sink_end,
};



struct kb_output *kb_output_new(struct kb_server *srv, struct kb_stream *st,
                                const struct kb_push_conf *conf)
{
    struct kb_output *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->conf = kb_push_dup(conf);
    if (!o->conf) {
        free(o);
        return NULL;
    }
    o->srv = srv;
    o->stream = st;
    snprintf(o->stream_name, sizeof(o->stream_name), "%s", st->name);
    o->since = kb_wall_ms();
    o->sink = (struct kb_sink){.ops = &output_sink_ops, .kind = KB_SINK_PUSH};
    kb_gate_init_keep_audio(&o->gate, 1);
    uv_timer_init(srv->loop, &o->timer);
    o->timer.data = o;
    o->handles = 1;
    /* In the order they were configured or added. */
    struct kb_output **tail = &srv->outputs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = o;
    kb_stream_attach(st, &o->sink);
    if (st->bcast != KB_BC_IDLE)
        start(o);
    return o;
}

void kb_output_remove(struct kb_output *o)
{
    if (o->removing)
        return;
    finish(o);
    o->removing = 1;
    kb_stream_detach(&o->sink);
    uv_close((uv_handle_t *)&o->timer, on_timer_close);
}

int kb_outputs_start(struct kb_server *srv)
{
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        const struct kb_stream_conf *sc = kb_config_stream_by_name(srv->conf, st->name);
        for (const struct kb_push_conf *p = sc ? sc->pushes : NULL; p; p = p->next)
            if (!kb_output_new(srv, st, p))
                return -ENOMEM;
    }
    return 0;
}

void kb_outputs_sweep(struct kb_server *srv, uint64_t now)
{
    for (struct kb_output *o = srv->outputs, *next; o; o = next) {
        next = o->next;
        if (o->rate_at && now > o->rate_at)
            o->bitrate = (o->bytes_sent - o->rate_bytes) * 8000 / (now - o->rate_at);
        o->rate_at = now;
        o->rate_bytes = o->bytes_sent;
        struct kb_conn *c = o->c;
        if (!c || c->closing)
            continue;
        if (kb_conn_queued(c) > 0 && now - c->last_progress_ms > srv->conf->push_timeout)
            fail(o, "platform stopped taking data");
    }
}

void kb_outputs_stop(struct kb_server *srv)
{
    for (struct kb_output *o = srv->outputs, *next; o; o = next) {
        next = o->next;
        kb_output_remove(o);
    }
}
