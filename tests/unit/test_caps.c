/* kebun: unit tests for Enhanced RTMP capabilities (relay/rtmp/caps.c):
 * what a peer's connect declares (v1 fourCcList, v2 FourCcInfoMaps and
 * capsEx, the "*" wildcard, nothing at all, malformed values), the rule
 * that decides what it may be sent, and kebun's own declaration in its
 * connect _result, decoded back from the bytes kebun would send. */
#include "relay/rtmp/caps.h"

#include <math.h>
#include <string.h>

#include "relay/rtmp/chunk.h"
#include "relay/rtmp/proto.h"
#include "test.h"

/* A connect command object built with the AMF writer, decoded into doc;
 * returns its object node. `build` writes the properties. */
static struct kb_amf_doc doc;
static struct kb_buf obj_bytes;

static const struct kb_amf_node *object(void (*build)(struct kb_amf_w *w))
{
    kb_buf_free(&obj_bytes);
    memset(&obj_bytes, 0, sizeof(obj_bytes));
    struct kb_amf_w w = {.out = &obj_bytes};
    kb_amf_w_object_begin(&w);
    kb_amf_w_prop_string(&w, "app", "live");
    build(&w);
    kb_amf_w_object_end(&w);
    if (w.err || kb_amf_decode(&doc, obj_bytes.data, obj_bytes.len) < 0)
        return NULL;
    return kb_amf_root(&doc, 0);
}

static int parse(void (*build)(struct kb_amf_w *w), struct kb_caps *c, char *why, size_t n)
{
    memset(c, 0, sizeof(*c));
    const struct kb_amf_node *obj = object(build);
    if (!obj)
        return -1000;
    return kb_caps_parse(c, &doc, obj, why, n);
}

/* A message with these bytes, classified as the stream would. */
static struct kb_msg *msg(uint8_t type, const void *p, uint32_t n)
{
    struct kb_msg *m = kb_msg_new_copy(type, 0, 1, p, n);
    if (!m)
        abort();
    kb_flv_classify(m);
    return m;
}

static const uint8_t avc_legacy[] = {0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65};
static const uint8_t aac_legacy[] = {0xAF, 0x01, 0x21};
static const uint8_t hevc[] = {0x91, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 1, 0x26};
static const uint8_t av1[] = {0x93, 'a', 'v', '0', '1', 0x12, 0};
static const uint8_t avc1_ex[] = {0x93, 'a', 'v', 'c', '1', 0, 0, 0, 1, 0x65};
static const uint8_t vvc[] = {0x93, 'v', 'v', 'c', '1', 0, 0, 0, 1, 0x65};
static const uint8_t unknown_cc[] = {0x93, 'x', 'y', 'z', '1', 0};
static const uint8_t opus[] = {0x91, 'O', 'p', 'u', 's', 0xFC};
static const uint8_t mp4a[] = {0x91, 'm', 'p', '4', 'a', 0x21};
static const uint8_t command[] = {0xD0, 0x01};
static const uint8_t mt_hevc[] = {0x96, 0x03, 'h', 'v', 'c', '1', 0, 0, 0, 0, 1, 0x26};
static const uint8_t modex_hevc[] = {0x97, 2, 0, 1, 2, 0x03, 'h', 'v', 'c', '1', 0x26};

struct want {
    const char *name;
    uint8_t type;
    const uint8_t *p;
    uint32_t n;
    enum kb_caps_verdict v;
};

#define CASE(name, type, arr, v) {name, type, arr, sizeof(arr), v}

static int admits(const struct kb_caps *c, const struct want *w, size_t n, const char *who)
{
    for (size_t i = 0; i < n; i++) {
        struct kb_msg *m = msg(w[i].type, w[i].p, w[i].n);
        enum kb_caps_verdict v = kb_caps_admit(c, m);
        kb_msg_unref(m);
        if (v != w[i].v) {
            fprintf(stderr, "%s, %s: verdict %d, want %d\n", who, w[i].name, v, w[i].v);
            return 1;
        }
    }
    return 0;
}

