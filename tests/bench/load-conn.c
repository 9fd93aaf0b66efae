/* kebun-load: the RTMP connections. Publishers run the client handshake
 * and connect / releaseStream / FCPublish / createStream / publish with
 * relay/rtmp's codec (as relay/output.c does), then pace the source; players
 * run connect / createStream / play and read with the header-only skimmer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "relay/rtmp/amf.h"
#include "relay/rtmp/error.h"

static uint8_t read_buf[READ_BUF];

static void url_name(const struct url *u, int stream, char *out, size_t cap)
{
    if (strstr(u->name, "%d")) {
        /* The one %d is the stream index; the format comes from the user. */
        char fmt[sizeof(u->name)];
        snprintf(fmt, sizeof(fmt), "%s", u->name);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(out, cap, fmt, stream);
#pragma GCC diagnostic pop
    } else {
        snprintf(out, cap, "%s", u->name);
    }
}

static void tcurl(const struct url *u, char *out, size_t cap)
{
    snprintf(out, cap, "rtmp://%s:%u/%s", u->host, u->port, u->app);
}

/* ---- connections ---- */

static void on_close(uv_handle_t *h);

void kl_conn_close(struct conn *c, const char *why)
{
    if (c->state == CS_CLOSING)
        return;
    int was_live = c->state == CS_LIVE;
    c->state = CS_CLOSING;
    if (c->role == R_PUB) {
        if (why) {
            kl_note("publisher %d: %s", c->idx, why);
            kl_count_error(why);
            if (!was_live)
                kl.pubs_failed++;
        }
        if (was_live)
            kl.pubs_live--;
        if (c->pub) {
            c->pub->done = 1;
            if (c->pub->timer_open)
                uv_timer_stop(&c->pub->timer);
        }
    } else if (c->churn) {
        if (was_live)
            kl.churn_live--;
        if (why) {
            kl_count_error(why);
            kl.churn_failed++;
        } else {
            kl.churn_done++;
        }
    } else {
        if (was_live)
            kl.players_live--;
        if (why) {
            kl_count_error(why);
            if (was_live)
                kl.players_dropped++;
            else
                kl.players_failed++;
        }
    }
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (c->prev)
        c->prev->next = c->next;
    else
        kl.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->hs);
    kb_proto_free(&c->proto);
    kb_buf_free(&c->wbuf);
    if (c->sk) {
        bt_skim_free(c->sk);
        free(c->sk);
    }
    free(c->fk);
    if (c->pub)
        c->pub->c = NULL;
    free(c);
}

static void conn_flush(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = 0;
    c->wbuf.len = 0;
    if (c->state == CS_CLOSING)
        return;
    if (status < 0) {
        kl_conn_close(c, "write failed");
        return;
    }
    conn_flush(c);
}

/* Write what proto.out holds: try at once, hand the rest to libuv. The two
 * buffers swap, so steady state allocates nothing. */
static void conn_flush(struct conn *c)
{
    struct kb_buf *out = &c->proto.out;
    if (c->writing || out->len == 0 || c->state == CS_CLOSING)
        return;
    uv_buf_t b = uv_buf_init((char *)out->data, (unsigned)out->len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == UV_EAGAIN)
        r = 0;
    if (r < 0) {
        kl_conn_close(c, "write failed");
        return;
    }
    kb_buf_consume(out, (size_t)r);
    if (out->len == 0)
        return;
    if (c->role == R_PUB && out->len > PUB_BACKLOG_MAX) {
        kl_conn_close(c, "server stopped reading the publisher");
        return;
    }
    struct kb_buf t = c->wbuf;
    c->wbuf = *out;
    *out = t;
    out->len = 0;
    b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        kl_conn_close(c, "write failed");
        return;
    }
    c->writing = 1;
}

