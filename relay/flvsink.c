/* HTTP-FLV viewers on the relay's loop (see flvsink.h). */
#include "flvsink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "relay/rtmp/buf.h"
#include "relay/rtmp/gate.h"
#include "server.h"

#define Q_FIRST 16          ///< queue entries to start with (a power of two; grows for a GOP)
#define WRITE_ENTRIES 32    ///< messages per write call
#define FLUSH_EARLY (64 * 1024) ///< queued bytes that do not wait for the flush tick

/* One queued message and its framing: an HTTP chunk holding one FLV tag. */
struct entry {
    struct kb_msg *m;  ///< our reference
    uint8_t head_len;
    uint8_t head[23];  ///< the chunk's size line (hex, CRLF) and the FLV tag header
    uint8_t tail[6];   ///< the tag's size (FLV's "previous tag size") and the chunk's CRLF
};

struct kb_flvsink {
    struct kb_sink sink;
    struct kb_gate gate;
    uv_tcp_t tcp;              ///< the viewer's socket; memory released in its close callback
    struct kb_server *srv;
    struct kb_list link;       ///< srv->flv_viewers
    struct kb_flush_item flush;
    struct entry *q;           ///< ring of queued messages (q_cap a power of two)
    struct entry *q_retired;   ///< the ring the write in flight points into, if it grew since
    uint32_t q_head, q_len, q_cap;
    uint32_t q_off;            ///< bytes of the head entry already written
    uint64_t q_bytes;          ///< payload bytes queued, the write in flight included
    uv_write_t wreq;           ///< the one write in flight
    uint32_t w_count;          ///< entries that write covers
    uint32_t w_first_off;      ///< q_off when it started
    int writing;
    int catching_up;           ///< being handed the cache (pinned by it: not counted)
    int closing;
    uint64_t bytes_out;        ///< bytes written to the socket
    char stream[KB_CONF_NAME_MAX + 1];
    char peer[48];
};

static struct kb_flvsink *of_sink(struct kb_sink *k)
{
    return kb_container_of(k, struct kb_flvsink, sink);
}

static struct kb_flvsink *of_flush(struct kb_flush_item *it)
{
    return kb_container_of(it, struct kb_flvsink, flush);
}

/* ---- the queue ---------------------------------------------------------- */

static struct entry *q_at(const struct kb_flvsink *f, uint32_t i)
{
    return &f->q[(f->q_head + i) & (f->q_cap - 1)];
}

static size_t entry_len(const struct entry *e)
{
    return e->head_len + (size_t)e->m->len + sizeof(e->tail);
}

static int q_grow(struct kb_flvsink *f)
{
    uint32_t cap = f->q_cap ? 2 * f->q_cap : Q_FIRST;
    struct entry *q = malloc(cap * sizeof(*q));
    if (!q)
        return -ENOMEM;
    for (uint32_t i = 0; i < f->q_len; i++)
        q[i] = *q_at(f, i);
    /* A write in flight points into the entries' framing: the ring it
     * started from stays until it ends. */
    if (f->writing && !f->q_retired)
        f->q_retired = f->q;
    else
        free(f->q);
    f->q = q;
    f->q_cap = cap;
    f->q_head = 0;
    return 0;
}

/* Lower-case hex without leading zeros, then CRLF: a chunk's size line. */
static size_t size_line(uint8_t *p, size_t v)
{
    static const char digits[] = "0123456789abcdef";
    int shift = 0;
    while (shift < 28 && (v >> (shift + 4)) != 0)
        shift += 4;
    size_t n = 0;
    for (; shift >= 0; shift -= 4)
        p[n++] = (uint8_t)digits[(v >> shift) & 0xF];
    p[n++] = '\r';
    p[n++] = '\n';
    return n;
}

static int q_push(struct kb_flvsink *f, struct kb_msg *m)
{
    if (f->q_len == f->q_cap && q_grow(f) < 0)
        return -ENOMEM;
    struct entry *e = &f->q[(f->q_head + f->q_len) & (f->q_cap - 1)];
    size_t n = size_line(e->head, 11 + (size_t)m->len + 4);
    uint8_t *t = e->head + n;
    t[0] = m->type;
    kb_put_be24(t + 1, m->len);
    kb_put_be24(t + 4, m->timestamp & 0xFFFFFF);
    t[7] = (uint8_t)(m->timestamp >> 24);
    kb_put_be24(t + 8, 0); /* stream id */
    e->head_len = (uint8_t)(n + 11);
    kb_put_be32(e->tail, 11 + m->len);
    e->tail[4] = '\r';
    e->tail[5] = '\n';
    e->m = kb_msg_ref(m);
    f->q_len++;
    f->q_bytes += m->len;
    return 0;
}