/* ---- v1: fourCcList -------------------------------------------------- */

static void build_v1(struct kb_amf_w *w)
{
    kb_amf_w_name(w, "fourCcList");
    kb_amf_w_strict_begin(w, 4);
    kb_amf_w_string(w, "hvc1");
    kb_amf_w_string(w, "av01");
    kb_amf_w_string(w, "Opus");
    kb_amf_w_string(w, "hev1"); /* not a FourCC kebun knows: no error */
}

static int test_v1_list(void)
{
    struct kb_caps c;
    char why[128];
    ASSERT_EQ(parse(build_v1, &c, why, sizeof(why)), 0);
    ASSERT_STR_EQ(why, "");
    ASSERT_EQ(c.declared, 1);
    ASSERT_EQ(c.caps_ex, 0);
    const struct want w[] = {
        CASE("legacy AVC", KB_MSG_VIDEO, avc_legacy, KB_CAPS_OK),
        CASE("legacy AAC", KB_MSG_AUDIO, aac_legacy, KB_CAPS_OK),
        CASE("hvc1", KB_MSG_VIDEO, hevc, KB_CAPS_OK),
        CASE("av01", KB_MSG_VIDEO, av1, KB_CAPS_OK),
        CASE("Opus", KB_MSG_AUDIO, opus, KB_CAPS_OK),
        CASE("avc1 extended", KB_MSG_VIDEO, avc1_ex, KB_CAPS_NO_CODEC),
        CASE("mp4a extended", KB_MSG_AUDIO, mp4a, KB_CAPS_NO_CODEC),
        CASE("unknown FourCC", KB_MSG_VIDEO, unknown_cc, KB_CAPS_NO_CODEC),
        CASE("command frame", KB_MSG_VIDEO, command, KB_CAPS_OK),
        /* v1 has no capsEx: no multitrack, no ModEx. */
        CASE("multitrack hvc1", KB_MSG_VIDEO, mt_hevc, KB_CAPS_NO_MULTITRACK),
        CASE("ModEx hvc1", KB_MSG_VIDEO, modex_hevc, KB_CAPS_NO_MODEX),
    };
    ASSERT_OK(admits(&c, w, sizeof(w) / sizeof(w[0]), "v1 list"));
    char d[160];
    kb_caps_describe(&c, d, sizeof(d));
    ASSERT_STR_EQ(d, "hvc1 av01 Opus");
    return 0;
}

/* ---- v2: FourCcInfoMaps and capsEx ------------------------------------ */

static void build_v2(struct kb_amf_w *w)
{
    kb_amf_w_name(w, "videoFourCcInfoMap");
    kb_amf_w_object_begin(w);
    kb_amf_w_prop_number(w, "hvc1", KB_FOURCC_CAN_DECODE);
    kb_amf_w_prop_number(w, "av01", KB_FOURCC_CAN_ENCODE); /* can send it, not take it */
    kb_amf_w_prop_number(w, "vvc1", KB_FOURCC_CAN_FORWARD);
    kb_amf_w_object_end(w);
    /* Readers must take an ECMA array where an object is written. */
    kb_amf_w_name(w, "audioFourCcInfoMap");
    kb_amf_w_ecma_begin(w, 1);
    kb_amf_w_prop_number(w, "*", KB_FOURCC_CAN_FORWARD);
    kb_amf_w_object_end(w);
    kb_amf_w_prop_number(w, "capsEx", KB_CAPSEX_RECONNECT | KB_CAPSEX_MULTITRACK);
}

