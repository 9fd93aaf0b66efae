#include "conn.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay/rtmp/error.h"
#include "tls.h"

#define MAX_IOV 64           ///< buffers per write call
#define Q_FIRST 32           ///< first queue allocation (entries, a power of two)
#define Q_MAX (1u << 16)     ///< queue entries; the byte bound usually hits first
/* proto.out capacity kept between bursts. Players send a command or two
 * and then only acknowledgements: an idle buffer would be most of their
 * memory, so it is released unless it is tiny. */
#define OUT_KEEP 512
/* Queued media bytes that do not wait for the flush tick: a keyframe or a
 * new player's GOP is already a big write, and holding it only costs memory
 * and time to first frame. */
#define FLUSH_EARLY (64 * 1024)

/* Every read lands in one buffer shared by all connections: reads are
 * handled to the end inside the read callback, so nothing needs a buffer of
 * its own between callbacks (and idle players cost no read memory). */
static uint8_t read_buf[64 * 1024];
/* Decrypted TLS bytes, likewise consumed before the callback returns. */
static uint8_t plain_buf[64 * 1024];

static struct kb_conn *of_flush(struct kb_flush_item *it)
{
    return (struct kb_conn *)((char *)it - offsetof(struct kb_conn, flush));
}

const char *kb_conn_stage_name(enum kb_conn_stage s)
{
    static const char *const names[] = {"connecting", "in TLS handshake", "in RTMP handshake",
                                        "running"};
    return s <= KB_CONN_RTMP ? names[s] : "?";
}

/* ---- the write queue ------------------------------------------------- */