static void q_pop(struct kb_flvsink *f)
{
    struct entry *e = q_at(f, 0);
    f->q_bytes -= e->m->len;
    kb_msg_unref(e->m);
    f->q_head = (f->q_head + 1) & (f->q_cap - 1);
    f->q_len--;
    f->q_off = 0;
}

/* n bytes left: drop the entries they finished. */
static void q_consume(struct kb_flvsink *f, size_t n)
{
    f->bytes_out += n;
    while (n && f->q_len) {
        size_t left = entry_len(q_at(f, 0)) - f->q_off;
        if (n < left) {
            f->q_off += (uint32_t)n;
            return;
        }
        n -= left;
        q_pop(f);
    }
    /* A queue grown for a burst (the GOP a viewer starts with) goes once
     * it drains, so a viewer that keeps up holds little. */
    if (f->q_len == 0 && f->q_cap > Q_FIRST) {
        free(f->q);
        f->q = NULL;
        f->q_cap = 0;
        f->q_head = 0;
    }
}

/* The next entries as buffers, the head entry from q_off on. */
static unsigned fill_iov(const struct kb_flvsink *f, uv_buf_t *iov, uint32_t *entries)
{
    uint32_t k = f->q_len < WRITE_ENTRIES ? f->q_len : WRITE_ENTRIES;
    unsigned n = 0;
    size_t skip = f->q_off;
    for (uint32_t i = 0; i < k; i++) {
        struct entry *e = q_at(f, i);
        uv_buf_t part[3] = {
            uv_buf_init((char *)e->head, e->head_len),
            uv_buf_init((char *)e->m->data, e->m->len),
            uv_buf_init((char *)e->tail, sizeof(e->tail)),
        };
        for (int j = 0; j < 3; j++) {
            if (skip >= part[j].len) {
                skip -= part[j].len;
                continue;
            }
            iov[n++] = uv_buf_init(part[j].base + skip, (unsigned)(part[j].len - skip));
            skip = 0;
        }
    }
    *entries = k;
    return n;
}

/* ---- writing ------------------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    struct kb_flvsink *f = h->data;
    while (f->q_len)
        q_pop(f);
    free(f->q);
    free(f->q_retired);
    free(f);
}

static void close_viewer(struct kb_flvsink *f, const char *why)
{
    if (f->closing)
        return;
    f->closing = 1;
    struct kb_server *srv = f->srv;
    if (f->sink.stream) {
        f->sink.stream->bytes_out_done += f->bytes_out;
        kb_stream_detach(&f->sink);
    }
    kb_log(KB_LOG_INFO, f->stream, f->peer,
           "http-flv viewer stopped (%s), %llu messages dropped (%llu video, %llu audio)", why,
           (unsigned long long)f->gate.drops, (unsigned long long)f->gate.drops_video,
           (unsigned long long)f->gate.drops_audio);
    kb_list_remove(&f->link);
    srv->n_flv_viewers--;
    kb_flush_remove(&srv->net.flush, &f->flush);
    uv_close((uv_handle_t *)&f->tcp, on_closed);
}

static void write_failed(struct kb_flvsink *f, int r)
{
    char why[96];
    snprintf(why, sizeof(why), "write failed: %s", uv_strerror(r));
    close_viewer(f, why);
}

static void flush_now(struct kb_flvsink *f)
{
    if (!f->closing)
        kb_flush_now(&f->srv->net.flush, &f->flush);
}

static void on_write(uv_write_t *req, int status)
{
    struct kb_flvsink *f = req->data;
    f->writing = 0;
    free(f->q_retired);
    f->q_retired = NULL;
    if (f->closing)
        return;
    if (status < 0) {
        write_failed(f, status);
        return;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < f->w_count; i++)
        total += entry_len(q_at(f, i));
    q_consume(f, total - f->w_first_off);
    if (f->q_len)
        flush_now(f);
}

/* The flusher's callback: write what is queued, as conn.c does for RTMP
 * players (uv_try_write, and one uv_write in flight when the socket is
 * full). */
