#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "output.h"
#include "relay/rtmp/error.h"
#include "server.h"
#include "tls.h"

#define MAX_IOV 64           ///< buffers per write call
#define Q_FIRST 32           ///< first queue allocation (entries, a power of two)
#define Q_MAX (1u << 16)     ///< queue entries; the byte bound usually hits first
/* proto.out capacity kept between bursts. Players send a command or two
 * and then only acknowledgements: an idle buffer would be most of their
 * memory, so it is released unless it is tiny. */
#define OUT_KEEP 512
#define FLUSH_EARLY (64 * 1024) ///< queued bytes that do not wait for the flush tick

/* Every read lands in one buffer shared by all sessions: reads are handled
 * to the end inside the read callback, so nothing needs a buffer of its own
 * between callbacks (and idle players cost no read memory). */
static uint8_t read_buf[64 * 1024];
/* Decrypted TLS bytes, likewise consumed before the callback returns. */
static uint8_t plain_buf[64 * 1024];

static void on_close(uv_handle_t *h)
{
    struct kb_session *s = h->data;
    struct kb_server *srv = s->srv;
    if (s->output)
        kb__output_closed(s->output, s, s->close_reason);
    kb_tls_free(s->tls);
    kb_buf_free(&s->tls_out);
    while (s->q_len) {
        kb_msg_unref(s->q[s->q_head]);
        s->q_head = (s->q_head + 1) & (s->q_cap - 1);
        s->q_len--;
    }
    /* A closing session stays on its flush lists until the next pass,
     * which may come after this callback: take it off. */
    for (int l = 0; l < 2; l++) {
        if (!s->dirty[l])
            continue;
        for (struct kb_session **pp = &srv->flush[l]; *pp; pp = &(*pp)->flush_next[l]) {
            if (*pp == s) {
                *pp = s->flush_next[l];
                break;
            }
        }
    }
    free(s->q);
    free(s->hs);
    kb_proto_free(&s->proto);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->n_sessions--;
    free(s);
}

static void log_end(struct kb_session *s)
{
    uint64_t now = uv_now(s->srv->loop);
    const char *name = s->stream ? s->stream->name : NULL;
    kb_log(KB_LOG_INFO, name, s->peer,
           "connection closed after %.1f s, %llu bytes in, %llu out (%s)",
           (double)(now - s->start_ms) / 1000.0, (unsigned long long)s->bytes_in,
           (unsigned long long)s->bytes_out, s->close_reason);
}

void kb__session_close(struct kb_session *s, const char *why)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (why != s->close_reason)
        snprintf(s->close_reason, sizeof(s->close_reason), "%s", why);
    kb__session_end_role(s, why);
    log_end(s);
    /* Leave the flush list lazily: the flush pass skips closing sessions. */
    uv_read_stop((uv_stream_t *)&s->tcp);
    uv_close((uv_handle_t *)&s->tcp, on_close);
}

/* Bytes that should leave now (handshake, replies, control) put the
 * session on the list flushed at the end of this loop iteration. */
static void mark_dirty(struct kb_session *s)
{
    if (s->dirty[KB_FLUSH_NOW] || s->closing)
        return;
    s->dirty[KB_FLUSH_NOW] = 1;
    s->flush_next[KB_FLUSH_NOW] = s->srv->flush[KB_FLUSH_NOW];
    s->srv->flush[KB_FLUSH_NOW] = s;
}

/* Media waits for the next flush tick (flush_interval), so a player gets
 * one write per tick instead of one per message: the kernel's cost is per
 * write, nearly whatever its size. */
static void mark_dirty_media(struct kb_session *s, const struct kb_msg *m)
{
    struct kb_server *srv = s->srv;
    /* Writes follow the video: a video frame goes out at once, carrying the
     * audio queued since the last one, so a 30 fps stream costs 30 writes a
     * second per player and adds no delay to video. Audio alone waits for
     * the next video frame or the flush tick, whichever comes first. More
     * than a tick's worth (a keyframe, a new player's GOP) goes out at once
     * too: a big write is already cheap, and holding it only costs memory
     * and time to first frame. */
    int video = (m->flags & (KB_MSGF_VIDEO | KB_MSGF_SEQHDR)) == KB_MSGF_VIDEO;
    if (video || srv->conf->flush_interval == 0 || s->q_bytes >= FLUSH_EARLY) {
        mark_dirty(s);
        return;
    }
    if (s->closing)
        return;
    /* The age that counts is that of the oldest media no write has taken:
     * a session still listed from before its last write starts over. */
    if (!s->tick_armed) {
        s->tick_armed = 1;
        s->tick_since = uv_now(srv->loop);
    }
    if (s->dirty[KB_FLUSH_NOW] || s->dirty[KB_FLUSH_TICK])
        return;
    s->dirty[KB_FLUSH_TICK] = 1;
    s->flush_next[KB_FLUSH_TICK] = srv->flush[KB_FLUSH_TICK];
    srv->flush[KB_FLUSH_TICK] = s;
    kb__server_flush_tick(srv);
}

