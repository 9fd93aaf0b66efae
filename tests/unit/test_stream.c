/* kebun: unit tests for the stream hub (relay/stream.c), driven without
 * sockets and without a clock: messages are built here, time is an
 * argument, and the grace deadline is read from the hub's arm callback.
 *
 * Covered: timestamp rebasing across publishers (and the 32-bit wrap), the
 * GOP cache and its bounds, what a late joiner is handed and in which
 * order, the grace period, the wire form built once per message, and sinks
 * that detach themselves or each other during a fan-out. */
#include "relay/stream.h"

#include "config/config.h"
#include "relay/rtmp/chunk.h"
#include "test.h"

/* ---- a recording sink ------------------------------------------------ */

#define LOG_MAX 256

struct rec_sink {
    struct kb_sink sink;
    struct kb_msg *got[LOG_MAX];
    int n;
    int publishes, resumes, unpublishes, ends;
    struct kb_sink *detach_on_msg; ///< detach this sink when a message arrives
    int detach_after;              ///< ... once this many messages were seen
};

static struct rec_sink *rec_of(struct kb_sink *k)
{
    return (struct rec_sink *)k;
}

static void rs_msg(struct kb_sink *k, struct kb_msg *m)
{
    struct rec_sink *r = rec_of(k);
    if (r->n < LOG_MAX)
        r->got[r->n++] = kb_msg_ref(m);
    if (r->detach_on_msg && r->n >= r->detach_after) {
        kb_stream_detach(r->detach_on_msg);
        r->detach_on_msg = NULL;
    }
}

static void rs_publish(struct kb_sink *k, int resumed)
{
    rec_of(k)->publishes++;
    rec_of(k)->resumes += resumed;
}

static void rs_unpublish(struct kb_sink *k)
{
    rec_of(k)->unpublishes++;
}

static void rs_end(struct kb_sink *k)
{
    rec_of(k)->ends++;
}

static const struct kb_sink_ops rs_ops = {rs_msg, rs_publish, rs_unpublish, rs_end};

static void rs_init(struct rec_sink *r, int wire)
{
    memset(r, 0, sizeof(*r));
    r->sink.ops = &rs_ops;
    r->sink.kind = KB_SINK_PLAYER;
    r->sink.wire = (uint8_t)wire;
}

static void rs_clear(struct rec_sink *r)
{
    for (int i = 0; i < r->n; i++)
        kb_msg_unref(r->got[i]);
    r->n = 0;
}

/* ---- messages as a publisher sends them ------------------------------- */

enum { META, SETDF, AVC_HDR, AAC_HDR, KEY, INTER, AUDIO };

static struct kb_msg *mk(int kind, uint32_t ts, uint32_t size)
{
    static const uint8_t meta[] = {0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a',
                                   't', 'a', 0x03, 0x00, 0x00, 0x09};
    static const uint8_t setdf[] = {0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a',
                                    'F', 'r', 'a', 'm', 'e', 0x02, 0x00, 0x0a, 'o', 'n', 'M',
                                    'e', 't', 'a', 'D', 'a', 't', 'a', 0x03, 0x00, 0x00, 0x09};
    struct kb_msg *m;
    if (kind == META)
        return kb_msg_new_copy(KB_MSG_DATA_AMF0, ts, 1, meta, sizeof(meta));
    if (kind == SETDF)
        return kb_msg_new_copy(KB_MSG_DATA_AMF0, ts, 1, setdf, sizeof(setdf));
    uint8_t type = kind == AAC_HDR || kind == AUDIO ? KB_MSG_AUDIO : KB_MSG_VIDEO;
    if (size < 8)
        size = 8;
    m = kb_msg_new(type, ts, 1, size);
    if (!m)
        abort();
    memset(m->data, 0, size);
    m->len = size;
    switch (kind) {
    case AVC_HDR: m->data[0] = 0x17; m->data[1] = 0; break;
    case KEY: m->data[0] = 0x17; m->data[1] = 1; break;
    case INTER: m->data[0] = 0x27; m->data[1] = 1; break;
    case AAC_HDR: m->data[0] = 0xaf; m->data[1] = 0; m->data[2] = 0x12; m->data[3] = 0x10; break;
    case AUDIO: m->data[0] = 0xaf; m->data[1] = 1; break;
    }
    return m;
}

static void push(struct kb_stream *st, int kind, uint32_t ts)
{
    if (kb_stream_push(st, mk(kind, ts, 0)) != 0)
        abort();
}

