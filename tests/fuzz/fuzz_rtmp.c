/* kebun: fuzz target for the server side of an RTMP connection.
 *
 * It drives relay/rtmp/ the way relay/session.c does, without a socket: a
 * server handshake is fed the peer's bytes, the bytes after it go to
 * kb_proto_read() in a loop, and every message the application would see
 * goes through what the commands and the stream hub do with it (command
 * parsing, FLV classification, AMF decoding of data) and is then encoded
 * once for players with kb_msg_wire(), as player_on_msg() does.
 *
 * Input: byte 0 chooses how the rest is cut into reads, because a TCP read
 * may end anywhere (inside a chunk header, an extended timestamp, a
 * handshake packet); the rest is what the client sent, C0 first.
 *
 * Besides memory errors and leaks, the target aborts when a documented
 * contract breaks: kb_proto_read() returning 0 must have consumed all its
 * input (the session drops what it does not consume) and hold back no
 * complete message (the session then waits for the next read), the
 * handshake must answer exactly once C0+C1 is in, decoded AMF must stay
 * inside the message, the wire form of a message must read back as the
 * same message, and a reply built with the AMF writer and kb_proto_send*()
 * (echoing the peer's strings, chunked with the peer's chunk size) must
 * read back as what was written.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "fuzz.h"
#include "relay/rtmp/amf.h"
#include "relay/rtmp/caps.h"
#include "relay/rtmp/chunk.h"
#include "relay/rtmp/error.h"
#include "relay/rtmp/flv.h"
#include "relay/rtmp/handshake.h"
#include "relay/rtmp/msg.h"
#include "relay/rtmp/proto.h"

#define MAX_MESSAGE (1u << 20) ///< kb_proto's message bound, as a small server would set it
#define WIRE_CHUNK 4096        ///< chunk size players are sent with (config default)
#define WIRE_MSID 1            ///< KB_PLAY_MSID
#define HELLO (1 + KB_HS_SIZE) ///< C0+C1
#define NAME_CAP 513           ///< commands.c copies names into NAME_MAX_LEN + 1 bytes

/* How byte 0 cuts the input into reads: 0 = one read, 1 = byte by byte,
 * else random sizes up to the limit (the other five bits seed them). */
static const uint32_t read_limits[8] = {0, 1, 2, 5, 16, 64, 512, 4096};

struct splitter {
    uint32_t limit;
    uint32_t rng;
};

static size_t next_read(struct splitter *sp, size_t left)
{
    if (sp->limit == 0)
        return left;
    sp->rng ^= sp->rng << 13;
    sp->rng ^= sp->rng >> 17;
    sp->rng ^= sp->rng << 5;
    size_t n = 1 + sp->rng % sp->limit;
    return n < left ? n : left;
}

struct conn {
    struct kb_handshake hs;
    struct kb_proto proto;
    int hs_done;
    int dead;           ///< a fault ended the connection
    size_t hs_used;     ///< bytes the handshake consumed
    uint64_t proto_fed; ///< bytes kb_proto_read() consumed
    const uint8_t *c1;  ///< the client's C1 in the input, once it is all there
};

/* Check a decoded AMF document: links only point forward (so walks end),
 * counts match the links and every name and string lies inside p[0..n). */
static void check_amf(const struct kb_amf_doc *doc, const uint8_t *p, size_t n)
{
    const char *lo = (const char *)p, *hi = (const char *)p + n;

    KB_FUZZ_CHECK(doc->n >= 1 && doc->n <= KB_AMF_MAX_NODES);
    KB_FUZZ_CHECK(doc->nodes[0].count == doc->roots);
    for (uint16_t i = 0; i < doc->n; i++) {
        const struct kb_amf_node *nd = &doc->nodes[i];
        KB_FUZZ_CHECK(nd->first_child == 0 || (nd->first_child > i && nd->first_child < doc->n));
        KB_FUZZ_CHECK(nd->next == 0 || (nd->next > i && nd->next < doc->n));
        uint16_t count = 0;
        for (uint16_t c = nd->first_child; c; c = doc->nodes[c].next)
            count++;
        KB_FUZZ_CHECK(count == nd->count);
        if (nd->name_len)
            KB_FUZZ_CHECK(nd->name >= lo && nd->name_len <= hi - nd->name);
        if (nd->type == KB_AMF_STRING || nd->type == KB_AMF_TYPED_OBJECT)
            KB_FUZZ_CHECK(nd->str >= lo && nd->str_len <= hi - nd->str);
    }
    for (unsigned i = 0; i < doc->roots; i++)
        KB_FUZZ_CHECK(kb_amf_root(doc, i) != NULL);
    KB_FUZZ_CHECK(kb_amf_root(doc, doc->roots) == NULL);
}

