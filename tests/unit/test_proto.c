/* kebun: unit tests for the per-connection protocol state (relay/rtmp/proto.c).
 *
 * The peer's bytes are built with kb_chunk_append (tested on its own in
 * test_chunk) or by hand; kebun's answers in p->out are read back with a
 * second kb_chunk_reader, the way the peer would read them.
 */
#include "relay/rtmp/proto.h"

#include <errno.h>

#include "relay/rtmp/error.h"
#include "bytes.h"
#include "test.h"

enum { WHOLE, BYTES, RANDOM };
static const char *const mode_names[] = {"whole", "byte-by-byte", "random"};

struct msgs {
    struct kb_msg *m[64];
    size_t n;
};

static void msgs_free(struct msgs *s)
{
    for (size_t i = 0; i < s->n; i++)
        kb_msg_unref(s->m[i]);
    s->n = 0;
}

/* Feed bytes cut by mode, calling kb_proto_read the way relay/session.c
 * does (until each piece is consumed). Application messages go to s.
 * Returns 0, a negative error, or 1 when the reader broke its contract. */
static int feed(struct kb_proto *p, const uint8_t *bytes, size_t n, int mode, uint64_t *seed,
                struct msgs *s)
{
    size_t off = 0;
    while (off < n) {
        size_t len = n - off;
        if (mode == BYTES)
            len = 1;
        else if (mode == RANDOM) {
            size_t l = 1 + test_rand(seed) % (test_rand(seed) % 2 ? 9 : 700);
            if (l < len)
                len = l;
        }
        uint8_t *piece = malloc(len);
        if (!piece)
            abort();
        memcpy(piece, bytes + off, len);
        size_t pos = 0;
        while (pos < len) {
            size_t used = (size_t)-1;
            struct kb_msg *m = NULL;
            int rc = kb_proto_read(p, piece + pos, len - pos, &used, &m);
            if (used > len - pos) {
                fprintf(stderr, "kb_proto_read used %zu of %zu\n", used, len - pos);
                free(piece);
                return 1;
            }
            pos += used;
            if (rc < 0) {
                free(piece);
                return rc;
            }
            if (rc == 0) {
                if (pos != len || m) {
                    fprintf(stderr, "kb_proto_read returned 0 with %zu of %zu bytes left\n",
                            len - pos, len);
                    free(piece);
                    return 1;
                }
                break;
            }
            if (!m || s->n == 64) {
                fprintf(stderr, "kb_proto_read returned 1 without a message (or too many)\n");
                free(piece);
                return 1;
            }
            s->m[s->n++] = m;
        }
        free(piece);
        off += len;
    }
    return 0;
}

/* Read back everything kebun queued in p->out, as the peer would: applying
 * the Set Chunk Size messages it finds. */
static int read_out(const struct kb_proto *p, struct msgs *s)
{
    struct kb_chunk_reader r;
    kb_chunk_reader_init(&r, 1 << 24);
    size_t pos = 0;
    while (pos < p->out.len) {
        size_t used = 0;
        struct kb_msg *m = NULL;
        int rc = kb_chunk_read(&r, p->out.data + pos, p->out.len - pos, &used, &m);
        pos += used;
        ASSERT_TRUE(rc >= 0);
        if (rc == 0)
            break;
        ASSERT_TRUE(s->n < 64);
        s->m[s->n++] = m;
        if (m->type == KB_MSG_SET_CHUNK_SIZE)
            ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, kb_get_be32(m->data)), 0);
    }
    ASSERT_EQ(pos, p->out.len);
    /* Nothing left half-sent. */
    for (uint32_t i = 0; i < r.n_streams; i++)
        ASSERT_NULL(r.streams[i].msg);
    kb_chunk_reader_free(&r);
    return 0;
}

/* Append one message from the peer, chunked at `chunk`. */
static void peer(struct kb_buf *b, uint32_t csid, uint8_t type, uint32_t ts, uint32_t msid,
                 const void *payload, uint32_t len, uint32_t chunk)
{
    struct kb_chunk_hdr h = {
        .csid = csid, .timestamp = ts, .len = len, .type = type, .stream_id = msid};
    must(kb_chunk_append(b, &h, payload, chunk));
}

static void peer_u32(struct kb_buf *b, uint8_t type, uint32_t v, uint32_t chunk)
{
    uint8_t p[4];
    kb_put_be32(p, v);
    peer(b, 2, type, 0, 0, p, 4, chunk);
}