static int q_push(struct kb_conn *c, struct kb_msg *m)
{
    if (c->q_len == c->q_cap) {
        if (c->q_cap >= Q_MAX)
            return -ENOBUFS;
        uint32_t cap = c->q_cap ? c->q_cap * 2 : Q_FIRST;
        struct kb_msg **q = malloc(cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        for (uint32_t i = 0; i < c->q_len; i++)
            q[i] = c->q[(c->q_head + i) & (c->q_cap - 1)];
        free(c->q);
        c->q = q;
        c->q_head = 0;
        c->q_cap = cap;
    }
    assert(c->q_len < c->q_cap);
    c->q[(c->q_head + c->q_len) & (c->q_cap - 1)] = m;
    c->q_len++;
    return 0;
}

static struct kb_msg *q_at(const struct kb_conn *c, uint32_t i)
{
    assert(i < c->q_len);
    return c->q[(c->q_head + i) & (c->q_cap - 1)];
}

static void q_pop(struct kb_conn *c)
{
    kb_msg_unref(q_at(c, 0));
    c->q_head = (c->q_head + 1) & (c->q_cap - 1);
    c->q_len--;
    c->q_off = 0;
}

/* The bytes a queued message puts on the wire: its shared chunked form, or
 * (for private control and command messages) its payload as is. */
static const uint8_t *msg_bytes(const struct kb_msg *m, size_t *len)
{
    if (m->wire) {
        *len = m->wire_len;
        return m->wire;
    }
    *len = m->len;
    return m->data;
}

/* Move proto.out's bytes into the queue as one private message. */
static int sync_out(struct kb_conn *c)
{
    struct kb_buf *out = &c->proto.out;
    if (!out->len)
        return 0;
    struct kb_msg *m = kb_msg_new_copy(0, 0, 0, out->data, (uint32_t)out->len);
    if (!m)
        return -ENOMEM;
    int err = q_push(c, m);
    if (err) {
        kb_msg_unref(m);
        return err;
    }
    c->q_bytes += out->len;
    out->len = 0;
    if (out->cap > OUT_KEEP)
        kb_buf_free(out);
    return 0;
}

static void flush_now(struct kb_conn *c)
{
    if (!c->closing)
        kb_flush_now(&c->net->flush, &c->flush);
}

/* Writes follow the video: a video frame goes out at once, carrying the
 * audio queued since the last one, so a 30 fps stream costs 30 writes a
 * second per player and adds no delay to video. Audio alone waits for the
 * next video frame or the flush tick, whichever comes first. */
static void flush_media(struct kb_conn *c, const struct kb_msg *m)
{
    int video = (m->flags & (KB_MSGF_VIDEO | KB_MSGF_SEQHDR)) == KB_MSGF_VIDEO;
    if (video || c->q_bytes >= FLUSH_EARLY)
        flush_now(c);
    else if (!c->closing)
        kb_flush_later(&c->net->flush, &c->flush);
}

int kb_conn_sync(struct kb_conn *c)
{
    int err = sync_out(c);
    if (err == 0 && c->q_len)
        flush_now(c);
    return err;
}

int kb_conn_enqueue(struct kb_conn *c, struct kb_msg *m)
{
    /* Only a message's shared chunked form may be queued by reference: its
     * payload alone is not RTMP. */
    assert(m->wire);
    int err = sync_out(c);
    if (err)
        return err;
    err = q_push(c, kb_msg_ref(m));
    if (err) {
        kb_msg_unref(m);
        return err;
    }
    c->q_bytes += m->wire_len;
    flush_media(c, m);
    return 0;
}

int kb_conn_send_media(struct kb_conn *c, const struct kb_msg *m, uint32_t ts, uint32_t msid)
{
    int err = sync_out(c);
    if (err)
        return err;
    struct kb_chunk_hdr h = {
        .csid = m->type == KB_MSG_VIDEO   ? KB_CSID_VIDEO
                : m->type == KB_MSG_AUDIO ? KB_CSID_AUDIO
                                          : KB_CSID_DATA,
        .timestamp = ts,
        .len = m->len,
        .type = m->type,
        .stream_id = msid,
    };
    size_t need = kb_chunk_encoded_size(&h, c->proto.out_chunk);
    struct kb_msg *w = kb_msg_new(0, 0, 0, (uint32_t)need);
    if (!w)
        return -ENOMEM;
    w->len = (uint32_t)kb_chunk_encode(&h, m->data, c->proto.out_chunk, w->data);
    err = q_push(c, w);
    if (err) {
        kb_msg_unref(w);
        return err;
    }
    c->q_bytes += w->len;
    flush_media(c, m);
    return 0;
}

uint64_t kb_conn_queued(const struct kb_conn *c)
{
    return c->q_bytes + (c->tls_out.len - c->tls_off);
}

/* Drop `n` written bytes from the front of the queue. */
static void q_consume(struct kb_conn *c, size_t n)
{
    if (n)
        c->last_progress_ms = uv_now(c->net->loop);
    assert(n <= c->q_bytes);
    c->bytes_out += n;
    c->q_bytes -= n;
    while (n && c->q_len) {
        size_t len;
        msg_bytes(q_at(c, 0), &len);
        size_t left = len - c->q_off;
        if (n < left) {
            c->q_off += (uint32_t)n;
            return;
        }
        n -= left;
        q_pop(c);
    }
    /* A ring grown for a burst (a new player's GOP) goes back to the small
     * one once it drains, so idle players keep little. */
    if (c->q_len == 0 && c->q_cap > Q_FIRST) {
        free(c->q);
        c->q = NULL;
        c->q_cap = 0;
        c->q_head = 0;
    }
}

static uint32_t fill_iov(struct kb_conn *c, uv_buf_t *iov)
{
    uint32_t n = c->q_len < MAX_IOV ? c->q_len : MAX_IOV;
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = msg_bytes(q_at(c, i), &len);
        if (i == 0) {
            p += c->q_off;
            len -= c->q_off;
        }
        iov[i] = uv_buf_init((char *)p, (unsigned)len);
    }
    return n;
}

static int drained(const struct kb_conn *c)
{
    return c->q_len == 0 && !c->writing && c->tls_out.len == c->tls_off;
}

static void maybe_finish(struct kb_conn *c)
{
    if (c->close_after_flush && drained(c))
        kb_conn_close(c, c->close_reason);
}

static void write_failed(struct kb_conn *c, int r)
{
    char why[96];
    snprintf(why, sizeof(why), "write failed: %s", uv_strerror(r));
    kb_conn_close(c, why);
}

/* The write in flight ended: 1 when it succeeded and the caller goes on. */
static int write_ended(struct kb_conn *c, int status)
{
    assert(c->writing);
    c->writing = 0;
    if (status < 0 && status != UV_ECANCELED)
        write_failed(c, status);
    return status >= 0;
}