/* What on_connect(), on_publish() and on_play() read from a command. */
static void use_command(const struct kb_cmd *c)
{
    static const char *const props[] = {"app", "objectEncoding", "flashVer", "tcUrl"};
    char name[NAME_CAP];

    KB_FUZZ_CHECK(c->name && c->name->type == KB_AMF_STRING);
    (void)kb_amf_str_eq(c->name, "connect");
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        const struct kb_amf_node *v = kb_amf_prop(&c->doc, c->obj, props[i]);
        if (v && kb_amf_str_copy(v, name, sizeof(name)) >= 0)
            KB_FUZZ_CHECK(strlen(name) < sizeof(name));
    }
    /* The Enhanced RTMP declaration, read as commands.c (a player's
     * connect) and output.c (a platform's _result, both objects) do. */
    struct kb_caps caps = {0};
    char why[96], desc[160];
    for (int i = 0; i < 2; i++) {
        int bad = kb_caps_parse(&caps, &c->doc, i ? c->arg1 : c->obj, why, sizeof(why));
        KB_FUZZ_CHECK(bad >= 0 && (bad == 0) == (why[0] == '\0') && strlen(why) < sizeof(why));
    }
    kb_caps_describe(&caps, desc, sizeof(desc));
    KB_FUZZ_CHECK(strlen(desc) < sizeof(desc));
    const struct kb_amf_node *args[] = {c->arg1, c->arg2, c->arg3};
    for (size_t i = 0; i < 3; i++) {
        int len = kb_amf_str_copy(args[i], name, sizeof(name));
        if (len >= 0)
            KB_FUZZ_CHECK((size_t)len == args[i]->str_len && strlen(name) < sizeof(name));
    }
}

/* Bit-equal doubles: a NaN transaction id must come back as that NaN. */
static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

/* The next application message in the bytes of a reply. */
static struct kb_msg *read_reply(struct kb_proto *in, const struct kb_buf *out, size_t *pos)
{
    struct kb_msg *m = NULL;
    size_t used = 0;
    int r = kb_proto_read(in, out->data + *pos, out->len - *pos, &used, &m);
    *pos += used;
    KB_FUZZ_CHECK(r == 1 && m != NULL);
    return m;
}

static void check_command(const struct kb_msg *m, struct kb_cmd *c, const char *name, double txn)
{
    KB_FUZZ_CHECK(m->type == KB_MSG_COMMAND_AMF0 && m->stream_id == WIRE_MSID);
    KB_FUZZ_CHECK(kb_cmd_parse(c, m) == 0);
    check_amf(&c->doc, m->data, m->len);
    KB_FUZZ_CHECK(kb_amf_str_eq(c->name, name) && same_double(c->txn, txn));
    KB_FUZZ_CHECK(c->obj && c->obj->type == KB_AMF_NULL);
    KB_FUZZ_CHECK(c->arg1 && c->arg1->type == KB_AMF_OBJECT);
}

/* Answer a command the way commands.c answers connect and publish: control
 * messages, a _result and an onStatus, here echoing the peer's strings and
 * chunked with the peer's chunk size (any value it may set). Reading the
 * bytes back must give what was written. */