static void send_connect(struct conn *c)
{
    const struct url *u = c->role == R_PUB ? &kl.publish : &kl.play;
    char tc[256];
    tcurl(u, tc, sizeof(tc));
    int err = 0;
    if (c->role == R_PUB)
        err = kb_proto_send_chunk_size(&c->proto, PUB_CHUNK);
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "connect", 1);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "app", u->app);
    if (c->role == R_PUB) {
        kb_amf_w_prop_string(&b.w, "type", "nonprivate");
        kb_amf_w_prop_string(&b.w, "flashVer", "FMLE/3.0 (compatible; kebun-load)");
        kb_amf_w_prop_string(&b.w, "tcUrl", tc);
    } else {
        kb_amf_w_prop_string(&b.w, "flashVer", "LNX 9,0,124,2");
        kb_amf_w_prop_string(&b.w, "tcUrl", tc);
        kb_amf_w_prop_bool(&b.w, "fpad", 0);
        kb_amf_w_prop_number(&b.w, "capabilities", 15);
        kb_amf_w_prop_number(&b.w, "audioCodecs", 4071);
        kb_amf_w_prop_number(&b.w, "videoCodecs", 252);
        kb_amf_w_prop_number(&b.w, "videoFunction", 1);
    }
    kb_amf_w_object_end(&b.w);
    if (!err)
        err = kb_proto_cmd_end(&c->proto, &b, 0);
    else
        kb_buf_free(&b.body);
    if (err) {
        kl_conn_close(c, "out of memory");
        return;
    }
    c->state = CS_CONNECT;
}

static int send_name_cmd(struct conn *c, const char *name, double txn, const char *arg,
                         uint32_t msid)
{
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, name, txn);
    kb_amf_w_null(&b.w);
    if (arg)
        kb_amf_w_string(&b.w, arg);
    return kb_proto_cmd_end(&c->proto, &b, msid);
}

/* ---- publishers ---- */

static void pub_tick(uv_timer_t *t);

static void pub_go_live(struct conn *c)
{
    struct pub *p = c->pub;
    c->state = CS_LIVE;
    c->t_live = uv_hrtime();
    kl.pubs_live++;
    p->start_ns = uv_hrtime();
    p->next = 0;
    p->pass = 0;
    kl_note("publisher %d live after %.1f ms", c->idx, (double)(c->t_live - c->t_connect) / 1e6);
    uv_timer_start(&p->timer, pub_tick, 0, 0);
}

static int pub_send_tag(struct conn *c, const struct bt_tag *t, uint32_t ts)
{
    struct pub *p = c->pub;
    const uint8_t *data = t->data;
    uint32_t len = t->len;
    size_t need = (size_t)len + 16;
    if (need > p->scratch_cap) {
        uint8_t *s = realloc(p->scratch, need);
        if (!s)
            return -ENOMEM;
        p->scratch = s;
        p->scratch_cap = need;
    }
    if (t->type == KB_MSG_DATA_AMF0) {
        /* Encoders ask the server to keep metadata with @setDataFrame. */
        static const uint8_t sdf[] = {0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a',
                                      't',  'a',  'F',  'r', 'a', 'm', 'e'};
        memcpy(p->scratch, sdf, sizeof(sdf));
        memcpy(p->scratch + sizeof(sdf), data, len);
        data = p->scratch;
        len += sizeof(sdf);
    } else if (!(t->flags & BT_CONFIG) && len >= BT_TAG_MIN_LEN) {
        memcpy(p->scratch, data, len);
        uint8_t *tag = p->scratch + len - 8;
        p->seq++;
        tag[0] = BT_TAG_MAGIC0;
        tag[1] = BT_TAG_MAGIC1;
        kb_put_be16(tag + 2, (uint32_t)c->stream);
        kb_put_be32(tag + 4, p->seq);
        p->ring[p->seq % RING] = (struct sendrec){p->seq, 0};
        data = p->scratch;
    }
    uint32_t csid = t->type == KB_MSG_VIDEO   ? KB_CSID_VIDEO
                    : t->type == KB_MSG_AUDIO ? KB_CSID_AUDIO
                                              : KB_CSID_DATA;
    p->msgs++;
    p->bytes += len;
    return kb_proto_send(&c->proto, csid, t->type, ts, c->msid, data, len);
}