static void on_write(uv_write_t *req, int status)
{
    struct kb_conn *c = req->data;
    if (!write_ended(c, status))
        return;
    /* The write covered w_count entries from the head, the first of them
     * from w_first_off on. */
    size_t total = 0;
    for (uint32_t i = 0; i < c->w_count; i++) {
        size_t len;
        msg_bytes(q_at(c, i), &len);
        total += len;
    }
    total -= c->w_first_off;
    q_consume(c, total);
    if (c->q_len)
        flush_now(c);
    maybe_finish(c);
}

static void on_tls_write(uv_write_t *req, int status)
{
    struct kb_conn *c = req->data;
    if (!write_ended(c, status))
        return;
    c->bytes_out += c->tls_out.len - c->tls_off;
    c->last_progress_ms = uv_now(c->net->loop);
    c->tls_out.len = c->tls_off = 0;
    flush_now(c);
    maybe_finish(c);
}

/* TLS connections encrypt what is queued once the previous ciphertext
 * left, so a stalled peer holds at most one flush of ciphertext plus the
 * (bounded) queue. */
static void tls_flush(struct kb_conn *c)
{
    if (c->tls_off == c->tls_out.len) {
        c->tls_out.len = c->tls_off = 0;
        while (c->tls_ready && c->q_len) {
            size_t len;
            const uint8_t *p = msg_bytes(q_at(c, 0), &len);
            if (kb_tls_write(c->tls, p + c->q_off, len - c->q_off) < 0) {
                kb_conn_close(c, kb_tls_error(c->tls));
                return;
            }
            c->q_bytes -= len - c->q_off;
            q_pop(c);
        }
        if (kb_tls_take(c->tls, &c->tls_out) < 0) {
            kb_conn_close(c, "out of memory");
            return;
        }
    }
    if (c->tls_off == c->tls_out.len) {
        maybe_finish(c);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->tls_out.data + c->tls_off,
                             (unsigned)(c->tls_out.len - c->tls_off));
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        r = 0;
    if (r < 0) {
        write_failed(c, r);
        return;
    }
    c->tls_off += (size_t)r;
    c->bytes_out += (size_t)r;
    if (r)
        c->last_progress_ms = uv_now(c->net->loop);
    if (c->tls_off == c->tls_out.len) {
        c->tls_out.len = c->tls_off = 0;
        if (c->q_len)
            flush_now(c);
        else
            kb_flush_done(&c->flush); /* everything queued was taken */
        maybe_finish(c);
        return;
    }
    b = uv_buf_init((char *)c->tls_out.data + c->tls_off, (unsigned)(c->tls_out.len - c->tls_off));
    c->wreq.data = c;
    r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_tls_write);
    if (r < 0) {
        write_failed(c, r);
        return;
    }
    c->writing = 1;
}

/* The flusher's callback: write what is queued. */
static void conn_flush(struct kb_flush_item *it)
{
    struct kb_conn *c = of_flush(it);
    if (c->closing || c->writing)
        return;
    if (sync_out(c) < 0) {
        kb_conn_close(c, "out of memory");
        return;
    }
    if (c->tls) {
        tls_flush(c);
        return;
    }
    uv_buf_t iov[MAX_IOV];
    while (c->q_len) {
        uint32_t n = fill_iov(c, iov);
        int r = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            r = 0;
        if (r < 0) {
            write_failed(c, r);
            return;
        }
        size_t want = 0;
        for (uint32_t i = 0; i < n; i++)
            want += iov[i].len;
        q_consume(c, (size_t)r);
        if ((size_t)r == want)
            continue;
        /* The socket is full: hand the rest to libuv, which writes it when
         * the socket drains; one write in flight at a time. */
        n = fill_iov(c, iov);
        c->w_count = n;
        c->w_first_off = c->q_off;
        c->wreq.data = c;
        r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, n, on_write);
        if (r < 0) {
            write_failed(c, r);
            return;
        }
        c->writing = 1;
        return;
    }
    kb_flush_done(&c->flush); /* everything queued was taken */
    maybe_finish(c);
}

/* ---- lifetime -------------------------------------------------------- */

