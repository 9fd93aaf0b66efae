/* kebun: unit tests for the RTMP chunk stream (relay/rtmp/chunk.c).
 *
 * Encoder tests compare against bytes written out by hand from RTMP 1.0
 * section 5.3. Reader tests build chunk bytes by hand with bytes.h (not with
 * kb_chunk_encode, so the two cannot share a mistake), then
 * feed every input three ways: whole, one byte at a time and in random
 * pieces; all three must give the same messages. Every piece is copied into
 * a buffer of exactly its size, so under ASan a read past the piece fails.
 */
#include "relay/rtmp/chunk.h"

#include <errno.h>

#include "relay/rtmp/error.h"
#include "relay/rtmp/msg.h"
#include "bytes.h"
#include "test.h"

/* ---- hand-made chunk bytes (see bytes.h) -------------------------------- */

/* Payload bytes that never start with a plausible timestamp. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 8) * 13 + 0x5a);
}

/* ---- feeding ------------------------------------------------------------ */

enum { WHOLE, BYTES, RANDOM };
static const char *const mode_names[] = {"whole", "byte-by-byte", "random"};

/* Reported when the reader breaks its own contract (used > n, ...). */
#define CONTRACT (-1000000)

struct sink {
    struct kb_msg **m;
    size_t n, cap;
    size_t drained;    ///< messages only a call with no new input produced
    int apply_control; ///< act on Set Chunk Size and Abort like kb_proto does
};

static void sink_add(struct sink *s, struct kb_msg *m)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->m = realloc(s->m, s->cap * sizeof(*s->m));
        if (!s->m)
            abort();
    }
    s->m[s->n++] = m;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        kb_msg_unref(s->m[i]);
    free(s->m);
    memset(s, 0, sizeof(*s));
}

static int on_message(struct kb_chunk_reader *r, struct sink *s, struct kb_msg *m)
{
    sink_add(s, m);
    if (s->apply_control && m->type == KB_MSG_SET_CHUNK_SIZE && m->len >= 4)
        return kb_chunk_reader_set_chunk_size(r, kb_get_be32(m->data));
    if (s->apply_control && m->type == KB_MSG_ABORT && m->len >= 4)
        kb_chunk_reader_abort(r, kb_get_be32(m->data));
    return 0;
}

/* Feed one piece the way the session does: call until it is consumed. */
static int feed_piece(struct kb_chunk_reader *r, const uint8_t *src, size_t len, struct sink *s)
{
    /* An exact-size copy, so ASan catches a read past the piece. */
    uint8_t *piece = malloc(len ? len : 1);
    if (!piece)
        abort();
    memcpy(piece, src, len);
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        size_t used = (size_t)-1;
        struct kb_msg *m = (struct kb_msg *)piece; /* must be overwritten */
        rc = kb_chunk_read(r, piece + off, len - off, &used, &m);
        if (used > len - off) {
            fprintf(stderr, "kb_chunk_read used %zu of %zu bytes\n", used, len - off);
            rc = CONTRACT;
            break;
        }
        off += used;
        if (rc < 0) {
            if (m) {
                fprintf(stderr, "kb_chunk_read returned %d with a message\n", rc);
                rc = CONTRACT;
            }
            break;
        }
        if (rc == 0 && (off != len || m)) {
            fprintf(stderr, "kb_chunk_read returned 0 with %zu bytes left / message %p\n",
                    len - off, (void *)m);
            rc = CONTRACT;
            break;
        }
        if (rc == 1) {
            if (!m) {
                fprintf(stderr, "kb_chunk_read returned 1 without a message\n");
                rc = CONTRACT;
                break;
            }
            if ((rc = on_message(r, s, m)) < 0)
                break;
        }
        rc = 0;
    }
    free(piece);
    return rc;
}

/* After the input ends, ask for messages the reader still holds. */
static int drain(struct kb_chunk_reader *r, struct sink *s)
{
    static const uint8_t nothing[1];
    for (int i = 0; i < 100; i++) {
        size_t used = (size_t)-1;
        struct kb_msg *m = NULL;
        int rc = kb_chunk_read(r, nothing, 0, &used, &m);
        if (rc < 0)
            return rc;
        if (used != 0)
            return CONTRACT;
        if (rc == 0)
            return 0;
        s->drained++;
        if ((rc = on_message(r, s, m)) < 0)
            return rc;
    }
    return CONTRACT;
}

/* Feed p[0..n) cut by mode. 0 or the reader's first error. */
static int feed(struct kb_chunk_reader *r, const uint8_t *p, size_t n, int mode, uint64_t *seed,
                struct sink *s)
{
    size_t off = 0;
    while (off < n) {
        size_t len = n - off;
        if (mode == BYTES)
            len = 1;
        else if (mode == RANDOM) {
            /* Mostly short pieces, to cut headers often, some long ones. */
            uint32_t k = test_rand(seed);
            size_t max = k % 4 == 0 ? 4000 : k % 4 == 1 ? 40 : 7;
            size_t l = 1 + test_rand(seed) % max;
            if (l < len)
                len = l;
        }
        int rc = feed_piece(r, p + off, len, s);
        if (rc < 0)
            return rc;
        off += len;
    }
    return 0;
}

/* ---- expectations ------------------------------------------------------- */

struct exp {
    uint8_t type;
    uint32_t ts, sid, len;
    const uint8_t *data; ///< NULL: do not compare bytes
};

static int check_msg(const struct kb_msg *m, const struct exp *e, size_t i)
{
    if (m->type != e->type || m->timestamp != e->ts || m->stream_id != e->sid || m->len != e->len) {
        fprintf(stderr,
                "message %zu: got type %u ts %u (0x%x) sid %u len %u, "
                "want type %u ts %u (0x%x) sid %u len %u\n",
                i, m->type, m->timestamp, m->timestamp, m->stream_id, m->len, e->type, e->ts, e->ts,
                e->sid, e->len);
        return 1;
    }
    ASSERT_LE(m->len, m->cap);
    if (e->data)
        ASSERT_MEM_EQ(m->data, m->len, e->data, e->len);
    return 0;
}

static int check_sink(const struct sink *s, const struct exp *e, size_t n)
{
    for (size_t i = 0; i < s->n && i < n; i++)
        ASSERT_OK(check_msg(s->m[i], &e[i], i));
    ASSERT_EQ(s->n, n);
    return 0;
}

/* Feed bytes whole, byte by byte and in random pieces (three seeds), each
 * into a fresh reader; every way must give exactly the expected messages. */
static int check_all_modes(const uint8_t *p, size_t n, const struct exp *e, size_t ne,
                           uint32_t chunk_size, int apply_control)
{
    for (int run = 0; run < 5; run++) {
        int mode = run < 2 ? run : RANDOM;
        uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(run + 1);
        struct kb_chunk_reader r;
        struct sink s = {.apply_control = apply_control};
        kb_chunk_reader_init(&r, 1 << 24);
        if (chunk_size)
            ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, chunk_size), 0);
        int rc = feed(&r, p, n, mode, &seed, &s);
        if (rc == 0)
            rc = drain(&r, &s);
        if (rc != 0 || check_sink(&s, e, ne) != 0) {
            fprintf(stderr, "... feeding %zu bytes %s (run %d): rc %d (%s)\n", n, mode_names[mode],
                    run, rc, rc == CONTRACT ? "contract" : kb_strerror(rc));
            return 1;
        }
        ASSERT_EQ(s.drained, 0);
        sink_free(&s);
        kb_chunk_reader_free(&r);
    }
    return 0;
}

/* Feed bytes into a fresh reader whole; return the first error (or 0). */
static int read_all(const uint8_t *p, size_t n, uint32_t max_message, struct sink *s,
                    struct kb_chunk_reader *r)
{
    kb_chunk_reader_init(r, max_message);
    uint64_t seed = 1;
    int rc = feed(r, p, n, WHOLE, &seed, s);
    return rc;
}