static void pub_tick(uv_timer_t *tm)
{
    struct pub *p = tm->data;
    struct conn *c = p->c;
    if (!c || c->state != CS_LIVE || p->done)
        return;
    const struct bt_source *s = &kl.src;
    uint64_t now_ms = (uv_hrtime() - p->start_ns) / 1000000;
    uint32_t first_seq = p->seq + 1;
    uint64_t next_due = 0;
    for (;;) {
        if (p->next == s->n) {
            if (!kl.loop) {
                p->done = 1;
                break;
            }
            p->next = 0;
            p->pass++;
        }
        const struct bt_tag *t = &s->tags[p->next];
        if (p->pass > 0 && (t->flags & BT_CONFIG)) {
            p->next++; /* headers and metadata only on the first pass */
            continue;
        }
        uint64_t due = (uint64_t)t->ts + (uint64_t)p->pass * s->period_ms;
        if (due > now_ms) {
            next_due = due;
            break;
        }
        if (now_ms - due > p->late_max_ms) {
            p->late_max_ms = now_ms - due;
            if (p->late_max_ms > 20)
                kl_note("publisher %d: tag %zu (ts %" PRIu64 ") %" PRIu64 " ms late", c->idx, p->next, due, now_ms - due);
        }
        if (pub_send_tag(c, t, (uint32_t)due) < 0) {
            kl_conn_close(c, "out of memory");
            return;
        }
        p->next++;
    }
    /* Every frame of this batch leaves now: that is its send time. */
    uint64_t t_ns = uv_hrtime();
    for (uint32_t q = first_seq; q != p->seq + 1; q++)
        p->ring[q % RING].t_ns = t_ns;
    conn_flush(c);
    if (p->done || c->state != CS_LIVE)
        return;
    uint64_t wait = next_due - now_ms;
    if (kl.pace_ms > 0 && wait < (uint64_t)kl.pace_ms)
        wait = (uint64_t)kl.pace_ms;
    uv_timer_start(&p->timer, pub_tick, wait, 0);
}

static int pub_on_command(struct conn *c, const struct kb_msg *m)
{
    struct kb_cmd cmd;
    int err = kb_cmd_parse(&cmd, m);
    if (err < 0)
        return err;
    char name[256];
    if (kb_amf_str_eq(cmd.name, "_result")) {
        if (c->state == CS_CONNECT && cmd.txn == 1) {
            url_name(&kl.publish, c->stream, name, sizeof(name));
            err = send_name_cmd(c, "releaseStream", 2, name, 0);
            if (!err)
                err = send_name_cmd(c, "FCPublish", 3, name, 0);
            if (!err)
                err = send_name_cmd(c, "createStream", 4, NULL, 0);
            c->state = CS_CREATE;
        } else if (c->state == CS_CREATE && cmd.txn == 4) {
            if (!cmd.arg1 || cmd.arg1->type != KB_AMF_NUMBER) {
                kl_conn_close(c, "createStream answered without a stream id");
                return 0;
            }
            c->msid = (uint32_t)cmd.arg1->num;
            url_name(&kl.publish, c->stream, name, sizeof(name));
            struct kb_cmd_builder b;
            kb_proto_cmd_begin(&b, "publish", 5);
            kb_amf_w_null(&b.w);
            kb_amf_w_string(&b.w, name);
            kb_amf_w_string(&b.w, "live");
            err = kb_proto_cmd_end(&c->proto, &b, c->msid);
            c->state = CS_WAIT;
        }
    } else if (kb_amf_str_eq(cmd.name, "_error")) {
        if (cmd.txn != 2 && cmd.txn != 3) /* releaseStream/FCPublish are optional */
            kl_conn_close(c, "server answered _error");
    } else if (kb_amf_str_eq(cmd.name, "onStatus")) {
        char code[96] = "", level[16] = "";
        kb_amf_str_copy(kb_amf_prop(&cmd.doc, cmd.arg1, "code"), code, sizeof(code));
        kb_amf_str_copy(kb_amf_prop(&cmd.doc, cmd.arg1, "level"), level, sizeof(level));
        if (strcmp(code, "NetStream.Publish.Start") == 0 && c->state == CS_WAIT)
            pub_go_live(c);
        else if (strcmp(level, "error") == 0) {
            char why[128];
            snprintf(why, sizeof(why), "publish refused: %s", code);
            kl_conn_close(c, why);
        }
    }
    return err;
}