static void peer_uc(struct kb_buf *b, uint16_t ev, uint32_t v, uint32_t chunk)
{
    uint8_t p[6];
    kb_put_be16(p, ev);
    kb_put_be32(p + 2, v);
    peer(b, 2, KB_MSG_USER_CONTROL, 0, 0, p, 6, chunk);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* ---- reading ------------------------------------------------------------ */

static int test_peer_chunk_size(void)
{
    static uint8_t video[10000];
    fill(video, sizeof(video), 1);
    struct kb_buf in = {0};
    peer_u32(&in, KB_MSG_SET_CHUNK_SIZE, 4096, 128);
    peer(&in, 6, KB_MSG_VIDEO, 40, 1, video, sizeof(video), 4096);
    /* Exactly three chunks: the new size is in force. */
    ASSERT_EQ(in.len, 16 + 12 + 10000 + 2);
    for (int mode = WHOLE; mode <= RANDOM; mode++) {
        struct kb_proto p;
        struct msgs s = {0};
        uint64_t seed = 11;
        kb_proto_init(&p, 1 << 20);
        int rc = feed(&p, in.data, in.len, mode, &seed, &s);
        if (rc) {
            fprintf(stderr, "fed %s: rc %d\n", mode_names[mode], rc);
            return 1;
        }
        ASSERT_EQ(s.n, 1);
        ASSERT_EQ(s.m[0]->type, KB_MSG_VIDEO);
        ASSERT_EQ(s.m[0]->timestamp, 40);
        ASSERT_MEM_EQ(s.m[0]->data, s.m[0]->len, video, sizeof(video));
        ASSERT_EQ(p.rd.chunk_size, 4096);
        ASSERT_EQ(p.in_bytes, in.len);
        ASSERT_EQ(p.out.len, 0); /* nothing to answer */
        msgs_free(&s);
        kb_proto_free(&p);
    }
    kb_buf_free(&in);
    return 0;
}

static int check_acks(const struct kb_proto *p, const uint32_t *want, size_t n)
{
    struct msgs out = {0};
    ASSERT_OK(read_out(p, &out));
    for (size_t i = 0; i < out.n && i < n; i++) {
        const struct kb_msg *m = out.m[i];
        ASSERT_EQ(m->type, KB_MSG_ACK);
        ASSERT_EQ(m->stream_id, 0);
        ASSERT_EQ(m->len, 4);
        if (kb_get_be32(m->data) != want[i]) {
            fprintf(stderr, "acknowledgement %zu: sequence number %u, want %u\n", i,
                    kb_get_be32(m->data), want[i]);
            return 1;
        }
    }
    ASSERT_EQ(out.n, n);
    /* Sent on the protocol control chunk stream. */
    if (n)
        ASSERT_EQ(p->out.data[0], 0x02);
    msgs_free(&out);
    return 0;
}

static int test_ack_window(void)
{
    static uint8_t video[500];
    fill(video, sizeof(video), 2);
    struct kb_buf in = {0};
    peer_u32(&in, KB_MSG_WINDOW_ACK_SIZE, 1000, 128);
    size_t ends[5];
    ends[0] = in.len;
    for (int i = 0; i < 4; i++) {
        peer(&in, 6, KB_MSG_VIDEO, (uint32_t)i * 40, 1, video, sizeof(video), 128);
        ends[i + 1] = in.len;
    }
    ASSERT_EQ(ends[0], 16);
    ASSERT_EQ(ends[1] - ends[0], 12 + 500 + 3);

    /* Whole: each read ends at a message boundary, so the acknowledgements
     * carry the byte count there: 16 + 2 * 515 and 16 + 4 * 515. */
    struct kb_proto p;
    struct msgs s = {0};
    uint64_t seed = 1;
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(feed(&p, in.data, in.len, WHOLE, &seed, &s), 0);
    ASSERT_EQ(s.n, 4);
    ASSERT_EQ(p.ack_window, 1000);
    ASSERT_EQ(p.in_bytes, in.len);
    const uint32_t want_whole[] = {(uint32_t)ends[2], (uint32_t)ends[4]};
    ASSERT_OK(check_acks(&p, want_whole, 2));
    ASSERT_EQ(p.in_acked, ends[4]);
    msgs_free(&s);
    kb_proto_free(&p);

    /* Byte by byte: the acknowledgement goes out the moment the window is
     * reached. */
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(feed(&p, in.data, in.len, BYTES, &seed, &s), 0);
    ASSERT_EQ(s.n, 4);
    const uint32_t want_bytes[] = {1000, 2000};
    ASSERT_OK(check_acks(&p, want_bytes, 2));
    msgs_free(&s);
    kb_proto_free(&p);

    /* No window announced: no acknowledgements. */
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(feed(&p, in.data + 16, in.len - 16, WHOLE, &seed, &s), 0);
    ASSERT_EQ(s.n, 4);
    ASSERT_EQ(p.out.len, 0);
    msgs_free(&s);
    kb_proto_free(&p);
    kb_buf_free(&in);
    return 0;
}

/* The sequence number is the byte count modulo 2^32. */
static int test_ack_sequence_wraps(void)
{
    struct kb_buf in = {0};
    static uint8_t audio[300];
    peer(&in, 4, KB_MSG_AUDIO, 0, 1, audio, sizeof(audio), 128);
    struct kb_proto p;
    struct msgs s = {0};
    uint64_t seed = 1;
    kb_proto_init(&p, 1 << 20);
    p.ack_window = 100;
    p.in_bytes = p.in_acked = 0xFFFFFF00u; /* 4 GiB minus 256 received */
    ASSERT_EQ(feed(&p, in.data, in.len, WHOLE, &seed, &s), 0);
    ASSERT_EQ(p.in_bytes, 0xFFFFFF00u + in.len);
    const uint32_t want[] = {(uint32_t)(0xFFFFFF00u + in.len)};
    ASSERT_EQ(want[0], in.len - 256);
    ASSERT_OK(check_acks(&p, want, 1));
    msgs_free(&s);
    kb_proto_free(&p);
    kb_buf_free(&in);
    return 0;
}

static int test_ping(void)
{
    struct kb_buf in = {0};
    peer_uc(&in, KB_UC_PING_REQUEST, 0x12345678, 128);
    peer_uc(&in, KB_UC_PING_RESPONSE, 0x0BADCAFE, 128);
    peer_uc(&in, KB_UC_STREAM_BEGIN, 1, 128);
    /* SetBufferLength carries the stream id and the length. */
    const uint8_t sbl[10] = {0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8};
    peer(&in, 2, KB_MSG_USER_CONTROL, 0, 0, sbl, 10, 128);
    peer_uc(&in, KB_UC_PING_REQUEST, 0xFFFFFFFF, 128);
    for (int mode = WHOLE; mode <= RANDOM; mode++) {
        struct kb_proto p;
        struct msgs s = {0};
        uint64_t seed = 3;
        kb_proto_init(&p, 1 << 20);
        ASSERT_EQ(feed(&p, in.data, in.len, mode, &seed, &s), 0);
        /* Pings are answered and swallowed; other events reach the app. */
        ASSERT_EQ(s.n, 2);
        ASSERT_EQ(s.m[0]->type, KB_MSG_USER_CONTROL);
        ASSERT_EQ(kb_get_be16(s.m[0]->data), KB_UC_STREAM_BEGIN);
        ASSERT_EQ(kb_get_be16(s.m[1]->data), KB_UC_SET_BUFFER_LENGTH);
        ASSERT_EQ(p.buffer_ms, 3000);
        ASSERT_EQ(p.last_ping, 0x0BADCAFE);

        struct msgs out = {0};
        ASSERT_OK(read_out(&p, &out));
        ASSERT_EQ(out.n, 2);
        const uint32_t stamps[2] = {0x12345678, 0xFFFFFFFF};
        for (int i = 0; i < 2; i++) {
            ASSERT_EQ(out.m[i]->type, KB_MSG_USER_CONTROL);
            ASSERT_EQ(out.m[i]->stream_id, 0);
            ASSERT_EQ(out.m[i]->len, 6);
            ASSERT_EQ(kb_get_be16(out.m[i]->data), KB_UC_PING_RESPONSE);
            ASSERT_EQ(kb_get_be32(out.m[i]->data + 2), stamps[i]);
        }
        msgs_free(&out);
        msgs_free(&s);
        kb_proto_free(&p);
    }
    kb_buf_free(&in);
    return 0;
}

static int test_abort(void)
{
    static uint8_t audio[300], small[10];
    fill(audio, sizeof(audio), 4);
    fill(small, sizeof(small), 5);
    struct kb_buf full = {0}, in = {0};
    peer(&full, 4, KB_MSG_AUDIO, 100, 1, audio, sizeof(audio), 128);
    putmem(&in, full.data, 12 + 128); /* the first chunk only */
    peer_u32(&in, KB_MSG_ABORT, 4, 128);
    peer(&in, 4, KB_MSG_AUDIO, 200, 1, small, sizeof(small), 128);
    for (int mode = WHOLE; mode <= RANDOM; mode++) {
        struct kb_proto p;
        struct msgs s = {0};
        uint64_t seed = 5;
        kb_proto_init(&p, 1 << 20);
        ASSERT_EQ(feed(&p, in.data, in.len, mode, &seed, &s), 0);
        ASSERT_EQ(s.n, 1);
        ASSERT_EQ(s.m[0]->timestamp, 200);
        ASSERT_MEM_EQ(s.m[0]->data, s.m[0]->len, small, sizeof(small));
        msgs_free(&s);
        kb_proto_free(&p);
    }
    kb_buf_free(&full);
    kb_buf_free(&in);
    return 0;
}

static int test_app_messages_only(void)
{
    struct kb_buf in = {0};
    const uint8_t cmd[] = {0x02, 0x00, 0x04, 'p', 'l', 'a', 'y', 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t aud[] = {0xAF, 0x01, 0x21};
    const uint8_t vid[] = {0x27, 0x01, 0, 0, 0};
    const uint8_t dat[] = {0x02, 0x00, 0x01, 'x'};
    const uint8_t bw[5] = {0x00, 0x26, 0x25, 0xA0, 0x02};
    peer_u32(&in, KB_MSG_SET_CHUNK_SIZE, 256, 128);
    peer_u32(&in, KB_MSG_WINDOW_ACK_SIZE, 5000000, 256);
    peer(&in, 2, KB_MSG_SET_PEER_BW, 0, 0, bw, 5, 256);
    peer(&in, 3, KB_MSG_COMMAND_AMF0, 0, 0, cmd, sizeof(cmd), 256);
    peer_u32(&in, KB_MSG_ACK, 1234, 256);
    peer(&in, 4, KB_MSG_AUDIO, 10, 1, aud, sizeof(aud), 256);
    peer(&in, 6, KB_MSG_VIDEO, 20, 1, vid, sizeof(vid), 256);
    peer_u32(&in, KB_MSG_ABORT, 9, 256); /* nothing to abort: harmless */
    peer(&in, 5, KB_MSG_DATA_AMF0, 30, 1, dat, sizeof(dat), 256);
    peer(&in, 3, KB_MSG_COMMAND_AMF3, 0, 0, cmd, sizeof(cmd), 256);
    peer(&in, 5, KB_MSG_DATA_AMF3, 0, 1, dat, sizeof(dat), 256);
    peer(&in, 6, KB_MSG_AGGREGATE, 0, 1, vid, sizeof(vid), 256);
    const uint8_t want[] = {KB_MSG_COMMAND_AMF0, KB_MSG_AUDIO,        KB_MSG_VIDEO,
                            KB_MSG_DATA_AMF0,    KB_MSG_COMMAND_AMF3, KB_MSG_DATA_AMF3,
                            KB_MSG_AGGREGATE};
    for (int mode = WHOLE; mode <= RANDOM; mode++) {
        struct kb_proto p;
        struct msgs s = {0};
        uint64_t seed = 6;
        kb_proto_init(&p, 1 << 20);
        ASSERT_EQ(feed(&p, in.data, in.len, mode, &seed, &s), 0);
        for (size_t i = 0; i < s.n && i < sizeof(want); i++)
            ASSERT_EQ(s.m[i]->type, want[i]);
        ASSERT_EQ(s.n, sizeof(want));
        ASSERT_MEM_EQ(s.m[1]->data, s.m[1]->len, aud, sizeof(aud));
        ASSERT_EQ(s.m[2]->timestamp, 20);
        ASSERT_EQ(p.rd.chunk_size, 256);
        ASSERT_EQ(p.ack_window, 5000000);
        ASSERT_EQ(p.peer_bw, 2500000);
        ASSERT_EQ(p.peer_acked, 1234);
        ASSERT_EQ(p.out.len, 0);
        msgs_free(&s);
        kb_proto_free(&p);
    }
    kb_buf_free(&in);
    return 0;
}

static int test_control_errors(void)
{
    static const struct {
        uint8_t type;
        uint8_t len;
        uint8_t payload[6];
        int want;
        const char *why; ///< what kb_proto_why says
    } cases[] = {
        {KB_MSG_SET_CHUNK_SIZE, 3, {0, 0, 1}, KB_ECHUNK,
         "Set Chunk Size message of 3 bytes (it needs 4)"},
        {KB_MSG_SET_CHUNK_SIZE, 4, {0, 0, 0, 0}, KB_ECHUNKSIZE,
         "Set Chunk Size 0 is outside 1..2147483647"},
        {KB_MSG_SET_CHUNK_SIZE, 4, {0x80, 0, 0, 0}, KB_ECHUNKSIZE,
         "Set Chunk Size 2147483648 is outside 1..2147483647"},
        {KB_MSG_SET_CHUNK_SIZE, 4, {0xFF, 0xFF, 0xFF, 0xFF}, KB_ECHUNKSIZE,
         "Set Chunk Size 4294967295 is outside"},
        {KB_MSG_ABORT, 3, {0, 0, 4}, KB_ECHUNK, "Abort message of 3 bytes (it needs 4)"},
        {KB_MSG_ACK, 0, {0}, KB_ECHUNK, "Acknowledgement message of 0 bytes"},
        {KB_MSG_WINDOW_ACK_SIZE, 2, {0, 1}, KB_ECHUNK, "Window Acknowledgement Size message of 2"},
        {KB_MSG_SET_PEER_BW, 4, {0, 0, 1, 0}, KB_ECHUNK,
         "Set Peer Bandwidth message of 4 bytes (it needs 5)"},
        {KB_MSG_USER_CONTROL, 1, {0}, KB_ECHUNK, "User Control message of 1 bytes (it needs 2)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kb_buf in = {0};
        peer(&in, 2, cases[i].type, 0, 0, cases[i].payload, cases[i].len, 128);
        struct kb_proto p;
        struct msgs s = {0};
        uint64_t seed = 7;
        kb_proto_init(&p, 1 << 20);
        int rc = feed(&p, in.data, in.len, WHOLE, &seed, &s);
        if (rc != cases[i].want) {
            fprintf(stderr, "type %u with %u bytes: rc %d, want %d\n", cases[i].type, cases[i].len,
                    rc, cases[i].want);
            return 1;
        }
        ASSERT_STR_HAS(kb_proto_why(&p), cases[i].why);
        ASSERT_EQ(s.n, 0);
        kb_proto_free(&p);
        kb_buf_free(&in);
    }
    /* The largest valid chunk size is accepted. */
    struct kb_buf in = {0};
    peer_u32(&in, KB_MSG_SET_CHUNK_SIZE, 0x7FFFFFFF, 128);
    struct kb_proto p;
    struct msgs s = {0};
    uint64_t seed = 7;
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(feed(&p, in.data, in.len, WHOLE, &seed, &s), 0);
    ASSERT_EQ(p.rd.chunk_size, 0x7FFFFFFF);
    kb_proto_free(&p);
    kb_buf_free(&in);
    /* A message over the limit ends the connection. */
    static uint8_t big[2000];
    peer(&in, 6, KB_MSG_VIDEO, 0, 1, big, sizeof(big), 128);
    kb_proto_init(&p, 1000);
    ASSERT_EQ(feed(&p, in.data, in.len, WHOLE, &seed, &s), KB_ETOOBIG);
    kb_proto_free(&p);
    kb_buf_free(&in);
    return 0;
}

/* A publisher whose timestamps passed 0xFFFFFF (4 h 39 min) and that does
 * not repeat the extended timestamp on format-3 chunks, read the way the
 * session reads: every message must come out and no byte may be left. */
static int test_ext_ts_without_repeat(void)
{
    static uint8_t v1[1000], v2[300];
    fill(v1, sizeof(v1), 8);
    fill(v2, sizeof(v2), 9);
    struct kb_buf in = {0};
    chdr(&in, 0, 6, 0x01000000, sizeof(v1), KB_MSG_VIDEO, 1);
    for (size_t off = 0; off < sizeof(v1); off += 128) {
        if (off)
            basic(&in, 3, 6); /* no repeated extended timestamp */
        putmem(&in, v1 + off, sizeof(v1) - off < 128 ? sizeof(v1) - off : 128);
    }
    chdr(&in, 1, 6, 40, sizeof(v2), KB_MSG_VIDEO, 0);
    putmem(&in, v2, 128);
    basic(&in, 3, 6);
    putmem(&in, v2 + 128, 128);
    basic(&in, 3, 6);
    putmem(&in, v2 + 256, 44);

    /* Exactly relay/session.c's loop: stop at 0. */
    struct kb_proto p;
    kb_proto_init(&p, 1 << 20);
    struct kb_msg *got[4];
    size_t ngot = 0, pos = 0;
    while (pos < in.len) {
        size_t used = 0;
        struct kb_msg *m = NULL;
        int rc = kb_proto_read(&p, in.data + pos, in.len - pos, &used, &m);
        pos += used;
        ASSERT_EQ(rc >= 0, 1);
        if (rc == 0)
            break;
        ASSERT_TRUE(ngot < 4);
        got[ngot++] = m;
    }
    if (pos != in.len || ngot != 2) {
        fprintf(stderr,
                "%s:%d: session-style read stopped at byte %zu of %zu with %zu of 2 "
                "messages: kb_proto_read returned 0 with input left\n",
                __FILE__, __LINE__, pos, in.len, ngot);
        return 1;
    }
    ASSERT_EQ(got[0]->timestamp, 0x01000000);
    ASSERT_MEM_EQ(got[0]->data, got[0]->len, v1, sizeof(v1));
    ASSERT_EQ(got[1]->timestamp, 0x01000028);
    ASSERT_MEM_EQ(got[1]->data, got[1]->len, v2, sizeof(v2));
    kb_msg_unref(got[0]);
    kb_msg_unref(got[1]);
    kb_proto_free(&p);
    kb_buf_free(&in);
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

static int test_send_control_bytes(void)
{
    struct kb_proto p;
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(p.out_chunk, 128);
    ASSERT_EQ(kb_proto_send_chunk_size(&p, 4096), 0);
    ASSERT_EQ(p.out_chunk, 4096);
    ASSERT_EQ(kb_proto_send_chunk_size(&p, 0), KB_ECHUNKSIZE);
    ASSERT_EQ(kb_proto_send_chunk_size(&p, 0x80000000u), KB_ECHUNKSIZE);
    ASSERT_EQ(p.out_chunk, 4096);
    ASSERT_EQ(kb_proto_send_window_ack(&p, 2500000), 0);
    ASSERT_EQ(kb_proto_send_peer_bw(&p, 2500000, 2), 0);
    ASSERT_EQ(kb_proto_send_user_control(&p, KB_UC_STREAM_BEGIN, 1), 0);
    ASSERT_EQ(kb_proto_send_buffer_length(&p, 1, 3000), 0);
    const uint8_t want[] = {
        /* Set Chunk Size 4096 */
        0x02,
        0,
        0,
        0,
        0,
        0,
        4,
        0x01,
        0,
        0,
        0,
        0,
        0x00,
        0x00,
        0x10,
        0x00,
        /* Window Acknowledgement Size 2500000 */
        0x02,
        0,
        0,
        0,
        0,
        0,
        4,
        0x05,
        0,
        0,
        0,
        0,
        0x00,
        0x26,
        0x25,
        0xA0,
        /* Set Peer Bandwidth 2500000, dynamic */
        0x02,
        0,
        0,
        0,
        0,
        0,
        5,
        0x06,
        0,
        0,
        0,
        0,
        0x00,
        0x26,
        0x25,
        0xA0,
        0x02,
        /* User Control: Stream Begin 1 */
        0x02,
        0,
        0,
        0,
        0,
        0,
        6,
        0x04,
        0,
        0,
        0,
        0,
        0x00,
        0x00,
        0,
        0,
        0,
        1,
        /* User Control: SetBufferLength stream 1, 3000 ms */
        0x02,
        0,
        0,
        0,
        0,
        0,
        10,
        0x04,
        0,
        0,
        0,
        0,
        0x00,
        0x03,
        0,
        0,
        0,
        1,
        0,
        0,
        0x0B,
        0xB8,
    };
    ASSERT_MEM_EQ(p.out.data, p.out.len, want, sizeof(want));
    kb_proto_free(&p);
    return 0;
}

static int test_send_uses_out_chunk(void)
{
    static uint8_t video[1000];
    fill(video, sizeof(video), 10);
    struct kb_proto p;
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(kb_proto_send(&p, 6, KB_MSG_VIDEO, 5, 1, video, 200), 0);
    ASSERT_EQ(p.out.len, 12 + 200 + 1); /* 128 + 72 */
    ASSERT_EQ(kb_proto_send_chunk_size(&p, 300), 0);
    ASSERT_EQ(kb_proto_send(&p, 6, KB_MSG_VIDEO, 0x01000000, 1, video, 1000), 0);
    ASSERT_EQ(p.out.len, (12 + 200 + 1) + 16 + (12 + 4) + 1000 + 3 * (1 + 4));
    struct msgs out = {0};
    ASSERT_OK(read_out(&p, &out));
    ASSERT_EQ(out.n, 3);
    ASSERT_MEM_EQ(out.m[0]->data, out.m[0]->len, video, 200);
    ASSERT_EQ(out.m[1]->type, KB_MSG_SET_CHUNK_SIZE);
    ASSERT_EQ(out.m[2]->timestamp, 0x01000000);
    ASSERT_MEM_EQ(out.m[2]->data, out.m[2]->len, video, 1000);
    msgs_free(&out);
    kb_proto_free(&p);
    return 0;
}

static int test_cmd_builder_bytes(void)
{
    struct kb_proto p;
    kb_proto_init(&p, 1 << 20);
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "x", 2);
    ASSERT_EQ(kb_proto_cmd_end(&p, &b, 5), 0);
    const uint8_t want[] = {
        0x03, 0,    0,    0,   0, 0, 13, 0x14, 5, 0, 0, 0, /* csid 3, 13 bytes, type 20, msid 5 */
        0x02, 0x00, 0x01, 'x',                             /* "x" */
        0x00, 0x40, 0,    0,   0, 0, 0,  0,    0,          /* 2.0 */
    };
    ASSERT_MEM_EQ(p.out.data, p.out.len, want, sizeof(want));
    /* A failed build sends nothing and reports the error. */
    kb_proto_cmd_begin(&b, "y", 3);
    b.w.err = -ENOMEM;
    ASSERT_EQ(kb_proto_cmd_end(&p, &b, 0), -ENOMEM);
    ASSERT_EQ(p.out.len, sizeof(want));
    kb_proto_free(&p);
    return 0;
}

static int test_cmd_builder_parse(void)
{
    struct kb_proto p;
    kb_proto_init(&p, 1 << 20);
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "_result", 1);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "fmsVer", "FMS/3,0,1,123");
    kb_amf_w_prop_number(&b.w, "capabilities", 31);
    kb_amf_w_object_end(&b.w);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "level", "status");
    kb_amf_w_prop_string(&b.w, "code", "NetConnection.Connect.Success");
    kb_amf_w_prop_number(&b.w, "objectEncoding", 0);
    kb_amf_w_object_end(&b.w);
    kb_amf_w_number(&b.w, 7);
    kb_amf_w_string(&b.w, "third");
    ASSERT_EQ(kb_proto_cmd_end(&p, &b, 0), 0);
    ASSERT_EQ(
        kb_proto_send_status(&p, 1, "status", "NetStream.Publish.Start", "demo is now published"),
        0);
    struct msgs out = {0};
    ASSERT_OK(read_out(&p, &out));
    ASSERT_EQ(out.n, 2);

    struct kb_cmd *c = malloc(sizeof(*c));
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(out.m[0]->type, KB_MSG_COMMAND_AMF0);
    ASSERT_EQ(out.m[0]->stream_id, 0);
    ASSERT_EQ(kb_cmd_parse(c, out.m[0]), 0);
    ASSERT_TRUE(kb_amf_str_eq(c->name, "_result"));
    ASSERT_DBL_EQ(c->txn, 1);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&c->doc, c->obj, "fmsVer"), "FMS/3,0,1,123"));
    ASSERT_DBL_EQ(kb_amf_prop(&c->doc, c->obj, "capabilities")->num, 31);
    ASSERT_TRUE(
        kb_amf_str_eq(kb_amf_prop(&c->doc, c->arg1, "code"), "NetConnection.Connect.Success"));
    ASSERT_DBL_EQ(c->arg2->num, 7);
    ASSERT_TRUE(kb_amf_str_eq(c->arg3, "third"));

    ASSERT_EQ(out.m[1]->type, KB_MSG_COMMAND_AMF0);
    ASSERT_EQ(out.m[1]->stream_id, 1);
    ASSERT_EQ(out.m[1]->timestamp, 0);
    ASSERT_EQ(kb_cmd_parse(c, out.m[1]), 0);
    ASSERT_TRUE(kb_amf_str_eq(c->name, "onStatus"));
    ASSERT_DBL_EQ(c->txn, 0);
    ASSERT_NOT_NULL(c->obj);
    ASSERT_EQ(c->obj->type, KB_AMF_NULL);
    ASSERT_NOT_NULL(c->arg1);
    ASSERT_EQ(c->arg1->type, KB_AMF_OBJECT);
    ASSERT_EQ(c->arg1->count, 3);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&c->doc, c->arg1, "level"), "status"));
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&c->doc, c->arg1, "code"), "NetStream.Publish.Start"));
    ASSERT_TRUE(
        kb_amf_str_eq(kb_amf_prop(&c->doc, c->arg1, "description"), "demo is now published"));
    ASSERT_NULL(c->arg2);
    ASSERT_NULL(c->arg3);
    free(c);
    msgs_free(&out);
    kb_proto_free(&p);
    return 0;
}