static int test_v2_maps(void)
{
    struct kb_caps c;
    char why[128];
    ASSERT_EQ(parse(build_v2, &c, why, sizeof(why)), 0);
    ASSERT_EQ(c.declared, 1);
    ASSERT_EQ(c.caps_ex, KB_CAPSEX_RECONNECT | KB_CAPSEX_MULTITRACK);
    ASSERT_EQ(c.audio_any, KB_FOURCC_CAN_FORWARD);
    ASSERT_EQ(c.video_any, 0);
    const struct want w[] = {
        CASE("hvc1 (CanDecode)", KB_MSG_VIDEO, hevc, KB_CAPS_OK),
        CASE("av01 (CanEncode only)", KB_MSG_VIDEO, av1, KB_CAPS_NO_CODEC),
        CASE("vvc1 (CanForward)", KB_MSG_VIDEO, vvc, KB_CAPS_OK),
        CASE("avc1 (absent)", KB_MSG_VIDEO, avc1_ex, KB_CAPS_NO_CODEC),
        CASE("Opus (audio *)", KB_MSG_AUDIO, opus, KB_CAPS_OK),
        CASE("mp4a (audio *)", KB_MSG_AUDIO, mp4a, KB_CAPS_OK),
        CASE("unknown video FourCC (no video *)", KB_MSG_VIDEO, unknown_cc, KB_CAPS_NO_CODEC),
        CASE("multitrack hvc1", KB_MSG_VIDEO, mt_hevc, KB_CAPS_OK),
        CASE("ModEx hvc1", KB_MSG_VIDEO, modex_hevc, KB_CAPS_NO_MODEX),
        CASE("legacy AVC", KB_MSG_VIDEO, avc_legacy, KB_CAPS_OK),
    };
    ASSERT_OK(admits(&c, w, sizeof(w) / sizeof(w[0]), "v2 maps"));
    char d[160];
    kb_caps_describe(&c, d, sizeof(d));
    ASSERT_STR_EQ(d, "hvc1 vvc1 *audio, capsEx reconnect multitrack");
    return 0;
}

/* ---- the wildcard ----------------------------------------------------- */

static void build_star(struct kb_amf_w *w)
{
    kb_amf_w_name(w, "fourCcList");
    kb_amf_w_strict_begin(w, 1);
    kb_amf_w_string(w, "*");
    kb_amf_w_prop_number(w, "capsEx", KB_CAPSEX_MODEX);
}

static int test_wildcard(void)
{
    struct kb_caps c;
    ASSERT_EQ(parse(build_star, &c, NULL, 0), 0);
    const struct want w[] = {
        CASE("hvc1", KB_MSG_VIDEO, hevc, KB_CAPS_OK),
        CASE("avc1 extended", KB_MSG_VIDEO, avc1_ex, KB_CAPS_OK),
        CASE("unknown FourCC", KB_MSG_VIDEO, unknown_cc, KB_CAPS_OK),
        CASE("mp4a", KB_MSG_AUDIO, mp4a, KB_CAPS_OK),
        CASE("ModEx hvc1", KB_MSG_VIDEO, modex_hevc, KB_CAPS_OK),
        /* "*" names codecs, not capabilities. */
        CASE("multitrack hvc1", KB_MSG_VIDEO, mt_hevc, KB_CAPS_NO_MULTITRACK),
    };
    return admits(&c, w, sizeof(w) / sizeof(w[0]), "wildcard");
}

/* ---- nothing declared: a legacy peer ----------------------------------- */

static void build_none(struct kb_amf_w *w)
{
    kb_amf_w_prop_string(w, "flashVer", "LNX 9,0,124,2");
    kb_amf_w_prop_number(w, "videoCodecs", 252);
}