static void pub_feed(struct conn *c, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    while (c->state != CS_CLOSING) {
        size_t used = 0;
        struct kb_msg *m = NULL;
        int r = kb_proto_read(&c->proto, p + pos, n - pos, &used, &m);
        pos += used;
        if (r < 0) {
            kl_conn_close(c, "protocol error from server");
            return;
        }
        if (r == 0)
            break;
        if (m->type == KB_MSG_COMMAND_AMF0 || m->type == KB_MSG_COMMAND_AMF3) {
            if (pub_on_command(c, m) < 0) {
                kb_msg_unref(m);
                kl_conn_close(c, "bad command from server");
                return;
            }
        }
        kb_msg_unref(m);
    }
}

/* ---- players ---- */

static void player_live(struct conn *c)
{
    uint64_t now = uv_hrtime();
    c->state = CS_LIVE;
    c->t_live = now;
    struct stats *st = c->churn ? &kl.churners : &kl.steady;
    bt_hist_add(&st->accept, (now - c->t_connect) / 1000);
    if (c->churn)
        kl.churn_live++;
    else
        kl.players_live++;
}

static int player_on_command(struct conn *c, const struct kb_msg *m)
{
    struct kb_cmd cmd;
    int err = kb_cmd_parse(&cmd, m);
    if (err < 0)
        return err;
    if (kb_amf_str_eq(cmd.name, "_result")) {
        if (c->state == CS_CONNECT && cmd.txn == 1) {
            err = send_name_cmd(c, "createStream", 2, NULL, 0);
            c->state = CS_CREATE;
        } else if (c->state == CS_CREATE && cmd.txn == 2) {
            if (!cmd.arg1 || cmd.arg1->type != KB_AMF_NUMBER) {
                kl_conn_close(c, "createStream answered without a stream id");
                return 0;
            }
            c->msid = (uint32_t)cmd.arg1->num;
            char name[256];
            url_name(&kl.play, c->stream, name, sizeof(name));
            struct kb_cmd_builder b;
            kb_proto_cmd_begin(&b, "play", 3);
            kb_amf_w_null(&b.w);
            kb_amf_w_string(&b.w, name);
            kb_amf_w_number(&b.w, -2000);
            err = kb_proto_cmd_end(&c->proto, &b, c->msid);
            if (!err)
                err = kb_proto_send_buffer_length(&c->proto, c->msid, 3000);
            c->state = CS_WAIT;
            c->t_play_sent = uv_hrtime();
        }
    } else if (kb_amf_str_eq(cmd.name, "_error")) {
        kl_conn_close(c, "server answered _error");
    } else if (kb_amf_str_eq(cmd.name, "onStatus")) {
        char code[96] = "", level[16] = "";
        kb_amf_str_copy(kb_amf_prop(&cmd.doc, cmd.arg1, "code"), code, sizeof(code));
        kb_amf_str_copy(kb_amf_prop(&cmd.doc, cmd.arg1, "level"), level, sizeof(level));
        if (strcmp(code, "NetStream.Play.Start") == 0 && c->state == CS_WAIT)
            player_live(c);
        else if (strcmp(level, "error") == 0) {
            char why[128];
            snprintf(why, sizeof(why), "play refused: %s", code);
            kl_conn_close(c, why);
        }
    }
    return err;
}

static int player_control(struct conn *c, struct kb_msg *m)
{
    switch (m->type) {
    case KB_MSG_SET_CHUNK_SIZE:
        return m->len >= 4 ? bt_skim_set_chunk_size(c->sk, kb_get_be32(m->data)) : KB_ECHUNK;
    case KB_MSG_WINDOW_ACK_SIZE:
        if (m->len >= 4)
            c->ack_window = kb_get_be32(m->data);
        return 0;
    case KB_MSG_USER_CONTROL:
        if (m->len >= 6 && kb_get_be16(m->data) == KB_UC_PING_REQUEST)
            return kb_proto_send_user_control(&c->proto, KB_UC_PING_RESPONSE,
                                              kb_get_be32(m->data + 2));
        return 0;
    case KB_MSG_COMMAND_AMF0:
    case KB_MSG_COMMAND_AMF3:
        return player_on_command(c, m);
    }
    return 0;
}