static void check_reply(const struct kb_cmd *c, uint32_t chunk)
{
    static char name[NAME_CAP];
    static struct kb_cmd back;
    const struct kb_amf_node *arg = c->arg1 && c->arg1->type == KB_AMF_STRING ? c->arg1 : c->name;
    struct kb_proto out, in;
    struct kb_cmd_builder b;

    (void)kb_amf_str_copy(c->name, name, sizeof(name));
    kb_proto_init(&out, MAX_MESSAGE);
    KB_FUZZ_CHECK(kb_proto_send_window_ack(&out, 2500000) == 0);
    KB_FUZZ_CHECK(kb_proto_send_peer_bw(&out, 2500000, 2) == 0);
    KB_FUZZ_CHECK(kb_proto_send_chunk_size(&out, chunk) == 0 && out.out_chunk == chunk);
    KB_FUZZ_CHECK(kb_proto_send_user_control(&out, KB_UC_STREAM_BEGIN, WIRE_MSID) == 0);
    kb_proto_cmd_begin(&b, "_result", c->txn);
    kb_amf_w_null(&b.w);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "code", name);
    kb_amf_w_prop_number(&b.w, "txn", c->txn);
    kb_amf_w_prop_bool(&b.w, "ok", 1);
    kb_amf_w_name(&b.w, "arg");
    kb_amf_w_stringn(&b.w, arg->str, arg->str_len);
    kb_amf_w_name(&b.w, "list");
    kb_amf_w_ecma_begin(&b.w, 1);
    kb_amf_w_prop_string(&b.w, name, "");
    kb_amf_w_object_end(&b.w);
    kb_amf_w_object_end(&b.w);
    KB_FUZZ_CHECK(kb_proto_cmd_end(&out, &b, WIRE_MSID) == 0);
    KB_FUZZ_CHECK(kb_proto_send_status(&out, WIRE_MSID, "status", name, name) == 0);
    KB_FUZZ_CHECK(kb_proto_send_buffer_length(&out, WIRE_MSID, 3000) == 0);

    kb_proto_init(&in, MAX_MESSAGE);
    size_t pos = 0, len = strlen(name);
    struct kb_msg *m = read_reply(&in, &out.out, &pos);
    KB_FUZZ_CHECK(m->type == KB_MSG_USER_CONTROL && m->len == 6 &&
                  kb_get_be16(m->data) == KB_UC_STREAM_BEGIN);
    KB_FUZZ_CHECK(in.ack_window == 2500000 && in.peer_bw == 2500000 && in.rd.chunk_size == chunk);
    kb_msg_unref(m);

    m = read_reply(&in, &out.out, &pos);
    check_command(m, &back, "_result", c->txn);
    const struct kb_amf_node *o = back.arg1;
    KB_FUZZ_CHECK(kb_amf_str_eq(kb_amf_prop(&back.doc, o, "code"), name));
    const struct kb_amf_node *v = kb_amf_prop(&back.doc, o, "txn");
    KB_FUZZ_CHECK(v && v->type == KB_AMF_NUMBER && same_double(v->num, c->txn));
    v = kb_amf_prop(&back.doc, o, "ok");
    KB_FUZZ_CHECK(v && v->type == KB_AMF_BOOLEAN && v->num == 1);
    v = kb_amf_prop(&back.doc, o, "arg");
    KB_FUZZ_CHECK(v && v->type == KB_AMF_STRING && v->str_len == arg->str_len &&
                  (v->str_len == 0 || memcmp(v->str, arg->str, v->str_len) == 0));
    v = kb_amf_prop(&back.doc, o, "list");
    KB_FUZZ_CHECK(v && v->type == KB_AMF_ECMA_ARRAY && v->count == 1);
    v = &back.doc.nodes[v->first_child];
    KB_FUZZ_CHECK(v->name_len == len && memcmp(v->name, name, len) == 0);
    kb_msg_unref(m);

    m = read_reply(&in, &out.out, &pos);
    check_command(m, &back, "onStatus", 0);
    KB_FUZZ_CHECK(kb_amf_str_eq(kb_amf_prop(&back.doc, back.arg1, "code"), name));
    KB_FUZZ_CHECK(kb_amf_str_eq(kb_amf_prop(&back.doc, back.arg1, "description"), name));
    kb_msg_unref(m);

    m = read_reply(&in, &out.out, &pos);
    KB_FUZZ_CHECK(m->type == KB_MSG_USER_CONTROL && m->len == 10 && in.buffer_ms == 3000);
    kb_msg_unref(m);
    KB_FUZZ_CHECK(pos == out.out.len);
    size_t none = 0;
    KB_FUZZ_CHECK(kb_proto_read(&in, out.out.data + pos, 0, &none, &m) == 0 && none == 0);

    kb_proto_free(&in);
    kb_proto_free(&out);
}

static void on_command(const struct kb_msg *m, uint32_t chunk)
{
    static struct kb_cmd c; /* 10 KiB of nodes: keep it off the stack */
    int err = kb_cmd_parse(&c, m);
    KB_FUZZ_CHECK(err == 0 || err == KB_EAMF || err == KB_ECMD);
    if (err < 0)
        return;
    const uint8_t *p = m->data;
    size_t n = m->len;
    if (m->type == KB_MSG_COMMAND_AMF3 && n > 0 && p[0] == 0) {
        p++;
        n--;
    }
    check_amf(&c.doc, p, n);
    use_command(&c);
    check_reply(&c, chunk);
}