static void push_sized(struct kb_stream *st, int kind, uint32_t ts, uint32_t size)
{
    if (kb_stream_push(st, mk(kind, ts, size)) != 0)
        abort();
}

/* ---- a hub with one stream -------------------------------------------- */

struct fixture {
    struct kb_config *conf;
    struct kb_hub hub;
    struct kb_stream *st;
    uint64_t armed_at; ///< last deadline the hub asked for
    int arms;
};

static void on_arm(void *ud, uint64_t at)
{
    struct fixture *f = ud;
    f->armed_at = at;
    f->arms++;
}

static int setup(struct fixture *f, const char *extra)
{
    char text[512], err[1024];
    snprintf(text, sizeof(text),
             "[server]\nchunk_size = 4096\n%s\n[stream demo]\nkey = secret-key-1\n",
             extra);
    memset(f, 0, sizeof(*f));
    if (kb_config_parse("test.conf", text, &f->conf, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    ASSERT_EQ(kb_hub_init(&f->hub, f->conf, on_arm, f), 0);
    f->st = kb_hub_find_name(&f->hub, "demo");
    ASSERT_NOT_NULL(f->st);
    ASSERT_TRUE(kb_hub_find_key(&f->hub, "secret-key-1") == f->st);
    ASSERT_NULL(kb_hub_find_key(&f->hub, "demo"));
    return 0;
}

static void teardown(struct fixture *f)
{
    kb_hub_close(&f->hub);
    kb_hub_free(&f->hub);
    kb_config_free(f->conf);
}

/* A non-NULL stand-in for a publisher session (the hub never looks inside). */
static struct kb_session *pub(int n)
{
    return (struct kb_session *)(uintptr_t)(0x1000 * n);
}

/* ---- tests ------------------------------------------------------------ */

static int test_rebase_continues_across_publishers(void)
{
    struct fixture f;
    struct rec_sink r;
    ASSERT_OK(setup(&f, ""));
    rs_init(&r, 0);
    kb_stream_attach(f.st, &r.sink);

    kb_stream_publish(f.st, pub(1), 1000);
    ASSERT_EQ(r.publishes, 1);
    ASSERT_EQ(r.resumes, 0);
    push(f.st, KEY, 5000);    /* a publisher's clock starts anywhere: 0 */
    push(f.st, AUDIO, 4990);  /* interleaving before the first: clamped to 0 */
    push(f.st, INTER, 5033);
    ASSERT_EQ(r.n, 3);
    ASSERT_EQ(r.got[0]->timestamp, 0);
    ASSERT_EQ(r.got[1]->timestamp, 0);
    ASSERT_EQ(r.got[2]->timestamp, 33);

    kb_stream_unpublish(f.st, 2000);
    ASSERT_EQ(r.unpublishes, 1);
    /* The phone returns with its clock restarted at 0. */
    kb_stream_publish(f.st, pub(2), 3000);
    ASSERT_EQ(r.resumes, 1);
    push(f.st, KEY, 0);
    push(f.st, INTER, 40);
    ASSERT_EQ(r.got[3]->timestamp, 34); /* 1 ms after the last one handed out */
    ASSERT_EQ(r.got[4]->timestamp, 74);

    /* The 32-bit wrap is arithmetic, not a discontinuity. */
    kb_stream_unpublish(f.st, 4000);
    kb_stream_publish(f.st, pub(3), 4100);
    push(f.st, KEY, 0xFFFFFFF0u);
    push(f.st, INTER, 0x10u);
    ASSERT_EQ(r.got[5]->timestamp, 75);
    ASSERT_EQ(r.got[6]->timestamp, 75 + 0x20);
    rs_clear(&r);
    teardown(&f);
    return 0;
}

static int test_gop_cache_and_catch_up_order(void)
{
    struct fixture f;
    struct rec_sink early, late;
    ASSERT_OK(setup(&f, ""));
    rs_init(&early, 0);
    kb_stream_attach(f.st, &early.sink);
    kb_stream_publish(f.st, pub(1), 0);
    push(f.st, SETDF, 0);
    push(f.st, AVC_HDR, 0);
    push(f.st, AAC_HDR, 0);
    push(f.st, INTER, 10); /* before any keyframe: not cached */
    push(f.st, KEY, 20);
    push(f.st, AUDIO, 30);
    push(f.st, INTER, 40);
    ASSERT_EQ(f.st->gop_len, 3);

    rs_init(&late, 0);
    kb_stream_attach(f.st, &late.sink);
    ASSERT_EQ(kb_stream_catch_up(f.st, &late.sink), 1);
    ASSERT_EQ(late.n, 6);
    /* Metadata reaches players in the plain form. */
    ASSERT_EQ(late.got[0]->flags & KB_MSGF_METADATA, KB_MSGF_METADATA);
    ASSERT_EQ(late.got[0]->data[3], 'o');
    ASSERT_EQ(late.got[1]->flags, KB_MSGF_VIDEO | KB_MSGF_SEQHDR);
    ASSERT_EQ(late.got[2]->flags, KB_MSGF_AUDIO | KB_MSGF_SEQHDR);
    ASSERT_TRUE(late.got[3]->flags & KB_MSGF_KEY);
    ASSERT_EQ(late.got[3]->timestamp, 20);
    ASSERT_EQ(late.got[5]->timestamp, 40);
    /* The very same messages, not copies. */
    ASSERT_TRUE(late.got[3] == early.got[4]);

    /* The next keyframe starts a new GOP. */
    push(f.st, KEY, 60);
    ASSERT_EQ(f.st->gop_len, 1);
    ASSERT_TRUE(f.st->gop[0]->timestamp == 60);
    rs_clear(&early);
    rs_clear(&late);
    teardown(&f);
    return 0;
}

static int test_gop_cache_bounds(void)
{
    struct fixture f;
    ASSERT_OK(setup(&f, "gop_cache_max = 64K"));
    kb_stream_publish(f.st, pub(1), 0);
    push_sized(f.st, KEY, 0, 40000);
    push_sized(f.st, INTER, 33, 20000);
    ASSERT_EQ(f.st->gop_len, 2);
    ASSERT_EQ(f.st->gop_valid, 1);
    /* Past gop_cache_max the GOP is dropped until the next keyframe. */
    push_sized(f.st, INTER, 66, 20000);
    ASSERT_EQ(f.st->gop_len, 0);
    ASSERT_EQ(f.st->gop_valid, 0);
    push_sized(f.st, INTER, 99, 100);
    ASSERT_EQ(f.st->gop_len, 0);
    struct rec_sink late;
    rs_init(&late, 0);
    kb_stream_attach(f.st, &late.sink);
    ASSERT_EQ(kb_stream_catch_up(f.st, &late.sink), 0); /* must wait for a keyframe */
    push_sized(f.st, KEY, 132, 100);
    ASSERT_EQ(f.st->gop_len, 1);

    /* And past KB_GOP_MAX_MSGS messages. */
    for (uint32_t i = 0; i < KB_GOP_MAX_MSGS - 1; i++)
        push(f.st, AUDIO, 140 + i);
    ASSERT_EQ(f.st->gop_len, KB_GOP_MAX_MSGS);
    push(f.st, AUDIO, 140 + KB_GOP_MAX_MSGS);
    ASSERT_EQ(f.st->gop_len, 0);
    rs_clear(&late);
    teardown(&f);

    /* gop_cache = off keeps only the setup messages. */
    char text[] = "[stream demo]\nkey = secret-key-1\ngop_cache = off\n";
    struct kb_config *conf;
    char err[256];
    ASSERT_EQ(kb_config_parse("t", text, &conf, err, sizeof(err)), 0);
    struct kb_hub hub;
    ASSERT_EQ(kb_hub_init(&hub, conf, NULL, NULL), 0);
    struct kb_stream *st = hub.streams;
    kb_stream_publish(st, pub(1), 0);
    push(st, AVC_HDR, 0);
    push(st, KEY, 0);
    ASSERT_EQ(st->gop_len, 0);
    ASSERT_NOT_NULL(st->video_hdr);
    kb_hub_close(&hub);
    kb_hub_free(&hub);
    kb_config_free(conf);
    return 0;
}

static int test_audio_only_frames_are_places_to_start(void)
{
    struct fixture f;
    ASSERT_OK(setup(&f, ""));
    kb_stream_publish(f.st, pub(1), 0);
    push(f.st, AAC_HDR, 0);
    push(f.st, AUDIO, 0);
    push(f.st, AUDIO, 23);
    /* Each audio frame restarts the cache: a new player starts at once. */
    ASSERT_EQ(f.st->gop_len, 1);
    ASSERT_TRUE(f.st->gop[0]->flags & KB_MSGF_KEY);
    /* Once video arrives, audio no longer is. */
    push(f.st, KEY, 40);
    push(f.st, AUDIO, 46);
    ASSERT_EQ(f.st->gop_len, 2);
    ASSERT_EQ(f.st->gop[1]->flags & KB_MSGF_KEY, 0);
    teardown(&f);
    return 0;
}

static int test_grace_period(void)
{
    struct fixture f;
    struct rec_sink r;
    ASSERT_OK(setup(&f, ""));
    rs_init(&r, 0);
    kb_stream_attach(f.st, &r.sink);
    kb_stream_publish(f.st, pub(1), 1000);
    ASSERT_EQ(f.st->bcast, KB_BC_LIVE);
    push(f.st, AVC_HDR, 0);
    kb_stream_unpublish(f.st, 5000);
    ASSERT_EQ(f.st->bcast, KB_BC_GRACE);
    ASSERT_NULL(f.st->video_hdr); /* the caches go with the publisher */
    ASSERT_EQ(f.arms, 1);
    ASSERT_EQ(f.armed_at, 35000);
    ASSERT_EQ(kb_hub_expire(&f.hub, 34999), 35000);
    ASSERT_EQ(r.ends, 0);
    /* Back within the grace period: the same broadcast. */
    kb_stream_publish(f.st, pub(2), 20000);
    ASSERT_EQ(r.resumes, 1);
    ASSERT_EQ(kb_hub_expire(&f.hub, 40000), 0); /* the old deadline is void */
    ASSERT_EQ(r.ends, 0);
    ASSERT_EQ(f.st->bcast_start_ms, 1000);
    /* Gone for longer: the broadcast ends at the deadline. */
    kb_stream_unpublish(f.st, 50000);
    ASSERT_EQ(f.armed_at, 80000);
    ASSERT_EQ(kb_hub_expire(&f.hub, 80000), 0);
    ASSERT_EQ(r.ends, 1);
    ASSERT_EQ(f.st->bcast, KB_BC_IDLE);
    /* The next publisher starts a new broadcast. */
    kb_stream_publish(f.st, pub(3), 90000);
    ASSERT_EQ(r.publishes, 3);
    ASSERT_EQ(r.resumes, 1);
    ASSERT_EQ(f.st->bcast_start_ms, 90000);
    /* Shutdown ends it at once, without grace. */
    f.hub.closing = 1;
    kb_stream_unpublish(f.st, 95000);
    ASSERT_EQ(r.ends, 2);
    ASSERT_EQ(f.st->bcast, KB_BC_IDLE);
    rs_clear(&r);
    teardown(&f);

    /* grace = 0: the broadcast ends with its publisher. */
    ASSERT_OK(setup(&f, "grace = 0"));
    rs_init(&r, 0);
    kb_stream_attach(f.st, &r.sink);
    kb_stream_publish(f.st, pub(1), 0);
    kb_stream_unpublish(f.st, 10);
    ASSERT_EQ(r.ends, 1);
    ASSERT_EQ(f.arms, 0);
    teardown(&f);
    return 0;
}

static int test_wire_built_once_for_wire_sinks(void)
{
    struct fixture f;
    struct rec_sink plain, a, b;
    ASSERT_OK(setup(&f, ""));
    rs_init(&plain, 0);
    kb_stream_attach(f.st, &plain.sink);
    kb_stream_publish(f.st, pub(1), 0);
    push(f.st, AVC_HDR, 0);
    push(f.st, KEY, 0);
    /* Nobody wants the chunked form yet: not built. */
    ASSERT_NULL(plain.got[1]->wire);

    rs_init(&a, 1);
    rs_init(&b, 1);
    kb_stream_attach(f.st, &a.sink);
    kb_stream_attach(f.st, &b.sink);
    ASSERT_EQ(f.st->n_wire, 2);
    ASSERT_EQ(f.st->n_sinks[KB_SINK_PLAYER], 3);
    /* Catch-up builds it for the cached messages. */
    kb_stream_catch_up(f.st, &a.sink);
    ASSERT_NOT_NULL(a.got[1]->wire);
    ASSERT_EQ(a.got[1]->wire_chunk, 4096);
    push_sized(f.st, INTER, 33, 10000);
    struct kb_msg *m = a.got[a.n - 1];
    ASSERT_TRUE(m == b.got[b.n - 1]);
    ASSERT_NOT_NULL(m->wire);
    /* Format 0 on the video chunk stream, stream id 1, 4096-byte chunks:
     * 12 + 10000 + 2 continuation headers. */
    ASSERT_EQ(m->wire_len, 12 + 10000 + 2);
    ASSERT_EQ(m->wire[0], KB_CSID_VIDEO);
    ASSERT_EQ(m->wire[8], 1);
    rs_clear(&plain);
    rs_clear(&a);
    rs_clear(&b);
    teardown(&f);
    return 0;
}

static int test_detach_during_fanout(void)
{
    struct fixture f;
    struct rec_sink s1, s2, s3;
    ASSERT_OK(setup(&f, ""));
    rs_init(&s1, 0);
    rs_init(&s2, 0);
    rs_init(&s3, 0);
    /* Attach order puts s3 first in the list, then s2, then s1. */
    kb_stream_attach(f.st, &s1.sink);
    kb_stream_attach(f.st, &s2.sink);
    kb_stream_attach(f.st, &s3.sink);
    kb_stream_publish(f.st, pub(1), 0);
    /* s3 drops s2, its neighbour, while the fan-out walks the list. */
    s3.detach_on_msg = &s2.sink;
    s3.detach_after = 1;
    push(f.st, KEY, 0);
    ASSERT_EQ(s3.n, 1);
    ASSERT_EQ(s2.n, 0); /* detached before its turn: nothing more */
    ASSERT_EQ(s1.n, 1);
    ASSERT_NULL(s2.sink.stream);
    ASSERT_EQ(f.st->n_sinks[KB_SINK_PLAYER], 2);
    /* s1 detaches itself. */
    s1.detach_on_msg = &s1.sink;
    s1.detach_after = 2;
    push(f.st, INTER, 33);
    ASSERT_NULL(s1.sink.stream);
    push(f.st, INTER, 66);
    ASSERT_EQ(s1.n, 2);
    ASSERT_EQ(s3.n, 3);
    /* The list is whole: only s3 is on it. */
    ASSERT_TRUE(f.st->sinks.next == &s3.sink.link);
    ASSERT_TRUE(s3.sink.link.next == &f.st->sinks);
    /* A detached sink can come back. */
    kb_stream_attach(f.st, &s2.sink);
    push(f.st, INTER, 99);
    ASSERT_EQ(s2.n, 1);
    /* The first sink detaching itself does not cut the walk short: the
     * next one still gets the message. */
    s2.detach_on_msg = &s2.sink;
    s2.detach_after = 2;
    push(f.st, INTER, 133);
    ASSERT_EQ(s2.n, 2);
    ASSERT_EQ(s3.n, 5);
    ASSERT_TRUE(f.st->sinks.next == &s3.sink.link && s3.sink.link.next == &f.st->sinks);
    rs_clear(&s1);
    rs_clear(&s2);
    rs_clear(&s3);
    teardown(&f);
    return 0;
}

static int test_remove_idle_stream(void)
{
    struct fixture f;
    struct rec_sink r;
    ASSERT_OK(setup(&f, ""));
    rs_init(&r, 0);
    kb_stream_attach(f.st, &r.sink);
    kb_hub_remove(&f.hub, f.st);
    ASSERT_NULL(f.hub.streams);
    ASSERT_NULL(r.sink.stream); /* its sinks are let go */
    teardown(&f);
    return 0;
}

/* E-RTMP multitrack: each track's sequence header is kept, the first
 * track's in the plain slot, and a late joiner gets them all before the
 * GOP; a new publisher starts from nothing. kb_stream_admits judges the
 * kept headers against a receiver's declaration. */
static struct kb_msg *mt(uint8_t type, const uint8_t *p, uint32_t n, uint32_t ts)
{
    struct kb_msg *m = kb_msg_new_copy(type, ts, 1, p, n);
    if (!m)
        abort();
    return m;
}

static int test_multitrack_headers(void)
{
    /* OneTrack SequenceStart of hvc1 track 0 and av01 track 1, a second
     * version of track 1's, then a keyframe of each. */
    static const uint8_t hdr0[] = {0x96, 0x00, 'h', 'v', 'c', '1', 0, 1, 2, 3};
    static const uint8_t hdr1[] = {0x96, 0x00, 'a', 'v', '0', '1', 1, 0x81, 4};
    static const uint8_t hdr1b[] = {0x96, 0x00, 'a', 'v', '0', '1', 1, 0x81, 5};
    static const uint8_t key0[] = {0x96, 0x03, 'h', 'v', 'c', '1', 0, 0x26, 1};
    static const uint8_t key1[] = {0x96, 0x03, 'a', 'v', '0', '1', 1, 0x12, 0};
    static const uint8_t aac[] = {0xaf, 0x00, 0x12, 0x10};
    struct fixture f;
    struct rec_sink late;
    ASSERT_OK(setup(&f, ""));
    kb_stream_publish(f.st, pub(1), 0);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_VIDEO, hdr0, sizeof(hdr0), 0)), 0);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_VIDEO, hdr1, sizeof(hdr1), 0)), 0);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_AUDIO, aac, sizeof(aac), 0)), 0);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_VIDEO, hdr1b, sizeof(hdr1b), 0)), 0);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_VIDEO, key0, sizeof(key0), 10)), 0);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_VIDEO, key1, sizeof(key1), 10)), 0);
    ASSERT_NOT_NULL(f.st->video_hdr);
    ASSERT_EQ(f.st->video_hdr->data[2], 'h');
    ASSERT_NOT_NULL(f.st->track_hdr[0]);
    ASSERT_EQ(f.st->track_hdr[0]->data[8], 5); /* the newer of track 1's */
    ASSERT_NULL(f.st->track_hdr[1]);

    rs_init(&late, 0);
    kb_stream_attach(f.st, &late.sink);
    ASSERT_EQ(kb_stream_catch_up(f.st, &late.sink), 1);
    /* Track 1's keyframe did not restart the GOP: both are handed out. */
    ASSERT_EQ(late.n, 5);
    ASSERT_TRUE(late.got[0] == f.st->video_hdr);
    ASSERT_TRUE(late.got[1] == f.st->audio_hdr);
    ASSERT_TRUE(late.got[2] == f.st->track_hdr[0]);
    ASSERT_TRUE(late.got[3]->flags & KB_MSGF_KEY);
    ASSERT_EQ(late.got[3]->data[2], 'h');
    ASSERT_EQ(late.got[4]->data[2], 'a');
    ASSERT_TRUE(!(late.got[4]->flags & KB_MSGF_KEY));

    /* A v1 player with hvc1 and av01 but no capsEx: multitrack refused. */
    struct kb_caps caps;
    char what[80] = "";
    memset(&caps, 0, sizeof(caps));
    caps.declared = 1;
    caps.codec[KB_CODEC_HVC1 - KB_CODEC_FOURCC] = KB_FOURCC_CAN_DECODE;
    caps.codec[KB_CODEC_AV01 - KB_CODEC_FOURCC] = KB_FOURCC_CAN_DECODE;
    ASSERT_EQ(kb_stream_admits(f.st, &caps, what, sizeof(what)), KB_CAPS_NO_MULTITRACK);
    ASSERT_STR_EQ(what, "Enhanced RTMP multitrack video");
    caps.caps_ex = KB_CAPSEX_MULTITRACK;
    ASSERT_EQ(kb_stream_admits(f.st, &caps, what, sizeof(what)), KB_CAPS_OK);
    /* Without av01, track 1's header is what it cannot take. */
    caps.codec[KB_CODEC_AV01 - KB_CODEC_FOURCC] = 0;
    ASSERT_EQ(kb_stream_admits(f.st, &caps, what, sizeof(what)), KB_CAPS_NO_CODEC);
    ASSERT_STR_EQ(what, "AV1");
    /* A legacy player takes the legacy AAC, not the video. */
    memset(&caps, 0, sizeof(caps));
    ASSERT_EQ(kb_stream_admits(f.st, &caps, what, sizeof(what)), KB_CAPS_NO_CODEC);
    ASSERT_STR_EQ(what, "HEVC");

    /* The next publisher's tracks start from nothing. */
    kb_stream_unpublish(f.st, 100);
    ASSERT_NULL(f.st->track_hdr[0]);
    kb_stream_publish(f.st, pub(2), 200);
    ASSERT_EQ(kb_stream_push(f.st, mt(KB_MSG_VIDEO, hdr1, sizeof(hdr1), 0)), 0);
    ASSERT_TRUE(f.st->video_hdr && f.st->video_hdr->data[2] == 'a');
    ASSERT_EQ(kb_stream_admits(f.st, &caps, what, sizeof(what)), KB_CAPS_NO_CODEC);
    ASSERT_STR_EQ(what, "AV1");
    rs_clear(&late);
    teardown(&f);
    return 0;
}

int main(void)
{
    RUN(test_rebase_continues_across_publishers);
    RUN(test_gop_cache_and_catch_up_order);
    RUN(test_gop_cache_bounds);
    RUN(test_audio_only_frames_are_places_to_start);
    RUN(test_grace_period);
    RUN(test_wire_built_once_for_wire_sinks);
    RUN(test_detach_during_fanout);
    RUN(test_remove_idle_stream);
    RUN(test_multitrack_headers);
    return test_summary();
}