static void on_close(uv_handle_t *h)
{
    struct kb_conn *c = h->data;
    struct kb_net *n = c->net;
    kb_tls_free(c->tls);
    kb_buf_free(&c->tls_out);
    while (c->q_len)
        q_pop(c);
    /* A closing connection may still be listed for a flush that comes
     * after this callback: take it off. */
    kb_flush_remove(&n->flush, &c->flush);
    free(c->q);
    free(c->hs);
    kb_proto_free(&c->proto);
    kb_list_remove(&c->link);
    assert(n->n_conns > 0);
    n->n_conns--;
    free(c);
}

void kb_conn_close(struct kb_conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (why != c->close_reason)
        snprintf(c->close_reason, sizeof(c->close_reason), "%s", why);
    const struct kb_conn_ops *ops = c->ops;
    c->ops = NULL;
    if (ops && ops->on_closed)
        ops->on_closed(c, c->close_reason);
    uint64_t now = uv_now(c->net->loop);
    int early = c->stage == KB_CONN_TLS || c->stage == KB_CONN_HANDSHAKE;
    kb_log(KB_LOG_INFO, c->stream[0] ? c->stream : NULL, c->peer,
           "connection closed after %.1f s%s%s, %llu bytes in, %llu out (%s)",
           (double)(now - c->start_ms) / 1000.0, early ? " " : "",
           early ? kb_conn_stage_name(c->stage) : "", (unsigned long long)c->bytes_in,
           (unsigned long long)c->bytes_out, c->close_reason);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void kb_conn_close_after_flush(struct kb_conn *c, const char *why, uint64_t timeout_ms)
{
    if (c->closing)
        return;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", why);
    c->close_after_flush = 1;
    c->goodbye_at = uv_now(c->net->loop) + timeout_ms;
    if (drained(c) && c->proto.out.len == 0)
        kb_conn_close(c, c->close_reason);
    else
        flush_now(c);
}

void kb_conn_disown(struct kb_conn *c)
{
    c->ops = NULL;
    c->ud = NULL;
}

void kb_conn_set_stream(struct kb_conn *c, const char *name)
{
    snprintf(c->stream, sizeof(c->stream), "%s", name ? name : "");
}

void kb_net_sweep(struct kb_net *n, uint64_t now)
{
    KB_LIST_EACH(l, &n->conns) {
        struct kb_conn *c = kb_container_of(l, struct kb_conn, link);
        if (c->close_after_flush && !c->closing && (int64_t)(now - c->goodbye_at) >= 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s; the peer did not take the last bytes in time",
                     c->close_reason);
            kb_conn_close(c, why);
        }
    }
}

/* ---- reading --------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void fail(struct kb_conn *c, const char *what, int err, const char *detail)
{
    char why[256];
    if (detail && detail[0])
        snprintf(why, sizeof(why), "%s: %s (%s)", what, kb_strerror(err), detail);
    else
        snprintf(why, sizeof(why), "%s: %s", what, kb_strerror(err));
    kb_log(KB_LOG_WARN, c->stream[0] ? c->stream : NULL, c->peer, "%s", why);
    kb_conn_close(c, why);
}

/* Why a handshake failed, in terms the operator can act on. */
static void handshake_why(const struct kb_conn *c, int err, char *buf, size_t n)
{
    buf[0] = '\0';
    if (err != KB_EVERSION || !c->hs || c->hs->have == 0)
        return;
    uint8_t v = c->hs->in[0];
    if (v == 0x16)
        snprintf(buf, n, "it starts with a TLS ClientHello: the client speaks rtmps:// to a "
                         "plain RTMP port");
    else if (v == 'G' || v == 'P' || v == 'H')
        snprintf(buf, n, "it starts with '%c': an HTTP request on the RTMP port", v);
    else if (v == 6)
        snprintf(buf, n, "version 6 is encrypted RTMPE, which kebun does not speak");
    else
        snprintf(buf, n, "first byte 0x%02x, RTMP's is 0x03", v);
}

static void handshake_done(struct kb_conn *c)
{
    free(c->hs);
    c->hs = NULL;
    c->stage = KB_CONN_RTMP;
    kb_conn_sync(c); /* a client's C2 goes first */
    if (c->ops && c->ops->on_handshake_done)
        c->ops->on_handshake_done(c);
}