static int q_push(struct kb_session *s, struct kb_msg *m)
{
    if (s->q_len == s->q_cap) {
        if (s->q_cap >= Q_MAX)
            return -ENOBUFS;
        uint32_t cap = s->q_cap ? s->q_cap * 2 : Q_FIRST;
        struct kb_msg **q = malloc(cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        for (uint32_t i = 0; i < s->q_len; i++)
            q[i] = s->q[(s->q_head + i) & (s->q_cap - 1)];
        free(s->q);
        s->q = q;
        s->q_head = 0;
        s->q_cap = cap;
    }
    s->q[(s->q_head + s->q_len) & (s->q_cap - 1)] = m;
    s->q_len++;
    return 0;
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
static int sync_out(struct kb_session *s)
{
    struct kb_buf *out = &s->proto.out;
    if (out->len) {
        struct kb_msg *m = kb_msg_new_copy(0, 0, 0, out->data, (uint32_t)out->len);
        if (!m)
            return -ENOMEM;
        int err = q_push(s, m);
        if (err) {
            kb_msg_unref(m);
            return err;
        }
        s->q_bytes += out->len;
        out->len = 0;
        if (out->cap > OUT_KEEP)
            kb_buf_free(out);
    }
    return 0;
}

int kb__session_sync(struct kb_session *s)
{
    int err = sync_out(s);
    if (err == 0 && s->q_len)
        mark_dirty(s);
    return err;
}

int kb__session_enqueue(struct kb_session *s, struct kb_msg *m)
{
    int err = sync_out(s);
    if (err)
        return err;
    err = q_push(s, kb_msg_ref(m));
    if (err) {
        kb_msg_unref(m);
        return err;
    }
    size_t len;
    msg_bytes(m, &len);
    s->q_bytes += len;
    mark_dirty_media(s, m);
    return 0;
}

/* Drop `n` written bytes from the front of the queue. */
static void q_consume(struct kb_session *s, size_t n)
{
    if (n)
        s->last_progress_ms = uv_now(s->srv->loop);
    s->bytes_out += n;
    s->q_bytes -= n;
    while (n && s->q_len) {
        size_t len;
        struct kb_msg *m = s->q[s->q_head];
        msg_bytes(m, &len);
        size_t left = len - s->q_off;
        if (n < left) {
            s->q_off += (uint32_t)n;
            return;
        }
        n -= left;
        s->q_off = 0;
        kb_msg_unref(m);
        s->q_head = (s->q_head + 1) & (s->q_cap - 1);
        s->q_len--;
    }
    /* A ring grown for a burst (a new player's GOP) goes back to the small
     * one once it drains, so idle players keep little. */
    if (s->q_len == 0 && s->q_cap > Q_FIRST) {
        free(s->q);
        s->q = NULL;
        s->q_cap = 0;
        s->q_head = 0;
    }
}

static uint32_t fill_iov(struct kb_session *s, uv_buf_t *iov)
{
    uint32_t n = s->q_len < MAX_IOV ? s->q_len : MAX_IOV;
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = msg_bytes(s->q[(s->q_head + i) & (s->q_cap - 1)], &len);
        if (i == 0) {
            p += s->q_off;
            len -= s->q_off;
        }
        iov[i] = uv_buf_init((char *)p, (unsigned)len);
    }
    return n;
}

static void maybe_finish(struct kb_session *s)
{
    if (s->close_after_flush && s->q_len == 0 && !s->writing && s->tls_out.len == s->tls_off)
        kb__session_close(s, s->close_reason[0] ? s->close_reason : "closed after reply");
}

static void write_failed(struct kb_session *s, int r)
{
    char why[96];
    snprintf(why, sizeof(why), "write failed: %s", uv_strerror(r));
    kb__session_close(s, why);
}

static void on_write(uv_write_t *req, int status)
{
    struct kb_session *s = req->data;
    s->writing = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            write_failed(s, status);
        return;
    }
    /* The write covered w_count entries from the head, the first of them
     * from w_first_off on. */
    size_t total = 0;
    for (uint32_t i = 0; i < s->w_count; i++) {
        size_t len;
        msg_bytes(s->q[(s->q_head + i) & (s->q_cap - 1)], &len);
        total += len;
    }
    total -= s->w_first_off;
    q_consume(s, total);
    if (s->q_len)
        mark_dirty(s);
    maybe_finish(s);
}