static void flv_flush(struct kb_flush_item *it)
{
    struct kb_flvsink *f = of_flush(it);
    if (f->closing || f->writing)
        return;
    uv_buf_t iov[3 * WRITE_ENTRIES];
    while (f->q_len) {
        uint32_t k;
        unsigned n = fill_iov(f, iov, &k);
        int r = uv_try_write((uv_stream_t *)&f->tcp, iov, n);
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            r = 0;
        if (r < 0) {
            write_failed(f, r);
            return;
        }
        size_t want = 0;
        for (unsigned i = 0; i < n; i++)
            want += iov[i].len;
        q_consume(f, (size_t)r);
        if ((size_t)r == want)
            continue;
        n = fill_iov(f, iov, &k);
        f->w_count = k;
        f->w_first_off = f->q_off;
        f->wreq.data = f;
        r = uv_write(&f->wreq, (uv_stream_t *)&f->tcp, iov, n, on_write);
        if (r < 0) {
            write_failed(f, r);
            return;
        }
        f->writing = 1;
        return;
    }
    kb_flush_done(&f->flush);
}

/* ---- the sink ----------------------------------------------------------- */

static void on_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct kb_flvsink *f = of_sink(k);
    if (f->closing)
        return;
    if (m->type != KB_MSG_AUDIO && m->type != KB_MSG_VIDEO && m->type != KB_MSG_DATA_AMF0)
        return;
    uint64_t limit = f->catching_up ? UINT64_MAX : f->srv->conf->player_queue;
    unsigned ev;
    if (!kb_gate_admit(&f->gate, m, f->q_bytes, limit, &ev)) {
        if (kb_gate_first_skip(&f->gate, ev))
            kb_log(KB_LOG_INFO, f->stream, f->peer,
                   "http-flv viewer too slow, %s (player_queue %llu bytes reached)",
                   kb_gate_skip_what(&f->gate, ev),
                   (unsigned long long)f->srv->conf->player_queue);
        return;
    }
    if (q_push(f, m) < 0) {
        /* As good as full: the gate waits for a keyframe that fits. */
        kb_gate_admit(&f->gate, m, UINT64_MAX, 0, NULL);
        return;
    }
    /* Writes follow the video, as for RTMP players (relay/flush.h). */
    int video = (m->flags & (KB_MSGF_VIDEO | KB_MSGF_SEQHDR)) == KB_MSGF_VIDEO;
    if (video || f->q_bytes >= FLUSH_EARLY)
        flush_now(f);
    else
        kb_flush_later(&f->srv->net.flush, &f->flush);
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

/* The viewer sends nothing we need; reading tells us when it leaves. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char sink_hole[512]; /* read into and forgotten, loop thread only */
    *buf = uv_buf_init(sink_hole, sizeof(sink_hole));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread >= 0)
        return;
    struct kb_flvsink *f = s->data;
    /* A browser tab closed with bytes unread resets rather than closes. */
    int left = nread == UV_EOF || nread == UV_ECONNRESET;
    close_viewer(f, left ? "the viewer left" : uv_strerror((int)nread));
}

int kb__flvsink_admit(struct kb_server *srv, char *why, size_t n)
{
    if (srv->stopping) {
        snprintf(why, n, "kebun is shutting down");
        return -ESHUTDOWN;
    }
    if (srv->net.n_conns + srv->n_flv_viewers >= srv->conf->max_connections) {
        snprintf(why, n, "max_connections (%llu) reached",
                 (unsigned long long)srv->conf->max_connections);
        return -EMFILE;
    }
    return 0;
}

static void on_unopened(uv_handle_t *h)
{
    free(h->data);
}