static void feed(struct kb_conn *c, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    if (c->stage == KB_CONN_HANDSHAKE) {
        size_t used = 0;
        int r = kb_handshake_feed(c->hs, p, n, &used, &c->proto.out);
        if (r < 0) {
            char why[112];
            handshake_why(c, r, why, sizeof(why));
            fail(c, "handshake failed", r, why);
            return;
        }
        pos = used;
        if (r == 0) {
            kb_conn_sync(c);
            return;
        }
        handshake_done(c);
        if (c->closing)
            return;
    }
    while (!c->closing) {
        size_t used = 0;
        struct kb_msg *m = NULL;
        int r = kb_proto_read(&c->proto, p + pos, n - pos, &used, &m);
        pos += used;
        if (r < 0) {
            fail(c, "protocol error", r, kb_proto_why(&c->proto));
            return;
        }
        if (r == 0)
            break;
        if (!c->ops || !c->ops->on_message) {
            kb_msg_unref(m); /* a disowned connection saying goodbye */
            continue;
        }
        r = c->ops->on_message(c, m);
        if (r < 0 && !c->closing) {
            fail(c, "bad message", r, NULL);
            return;
        }
    }
    if (!c->closing)
        kb_conn_sync(c);
}

/* The RTMP handshake of an accepted connection (after TLS, for rtmps). */
static int start_server_handshake(struct kb_conn *c)
{
    c->hs = malloc(sizeof(*c->hs));
    if (!c->hs)
        return -ENOMEM;
    kb_handshake_init(c->hs, KB_HS_SERVER, (uint32_t)uv_now(c->net->loop),
                      ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ c->id);
    c->stage = KB_CONN_HANDSHAKE;
    return 0;
}

static void start_client_handshake(struct kb_conn *c)
{
    if (c->ops && c->ops->on_ready)
        c->ops->on_ready(c);
    if (c->closing)
        return;
    c->hs = malloc(sizeof(*c->hs));
    if (!c->hs) {
        kb_conn_close(c, "out of memory");
        return;
    }
    kb_handshake_init(c->hs, KB_HS_CLIENT, (uint32_t)uv_now(c->net->loop),
                      ((uint64_t)rand() << 32) ^ (uint64_t)rand());
    c->stage = KB_CONN_HANDSHAKE;
    if (kb_handshake_start(c->hs, &c->proto.out) < 0 || kb_conn_sync(c) < 0)
        kb_conn_close(c, "out of memory");
}

/* A client that does not speak TLS to the rtmps port says so with its
 * first byte: a TLS record starts with 0x16 (handshake). */
static const char *not_tls(uint8_t first)
{
    if (first == 0x03)
        return "TLS handshake failed: the client speaks plain RTMP to the rtmps port (its first "
               "byte is 0x03, RTMP's version; TLS starts with 0x16)";
    if (first == 'G' || first == 'P' || first == 'H')
        return "TLS handshake failed: an HTTP request on the rtmps port";
    return NULL;
}

/* A failed server handshake: OpenSSL's alert (unsupported protocol, ...)
 * leaves with one write if the socket takes it, so the client can say why,
 * then the connection closes. (Not while a write is in flight: tls_out is
 * its buffer.) */
static void tls_refuse(struct kb_conn *c, const char *why)
{
    kb_log(KB_LOG_WARN, NULL, c->peer, "%s", why);
    if (!c->writing && kb_tls_take(c->tls, &c->tls_out) == 0 && c->tls_out.len > c->tls_off) {
        uv_buf_t b = uv_buf_init((char *)c->tls_out.data + c->tls_off,
                                 (unsigned)(c->tls_out.len - c->tls_off));
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0)
            c->bytes_out += (size_t)r;
    }
    kb_conn_close(c, why);
}

/* The TLS handshake is done: the RTMP handshake follows inside it. */
static void tls_ready(struct kb_conn *c)
{
    c->tls_ready = 1;
    if (c->client) {
        start_client_handshake(c);
        return;
    }
    char how[96];
    kb_log(KB_LOG_DEBUG, NULL, c->peer, "TLS handshake done (%s)",
           kb_tls_describe(c->tls, how, sizeof(how)));
    if (start_server_handshake(c) < 0)
        kb_conn_close(c, "out of memory");
}