/* A media message reached a player at `now`. */
static void player_media(struct conn *c, const struct bt_skim_msg *m, uint64_t now)
{
    int window = kl.phase == P_WINDOW;
    if (m->type == KB_MSG_VIDEO) {
        if (bt_video_kind(m->head, m->len) == 2)
            return; /* sequence header */
    } else if (m->type == KB_MSG_AUDIO) {
        if (m->len >= 2 && (m->head[0] >> 4) == 10 && m->head[1] == 0)
            return; /* AAC sequence header */
    } else {
        return; /* metadata and other data */
    }
    struct stats *st = c->churn ? &kl.churners : &kl.steady;
    uint32_t pub = 0, seq = 0;
    uint64_t sent = 0;
    if (bt_tag_parse(m->tail, &pub, &seq) && (int)pub < kl.n_pubs) {
        const struct sendrec *r = &kl.pubs[pub].ring[seq % RING];
        if (r->seq == seq && r->t_ns)
            sent = r->t_ns;
    }
    int had_key = c->got_key;
    if (!c->got_media) {
        c->got_media = 1;
        if (sent)
            bt_hist_add(&st->first_age, (now - sent) / 1000);
    }
    if (m->type == KB_MSG_VIDEO && !c->got_key && bt_video_kind(m->head, m->len) == 1) {
        c->got_key = 1;
        if (c->t_play_sent)
            bt_hist_add(&st->ttfk, (now - c->t_play_sent) / 1000);
    }
    if (window) {
        kl.media_win++;
        if (sent && sent >= c->t_play_sent) {
            bt_hist_add(&kl.latency, (now - sent) / 1000);
            kl.tagged_win++;
        } else if (sent) {
            kl.cached_msgs++;
        } else {
            kl.untagged_win++;
        }
        if (c->t_last_media) {
            uint64_t gap = (now - c->t_last_media) / 1000;
            if (gap > kl.gap_max_us)
                kl.gap_max_us = gap;
            if ((double)gap > kl.gap_ms * 1000)
                kl.gaps++;
        }
        /* A sequence number that jumps ahead counts the ones it skipped as
         * missing; one that comes back fills a hole (a reordering). Only
         * once video started: before its first keyframe a server may send
         * audio alone (nginx-rtmp does), which is a start, not a loss. */
        if (sent && c->have_seq && had_key) {
            int32_t d = (int32_t)(seq - c->last_seq);
            if (d > 1)
                kl.missing += (uint64_t)(d - 1);
            if (d <= 0) {
                kl.reordered++;
                if (kl.missing)
                    kl.missing--;
            }
        }
    }
    if (sent && (!c->have_seq || (int32_t)(seq - c->last_seq) > 0)) {
        c->last_seq = seq;
        c->have_seq = 1;
    }
    c->t_last_media = now;
}

/* An HTTP-FLV player: the response head, then FLV tags. */
static void flv_feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    size_t pos = 0;
    while (c->state != CS_CLOSING) {
        size_t used = 0;
        struct bt_skim_msg m;
        int r = bt_flvskim_read(c->fk, p + pos, n - pos, &used, &m);
        pos += used;
        if (c->fk->status == 200 && c->state == CS_WAIT)
            player_live(c);
        if (r < 0) {
            char why[64];
            snprintf(why, sizeof(why), "HTTP-FLV refused or malformed (status %d)",
                     c->fk->status);
            kl_conn_close(c, why);
            return;
        }
        if (r == 0)
            break;
        kl.msgs_all++;
        if (kl.phase == P_WINDOW)
            kl.msgs_win++;
        player_media(c, &m, now);
    }
}

/* HTTP-FLV: one GET, then only reading. */
static void flv_request(struct conn *c)
{
    char path[256], req[512];
    url_name(&kl.play, c->stream, path, sizeof(path));
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kebun-load\r\n\r\n",
                     path, kl.play.host);
    c->fk = malloc(sizeof(*c->fk));
    if (!c->fk || kb_buf_append(&c->proto.out, req, (size_t)n) < 0) {
        kl_conn_close(c, "out of memory");
        return;
    }
    bt_flvskim_init(c->fk);
    c->state = CS_WAIT;
    c->t_play_sent = uv_hrtime();
}