static const struct kb_chunk_stream *find_cs(const struct kb_chunk_reader *r, uint32_t csid)
{
    for (uint32_t i = 0; i < r->n_streams; i++)
        if (r->streams[i].csid == csid)
            return &r->streams[i];
    return NULL;
}

/* ---- encoder ------------------------------------------------------------ */

static int encode(const struct kb_chunk_hdr *h, const uint8_t *payload, uint32_t chunk,
                  const uint8_t *want, size_t want_len)
{
    size_t size = kb_chunk_encoded_size(h, chunk);
    ASSERT_EQ(size, want_len);
    uint8_t *out = malloc(size + 16);
    ASSERT_NOT_NULL(out);
    memset(out, 0xEE, size + 16);
    size_t n = kb_chunk_encode(h, payload, chunk, out);
    ASSERT_EQ(n, want_len);
    ASSERT_MEM_EQ(out, n, want, want_len);
    /* Nothing written past the announced size. */
    for (size_t i = 0; i < 16; i++)
        ASSERT_EQ(out[size + i], 0xEE);
    free(out);
    return 0;
}

static int test_encode_small(void)
{
    const uint8_t payload[5] = {'h', 'e', 'l', 'l', 'o'};
    struct kb_chunk_hdr h = {.csid = 3, .timestamp = 1000, .len = 5, .type = 20, .stream_id = 1};
    const uint8_t want[] = {
        0x03,                   /* fmt 0, csid 3 */
        0x00, 0x03, 0xE8,       /* timestamp 1000 */
        0x00, 0x00, 0x05,       /* length 5 */
        0x14,                   /* type 20 */
        0x01, 0x00, 0x00, 0x00, /* stream id 1, little-endian */
        'h',  'e',  'l',  'l',  'o',
    };
    ASSERT_OK(encode(&h, payload, 128, want, sizeof(want)));
    /* Exactly one chunk's worth still fits one chunk. */
    ASSERT_OK(encode(&h, payload, 5, want, sizeof(want)));
    /* Stream ids are little-endian, the rest big-endian. */
    h.stream_id = 0x01020304;
    h.timestamp = 0x0A0B0C;
    const uint8_t want2[] = {0x03, 0x0A, 0x0B, 0x0C, 0x00, 0x00, 0x05, 0x14, 0x04,
                             0x03, 0x02, 0x01, 'h',  'e',  'l',  'l',  'o'};
    ASSERT_OK(encode(&h, payload, 128, want2, sizeof(want2)));
    return 0;
}

static int test_encode_multi_chunk(void)
{
    uint8_t payload[300];
    fill(payload, sizeof(payload), 1);
    struct kb_chunk_hdr h = {
        .csid = 6, .timestamp = 0x010203, .len = 300, .type = 9, .stream_id = 1};
    uint8_t want[12 + 300 + 2];
    const uint8_t head[12] = {0x06, 0x01, 0x02, 0x03, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0};
    memcpy(want, head, 12);
    memcpy(want + 12, payload, 128);
    want[140] = 0xC6; /* fmt 3, csid 6 */
    memcpy(want + 141, payload + 128, 128);
    want[269] = 0xC6;
    memcpy(want + 270, payload + 256, 44);
    ASSERT_OK(encode(&h, payload, 128, want, sizeof(want)));

    /* A length that is an exact multiple of the chunk size: no empty
     * trailing chunk. */
    h.len = 256;
    uint8_t want256[12 + 256 + 1];
    memcpy(want256, head, 12);
    want256[5] = 0x01;
    want256[6] = 0x00;
    memcpy(want256 + 12, payload, 128);
    want256[140] = 0xC6;
    memcpy(want256 + 141, payload + 128, 128);
    ASSERT_OK(encode(&h, payload, 128, want256, sizeof(want256)));

    /* Chunk size 1: a continuation header before every byte but the first. */
    h.len = 4;
    const uint8_t want1[] = {0x06,       0x01, 0x02,       0x03, 0x00,      0x00,       0x04,
                             0x09,       1,    0,          0,    0,         payload[0], 0xC6,
                             payload[1], 0xC6, payload[2], 0xC6, payload[3]};
    ASSERT_OK(encode(&h, payload, 1, want1, sizeof(want1)));
    return 0;
}

static int test_encode_csid_forms(void)
{
    uint8_t payload[200];
    fill(payload, sizeof(payload), 2);
    static const struct {
        uint32_t csid;
        uint8_t b0[3], b3[3]; ///< basic header of the first and the continuation chunk
        size_t blen;
    } cases[] = {
        {2, {0x02}, {0xC2}, 1},
        {63, {0x3F}, {0xFF}, 1},
        {64, {0x00, 0x00}, {0xC0, 0x00}, 2},
        {65, {0x00, 0x01}, {0xC0, 0x01}, 2},
        {319, {0x00, 0xFF}, {0xC0, 0xFF}, 2},
        {320, {0x01, 0x00, 0x01}, {0xC1, 0x00, 0x01}, 3},
        {1000, {0x01, 0xA8, 0x03}, {0xC1, 0xA8, 0x03}, 3}, /* 1000 - 64 = 0x03A8 */
        {65599, {0x01, 0xFF, 0xFF}, {0xC1, 0xFF, 0xFF}, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kb_chunk_hdr h = {
            .csid = cases[i].csid, .timestamp = 7, .len = 200, .type = 8, .stream_id = 0};
        struct kb_buf want = {0};
        putmem(&want, cases[i].b0, cases[i].blen);
        putmem(&want, (const uint8_t[]){0, 0, 7, 0, 0, 200, 8, 0, 0, 0, 0}, 11);
        putmem(&want, payload, 128);
        putmem(&want, cases[i].b3, cases[i].blen);
        putmem(&want, payload + 128, 72);
        if (encode(&h, payload, 128, want.data, want.len)) {
            fprintf(stderr, "... csid %u\n", cases[i].csid);
            return 1;
        }
        kb_buf_free(&want);
    }
    return 0;
}

static int test_encode_ext_ts(void)
{
    uint8_t payload[200];
    fill(payload, sizeof(payload), 3);

    /* Just below the threshold: no extended timestamp. */
    struct kb_chunk_hdr h = {
        .csid = 4, .timestamp = 0xFFFFFE, .len = 200, .type = 8, .stream_id = 1};
    struct kb_buf want = {0};
    putmem(&want, (const uint8_t[]){0x04, 0xFF, 0xFF, 0xFE, 0, 0, 200, 8, 1, 0, 0, 0}, 12);
    putmem(&want, payload, 128);
    put8(&want, 0xC4);
    putmem(&want, payload + 128, 72);
    ASSERT_OK(encode(&h, payload, 128, want.data, want.len));
    kb_buf_free(&want);

    /* 0xFFFFFF itself, 2^24 and the largest timestamp go into the extended
     * field, repeated on every format-3 continuation chunk. */
    static const uint32_t ts[] = {0xFFFFFF, 0x1000000, 0x12345678, 0xFFFFFFFF};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        h.timestamp = ts[i];
        putmem(&want, (const uint8_t[]){0x04, 0xFF, 0xFF, 0xFF, 0, 0, 200, 8, 1, 0, 0, 0}, 12);
        put32(&want, ts[i]);
        putmem(&want, payload, 128);
        put8(&want, 0xC4);
        put32(&want, ts[i]);
        putmem(&want, payload + 128, 72);
        ASSERT_OK(encode(&h, payload, 128, want.data, want.len));
        kb_buf_free(&want);
    }

    /* Several continuation chunks, each with the repeat. */
    h.timestamp = 0x01000000;
    h.len = 10;
    putmem(&want, (const uint8_t[]){0x04, 0xFF, 0xFF, 0xFF, 0, 0, 10, 8, 1, 0, 0, 0}, 12);
    put32(&want, 0x01000000);
    for (int i = 0; i < 10; i += 4) {
        if (i) {
            put8(&want, 0xC4);
            put32(&want, 0x01000000);
        }
        putmem(&want, payload + i, i + 4 <= 10 ? 4 : 2);
    }
    ASSERT_OK(encode(&h, payload, 4, want.data, want.len));
    kb_buf_free(&want);
    return 0;
}