static void on_media(struct kb_msg *m)
{
    kb_flv_classify(m);
    int video = m->type == KB_MSG_VIDEO;
    if (m->type == KB_MSG_VIDEO)
        KB_FUZZ_CHECK((m->flags & (KB_MSGF_VIDEO | KB_MSGF_AUDIO)) == KB_MSGF_VIDEO);
    else if (m->type == KB_MSG_AUDIO)
        KB_FUZZ_CHECK((m->flags & (KB_MSGF_VIDEO | KB_MSGF_AUDIO | KB_MSGF_KEY)) == KB_MSGF_AUDIO);
    else
        KB_FUZZ_CHECK((m->flags & ~KB_MSGF_METADATA) == 0);
    int32_t cts = kb_flv_cts(m);
    KB_FUZZ_CHECK(cts >= -(1 << 23) && cts < (1 << 23));
    /* What a legacy peer, and one that took everything, may be sent. */
    struct kb_caps none = {0}, all;
    kb_caps_all(&all);
    enum kb_caps_verdict v = kb_caps_admit(&none, m);
    KB_FUZZ_CHECK((m->flags & KB_MSGF_EX) ? v != KB_CAPS_OK : v == KB_CAPS_OK);
    char what[96];
    kb_caps_what(kb_caps_admit(&all, m), m, what, sizeof(what));
    KB_FUZZ_CHECK(strlen(what) < sizeof(what));
    /* Any track of a multitrack message stays inside it. */
    if (m->type == KB_MSG_VIDEO || m->type == KB_MSG_AUDIO) {
        struct kb_flv_tag t;
        int first = kb_flv_tag_parse(m->data, m->len, video, &t);
        for (int id = -1; first == 0 && id < 4; id++) {
            int err = kb_flv_tag_parse_track(m->data, m->len, video, id, &t);
            KB_FUZZ_CHECK(err == 0 || err == -ENOENT || err == -EINVAL);
            KB_FUZZ_CHECK(err != 0 || ((uint64_t)t.body + t.body_len <= m->len));
        }
    }
    KB_FUZZ_CHECK(kb_flv_codec_name(m->codec, video) != NULL);

    if (m->type == KB_MSG_DATA_AMF0) {
        static struct kb_amf_doc doc;
        int err = kb_amf_decode(&doc, m->data, m->len);
        KB_FUZZ_CHECK(err == 0 || err == KB_EAMF);
        if (err == 0) {
            check_amf(&doc, m->data, m->len);
            (void)kb_amf_prop(&doc, kb_amf_root(&doc, 1), "duration");
        }
    }
}

/* The wire form must read back as the message it was built from. */
static void check_wire(const struct kb_msg *m)
{
    /* The csid only sets the basic header's size, and every csid
     * kb_msg_wire() picks is below 64. */
    struct kb_chunk_hdr h = {.csid = KB_CSID_COMMAND,
                             .timestamp = m->timestamp,
                             .len = m->len,
                             .type = m->type,
                             .stream_id = WIRE_MSID};
    struct kb_chunk_reader rd;
    struct kb_msg *back = NULL;
    size_t used = 0;

    KB_FUZZ_CHECK(m->wire && m->wire_len == kb_chunk_encoded_size(&h, WIRE_CHUNK));
    kb_chunk_reader_init(&rd, MAX_MESSAGE);
    KB_FUZZ_CHECK(kb_chunk_reader_set_chunk_size(&rd, WIRE_CHUNK) == 0);
    int r = kb_chunk_read(&rd, m->wire, m->wire_len, &used, &back);
    KB_FUZZ_CHECK(r == 1 && used == m->wire_len);
    KB_FUZZ_CHECK(back->type == m->type && back->timestamp == m->timestamp &&
                  back->stream_id == WIRE_MSID && back->len == m->len);
    KB_FUZZ_CHECK(m->len == 0 || memcmp(back->data, m->data, m->len) == 0);
    kb_msg_unref(back);
    KB_FUZZ_CHECK(kb_chunk_read(&rd, m->wire + used, 0, &used, &back) == 0 && used == 0);
    kb_chunk_reader_free(&rd);
}