void kb__flvsink_adopt(struct kb_server *srv, const char *stream, int fd)
{
    struct kb_stream *st = srv->stopping ? NULL : kb_hub_find_name(&srv->hub, stream);
    struct kb_flvsink *f = st ? calloc(1, sizeof(*f)) : NULL;
    if (!f) {
        kb_log(KB_LOG_INFO, stream, NULL, "http-flv viewer dropped (%s)",
               st ? "out of memory" : srv->stopping ? "kebun is stopping" : "the stream is gone");
        close(fd);
        return;
    }
    f->srv = srv;
    f->flush.fn = flv_flush;
    snprintf(f->stream, sizeof(f->stream), "%s", stream);
    snprintf(f->peer, sizeof(f->peer), "?");
    kb_list_init(&f->link);
    int r = uv_tcp_init(srv->loop, &f->tcp);
    if (r < 0) {
        kb_log(KB_LOG_ERROR, stream, NULL, "http-flv viewer dropped (%s)", uv_strerror(r));
        close(fd);
        free(f);
        return;
    }
    f->tcp.data = f;
    r = uv_tcp_open(&f->tcp, fd);
    if (r < 0) {
        kb_log(KB_LOG_ERROR, stream, NULL, "http-flv viewer dropped (%s)", uv_strerror(r));
        close(fd);
        uv_close((uv_handle_t *)&f->tcp, on_unopened);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (uv_tcp_getpeername(&f->tcp, (struct sockaddr *)&sa, &len) == 0)
        kb_net_name_peer(f->peer, sizeof(f->peer), (struct sockaddr *)&sa);
    uv_tcp_keepalive(&f->tcp, 1, 30);
    f->sink = (struct kb_sink){.ops = &flv_ops, .kind = KB_SINK_PLAYER};
    kb_gate_init_keep_audio(&f->gate, 1);
    kb_list_push(&srv->flv_viewers, &f->link);
    srv->n_flv_viewers++;
    /* The FLV file header ("FLV", version 1, audio and video, header size
     * 9, then the size of the tag before the first: 0) as a chunk of its
     * own: 18 bytes into an empty socket buffer. */
    static const uint8_t file_header[] = {'d', '\r', '\n', 'F', 'L', 'V', 1, 0x05, 0, 0, 0,
                                          9,   0,    0,    0,   0,   '\r', '\n'};
    uv_buf_t b = uv_buf_init((char *)file_header, sizeof(file_header));
    r = uv_try_write((uv_stream_t *)&f->tcp, &b, 1);
    if (r != (int)sizeof(file_header)) {
        close_viewer(f, r < 0 ? uv_strerror(r) : "the FLV header did not fit the socket");
        return;
    }
    f->bytes_out = sizeof(file_header);
    r = uv_read_start((uv_stream_t *)&f->tcp, on_alloc, on_read);
    if (r < 0) {
        close_viewer(f, uv_strerror(r));
        return;
    }
    kb_stream_attach(st, &f->sink);
    if (st->publisher) {
        f->catching_up = 1;
        kb_stream_catch_up(st, &f->sink);
        f->catching_up = 0;
        kb_gate_pin(&f->gate, f->q_bytes);
    }
    kb_log(KB_LOG_INFO, st->name, f->peer, "http-flv viewer started%s",
           st->publisher ? "" : " (waiting for the publisher)");
}

void kb__flvsink_end_stream(struct kb_server *srv, struct kb_stream *st)
{
    /* The end of a chunked response. */
    static const uint8_t last_chunk[] = {'0', '\r', '\n', '\r', '\n'};
    KB_LIST_EACH(l, &srv->flv_viewers) {
        struct kb_flvsink *f = kb_container_of(l, struct kb_flvsink, link);
        if (st && f->sink.stream != st)
            continue;
        flv_flush(&f->flush);
        if (f->closing)
            continue;
        if (!f->writing && f->q_len == 0) {
            uv_buf_t b = uv_buf_init((char *)last_chunk, sizeof(last_chunk));
            (void)uv_try_write((uv_stream_t *)&f->tcp, &b, 1); /* what does not fit is lost */
        }
        close_viewer(f, st ? "the stream was removed" : "kebun is stopping");
    }
}

uint64_t kb__flvsink_bytes(struct kb_server *srv, const struct kb_stream *st)
{
    uint64_t n = 0;
    KB_LIST_EACH(l, &srv->flv_viewers) {
        struct kb_flvsink *f = kb_container_of(l, struct kb_flvsink, link);
        if (f->sink.stream == st)
            n += f->bytes_out;
    }
    return n;
}