static int test_encode_zero_length(void)
{
    static const uint8_t dummy[1];
    struct kb_chunk_hdr h = {.csid = 3, .timestamp = 0, .len = 0, .type = 20, .stream_id = 0};
    const uint8_t want[] = {0x03, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0};
    ASSERT_OK(encode(&h, dummy, 128, want, sizeof(want)));
    /* Zero length with an extended timestamp: one chunk, the field once. */
    h.timestamp = 0xFFFFFFFF;
    const uint8_t want_ext[] = {0x03, 0xFF, 0xFF, 0xFF, 0,    0,    0,    0x14,
                                0,    0,    0,    0,    0xFF, 0xFF, 0xFF, 0xFF};
    ASSERT_OK(encode(&h, dummy, 1, want_ext, sizeof(want_ext)));
    return 0;
}

static int test_chunk_append(void)
{
    uint8_t payload[1000];
    fill(payload, sizeof(payload), 4);
    struct kb_chunk_hdr h = {
        .csid = 5, .timestamp = 0x2000000, .len = 1000, .type = 18, .stream_id = 3};
    size_t size = kb_chunk_encoded_size(&h, 100);
    uint8_t *direct = malloc(size);
    ASSERT_NOT_NULL(direct);
    ASSERT_EQ(kb_chunk_encode(&h, payload, 100, direct), size);

    struct kb_buf b = {0};
    putmem(&b, "xyz", 3);
    ASSERT_EQ(kb_chunk_append(&b, &h, payload, 100), 0);
    ASSERT_EQ(b.len, 3 + size);
    ASSERT_MEM_EQ(b.data, 3, "xyz", 3);
    ASSERT_MEM_EQ(b.data + 3, size, direct, size);
    kb_buf_free(&b);
    free(direct);
    return 0;
}

static int test_msg_wire(void)
{
    static const struct {
        uint8_t type;
        uint32_t csid;
    } cases[] = {{KB_MSG_AUDIO, KB_CSID_AUDIO},
                 {KB_MSG_VIDEO, KB_CSID_VIDEO},
                 {KB_MSG_DATA_AMF0, KB_CSID_DATA},
                 {KB_MSG_COMMAND_AMF0, KB_CSID_COMMAND}};
    uint8_t payload[500];
    fill(payload, sizeof(payload), 5);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kb_msg *m = kb_msg_new_copy(cases[i].type, 0x1234567, 9, payload, 500);
        ASSERT_NOT_NULL(m);
        ASSERT_EQ(kb_msg_wire(m, 128, 1), 0);
        struct kb_chunk_hdr h = {.csid = cases[i].csid,
                                 .timestamp = 0x1234567,
                                 .len = 500,
                                 .type = cases[i].type,
                                 .stream_id = 1};
        size_t size = kb_chunk_encoded_size(&h, 128);
        uint8_t *want = malloc(size);
        ASSERT_NOT_NULL(want);
        kb_chunk_encode(&h, payload, 128, want);
        ASSERT_MEM_EQ(m->wire, m->wire_len, want, size);

        /* Same parameters: kept. Others: refused, the bytes untouched,
         * since write queues may point into them. */
        const uint8_t *w = m->wire;
        ASSERT_EQ(kb_msg_wire(m, 128, 1), 0);
        ASSERT_TRUE(m->wire == w);
        ASSERT_EQ(kb_msg_wire(m, 4096, 1), -EBUSY);
        ASSERT_EQ(kb_msg_wire(m, 128, 7), -EBUSY);
        ASSERT_TRUE(m->wire == w);
        ASSERT_EQ(m->wire_chunk, 128);
        ASSERT_EQ(m->wire_msid, 1);
        ASSERT_MEM_EQ(m->wire, m->wire_len, want, size);
        free(want);
        kb_msg_unref(m);
    }
    return 0;
}

/* ---- reader: header formats --------------------------------------------- */

static int test_read_fmt0(void)
{
    uint8_t a[5] = {1, 2, 3, 4, 5};
    struct kb_buf in = {0};
    chdr(&in, 0, 3, 1000, 5, 20, 0x01020304);
    putmem(&in, a, 5);
    const struct exp e[] = {{20, 1000, 0x01020304, 5, a}};
    ASSERT_OK(check_all_modes(in.data, in.len, e, 1, 0, 0));
    kb_buf_free(&in);
    return 0;
}

static int test_read_deltas(void)
{
    uint8_t a[4], b[6], c[6], d[6];
    fill(a, 4, 10);
    fill(b, 6, 11);
    fill(c, 6, 12);
    fill(d, 6, 13);
    uint8_t e5[6];
    fill(e5, 6, 14);
    struct kb_buf in = {0};
    chdr(&in, 0, 4, 1000, 4, 8, 1); /* absolute 1000 */
    putmem(&in, a, 4);
    chdr(&in, 1, 4, 40, 6, 9, 0); /* delta 40, new length and type */
    putmem(&in, b, 6);
    chdr(&in, 2, 4, 20, 0, 0, 0); /* delta 20, same length and type */
    putmem(&in, c, 6);
    basic(&in, 3, 4); /* a new message repeating everything, delta 20 too */
    putmem(&in, d, 6);
    basic(&in, 3, 4);
    putmem(&in, e5, 6);
    const struct exp e[] = {
        {8, 1000, 1, 4, a}, {9, 1040, 1, 6, b},  {9, 1060, 1, 6, c},
        {9, 1080, 1, 6, d}, {9, 1100, 1, 6, e5},
    };
    ASSERT_OK(check_all_modes(in.data, in.len, e, 5, 0, 0));
    kb_buf_free(&in);
    return 0;
}

/* RTMP 1.0 5.3.1.2.4: a format-3 chunk that starts a message after a
 * format-0 header advances the timestamp by the format-0 timestamp. */
static int test_read_fmt3_after_fmt0(void)
{
    uint8_t a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, c[3] = {7, 8, 9};
    struct kb_buf in = {0};
    chdr(&in, 0, 5, 1000, 3, 18, 2);
    putmem(&in, a, 3);
    basic(&in, 3, 5);
    putmem(&in, b, 3);
    basic(&in, 3, 5);
    putmem(&in, c, 3);
    const struct exp e[] = {{18, 1000, 2, 3, a}, {18, 2000, 2, 3, b}, {18, 3000, 2, 3, c}};
    ASSERT_OK(check_all_modes(in.data, in.len, e, 3, 0, 0));
    kb_buf_free(&in);
    return 0;
}

/* Multi-chunk messages back to back on one chunk stream, the second
 * announced by a format-1 header (new length and type, delta, stream id
 * inherited). */
static int test_read_fmt1_multichunk(void)
{
    uint8_t a[300];
    fill(a, sizeof(a), 15);
    struct kb_buf in = {0};
    chdr(&in, 0, 7, 5, 300, 9, 1);
    putmem(&in, a, 128);
    basic(&in, 3, 7);
    putmem(&in, a + 128, 128);
    basic(&in, 3, 7);
    putmem(&in, a + 256, 44);
    chdr(&in, 1, 7, 33, 300, 8, 0);
    putmem(&in, a, 128);
    basic(&in, 3, 7);
    putmem(&in, a + 128, 128);
    basic(&in, 3, 7);
    putmem(&in, a + 256, 44);
    const struct exp e[] = {{9, 5, 1, 300, a}, {8, 38, 1, 300, a}};
    ASSERT_OK(check_all_modes(in.data, in.len, e, 2, 0, 0));
    kb_buf_free(&in);
    return 0;
}