static void on_message(struct kb_msg *m, uint32_t chunk)
{
    KB_FUZZ_CHECK(atomic_load(&m->refcnt) == 1 && m->wire == NULL);
    KB_FUZZ_CHECK(m->len <= m->cap && m->len <= MAX_MESSAGE);

    switch (m->type) {
    case KB_MSG_COMMAND_AMF0:
    case KB_MSG_COMMAND_AMF3:
        on_command(m, chunk);
        break;
    case KB_MSG_AUDIO:
    case KB_MSG_VIDEO:
    case KB_MSG_DATA_AMF0:
        on_media(m);
        break;
    default:
        break;
    }

    KB_FUZZ_CHECK(kb_msg_wire(m, WIRE_CHUNK, WIRE_MSID) == 0);
    check_wire(m);
    /* A second player asking for the same form shares the first one. */
    const uint8_t *wire = m->wire;
    KB_FUZZ_CHECK(kb_msg_wire(m, WIRE_CHUNK, WIRE_MSID) == 0 && m->wire == wire);
    kb_msg_unref(m);
}

/* The server's answer to C0+C1, checked once the handshake is over. */
static void check_server_hello(const struct conn *c)
{
    const uint8_t *s = c->proto.out.data;

    KB_FUZZ_CHECK(c->hs_used == HELLO + KB_HS_SIZE);
    KB_FUZZ_CHECK(c->proto.out.len == 1 + 2 * KB_HS_SIZE && s[0] == 3);
    if (c->hs.digest) {
        static const char fms[] = "Genuine Adobe Flash Media Server 001";
        KB_FUZZ_CHECK(kb_handshake_find_digest(s + 1, (const uint8_t *)fms, sizeof(fms) - 1) >= 0);
    } else {
        /* Simple handshake: zero version in S1, S2 echoes C1. */
        KB_FUZZ_CHECK(kb_get_be32(s + 5) == 0);
        KB_FUZZ_CHECK(memcmp(s + 1 + KB_HS_SIZE, c->c1, KB_HS_SIZE) == 0);
    }
}

/* One read from the socket: relay/session.c's feed(). */
static void feed(struct conn *c, const uint8_t *p, size_t n)
{
    size_t pos = 0;

    if (!c->hs_done) {
        size_t used = 0;
        int r = kb_handshake_feed(&c->hs, p, n, &used, &c->proto.out);
        KB_FUZZ_CHECK(used <= n);
        c->hs_used += used;
        if (r < 0) {
            KB_FUZZ_CHECK(r == KB_EVERSION);
            c->dead = 1;
            return;
        }
        /* Nothing is sent before C0+C1 is in; S0+S1+S2 goes out at once. */
        KB_FUZZ_CHECK(c->proto.out.len == (c->hs_used < HELLO ? 0 : 1 + 2 * KB_HS_SIZE));
        if (r == 0) {
            KB_FUZZ_CHECK(used == n);
            return;
        }
        check_server_hello(c);
        c->hs_done = 1;
        pos = used;
    }
    /* Until 0, even with no bytes left: bytes the reader peeked may
     * already hold the next message. */
    for (;;) {
        size_t used = 0;
        struct kb_msg *m = NULL;
        int r = kb_proto_read(&c->proto, p + pos, n - pos, &used, &m);
        KB_FUZZ_CHECK(used <= n - pos);
        pos += used;
        c->proto_fed += used;
        if (r < 0) {
            KB_FUZZ_CHECK(m == NULL);
            c->dead = 1;
            return;
        }
        if (r == 0) {
            /* "0 when the input is consumed": the session drops the rest,
             * and waits for the next read with nothing left undelivered. */
            KB_FUZZ_CHECK(m == NULL && pos == n);
            KB_FUZZ_CHECK(kb_proto_read(&c->proto, p + n, 0, &used, &m) == 0 && used == 0);
            break;
        }
        KB_FUZZ_CHECK(m != NULL);
        on_message(m, c->proto.rd.chunk_size);
    }
    KB_FUZZ_CHECK(c->proto.in_bytes == c->proto_fed);
    /* The transport drains what the protocol queued. */
    kb_buf_consume(&c->proto.out, c->proto.out.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct conn c; /* 6 KiB of handshake state: keep it off the stack */

    if (size < 1)
        return 0;
    struct splitter sp = {.limit = read_limits[data[0] & 7],
                          .rng = (uint32_t)(data[0] >> 3) * 2654435761u | 1};
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    memset(&c, 0, sizeof(c));
    kb_handshake_init(&c.hs, KB_HS_SERVER, 0, 1);
    kb_proto_init(&c.proto, MAX_MESSAGE);
    if (n >= HELLO)
        c.c1 = p + 1;
    for (size_t pos = 0; pos < n && !c.dead;) {
        size_t len = next_read(&sp, n - pos);
        feed(&c, p + pos, len);
        pos += len;
    }
    kb_proto_free(&c.proto);
    return 0;
}