static int test_absent(void)
{
    struct kb_caps c;
    char why[64] = "stale";
    ASSERT_EQ(parse(build_none, &c, why, sizeof(why)), 0);
    ASSERT_STR_EQ(why, "");
    ASSERT_EQ(c.declared, 0);
    const struct want w[] = {
        CASE("legacy AVC", KB_MSG_VIDEO, avc_legacy, KB_CAPS_OK),
        CASE("legacy AAC", KB_MSG_AUDIO, aac_legacy, KB_CAPS_OK),
        CASE("hvc1", KB_MSG_VIDEO, hevc, KB_CAPS_NO_CODEC),
        CASE("Opus", KB_MSG_AUDIO, opus, KB_CAPS_NO_CODEC),
        CASE("command frame", KB_MSG_VIDEO, command, KB_CAPS_SKIP),
    };
    ASSERT_OK(admits(&c, w, sizeof(w) / sizeof(w[0]), "legacy"));
    char d[32];
    kb_caps_describe(&c, d, sizeof(d));
    ASSERT_STR_EQ(d, "none");
    /* No object at all (a connect whose first argument is null). */
    memset(&c, 0, sizeof(c));
    ASSERT_EQ(kb_caps_parse(&c, &doc, NULL, why, sizeof(why)), 0);
    ASSERT_EQ(c.declared, 0);
    return 0;
}

/* ---- malformed values -------------------------------------------------- */

static void build_bad_list_type(struct kb_amf_w *w)
{
    kb_amf_w_prop_string(w, "fourCcList", "hvc1,av01");
}

static void build_bad_entries(struct kb_amf_w *w)
{
    kb_amf_w_name(w, "fourCcList");
    kb_amf_w_strict_begin(w, 3);
    kb_amf_w_string(w, "hvc1");
    kb_amf_w_number(w, 7);
    kb_amf_w_null(w);
}

static void build_bad_maps(struct kb_amf_w *w)
{
    kb_amf_w_prop_number(w, "videoFourCcInfoMap", 4);
    kb_amf_w_name(w, "audioFourCcInfoMap");
    kb_amf_w_object_begin(w);
    kb_amf_w_prop_string(w, "Opus", "CanDecode");
    kb_amf_w_prop_number(w, "mp4a", -1);
    kb_amf_w_prop_number(w, "fLaC", KB_FOURCC_CAN_DECODE);
    kb_amf_w_object_end(w);
    kb_amf_w_prop_string(w, "capsEx", "multitrack");
}

static void build_nan_caps(struct kb_amf_w *w)
{
    kb_amf_w_prop_number(w, "capsEx", NAN);
}

static int test_malformed(void)
{
    struct kb_caps c;
    char why[128];
    ASSERT_EQ(parse(build_bad_list_type, &c, why, sizeof(why)), 1);
    ASSERT_STR_EQ(why, "fourCcList is not a strict array of FourCC strings");
    ASSERT_EQ(c.declared, 0);

    /* The good entry counts; the bad ones are named by position. */
    ASSERT_EQ(parse(build_bad_entries, &c, why, sizeof(why)), 2);
    ASSERT_STR_EQ(why, "fourCcList entry 1 is not a string");
    ASSERT_EQ(c.declared, 1);
    struct kb_msg *m = msg(KB_MSG_VIDEO, hevc, sizeof(hevc));
    ASSERT_EQ(kb_caps_admit(&c, m), KB_CAPS_OK);
    kb_msg_unref(m);

    ASSERT_EQ(parse(build_bad_maps, &c, why, sizeof(why)), 4);
    ASSERT_STR_EQ(why, "videoFourCcInfoMap is not an object");
    /* fLaC's well-formed member still counts. */
    ASSERT_EQ(c.codec[KB_CODEC_FLAC - KB_CODEC_FOURCC], KB_FOURCC_CAN_DECODE);
    ASSERT_EQ(c.codec[KB_CODEC_OPUS - KB_CODEC_FOURCC], 0);
    ASSERT_EQ(c.codec[KB_CODEC_MP4A - KB_CODEC_FOURCC], 0);
    ASSERT_EQ(c.caps_ex, 0);

    ASSERT_EQ(parse(build_nan_caps, &c, why, sizeof(why)), 1);
    ASSERT_STR_EQ(why, "capsEx is not a CapsExMask number");
    ASSERT_EQ(c.declared, 0);
    /* A short buffer truncates, never overflows. */
    char tiny[8];
    ASSERT_EQ(parse(build_bad_list_type, &c, tiny, sizeof(tiny)), 1);
    ASSERT_STR_EQ(tiny, "fourCcL");
    return 0;
}