static int test_read_ext_ts(void)
{
    uint8_t a[10], b[10], c[10], d[10];
    fill(a, 10, 20);
    fill(b, 10, 21);
    fill(c, 10, 22);
    fill(d, 10, 23);
    struct kb_buf in = {0};
    chdr(&in, 0, 4, 0x12345678, 10, 9, 1); /* extended absolute */
    putmem(&in, a, 10);
    chdr(&in, 1, 4, 0x01000000, 10, 9, 0); /* extended delta */
    putmem(&in, b, 10);
    chdr(&in, 2, 4, 0xFFFFFF, 0, 0, 0); /* extended delta of exactly 0xFFFFFF */
    putmem(&in, c, 10);
    chdr(&in, 2, 4, 5, 0, 0, 0); /* back to a 3-byte delta */
    putmem(&in, d, 10);
    chdr(&in, 0, 4, 0xFFFFFFFF, 10, 9, 1); /* largest absolute */
    putmem(&in, a, 10);
    chdr(&in, 0, 4, 0xFFFFFE, 10, 9, 1); /* largest 3-byte absolute */
    putmem(&in, b, 10);
    const struct exp e[] = {
        {9, 0x12345678, 1, 10, a},
        {9, 0x13345678, 1, 10, b},
        {9, 0x13345678 + 0xFFFFFF, 1, 10, c},
        {9, 0x13345678 + 0xFFFFFF + 5, 1, 10, d},
        {9, 0xFFFFFFFF, 1, 10, a},
        {9, 0xFFFFFE, 1, 10, b},
    };
    ASSERT_OK(check_all_modes(in.data, in.len, e, 6, 0, 0));
    kb_buf_free(&in);
    return 0;
}

/* One message with an extended timestamp split into format-3 chunks, written
 * with (repeat = 1) or without (repeat = 0) the extended timestamp on the
 * continuation chunks. */
static void ext_message(struct kb_buf *in, uint32_t csid, unsigned fmt, uint32_t ts,
                        const uint8_t *p, uint32_t len, uint32_t chunk, int repeat)
{
    chdr(in, fmt, csid, ts, len, 9, 1);
    for (uint32_t off = 0;;) {
        uint32_t n = len - off < chunk ? len - off : chunk;
        putmem(in, p + off, n);
        off += n;
        if (off >= len)
            break;
        basic(in, 3, csid);
        if (repeat)
            put32(in, ts);
    }
}

static int test_read_ext_continuation_styles(void)
{
    uint8_t a[300], b[130], c[2000];
    fill(a, sizeof(a), 30);
    fill(b, sizeof(b), 31);
    fill(c, sizeof(c), 32);
    const uint8_t tail[4] = {0xAA, 0xBB, 0xCC, 0xDD};
    const uint8_t cs3[4] = {0, 0, 0, 3}, cs128[4] = {0, 0, 0, 128};
    const struct exp e[] = {
        {9, 0x01000000, 1, 300, a},
        {9, 0x01000010, 1, 130, b},
        {KB_MSG_SET_CHUNK_SIZE, 0, 0, 4, cs3},
        {9, 0xFFFFFFFF, 1, 10, c},
        {KB_MSG_SET_CHUNK_SIZE, 0, 0, 4, cs128},
        {9, 0xFFFFFF, 1, 2000, c},
        {8, 1, 1, 4, tail},
    };
    struct kb_buf in[2] = {{0}};
    for (int repeat = 0; repeat < 2; repeat++) {
        struct kb_buf *o = &in[repeat];
        ext_message(o, 4, 0, 0x01000000, a, 300, 128, repeat);
        /* The last continuation chunk holds 2 bytes, fewer than an
         * extended timestamp. */
        ext_message(o, 4, 0, 0x01000010, b, 130, 128, repeat);
        /* Chunk size 3: every continuation chunk is shorter than the
         * 4-byte field that may or may not be there. */
        chdr(o, 0, 2, 0, 4, KB_MSG_SET_CHUNK_SIZE, 0);
        putmem(o, cs3, 4);
        ext_message(o, 6, 0, 0xFFFFFFFF, c, 10, 3, repeat);
        chdr(o, 0, 2, 0, 4, KB_MSG_SET_CHUNK_SIZE, 0); /* still at chunk size 3 */
        putmem(o, cs128, 3);
        basic(o, 3, 2);
        putmem(o, cs128 + 3, 1);
        ext_message(o, 4, 0, 0xFFFFFF, c, 2000, 128, repeat);
        /* A message without extended timestamp ends the input, so the
         * reader can look past the last short chunk. */
        chdr(o, 0, 4, 1, 4, 8, 1);
        putmem(o, tail, 4);
        if (check_all_modes(o->data, o->len, e, 7, 0, 1)) {
            fprintf(stderr, "... %s repeated extended timestamps\n", repeat ? "with" : "without");
            return 1;
        }
    }
    /* The two styles differ only in the repeated fields: 2 + 1 + 3 + 15
     * continuation chunks. */
    ASSERT_EQ(in[1].len - in[0].len, 4 * (2 + 1 + 3 + 15));
    kb_buf_free(&in[0]);
    kb_buf_free(&in[1]);
    return 0;
}

/* A format-3 chunk starting a new message after an extended delta: the
 * repeated field may be present or not; the delta applies either way. */
static int test_read_ext_fmt3_new_message(void)
{
    uint8_t a[20], b[20], c[20];
    fill(a, 20, 40);
    fill(b, 20, 41);
    fill(c, 20, 42);
    for (int repeat = 0; repeat < 2; repeat++) {
        struct kb_buf in = {0};
        chdr(&in, 0, 8, 100, 20, 8, 1);
        putmem(&in, a, 20);
        chdr(&in, 2, 8, 0x02000000, 0, 0, 0); /* extended delta */
        putmem(&in, b, 20);
        basic(&in, 3, 8); /* new message, same delta */
        if (repeat)
            put32(&in, 0x02000000);
        putmem(&in, c, 20);
        const struct exp e[] = {
            {8, 100, 1, 20, a}, {8, 0x02000064, 1, 20, b}, {8, 0x04000064, 1, 20, c}};
        if (check_all_modes(in.data, in.len, e, 3, 0, 0)) {
            fprintf(stderr, "... %s the repeated field\n", repeat ? "with" : "without");
            return 1;
        }
        kb_buf_free(&in);
    }
    /* After an extended format-0 timestamp, a format-3 new message advances
     * by that timestamp (the field is the absolute value). */
    for (int repeat = 0; repeat < 2; repeat++) {
        struct kb_buf in = {0};
        chdr(&in, 0, 8, 0x01000000, 20, 8, 1);
        putmem(&in, a, 20);
        basic(&in, 3, 8);
        if (repeat)
            put32(&in, 0x01000000);
        putmem(&in, b, 20);
        const struct exp e[] = {{8, 0x01000000, 1, 20, a}, {8, 0x02000000, 1, 20, b}};
        if (check_all_modes(in.data, in.len, e, 2, 0, 0)) {
            fprintf(stderr, "... format 0 %s the repeated field\n", repeat ? "with" : "without");
            return 1;
        }
        kb_buf_free(&in);
    }
    return 0;
}