static void tls_flush(struct kb_session *s);

static void on_tls_write(uv_write_t *req, int status)
{
    struct kb_session *s = req->data;
    s->writing = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            write_failed(s, status);
        return;
    }
    s->bytes_out += s->tls_out.len - s->tls_off;
    s->last_progress_ms = uv_now(s->srv->loop);
    s->tls_out.len = s->tls_off = 0;
    mark_dirty(s);
    maybe_finish(s);
}

/* TLS sessions encrypt what is queued once the previous ciphertext left,
 * so a stalled peer holds at most one flush of ciphertext plus the
 * (bounded) queue. */
static void tls_flush(struct kb_session *s)
{
    if (s->tls_off == s->tls_out.len) {
        s->tls_out.len = s->tls_off = 0;
        if (s->tls_ready) {
            while (s->q_len) {
                size_t len;
                const uint8_t *p = msg_bytes(s->q[s->q_head], &len);
                int err = kb_tls_write(s->tls, p + s->q_off, len - s->q_off);
                if (err < 0) {
                    kb__session_close(s, kb_tls_error(s->tls));
                    return;
                }
                s->q_bytes -= len - s->q_off;
                s->q_off = 0;
                kb_msg_unref(s->q[s->q_head]);
                s->q_head = (s->q_head + 1) & (s->q_cap - 1);
                s->q_len--;
            }
        }
        if (kb_tls_take(s->tls, &s->tls_out) < 0) {
            kb__session_close(s, "out of memory");
            return;
        }
    }
    if (s->tls_off == s->tls_out.len) {
        maybe_finish(s);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)s->tls_out.data + s->tls_off,
                             (unsigned)(s->tls_out.len - s->tls_off));
    int r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        r = 0;
    if (r < 0) {
        write_failed(s, r);
        return;
    }
    s->tls_off += (size_t)r;
    s->bytes_out += (size_t)r;
    if (r)
        s->last_progress_ms = uv_now(s->srv->loop);
    if (s->tls_off == s->tls_out.len) {
        s->tls_out.len = s->tls_off = 0;
        if (s->q_len)
            mark_dirty(s);
        else
            s->tick_armed = 0; /* everything queued was taken */
        maybe_finish(s);
        return;
    }
    b = uv_buf_init((char *)s->tls_out.data + s->tls_off, (unsigned)(s->tls_out.len - s->tls_off));
    s->wreq.data = s;
    r = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, on_tls_write);
    if (r < 0) {
        write_failed(s, r);
        return;
    }
    s->writing = 1;
}