static int test_cmd_parse_variants(void)
{
    struct kb_cmd *c = malloc(sizeof(*c));
    ASSERT_NOT_NULL(c);
    struct kb_buf body = {0};
    struct kb_amf_w w = {.out = &body, .err = 0};
    kb_amf_w_string(&w, "connect");
    kb_amf_w_number(&w, 1);
    kb_amf_w_object_begin(&w);
    kb_amf_w_prop_string(&w, "app", "live");
    kb_amf_w_object_end(&w);
    ASSERT_EQ(w.err, 0);

    /* AMF3 command message: a 0 byte, then AMF0. */
    struct kb_msg *m = kb_msg_new(KB_MSG_COMMAND_AMF3, 0, 0, (uint32_t)body.len + 1);
    ASSERT_NOT_NULL(m);
    m->data[0] = 0;
    memcpy(m->data + 1, body.data, body.len);
    m->len = (uint32_t)body.len + 1;
    ASSERT_EQ(kb_cmd_parse(c, m), 0);
    ASSERT_TRUE(kb_amf_str_eq(c->name, "connect"));
    ASSERT_DBL_EQ(c->txn, 1);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&c->doc, c->obj, "app"), "live"));
    ASSERT_NULL(c->arg1);
    kb_msg_unref(m);

    /* Type 17 without the 0 byte: plain AMF0. */
    m = kb_msg_new_copy(KB_MSG_COMMAND_AMF3, 0, 0, body.data, (uint32_t)body.len);
    ASSERT_EQ(kb_cmd_parse(c, m), 0);
    ASSERT_TRUE(kb_amf_str_eq(c->name, "connect"));
    kb_msg_unref(m);

    /* Type 20 with a stray 0 byte: not a command. */
    m = kb_msg_new(KB_MSG_COMMAND_AMF0, 0, 0, (uint32_t)body.len + 1);
    m->data[0] = 0;
    memcpy(m->data + 1, body.data, body.len);
    m->len = (uint32_t)body.len + 1;
    ASSERT_TRUE(kb_cmd_parse(c, m) < 0);
    kb_msg_unref(m);

    /* Only a name: no transaction id, no object. */
    m = kb_msg_new_copy(KB_MSG_COMMAND_AMF0, 0, 0, body.data, 10);
    ASSERT_EQ(kb_cmd_parse(c, m), 0);
    ASSERT_TRUE(kb_amf_str_eq(c->name, "connect"));
    ASSERT_DBL_EQ(c->txn, 0);
    ASSERT_NULL(c->obj);
    kb_msg_unref(m);

    /* A transaction id that is not a number counts as 0. */
    const uint8_t strtxn[] = {0x02, 0, 1, 'a', 0x02, 0, 1, 'b'};
    m = kb_msg_new_copy(KB_MSG_COMMAND_AMF0, 0, 0, strtxn, sizeof(strtxn));
    ASSERT_EQ(kb_cmd_parse(c, m), 0);
    ASSERT_DBL_EQ(c->txn, 0);
    kb_msg_unref(m);

    /* Empty, a number first, malformed. */
    m = kb_msg_new(KB_MSG_COMMAND_AMF0, 0, 0, 0);
    ASSERT_EQ(kb_cmd_parse(c, m), KB_ECMD);
    kb_msg_unref(m);
    m = kb_msg_new(KB_MSG_COMMAND_AMF3, 0, 0, 1);
    m->data[0] = 0;
    m->len = 1;
    ASSERT_EQ(kb_cmd_parse(c, m), KB_ECMD);
    kb_msg_unref(m);
    const uint8_t num[] = {0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    m = kb_msg_new_copy(KB_MSG_COMMAND_AMF0, 0, 0, num, sizeof(num));
    ASSERT_EQ(kb_cmd_parse(c, m), KB_ECMD);
    kb_msg_unref(m);
    m = kb_msg_new_copy(KB_MSG_COMMAND_AMF0, 0, 0, body.data, (uint32_t)body.len - 1);
    ASSERT_EQ(kb_cmd_parse(c, m), KB_EAMF);
    kb_msg_unref(m);

    kb_buf_free(&body);
    free(c);
    return 0;
}

int main(void)
{
    RUN(test_peer_chunk_size);
    RUN(test_ack_window);
    RUN(test_ack_sequence_wraps);
    RUN(test_ping);
    RUN(test_abort);
    RUN(test_app_messages_only);
    RUN(test_control_errors);
    RUN(test_ext_ts_without_repeat);
    RUN(test_send_control_bytes);
    RUN(test_send_uses_out_chunk);
    RUN(test_cmd_builder_bytes);
    RUN(test_cmd_builder_parse);
    RUN(test_cmd_parse_variants);
    return test_summary();
}