static int test_read_basic_header_forms(void)
{
    uint8_t a[200];
    fill(a, sizeof(a), 50);
    static const uint32_t ids[] = {2, 63, 64, 319, 320, 65599};
    struct kb_buf in = {0};
    struct exp e[8];
    size_t ne = 0;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        chdr(&in, 0, ids[i], (uint32_t)i, 200, 9, 1);
        putmem(&in, a, 128);
        basic(&in, 3, ids[i]);
        putmem(&in, a + 128, 72);
        e[ne++] = (struct exp){9, (uint32_t)i, 1, 200, a};
    }
    /* The 3-byte form may also carry a small csid: 01 00 00 is csid 64,
     * the same chunk stream as 00 00. */
    put8(&in, 0x01);
    put8(&in, 0x00);
    put8(&in, 0x00);
    putmem(&in, (const uint8_t[]){0, 0, 9, 0, 0, 3, 8, 2, 0, 0, 0}, 11);
    putmem(&in, a, 3);
    put8(&in, 0xC0);
    put8(&in, 0x00); /* format 3 on csid 64, 2-byte form: a new message */
    putmem(&in, a, 3);
    e[ne++] = (struct exp){8, 9, 2, 3, a};
    e[ne++] = (struct exp){8, 18, 2, 3, a};
    ASSERT_OK(check_all_modes(in.data, in.len, e, ne, 0, 0));
    kb_buf_free(&in);
    return 0;
}

static int test_read_zero_length(void)
{
    uint8_t a[3] = {1, 2, 3};
    struct kb_buf in = {0};
    chdr(&in, 0, 3, 10, 0, 20, 0);
    basic(&in, 3, 3); /* zero-length again, +10 */
    chdr(&in, 0, 4, 0x01000000, 0, 8, 1);
    chdr(&in, 0, 3, 50, 3, 20, 0);
    putmem(&in, a, 3);
    const struct exp e[] = {
        {20, 10, 0, 0, NULL}, {20, 20, 0, 0, NULL}, {8, 0x01000000, 1, 0, NULL}, {20, 50, 0, 3, a}};
    ASSERT_OK(check_all_modes(in.data, in.len, e, 4, 0, 0));
    kb_buf_free(&in);
    return 0;
}

/* ---- reader: chunk size, interleaving, abort ---------------------------- */

static int test_read_chunk_size_change(void)
{
    uint8_t a[700];
    fill(a, sizeof(a), 60);
    struct kb_buf in = {0};
    /* 700 bytes at 128, then Set Chunk Size 300, then 700 bytes at 300. */
    chdr(&in, 0, 4, 0, 700, 9, 1);
    for (int off = 0; off < 700; off += 128) {
        if (off)
            basic(&in, 3, 4);
        putmem(&in, a + off, off + 128 <= 700 ? 128 : 700 - (size_t)off);
    }
    uint8_t scs[4] = {0, 0, 0x01, 0x2C};
    chdr(&in, 0, 2, 0, 4, KB_MSG_SET_CHUNK_SIZE, 0);
    putmem(&in, scs, 4);
    chdr(&in, 0, 4, 40, 700, 9, 1);
    putmem(&in, a, 300);
    basic(&in, 3, 4);
    putmem(&in, a + 300, 300);
    basic(&in, 3, 4);
    putmem(&in, a + 600, 100);
    /* And down to 1. */
    uint8_t one[4] = {0, 0, 0, 1};
    chdr(&in, 0, 2, 0, 4, KB_MSG_SET_CHUNK_SIZE, 0);
    putmem(&in, one, 4);
    chdr(&in, 0, 4, 80, 5, 9, 1);
    for (int i = 0; i < 5; i++) {
        if (i)
            basic(&in, 3, 4);
        put8(&in, a[i]);
    }
    const struct exp e[] = {
        {9, 0, 1, 700, a},  {KB_MSG_SET_CHUNK_SIZE, 0, 0, 4, scs},
        {9, 40, 1, 700, a}, {KB_MSG_SET_CHUNK_SIZE, 0, 0, 4, one},
        {9, 80, 1, 5, a},
    };
    ASSERT_OK(check_all_modes(in.data, in.len, e, 5, 0, 1));
    kb_buf_free(&in);
    return 0;
}

static int test_read_interleaved(void)
{
    uint8_t a[300], v[300];
    fill(a, sizeof(a), 70);
    fill(v, sizeof(v), 71);
    struct kb_buf in = {0};
    chdr(&in, 0, 4, 100, 300, 8, 1);
    putmem(&in, a, 128);
    chdr(&in, 0, 6, 90, 300, 9, 1);
    putmem(&in, v, 128);
    basic(&in, 3, 4);
    putmem(&in, a + 128, 128);
    basic(&in, 3, 6);
    putmem(&in, v + 128, 128);
    basic(&in, 3, 4);
    putmem(&in, a + 256, 44);
    /* A whole control message between two chunks of the video message. */
    chdr(&in, 0, 2, 0, 4, KB_MSG_ACK, 0);
    put32(&in, 12345);
    basic(&in, 3, 6);
    putmem(&in, v + 256, 44);
    /* Next pair, both format 3 starting new messages. */
    basic(&in, 3, 6);
    putmem(&in, v, 128);
    basic(&in, 3, 4);
    putmem(&in, a, 128);
    basic(&in, 3, 6);
    putmem(&in, v + 128, 128);
    basic(&in, 3, 4);
    putmem(&in, a + 128, 128);
    basic(&in, 3, 6);
    putmem(&in, v + 256, 44);
    basic(&in, 3, 4);
    putmem(&in, a + 256, 44);
    const uint8_t ack[4] = {0, 0, 0x30, 0x39};
    const struct exp e[] = {
        {8, 100, 1, 300, a}, {KB_MSG_ACK, 0, 0, 4, ack}, {9, 90, 1, 300, v},
        {9, 180, 1, 300, v}, {8, 200, 1, 300, a},
    };
    ASSERT_OK(check_all_modes(in.data, in.len, e, 5, 0, 0));
    kb_buf_free(&in);
    return 0;
}

/* An Abort message (as kb_proto applies it) drops the partial message. */
static int test_read_abort_message(void)
{
    uint8_t a[300], b[10];
    fill(a, sizeof(a), 80);
    fill(b, sizeof(b), 81);
    const uint8_t abort4[4] = {0, 0, 0, 4};
    struct kb_buf in = {0};
    chdr(&in, 0, 4, 100, 300, 8, 1);
    putmem(&in, a, 128); /* first chunk only */
    chdr(&in, 0, 2, 0, 4, KB_MSG_ABORT, 0);
    putmem(&in, abort4, 4);
    chdr(&in, 0, 4, 200, 10, 8, 1); /* a format-0 header is legal again */
    putmem(&in, b, 10);
    const struct exp e[] = {{KB_MSG_ABORT, 0, 0, 4, abort4}, {8, 200, 1, 10, b}};
    ASSERT_OK(check_all_modes(in.data, in.len, e, 2, 0, 1));
    kb_buf_free(&in);
    return 0;
}