void kb__session_flush(struct kb_session *s)
{
    if (s->closing || s->writing)
        return;
    if (sync_out(s) < 0) {
        kb__session_close(s, "out of memory");
        return;
    }
    if (s->tls) {
        tls_flush(s);
        return;
    }
    uv_buf_t iov[MAX_IOV];
    while (s->q_len) {
        uint32_t n = fill_iov(s, iov);
        int r = uv_try_write((uv_stream_t *)&s->tcp, iov, n);
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            r = 0;
        if (r < 0) {
            write_failed(s, r);
            return;
        }
        size_t want = 0;
        for (uint32_t i = 0; i < n; i++)
            want += iov[i].len;
        q_consume(s, (size_t)r);
        if ((size_t)r == want)
            continue;
        /* The socket is full: hand the rest to libuv, which writes it when
         * the socket drains; one write in flight at a time. */
        n = fill_iov(s, iov);
        s->w_count = n;
        s->w_first_off = s->q_off;
        s->wreq.data = s;
        r = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, iov, n, on_write);
        if (r < 0) {
            write_failed(s, r);
            return;
        }
        s->writing = 1;
        return;
    }
    s->tick_armed = 0; /* everything queued was taken */
    maybe_finish(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void fail(struct kb_session *s, const char *what, int err)
{
    char why[128];
    snprintf(why, sizeof(why), "%s: %s", what, kb_strerror(err));
    kb_log(KB_LOG_WARN, s->stream ? s->stream->name : NULL, s->peer, "%s", why);
    kb__session_close(s, why);
}

static void feed(struct kb_session *s, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    if (s->state == KB_SS_HANDSHAKE) {
        size_t used = 0;
        int r = kb_handshake_feed(s->hs, p, n, &used, &s->proto.out);
        if (r < 0) {
            fail(s, "handshake failed", r);
            return;
        }
        pos = used;
        if (r == 0) {
            kb__session_sync(s);
            return;
        }
        free(s->hs);
        s->hs = NULL;
        s->state = KB_SS_RTMP;
        if (s->client) {
            kb__session_sync(s); /* C2 first */
            if (!s->output) {
                kb__session_close(s, "push output gone");
                return;
            }
            kb__output_handshake_done(s->output);
            if (s->closing)
                return;
        }
    }
    while (!s->closing) {
        size_t used = 0;
        struct kb_msg *m = NULL;
        int r = kb_proto_read(&s->proto, p + pos, n - pos, &used, &m);
        pos += used;
        if (r < 0) {
            if (r == KB_ETOOBIG || r == KB_ECHUNK || r == KB_ETOOMANY)
                kb_log(KB_LOG_DEBUG, NULL, s->peer, "fault on chunk stream %u",
                       s->proto.rd.bad_csid);
            fail(s, "protocol error", r);
            return;
        }
        if (r == 0)
            break;
        if (s->output)
            r = kb__output_on_message(s->output, m);
        else if (s->client)
            kb_msg_unref(m), r = 0; /* a push connection saying goodbye */
        else
            r = kb__session_on_message(s, m);
        if (r < 0 && !s->closing) {
            fail(s, "bad message", r);
            return;
        }
    }
    if (!s->closing)
        kb__session_sync(s);
}

/* Ciphertext arrived: finish the TLS handshake or decrypt into feed(). */
static void feed_tls(struct kb_session *s, const uint8_t *p, size_t n)
{
    if (kb_tls_feed(s->tls, p, n) < 0) {
        kb__session_close(s, "out of memory");
        return;
    }
    if (!s->tls_ready) {
        int r = kb_tls_handshake(s->tls);
        if (r < 0) {
            kb__session_close(s, kb_tls_error(s->tls));
            return;
        }
        mark_dirty(s); /* handshake records to send */
        if (r == 0)
            return;
        s->tls_ready = 1;
        if (!s->output) {
            kb__session_close(s, "push output gone");
            return;
        }
        kb__output_ready(s->output);
        if (s->closing)
            return;
    }
    for (;;) {
        int r = kb_tls_read(s->tls, plain_buf, sizeof(plain_buf));
        if (r == 0)
            break;
        if (r < 0) {
            kb__session_close(s, kb_tls_error(s->tls));
            return;
        }
        feed(s, plain_buf, (size_t)r);
        if (s->closing)
            return;
    }
    mark_dirty(s); /* TLS may have answered something (key updates) */
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct kb_session *s = stream->data;
    if (nread < 0) {
        kb__session_close(s, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    s->bytes_in += (uint64_t)nread;
    s->last_in_ms = uv_now(s->srv->loop);
    if (s->tls)
        feed_tls(s, (const uint8_t *)buf->base, (size_t)nread);
    else
        feed(s, (const uint8_t *)buf->base, (size_t)nread);
}

static struct kb_session *session_new(struct kb_server *srv)
{
    struct kb_session *s = calloc(1, sizeof(*s));
    if (!s) {
        kb_log(KB_LOG_ERROR, NULL, NULL, "cannot open a connection: out of memory");
        return NULL;
    }
    int r = uv_tcp_init(srv->loop, &s->tcp);
    if (r < 0) {
        free(s);
        kb_log(KB_LOG_ERROR, NULL, NULL, "cannot open a connection: %s", uv_strerror(r));
        return NULL;
    }
    s->tcp.data = s;
    s->srv = srv;
    s->id = ++srv->next_id;
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->n_sessions++;
    s->start_ms = s->last_in_ms = s->last_progress_ms = uv_now(srv->loop);
    s->next_msid = 1;
    snprintf(s->close_reason, sizeof(s->close_reason), "closed");
    kb_proto_init(&s->proto, (uint32_t)srv->conf->max_message_size);
    return s;
}

static void name_peer(struct kb_session *s, const struct sockaddr *sa)
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
    snprintf(s->peer, sizeof(s->peer), sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
             port);
}

void kb__session_accept(struct kb_server *srv, uv_stream_t *listener)
{
    struct kb_session *s = session_new(srv);
    if (!s)
        return;
    int r = uv_accept(listener, (uv_stream_t *)&s->tcp);
    if (r < 0) {
        kb_log(KB_LOG_WARN, NULL, NULL, "accept failed: %s", uv_strerror(r));
        s->closing = 1;
        uv_close((uv_handle_t *)&s->tcp, on_close);
        return;
    }
    struct sockaddr_storage sa;
    int salen = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&sa, &salen);
    name_peer(s, (struct sockaddr *)&sa);

    if (srv->n_sessions > srv->conf->max_connections) {
        kb_log(KB_LOG_WARN, NULL, s->peer, "connection refused (max_connections %llu reached)",
               (unsigned long long)srv->conf->max_connections);
        s->closing = 1;
        uv_close((uv_handle_t *)&s->tcp, on_close);
        return;
    }
    /* Nagle would hold a frame's last chunk until the peer's delayed ACK. */
    uv_tcp_nodelay(&s->tcp, 1);
    uv_tcp_keepalive(&s->tcp, 1, 30);

    s->hs = malloc(sizeof(*s->hs));
    if (!s->hs) {
        kb__session_close(s, "out of memory");
        return;
    }
    kb_handshake_init(s->hs, KB_HS_SERVER, (uint32_t)uv_now(srv->loop),
                      ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ s->id);
    kb_log(KB_LOG_DEBUG, NULL, s->peer, "connection accepted");
    r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (r < 0)
        kb__session_close(s, uv_strerror(r));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct kb_session *s = req->data;
    if (s->closing)
        return;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
        kb__session_close(s, why);
        return;
    }
    if (!s->output) {
        kb__session_close(s, "push output gone");
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    uv_tcp_keepalive(&s->tcp, 1, 30);
    int r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (r < 0) {
        kb__session_close(s, uv_strerror(r));
        return;
    }
    kb__output_connected(s->output, 0);
    if (s->closing)
        return;
    if (s->tls) {
        /* ClientHello; the rest follows the server's answers. */
        if (kb_tls_handshake(s->tls) < 0) {
            kb__session_close(s, kb_tls_error(s->tls));
            return;
        }
        mark_dirty(s);
    } else {
        kb__output_ready(s->output);
    }
}

struct kb_session *kb__session_connect(struct kb_server *srv, struct kb_output *out,
                                       const struct sockaddr *addr, struct kb_tls *tls,
                                       int *err)
{
    struct kb_session *s = session_new(srv);
    if (!s) {
        kb_tls_free(tls);
        *err = -ENOMEM;
        return NULL;
    }
    s->output = out;
    s->client = 1;
    s->tls = tls;
    name_peer(s, addr);
    s->conn_req.data = s;
    int r = uv_tcp_connect(&s->conn_req, &s->tcp, addr, on_connect);
    if (r < 0) {
        *err = r;
        s->output = NULL; /* the caller handles this failure itself */
        kb__session_close(s, uv_strerror(r));
        return NULL;
    }
    return s;
}

int kb__session_send_media(struct kb_session *s, const struct kb_msg *m, uint32_t ts,
                           uint32_t msid)
{
    int err = sync_out(s);
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
    size_t need = kb_chunk_encoded_size(&h, s->proto.out_chunk);
    struct kb_msg *w = kb_msg_new(0, 0, 0, (uint32_t)need);
    if (!w)
        return -ENOMEM;
    w->len = (uint32_t)kb_chunk_encode(&h, m->data, s->proto.out_chunk, w->data);
    err = q_push(s, w);
    if (err) {
        kb_msg_unref(w);
        return err;
    }
    s->q_bytes += w->len;
    mark_dirty_media(s, m);
    return 0;
}

uint64_t kb__session_queued(const struct kb_session *s)
{
    return s->q_bytes + (s->tls_out.len - s->tls_off);
}

void kb__session_sweep(struct kb_session *s, uint64_t now)
{
    const struct kb_config *c = s->srv->conf;
    if (s->closing || s->output)
        return; /* push outputs keep their own time */
    if (s->client) {
        /* A push connection handed off to say goodbye. */
        if (now - s->last_in_ms > c->push_timeout)
            kb__session_close(s, "platform did not take the goodbye in time");
        return;
    }
    if (s->state < KB_SS_PUBLISHING &&
        now - s->start_ms > c->handshake_timeout) {
        kb__session_close(s, "no publish or play in time (handshake_timeout)");
        return;
    }
    if (s->state == KB_SS_PUBLISHING && now - s->last_in_ms > c->publish_timeout) {
        kb__session_close(s, "publisher sent nothing (publish_timeout)");
        return;
    }
    /* A reply that never drains (peer stopped reading) must not keep a
     * refused session open. */
    if (s->close_after_flush && now - s->last_in_ms > 5000)
        kb__session_close(s, s->close_reason);
}