/* ---- what refusals say, and ertmp=on ------------------------------------ */

static int what(enum kb_caps_verdict v, uint8_t type, const uint8_t *p, uint32_t n,
                const char *want)
{
    struct kb_msg *m = msg(type, p, n);
    char buf[80];
    kb_caps_what(v, m, buf, sizeof(buf));
    kb_msg_unref(m);
    ASSERT_STR_EQ(buf, want);
    return 0;
}

static int test_what_and_all(void)
{
    ASSERT_OK(what(KB_CAPS_NO_CODEC, KB_MSG_VIDEO, hevc, sizeof(hevc), "HEVC"));
    ASSERT_OK(what(KB_CAPS_NO_CODEC, KB_MSG_VIDEO, av1, sizeof(av1), "AV1"));
    ASSERT_OK(what(KB_CAPS_NO_CODEC, KB_MSG_AUDIO, opus, sizeof(opus), "Opus"));
    ASSERT_OK(what(KB_CAPS_NO_CODEC, KB_MSG_VIDEO, avc1_ex, sizeof(avc1_ex),
                   "H.264 in Enhanced RTMP (avc1)"));
    ASSERT_OK(what(KB_CAPS_NO_CODEC, KB_MSG_VIDEO, unknown_cc, sizeof(unknown_cc),
                   "an unknown Enhanced RTMP video codec"));
    ASSERT_OK(what(KB_CAPS_NO_MULTITRACK, KB_MSG_VIDEO, mt_hevc, sizeof(mt_hevc),
                   "Enhanced RTMP multitrack video"));
    ASSERT_OK(what(KB_CAPS_NO_MODEX, KB_MSG_VIDEO, modex_hevc, sizeof(modex_hevc),
                   "Enhanced RTMP ModEx video"));

    struct kb_caps c;
    memset(&c, 0xFF, sizeof(c));
    kb_caps_all(&c);
    const struct want w[] = {
        CASE("hvc1", KB_MSG_VIDEO, hevc, KB_CAPS_OK),
        CASE("av01", KB_MSG_VIDEO, av1, KB_CAPS_OK),
        CASE("avc1 extended", KB_MSG_VIDEO, avc1_ex, KB_CAPS_OK),
        CASE("Opus", KB_MSG_AUDIO, opus, KB_CAPS_OK),
        CASE("mp4a", KB_MSG_AUDIO, mp4a, KB_CAPS_OK),
        CASE("multitrack", KB_MSG_VIDEO, mt_hevc, KB_CAPS_OK),
        CASE("ModEx", KB_MSG_VIDEO, modex_hevc, KB_CAPS_OK),
        /* Codecs kebun does not relay stay out, even forced. */
        CASE("vvc1", KB_MSG_VIDEO, vvc, KB_CAPS_NO_CODEC),
        CASE("command frame", KB_MSG_VIDEO, command, KB_CAPS_OK),
    };
    return admits(&c, w, sizeof(w) / sizeof(w[0]), "ertmp=on");
}

/* ---- kebun's connect _result, read back as a client would ---------------- */