static int test_read_abort_direct(void)
{
    uint8_t a[300], b[10];
    fill(a, sizeof(a), 82);
    fill(b, sizeof(b), 83);
    struct kb_buf part1 = {0}, part2 = {0};
    chdr(&part1, 0, 4, 100, 300, 8, 1);
    putmem(&part1, a, 128);
    basic(&part1, 3, 4);
    putmem(&part1, a + 128, 128);
    chdr(&part1, 0, 6, 7, 5, 9, 1);
    putmem(&part1, b, 5);
    chdr(&part2, 0, 4, 200, 10, 8, 1);
    putmem(&part2, b, 10);

    struct kb_chunk_reader r;
    struct sink s = {0};
    uint64_t seed = 5;
    kb_chunk_reader_init(&r, 1 << 20);
    ASSERT_EQ(feed(&r, part1.data, part1.len, BYTES, &seed, &s), 0);
    ASSERT_EQ(s.n, 1);
    const struct kb_chunk_stream *cs = find_cs(&r, 4);
    ASSERT_NOT_NULL(cs);
    ASSERT_NOT_NULL(cs->msg);
    ASSERT_EQ(cs->msg->len, 256);
    kb_chunk_reader_abort(&r, 99); /* unknown csid: nothing happens */
    kb_chunk_reader_abort(&r, 6);  /* no partial message there */
    ASSERT_NOT_NULL(find_cs(&r, 4)->msg);
    kb_chunk_reader_abort(&r, 4);
    ASSERT_NULL(find_cs(&r, 4)->msg);
    ASSERT_EQ(feed(&r, part2.data, part2.len, RANDOM, &seed, &s), 0);
    const struct exp e[] = {{9, 7, 1, 5, b}, {8, 200, 1, 10, b}};
    ASSERT_OK(check_sink(&s, e, 2));
    sink_free(&s);
    kb_chunk_reader_free(&r);
    kb_buf_free(&part1);
    kb_buf_free(&part2);
    return 0;
}

/* ---- round trips -------------------------------------------------------- */

static uint32_t pick_ts(uint64_t *seed)
{
    static const uint32_t special[] = {0,         1,         0xFFFFFE,   0xFFFFFF,
                                       0x1000000, 0x1000001, 0xFFFFFFFE, 0xFFFFFFFF};
    switch (test_rand(seed) % 4) {
    case 0:
        return special[test_rand(seed) % 8];
    case 1:
        return 0xFFFFFF - 50 + test_rand(seed) % 100;
    case 2:
        return test_rand(seed);
    default:
        return test_rand(seed) % 100000;
    }
}

static uint32_t pick_len(uint64_t *seed, uint32_t chunk)
{
    switch (test_rand(seed) % 5) {
    case 0:
        return test_rand(seed) % 8;
    case 1: /* around a multiple of the chunk size */
        if (chunk <= 20000) {
            uint32_t k = 1 + test_rand(seed) % (20000 / chunk);
            uint32_t v = k * chunk + test_rand(seed) % 3;
            v = v >= 1 ? v - 1 : v;
            return v > 20000 ? 20000 : v;
        }
        return test_rand(seed) % 20001;
    default:
        return test_rand(seed) % 20001;
    }
}

static uint32_t pick_chunk(uint64_t *seed)
{
    static const uint32_t special[] = {1, 2, 3, 4, 5, 127, 128, 129, 4096, 65536, 69999, 70000};
    if (test_rand(seed) % 2)
        return special[test_rand(seed) % 12];
    return 1 + test_rand(seed) % 70000;
}

/* csids from every basic header form; a reader tracks at most 64. */
static const uint32_t pool[] = {2,  3,   4,   5,   6,   7,   8,    31,   63,    64,
                                65, 100, 318, 319, 320, 321, 1000, 4660, 65598, 65599};
#define POOL_N (sizeof(pool) / sizeof(pool[0]))

struct rt_msg {
    struct kb_chunk_hdr h;
    uint8_t *payload;
    uint8_t *enc; ///< kb_chunk_encode output
    size_t enc_len;
    size_t next; ///< next chunk to emit when interleaving
    size_t nchunks;
};

/* Where chunk i of an encoded message starts and how long it is. */
static void chunk_span(const struct rt_msg *m, uint32_t chunk, size_t i, size_t *off, size_t *hdr,
                       size_t *len)
{
    size_t b = m->h.csid < 64 ? 1 : m->h.csid < 320 ? 2 : 3;
    size_t ext = m->h.timestamp >= 0xFFFFFF ? 4 : 0;
    size_t first = b + 11 + ext;
    size_t cont = b + ext;
    size_t payload_before = i * (size_t)chunk;
    *off = i == 0 ? 0 : first + payload_before + (i - 1) * cont;
    *hdr = i == 0 ? first : cont;
    size_t left = m->h.len - payload_before;
    *len = left < chunk ? left : chunk;
}

static int free_rt(struct rt_msg *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ms[i].payload);
        free(ms[i].enc);
    }
    return 0;
}

/* Encode messages with kb_chunk_encode, then read them back, batch by batch
 * with a new chunk size for each batch. */
static int test_roundtrip_random(void)
{
    uint64_t seed = 0x1234567887654321ull;
    struct kb_chunk_reader r;
    kb_chunk_reader_init(&r, 20000);
    size_t total = 0;
    for (int batch = 0; batch < 60; batch++) {
        uint32_t chunk = pick_chunk(&seed);
        ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, chunk), 0);
        struct rt_msg ms[8];
        size_t nm = 1 + test_rand(&seed) % 8;
        struct kb_buf in = {0};
        struct exp e[8];
        for (size_t i = 0; i < nm; i++) {
            struct rt_msg *m = &ms[i];
            m->h = (struct kb_chunk_hdr){
                .csid = pool[test_rand(&seed) % POOL_N],
                .timestamp = pick_ts(&seed),
                .len = pick_len(&seed, chunk),
                .stream_id = test_rand(&seed) % 3 ? 1 : test_rand(&seed),
                .type = (uint8_t)(1 + test_rand(&seed) % 255),
            };
            m->payload = malloc(m->h.len + 1);
            ASSERT_NOT_NULL(m->payload);
            for (uint32_t k = 0; k < m->h.len; k++)
                m->payload[k] = (uint8_t)test_rand(&seed);
            m->enc_len = kb_chunk_encoded_size(&m->h, chunk);
            m->enc = malloc(m->enc_len);
            ASSERT_NOT_NULL(m->enc);
            ASSERT_EQ(kb_chunk_encode(&m->h, m->payload, chunk, m->enc), m->enc_len);
            putmem(&in, m->enc, m->enc_len);
            e[i] = (struct exp){m->h.type, m->h.timestamp, m->h.stream_id, m->h.len, m->payload};
        }
        struct sink s = {0};
        int mode = batch % 7 == 0 && in.len < 50000 ? BYTES : batch % 3 == 0 ? WHOLE : RANDOM;
        int rc = feed(&r, in.data, in.len, mode, &seed, &s);
        if (rc || check_sink(&s, e, nm)) {
            fprintf(stderr, "... batch %d, chunk size %u, %zu messages, fed %s: rc %d\n", batch,
                    chunk, nm, mode_names[mode], rc);
            return 1;
        }
        total += nm;
        sink_free(&s);
        kb_buf_free(&in);
        free_rt(ms, nm);
    }
    ASSERT_LE(200, total);
    kb_chunk_reader_free(&r);
    return 0;
}

/* Messages on distinct chunk streams with their chunks shuffled together
 * (order within a message kept), in both extended-timestamp styles. */