/* The peer left (or reset). An rtmps client that leaves between the TLS
 * handshake and its first RTMP byte has most likely refused the
 * certificate (ffmpeg checks it only once the handshake is over): that is
 * worth a warning that says so. */
static void peer_left(struct kb_conn *c, const char *why)
{
    if (c->client || !c->tls || c->stage != KB_CONN_HANDSHAKE || !c->hs || c->hs->have) {
        kb_conn_close(c, why);
        return;
    }
    char hinted[192];
    snprintf(hinted, sizeof(hinted),
             "%s right after the TLS handshake: does the client trust the certificate?", why);
    kb_log(KB_LOG_WARN, NULL, c->peer, "%s", hinted);
    kb_conn_close(c, hinted);
}

/* Ciphertext arrived: finish the TLS handshake or decrypt into feed(). */
static void feed_tls(struct kb_conn *c, const uint8_t *p, size_t n)
{
    if (!c->client && c->bytes_in == n && not_tls(p[0])) {
        tls_refuse(c, not_tls(p[0]));
        return;
    }
    if (kb_tls_feed(c->tls, p, n) < 0) {
        kb_conn_close(c, "out of memory");
        return;
    }
    if (!c->tls_ready) {
        int r = kb_tls_handshake(c->tls);
        if (r < 0) {
            if (c->client)
                kb_conn_close(c, kb_tls_error(c->tls));
            else
                tls_refuse(c, kb_tls_error(c->tls));
            return;
        }
        flush_now(c); /* handshake records to send */
        if (r == 0)
            return;
        tls_ready(c);
        if (c->closing)
            return;
    }
    for (;;) {
        int r = kb_tls_read(c->tls, plain_buf, sizeof(plain_buf));
        if (r == 0)
            break;
        if (r < 0) {
            peer_left(c, kb_tls_error(c->tls));
            return;
        }
        feed(c, plain_buf, (size_t)r);
        if (c->closing)
            return;
    }
    flush_now(c); /* TLS may have answered something (key updates) */
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct kb_conn *c = stream->data;
    if (nread < 0) {
        peer_left(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    c->bytes_in += (uint64_t)nread;
    c->last_in_ms = uv_now(c->net->loop);
    if (c->tls)
        feed_tls(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- opening --------------------------------------------------------- */

static struct kb_conn *conn_new(struct kb_net *n, size_t size, const struct kb_conn_ops *ops,
                                void *ud)
{
    assert(size >= sizeof(struct kb_conn));
    struct kb_conn *c = calloc(1, size);
    if (!c) {
        kb_log(KB_LOG_ERROR, NULL, NULL, "cannot open a connection: out of memory");
        return NULL;
    }
    int r = uv_tcp_init(n->loop, &c->tcp);
    if (r < 0) {
        free(c);
        kb_log(KB_LOG_ERROR, NULL, NULL, "cannot open a connection: %s", uv_strerror(r));
        return NULL;
    }
    c->tcp.data = c;
    c->flush.fn = conn_flush;
    c->net = n;
    c->ops = ops;
    c->ud = ud;
    c->id = ++n->next_id;
    kb_list_push(&n->conns, &c->link);
    n->n_conns++;
    c->start_ms = c->last_in_ms = c->last_progress_ms = uv_now(n->loop);
    snprintf(c->close_reason, sizeof(c->close_reason), "closed");
    kb_proto_init(&c->proto, (uint32_t)n->conf->max_message_size);
    return c;
}

/* Closed before it was anybody's: no role to tell, no line to log. */
static void drop_unborn(struct kb_conn *c)
{
    c->closing = 1;
    c->ops = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void kb_net_name_peer(char *out, size_t n, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, host, sizeof(host));
        port = ntohs(a->sin6_port);
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    snprintf(out, n, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

static void keep_alive(struct kb_conn *c)
{
    /* Nagle would hold a frame's last chunk until the peer's delayed ACK. */
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 30);
}

struct kb_conn *kb_conn_accept(struct kb_net *n, uv_stream_t *listener, size_t size,
                               const struct kb_conn_ops *ops, void *ud)
{
    struct kb_conn *c = conn_new(n, size, ops, ud);
    if (!c)
        return NULL;
    int r = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (r < 0) {
        kb_log(KB_LOG_WARN, NULL, NULL, "accept failed: %s", uv_strerror(r));
        drop_unborn(c);
        return NULL;
    }
    struct sockaddr_storage sa;
    int salen = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen);
    kb_net_name_peer(c->peer, sizeof(c->peer), (struct sockaddr *)&sa);
    if (n->n_conns > n->conf->max_connections) {
        kb_log(KB_LOG_WARN, NULL, c->peer, "connection refused (max_connections %llu reached)",
               (unsigned long long)n->conf->max_connections);
        drop_unborn(c);
        return NULL;
    }
    keep_alive(c);
    /* rtmps: TLS first; the RTMP handshake starts once it is done. */
    int tls = 0;
    for (int i = 0; i < n->n_tls_listeners && !tls; i++)
        tls = n->tls_listeners[i] == listener;
    if (tls) {
        assert(n->tls); /* the server sets it before it listens */
        c->stage = KB_CONN_TLS;
        r = kb_tls_accept_new(&c->tls, n->tls);
    } else {
        r = start_server_handshake(c);
    }
    if (r < 0) {
        kb_log(KB_LOG_ERROR, NULL, c->peer, "connection refused (out of memory)");
        drop_unborn(c);
        return NULL;
    }
    r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        kb_log(KB_LOG_WARN, NULL, c->peer, "connection refused (%s)", uv_strerror(r));
        drop_unborn(c);
        return NULL;
    }
    kb_log(KB_LOG_DEBUG, NULL, c->peer, "connection accepted%s", tls ? " (rtmps)" : "");
    return c;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct kb_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
        kb_conn_close(c, why);
        return;
    }
    keep_alive(c);
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        kb_conn_close(c, uv_strerror(r));
        return;
    }
    if (!c->tls) {
        start_client_handshake(c);
        return;
    }
    /* ClientHello; the rest follows the server's answers. */
    c->stage = KB_CONN_TLS;
    if (kb_tls_handshake(c->tls) < 0) {
        kb_conn_close(c, kb_tls_error(c->tls));
        return;
    }
    flush_now(c);
}

struct kb_conn *kb_conn_connect(struct kb_net *n, const struct sockaddr *addr,
                                struct kb_tls *tls, const struct kb_conn_ops *ops, void *ud,
                                int *err)
{
    struct kb_conn *c = conn_new(n, sizeof(*c), ops, ud);
    if (!c) {
        kb_tls_free(tls);
        *err = -ENOMEM;
        return NULL;
    }
    c->client = 1;
    c->tls = tls;
    c->stage = KB_CONN_TCP;
    kb_net_name_peer(c->peer, sizeof(c->peer), addr);
    c->conn_req.data = c;
    int r = uv_tcp_connect(&c->conn_req, &c->tcp, addr, on_connect);
    if (r < 0) {
        *err = r;
        drop_unborn(c); /* the caller handles this failure itself */
        return NULL;
    }
    return c;
}

/* ---- the whole ------------------------------------------------------- */

int kb_net_init(struct kb_net *n, uv_loop_t *loop, const struct kb_config *conf)
{
    memset(n, 0, sizeof(*n));
    kb_list_init(&n->conns);
    n->loop = loop;
    n->conf = conf;
    return kb_flusher_init(&n->flush, loop, conf->flush_interval);
}

void kb_net_tls_listener(struct kb_net *n, const uv_stream_t *listener)
{
    assert(n->n_tls_listeners < KB_CONF_MAX_LISTEN);
    n->tls_listeners[n->n_tls_listeners++] = listener;
}

void kb_net_set_tls(struct kb_net *n, struct kb_tls_server *tls)
{
    kb_tls_server_free(n->tls);
    n->tls = tls;
}

void kb_net_close(struct kb_net *n)
{
    if (n->closing)
        return;
    n->closing = 1;
    /* What is queued (a platform's FCUnpublish, say) leaves now if the
     * socket takes it, before every connection closes. */
    kb_flusher_close(&n->flush);
    KB_LIST_EACH(l, &n->conns)
        kb_conn_close(kb_container_of(l, struct kb_conn, link), "server shutting down");
}