static void player_feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    size_t pos = 0;
    while (c->state != CS_CLOSING) {
        size_t used = 0;
        struct bt_skim_msg m;
        int r = bt_skim_read(c->sk, p + pos, n - pos, &used, &m);
        pos += used;
        if (r < 0) {
            kl_conn_close(c, "malformed chunk stream from server");
            return;
        }
        if (r == 0)
            break;
        kl.msgs_all++;
        if (kl.phase == P_WINDOW)
            kl.msgs_win++;
        if (m.keep) {
            r = player_control(c, m.keep);
            kb_msg_unref(m.keep);
            if (r < 0) {
                kl_conn_close(c, "bad control message from server");
                return;
            }
        } else {
            player_media(c, &m, now);
        }
    }
    /* Acknowledge as the server asked (nginx-rtmp and kebun ignore it, but a
     * client that never acks is not what players do). */
    if (c->ack_window && c->bytes_in - c->acked >= c->ack_window) {
        uint8_t b[4];
        kb_put_be32(b, (uint32_t)c->bytes_in);
        if (kb_proto_send(&c->proto, KB_CSID_CONTROL, KB_MSG_ACK, 0, 0, b, 4) == 0)
            c->acked = c->bytes_in;
    }
}

/* ---- the socket ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (c->state == CS_CLOSING)
        return;
    if (nread < 0) {
        if (c->role == R_PLAYER && c->state == CS_LIVE)
            kl.closed_by_server++;
        kl_conn_close(c, nread == UV_EOF ? "closed by server" : "read error");
        return;
    }
    if (nread == 0)
        return;
    uint64_t now = uv_hrtime();
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (c->role == R_PLAYER) {
        kl.bytes_all += n;
        if (kl.phase == P_WINDOW)
            kl.bytes_win += n;
    }
    if (c->fk) {
        flv_feed(c, p, n, now);
        return;
    }
    if (c->state == CS_HANDSHAKE) {
        size_t used = 0;
        int r = kb_handshake_feed(c->hs, p, n, &used, &c->proto.out);
        if (r < 0) {
            kl_conn_close(c, "handshake failed");
            return;
        }
        p += used;
        n -= used;
        if (r == 1) {
            free(c->hs);
            c->hs = NULL;
            send_connect(c);
            if (c->role == R_PLAYER) {
                c->sk = malloc(sizeof(*c->sk));
                if (!c->sk) {
                    kl_conn_close(c, "out of memory");
                    return;
                }
                bt_skim_init(c->sk);
            }
        }
    }
    if (c->state >= CS_CONNECT && c->state != CS_CLOSING && n) {
        c->bytes_in += n;
        if (c->role == R_PUB)
            pub_feed(c, p, n);
        else
            player_feed(c, p, n, now);
    }
    conn_flush(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state == CS_CLOSING)
        return;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof(why), "connect failed: %s", uv_err_name(status));
        kl_conn_close(c, why);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->role == R_PLAYER && kl.play.http) {
        flv_request(c);
        if (c->state == CS_CLOSING || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
            kl_conn_close(c, "read failed");
        else
            conn_flush(c);
        return;
    }
    c->hs = malloc(sizeof(*c->hs));
    if (!c->hs) {
        kl_conn_close(c, "out of memory");
        return;
    }
    kb_handshake_init(c->hs, KB_HS_CLIENT, (uint32_t)(uv_hrtime() / 1000000),
                      uv_hrtime() ^ ((uint64_t)c->idx << 32));
    c->state = CS_HANDSHAKE;
    if (kb_handshake_start(c->hs, &c->proto.out) < 0) {
        kl_conn_close(c, "out of memory");
        return;
    }
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        kl_conn_close(c, "read failed");
        return;
    }
    conn_flush(c);
}

struct conn *kl_conn_start(int role, int idx, int stream, int churn)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->role = (uint8_t)role;
    c->idx = idx;
    c->stream = stream;
    c->churn = (uint8_t)churn;
    c->state = CS_CONNECTING;
    c->t_connect = uv_hrtime();
    kb_proto_init(&c->proto, 1u << 20);
    uv_tcp_init(kl.loop_, &c->tcp);
    c->tcp.data = c;
    c->next = kl.conns;
    if (kl.conns)
        kl.conns->prev = c;
    kl.conns = c;
    c->creq.data = c;
    const struct url *u = role == R_PUB ? &kl.publish : &kl.play;
    int r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&u->addr, on_connect);
    if (r < 0) {
        char why[96];
        snprintf(why, sizeof(why), "connect failed: %s", uv_err_name(r));
        kl_conn_close(c, why);
    }
    return c;
}