static int test_roundtrip_interleaved(void)
{
    uint64_t seed = 0xfeedfacecafebeefull;
    for (int repeat = 0; repeat < 2; repeat++) {
        struct kb_chunk_reader r;
        kb_chunk_reader_init(&r, 20000);
        for (int batch = 0; batch < 60; batch++) {
            uint32_t chunk = test_rand(&seed) % 3 ? 1 + test_rand(&seed) % 3000 : pick_chunk(&seed);
            ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, chunk), 0);
            struct rt_msg ms[6];
            size_t nm = 1 + test_rand(&seed) % 6;
            size_t start = test_rand(&seed) % POOL_N;
            for (size_t i = 0; i < nm; i++) {
                struct rt_msg *m = &ms[i];
                m->h = (struct kb_chunk_hdr){
                    .csid = pool[(start + i * 3) % POOL_N], /* distinct */
                    .timestamp = pick_ts(&seed),
                    .len = test_rand(&seed) % 4 ? test_rand(&seed) % 6000 : test_rand(&seed) % 5,
                    .stream_id = 1,
                    .type = (uint8_t)(8 + i % 2),
                };
                m->payload = malloc(m->h.len + 1);
                ASSERT_NOT_NULL(m->payload);
                for (uint32_t k = 0; k < m->h.len; k++)
                    m->payload[k] = (uint8_t)test_rand(&seed);
                m->enc_len = kb_chunk_encoded_size(&m->h, chunk);
                m->enc = malloc(m->enc_len);
                ASSERT_NOT_NULL(m->enc);
                kb_chunk_encode(&m->h, m->payload, chunk, m->enc);
                m->nchunks = m->h.len ? (m->h.len - 1) / chunk + 1 : 1;
                m->next = 0;
            }
            struct kb_buf in = {0};
            struct exp e[7];
            size_t ne = 0;
            for (;;) {
                size_t live = 0;
                for (size_t i = 0; i < nm; i++)
                    live += ms[i].next < ms[i].nchunks;
                if (!live)
                    break;
                size_t pick = test_rand(&seed) % live, i = 0;
                for (;; i++)
                    if (ms[i].next < ms[i].nchunks && pick-- == 0)
                        break;
                struct rt_msg *m = &ms[i];
                size_t off, hdr, len;
                chunk_span(m, chunk, m->next, &off, &hdr, &len);
                if (m->next > 0 && !repeat && m->h.timestamp >= 0xFFFFFF)
                    putmem(&in, m->enc + off, hdr - 4); /* drop the repeated field */
                else
                    putmem(&in, m->enc + off, hdr);
                putmem(&in, m->enc + off + hdr, len);
                if (++m->next == m->nchunks)
                    e[ne++] = (struct exp){m->h.type, m->h.timestamp, m->h.stream_id, m->h.len,
                                           m->payload};
            }
            /* End with a message (one byte: one chunk at any chunk size)
             * the reader can look past the last chunk with. */
            const uint8_t seq[1] = {(uint8_t)batch};
            chdr(&in, 0, 2, 0, 1, 3, 0);
            putmem(&in, seq, 1);
            e[ne++] = (struct exp){3, 0, 0, 1, seq};

            struct sink s = {0};
            int mode = batch % 9 == 0 && in.len < 30000 ? BYTES : batch % 4 == 0 ? WHOLE : RANDOM;
            int rc = feed(&r, in.data, in.len, mode, &seed, &s);
            if (rc == 0)
                rc = drain(&r, &s);
            if (rc || check_sink(&s, e, ne)) {
                fprintf(stderr,
                        "... %s repeated timestamps, batch %d, chunk size %u, fed %s: "
                        "rc %d\n",
                        repeat ? "with" : "without", batch, chunk, mode_names[mode], rc);
                return 1;
            }
            sink_free(&s);
            kb_buf_free(&in);
            free_rt(ms, nm);
        }
        kb_chunk_reader_free(&r);
    }
    return 0;
}

/* ---- errors ------------------------------------------------------------- */

static int test_err_too_big(void)
{
    uint8_t a[1001];
    fill(a, sizeof(a), 90);
    struct kb_buf in = {0};
    chdr(&in, 0, 4, 0, 1000, 9, 1);
    for (int off = 0; off < 1000; off += 128) {
        if (off)
            basic(&in, 3, 4);
        putmem(&in, a + off, off + 128 <= 1000 ? 128 : 1000 - (size_t)off);
    }
    struct kb_chunk_reader r;
    struct sink s = {0};
    ASSERT_EQ(read_all(in.data, in.len, 1000, &s, &r), 0); /* exactly the limit */
    ASSERT_EQ(s.n, 1);
    sink_free(&s);
    /* One more byte, announced by a format-1 header. */
    kb_buf_free(&in);
    chdr(&in, 1, 4, 0, 1001, 9, 0);
    uint64_t seed = 1;
    ASSERT_EQ(feed(&r, in.data, in.len, BYTES, &seed, &s), KB_ETOOBIG);
    ASSERT_EQ(r.bad_csid, 4);
    ASSERT_STR_EQ(r.why, "chunk stream 4: a 1001-byte message (type 9) is over max_message_size 1000");
    ASSERT_EQ(s.n, 0);
    kb_chunk_reader_free(&r);

    /* Also when the first header of a chunk stream announces it. */
    kb_buf_free(&in);
    chdr(&in, 0, 300, 0, 0xFFFFFF, 9, 1);
    ASSERT_EQ(read_all(in.data, in.len, 8 << 20, &s, &r), KB_ETOOBIG);
    ASSERT_EQ(r.bad_csid, 300);
    kb_chunk_reader_free(&r);
    kb_buf_free(&in);
    return 0;
}

static int test_err_fmt23_new_csid(void)
{
    for (unsigned fmt = 2; fmt <= 3; fmt++) {
        struct kb_buf in = {0};
        /* A message on csid 4 does not give csid 5 a history. */
        chdr(&in, 0, 4, 0, 1, 8, 1);
        put8(&in, 0);
        if (fmt == 2)
            chdr(&in, 2, 5, 10, 0, 0, 0);
        else
            basic(&in, 3, 5);
        putmem(&in, "abcd", 4);
        struct kb_chunk_reader r;
        struct sink s = {0};
        int rc = read_all(in.data, in.len, 1 << 20, &s, &r);
        if (rc != KB_ECHUNK) {
            fprintf(stderr, "format %u first on a new csid: rc %d, want KB_ECHUNK\n", fmt, rc);
            return 1;
        }
        ASSERT_EQ(r.bad_csid, 5);
        ASSERT_STR_HAS(r.why, "chunk stream 5: format-");
        ASSERT_STR_HAS(r.why, "header on a chunk stream that never had a full header");
        ASSERT_EQ(s.n, 1);
        sink_free(&s);
        kb_chunk_reader_free(&r);
        kb_buf_free(&in);
    }
    return 0;
}

static int test_err_header_mid_message(void)
{
    for (unsigned fmt = 0; fmt <= 2; fmt++) {
        struct kb_buf in = {0};
        uint8_t a[128];
        fill(a, sizeof(a), 91);
        chdr(&in, 0, 6, 0, 300, 9, 1);
        putmem(&in, a, 128);
        /* Another chunk stream in between is fine... */
        chdr(&in, 0, 4, 0, 2, 8, 1);
        putmem(&in, a, 2);
        /* ...a new header on csid 6 before its message is complete is not. */
        chdr(&in, fmt, 6, 1, 300, 9, 1);
        putmem(&in, a, 128);
        struct kb_chunk_reader r;
        struct sink s = {0};
        int rc = read_all(in.data, in.len, 1 << 20, &s, &r);
        if (rc != KB_ECHUNK) {
            fprintf(stderr, "format %u mid-message: rc %d, want KB_ECHUNK\n", fmt, rc);
            return 1;
        }
        ASSERT_EQ(r.bad_csid, 6);
        ASSERT_STR_HAS(r.why, "chunk stream 6: format-");
        ASSERT_STR_HAS(r.why, "before the 300-byte message in progress was complete (128 bytes "
                              "received)");
        ASSERT_EQ(s.n, 1);
        sink_free(&s);
        kb_chunk_reader_free(&r);
        kb_buf_free(&in);
    }
    return 0;
}