static int test_connect_result(void)
{
    struct kb_proto p;
    kb_proto_init(&p, 1 << 20);
    ASSERT_EQ(kb_proto_connect_result(&p, 1, 3), 0);
    /* The peer's side: the chunk stream, then the command. */
    struct kb_chunk_reader r;
    kb_chunk_reader_init(&r, 1 << 20);
    size_t used = 0;
    struct kb_msg *m = NULL;
    ASSERT_EQ(kb_chunk_read(&r, p.out.data, p.out.len, &used, &m), 1);
    ASSERT_EQ(used, p.out.len);
    ASSERT_EQ(m->type, KB_MSG_COMMAND_AMF0);
    static struct kb_cmd cmd;
    ASSERT_EQ(kb_cmd_parse(&cmd, m), 0);
    ASSERT_TRUE(kb_amf_str_eq(cmd.name, "_result"));
    ASSERT_DBL_EQ(cmd.txn, 1);
    const struct kb_amf_doc *d = &cmd.doc;
    const struct kb_amf_node *props = cmd.obj, *info = cmd.arg1;
    ASSERT_TRUE(props && props->type == KB_AMF_OBJECT);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(d, props, "fmsVer"), "FMS/3,5,7,7009"));
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(d, info, "code"), "NetConnection.Connect.Success"));
    ASSERT_DBL_EQ(kb_amf_prop(d, info, "objectEncoding")->num, 3);

    /* v1: the FourCCs of the issue, in order, as strings. */
    static const char *const want_list[] = {"avc1", "hvc1", "av01", "vp09", "Opus",
                                            "mp4a", "fLaC", "ac-3", "ec-3"};
    const struct kb_amf_node *list = kb_amf_prop(d, props, "fourCcList");
    ASSERT_TRUE(list && list->type == KB_AMF_STRICT_ARRAY);
    ASSERT_EQ(list->count, 9);
    uint16_t idx = list->first_child;
    for (size_t i = 0; i < 9; i++, idx = d->nodes[idx].next) {
        ASSERT_TRUE(idx != 0);
        if (!kb_amf_str_eq(&d->nodes[idx], want_list[i])) {
            fprintf(stderr, "fourCcList[%zu] is not %s\n", i, want_list[i]);
            return 1;
        }
    }
    /* v2: CanForward for each, by kind, and capsEx Multitrack | ModEx. */
    const struct kb_amf_node *vmap = kb_amf_prop(d, props, "videoFourCcInfoMap");
    const struct kb_amf_node *amap = kb_amf_prop(d, props, "audioFourCcInfoMap");
    ASSERT_TRUE(vmap && vmap->type == KB_AMF_OBJECT && vmap->count == 4);
    ASSERT_TRUE(amap && amap->type == KB_AMF_OBJECT && amap->count == 5);
    for (size_t i = 0; i < 9; i++) {
        const struct kb_amf_node *v = kb_amf_prop(d, i < 4 ? vmap : amap, want_list[i]);
        ASSERT_TRUE(v && v->type == KB_AMF_NUMBER);
        ASSERT_DBL_EQ(v->num, KB_FOURCC_CAN_FORWARD);
    }
    const struct kb_amf_node *caps_ex = kb_amf_prop(d, props, "capsEx");
    ASSERT_TRUE(caps_ex && caps_ex->type == KB_AMF_NUMBER);
    ASSERT_DBL_EQ(caps_ex->num, KB_CAPSEX_MULTITRACK | KB_CAPSEX_MODEX);

    /* Read by kebun's own parser (a push destination that is a kebun): the
     * same as ertmp=on. */
    struct kb_caps got, all;
    memset(&got, 0, sizeof(got));
    ASSERT_EQ(kb_caps_parse(&got, d, props, NULL, 0), 0);
    kb_caps_all(&all);
    ASSERT_EQ(got.declared, 1);
    ASSERT_EQ(got.caps_ex, all.caps_ex);
    ASSERT_EQ(got.video_any | got.audio_any, 0);
    for (int i = 0; i < KB_CAPS_CODECS; i++)
        ASSERT_EQ(got.codec[i] != 0, all.codec[i] != 0);

    kb_msg_unref(m);
    kb_chunk_reader_free(&r);
    kb_proto_free(&p);
    return 0;
}

int main(void)
{
    RUN(test_v1_list);
    RUN(test_v2_maps);
    RUN(test_wildcard);
    RUN(test_absent);
    RUN(test_malformed);
    RUN(test_what_and_all);
    RUN(test_connect_result);
    kb_buf_free(&obj_bytes);
    return test_summary();
}