static int test_err_too_many_streams(void)
{
    struct kb_buf in = {0};
    /* 64 distinct chunk streams, each with a complete message: fine. */
    for (uint32_t i = 0; i < KB_CHUNK_MAX_STREAMS; i++) {
        chdr(&in, 0, 2 + i * 97, 0, 1, 8, 1);
        put8(&in, (uint8_t)i);
    }
    /* Reusing one of them: fine. */
    chdr(&in, 0, 2, 0, 1, 8, 1);
    put8(&in, 0);
    struct kb_chunk_reader r;
    struct sink s = {0};
    ASSERT_EQ(read_all(in.data, in.len, 1 << 20, &s, &r), 0);
    ASSERT_EQ(s.n, KB_CHUNK_MAX_STREAMS + 1);
    ASSERT_EQ(r.n_streams, KB_CHUNK_MAX_STREAMS);
    /* The 65th distinct csid is refused. */
    kb_buf_free(&in);
    uint32_t extra = 2 + KB_CHUNK_MAX_STREAMS * 97;
    chdr(&in, 0, extra, 0, 1, 8, 1);
    put8(&in, 0);
    uint64_t seed = 3;
    ASSERT_EQ(feed(&r, in.data, in.len, WHOLE, &seed, &s), KB_ETOOMANY);
    ASSERT_EQ(r.bad_csid, extra);
    ASSERT_STR_HAS(r.why, "more than 64 chunk streams on one connection");
    sink_free(&s);
    kb_chunk_reader_free(&r);
    kb_buf_free(&in);
    return 0;
}

static int test_err_chunk_size(void)
{
    struct kb_chunk_reader r;
    kb_chunk_reader_init(&r, 1000);
    ASSERT_EQ(r.chunk_size, KB_CHUNK_DEFAULT);
    ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 0), KB_ECHUNKSIZE);
    ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 0x80000000u), KB_ECHUNKSIZE);
    ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 0xFFFFFFFFu), KB_ECHUNKSIZE);
    ASSERT_EQ(r.chunk_size, KB_CHUNK_DEFAULT); /* unchanged by a refusal */
    ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 1), 0);
    ASSERT_EQ(r.chunk_size, 1);
    ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 0x7FFFFFFF), 0);
    ASSERT_EQ(r.chunk_size, 0x7FFFFFFF);
    kb_chunk_reader_free(&r);
    return 0;
}

/* A peer announcing 8 MB and sending 100 bytes pins about 4 KB, and the
 * buffer then grows with what actually arrives. */
static int test_memory_follows_data(void)
{
    struct kb_buf in = {0};
    uint8_t a[60000];
    fill(a, sizeof(a), 92);
    chdr(&in, 0, 4, 0, 8u << 20, 9, 1);
    putmem(&in, a, 100);
    struct kb_chunk_reader r;
    kb_chunk_reader_init(&r, 16u << 20);
    ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 65536), 0);
    struct sink s = {0};
    uint64_t seed = 9;
    ASSERT_EQ(feed(&r, in.data, in.len, WHOLE, &seed, &s), 0);
    ASSERT_EQ(s.n, 0);
    const struct kb_chunk_stream *cs = find_cs(&r, 4);
    ASSERT_NOT_NULL(cs);
    ASSERT_NOT_NULL(cs->msg);
    ASSERT_EQ(cs->len, 8u << 20);
    ASSERT_EQ(cs->msg->len, 100);
    ASSERT_LE(cs->msg->cap, 4096);

    /* 60000 more bytes: the buffer stays within twice what arrived. */
    ASSERT_EQ(feed(&r, a, sizeof(a), RANDOM, &seed, &s), 0);
    cs = find_cs(&r, 4);
    ASSERT_EQ(cs->msg->len, 60100);
    ASSERT_LE(60100, cs->msg->cap);
    ASSERT_LE(cs->msg->cap, 2 * 60100);

    kb_chunk_reader_free(&r);

    /* Many chunk streams each announcing the maximum: still small. */
    kb_chunk_reader_init(&r, 16u << 20);
    kb_buf_free(&in);
    for (uint32_t c = 10; c < 60; c++) {
        chdr(&in, 0, c, 0, 0xFFFFFF, 9, 1); /* the largest length there is */
        putmem(&in, a, 128);                /* one whole chunk each */
    }
    ASSERT_EQ(feed(&r, in.data, in.len, WHOLE, &seed, &s), 0);
    for (uint32_t c = 10; c < 60; c++) {
        const struct kb_chunk_stream *t = find_cs(&r, c);
        ASSERT_NOT_NULL(t);
        ASSERT_NOT_NULL(t->msg);
        ASSERT_EQ(t->msg->len, 128);
        ASSERT_LE(t->msg->cap, 4096);
    }
    kb_chunk_reader_free(&r);
    kb_buf_free(&in);
    return 0;
}

/* A complete message may sit inside the reader after kb_chunk_read()
 * returned another one having consumed all its input; a caller that stopped
 * there would leave it waiting for the peer's next bytes, and a peer
 * waiting for our answer to a command sends none. Hence the contract: call
 * until it returns 0 (relay/session.c's read loop does).
 *
 * Such a message can only come from the 4 bytes stashed while looking for an
 * absent format-3 extended timestamp. Chunk size 2; csid 4 sends 3 bytes of
 * audio with an extended timestamp (without the repeated field on format-3
 * chunks) and csid 3 a 4-byte command; the input ends with
 *   C4 a2 | C3 c2 c3
 * The 4 bytes after C4 are a2 C3 c2 c3: the reader stashes them, completes
 * csid 4 and returns, and csid 3's message is complete inside the stash. */
static int test_stash_not_held_back(void)
{
    const uint8_t a[3] = {0x11, 0x12, 0x13}, c[4] = {0x21, 0x22, 0x23, 0x24};
    struct kb_buf in = {0};
    chdr(&in, 0, 4, 0x01000000, 3, 8, 1);
    putmem(&in, a, 2);
    chdr(&in, 0, 3, 0, 4, 20, 1);
    putmem(&in, c, 2);
    basic(&in, 3, 4); /* no repeated extended timestamp */
    put8(&in, a[2]);
    basic(&in, 3, 3);
    putmem(&in, c + 2, 2);

    for (int mode = WHOLE; mode <= BYTES; mode++) {
        struct kb_chunk_reader r;
        kb_chunk_reader_init(&r, 1 << 20);
        ASSERT_EQ(kb_chunk_reader_set_chunk_size(&r, 2), 0);
        struct sink s = {0};
        uint64_t seed = 1;
        /* The contract (chunk.h): call until it returns 0, even with no
         * input left; feed() and drain() together do exactly that. */
        ASSERT_EQ(feed(&r, in.data, in.len, mode, &seed, &s), 0);
        ASSERT_EQ(drain(&r, &s), 0);
        const struct exp e[] = {{8, 0x01000000, 1, 3, a}, {20, 0, 1, 4, c}};
        ASSERT_OK(check_sink(&s, e, 2));
        sink_free(&s);
        kb_chunk_reader_free(&r);
    }
    kb_buf_free(&in);
    return 0;
}

int main(void)
{
    RUN(test_encode_small);
    RUN(test_encode_multi_chunk);
    RUN(test_encode_csid_forms);
    RUN(test_encode_ext_ts);
    RUN(test_encode_zero_length);
    RUN(test_chunk_append);
    RUN(test_msg_wire);
    RUN(test_read_fmt0);
    RUN(test_read_deltas);
    RUN(test_read_fmt3_after_fmt0);
    RUN(test_read_fmt1_multichunk);
    RUN(test_read_ext_ts);
    RUN(test_read_ext_continuation_styles);
    RUN(test_read_ext_fmt3_new_message);
    RUN(test_read_basic_header_forms);
    RUN(test_read_zero_length);
    RUN(test_read_chunk_size_change);
    RUN(test_read_interleaved);
    RUN(test_read_abort_message);
    RUN(test_read_abort_direct);
    RUN(test_roundtrip_random);
    RUN(test_roundtrip_interleaved);
    RUN(test_err_too_big);
    RUN(test_err_fmt23_new_csid);
    RUN(test_err_header_mid_message);
    RUN(test_err_too_many_streams);
    RUN(test_err_chunk_size);
    RUN(test_memory_follows_data);
    RUN(test_stash_not_held_back);
    return test_summary();
}
