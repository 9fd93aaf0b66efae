/* Enhanced RTMP capabilities: reading a peer's, writing kebun's, and the
 * rule that decides what a peer may be sent (see caps.h). */
#include "caps.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The FourCCs by codec, in flv.h's order (index = codec - KB_CODEC_FOURCC). */
static const char fourccs[KB_CAPS_CODECS][5] = {
    "", "hvc1", "av01", "vp09", "avc1", "vp08", "vvc1", "Opus", "fLaC", "ac-3", "ec-3", ".mp3",
    "mp4a",
};

/* What kebun relays and declares (issue 11): the codecs its players,
 * destinations and recorder have been tried with, or that E-RTMP encoders
 * send. */
static const uint16_t ours_video[] = {KB_CODEC_AVC1, KB_CODEC_HVC1, KB_CODEC_AV01, KB_CODEC_VP09};
static const uint16_t ours_audio[] = {KB_CODEC_OPUS, KB_CODEC_MP4A, KB_CODEC_FLAC, KB_CODEC_AC3,
                                      KB_CODEC_EAC3};
#define OURS_CAPS_EX (KB_CAPSEX_MULTITRACK | KB_CAPSEX_MODEX)
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A received mask lets the peer take media it can decode or forward. */
#define TAKES (KB_FOURCC_CAN_DECODE | KB_FOURCC_CAN_FORWARD)

static int is_fourcc(uint16_t codec)
{
    return codec > KB_CODEC_FOURCC && codec < KB_CODEC_UNKNOWN_FOURCC;
}

/* The codec a FourCC names, or 0; "*" is 1. */
static uint16_t lookup(const char *s, size_t n)
{
    if (n == 1 && s[0] == '*')
        return 1;
    if (n != 4)
        return 0;
    for (uint16_t i = 1; i < KB_CAPS_CODECS; i++)
        if (memcmp(fourccs[i], s, 4) == 0)
            return (uint16_t)(KB_CODEC_FOURCC + i);
    return 0;
}

static void set_mask(struct kb_caps *c, uint16_t codec, int video, int both, uint8_t mask)
{
    if (codec == 1) {
        if (video || both)
            c->video_any |= mask;
        if (!video || both)
            c->audio_any |= mask;
    } else if (codec) {
        c->codec[codec - KB_CODEC_FOURCC] |= mask;
    }
}

struct parse {
    int bad;
    char *why;
    size_t whylen;
};

static void malformed(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void malformed(struct parse *p, const char *fmt, ...)
{
    if (p->bad++ == 0 && p->whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->why, p->whylen, fmt, ap);
        va_end(ap);
    }
}

static void read_list(struct kb_caps *c, const struct kb_amf_doc *doc,
                      const struct kb_amf_node *list, struct parse *p)
{
    if (list->type != KB_AMF_STRICT_ARRAY) {
        malformed(p, "fourCcList is not a strict array of FourCC strings");
        return;
    }
    c->declared = 1;
    unsigned i = 0;
    for (uint16_t idx = list->first_child; idx; idx = doc->nodes[idx].next, i++) {
        const struct kb_amf_node *v = &doc->nodes[idx];
        if (v->type != KB_AMF_STRING) {
            malformed(p, "fourCcList entry %u is not a string", i);
            continue;
        }
        /* v1's list has no masks: a codec listed is one the peer takes. */
        set_mask(c, lookup(v->str, v->str_len), 0, 1, TAKES);
    }
}

static void read_map(struct kb_caps *c, const struct kb_amf_doc *doc,
                     const struct kb_amf_node *map, const char *name, int video, struct parse *p)
{
    if (map->type != KB_AMF_OBJECT && map->type != KB_AMF_ECMA_ARRAY) {
        malformed(p, "%s is not an object", name);
        return;
    }
    c->declared = 1;
    unsigned i = 0;
    for (uint16_t idx = map->first_child; idx; idx = doc->nodes[idx].next, i++) {
        const struct kb_amf_node *v = &doc->nodes[idx];
        uint32_t mask;
        if (kb_amf_u32(v, &mask) < 0) {
            malformed(p, "%s member %u is not a FourCcInfoMask number", name, i);
            continue;
        }
        set_mask(c, lookup(v->name, v->name_len), video, 0, (uint8_t)(mask & 0xff));
    }
}

int kb_caps_parse(struct kb_caps *c, const struct kb_amf_doc *doc,
                  const struct kb_amf_node *obj, char *why, size_t whylen)
{
    struct parse p = {.why = why, .whylen = whylen};
    if (whylen)
        why[0] = '\0';
    const struct kb_amf_node *v = kb_amf_prop(doc, obj, "fourCcList");
    if (v)
        read_list(c, doc, v, &p);
    if ((v = kb_amf_prop(doc, obj, "videoFourCcInfoMap")))
        read_map(c, doc, v, "videoFourCcInfoMap", 1, &p);
    if ((v = kb_amf_prop(doc, obj, "audioFourCcInfoMap")))
        read_map(c, doc, v, "audioFourCcInfoMap", 0, &p);
    if ((v = kb_amf_prop(doc, obj, "capsEx"))) {
        uint32_t x;
        if (kb_amf_u32(v, &x) < 0) {
            malformed(&p, "capsEx is not a CapsExMask number");
        } else {
            c->declared = 1;
            c->caps_ex |= x;
        }
    }
    return p.bad;
}

void kb_caps_all(struct kb_caps *c)
{
    memset(c, 0, sizeof(*c));
    c->declared = 1;
    for (size_t i = 0; i < N(ours_video); i++)
        c->codec[ours_video[i] - KB_CODEC_FOURCC] = KB_FOURCC_CAN_FORWARD;
    for (size_t i = 0; i < N(ours_audio); i++)
        c->codec[ours_audio[i] - KB_CODEC_FOURCC] = KB_FOURCC_CAN_FORWARD;
    c->caps_ex = OURS_CAPS_EX;
}

enum kb_caps_verdict kb_caps_admit(const struct kb_caps *c, const struct kb_msg *m)
{
    if (!(m->flags & KB_MSGF_EX) || !(m->flags & (KB_MSGF_VIDEO | KB_MSGF_AUDIO)))
        return KB_CAPS_OK;
    uint8_t any = m->flags & KB_MSGF_VIDEO ? c->video_any : c->audio_any;
    if (is_fourcc(m->codec)) {
        if (!((c->codec[m->codec - KB_CODEC_FOURCC] | any) & TAKES))
            return KB_CAPS_NO_CODEC;
    } else if (m->codec == KB_CODEC_UNKNOWN_FOURCC) {
        /* Only "*" covers a codec nobody here can name. */
        if (!(any & TAKES))
            return KB_CAPS_NO_CODEC;
    } else {
        /* No FourCC: a command frame (or a header cut short) that an
         * E-RTMP peer can skip and a legacy one could not parse. */
        return c->declared ? KB_CAPS_OK : KB_CAPS_SKIP;
    }
    if ((m->flags & KB_MSGF_MULTITRACK) && !(c->caps_ex & KB_CAPSEX_MULTITRACK))
        return KB_CAPS_NO_MULTITRACK;
    if ((m->flags & KB_MSGF_MODEX) && !(c->caps_ex & KB_CAPSEX_MODEX))
        return KB_CAPS_NO_MODEX;
    return KB_CAPS_OK;
}

void kb_caps_what(enum kb_caps_verdict v, const struct kb_msg *m, char *buf, size_t n)
{
    int video = (m->flags & KB_MSGF_VIDEO) != 0;
    switch (v) {
    case KB_CAPS_NO_MULTITRACK:
        snprintf(buf, n, "Enhanced RTMP multitrack %s", video ? "video" : "audio");
        return;
    case KB_CAPS_NO_MODEX:
        snprintf(buf, n, "Enhanced RTMP ModEx %s", video ? "video" : "audio");
        return;
    case KB_CAPS_NO_CODEC:
        break;
    default:
        snprintf(buf, n, "this message");
        return;
    }
    const char *name = kb_flv_codec_name(m->codec, video);
    /* These have a legacy FLV form a legacy peer takes: say which it got. */
    if (m->codec == KB_CODEC_AVC1 || m->codec == KB_CODEC_MP4A || m->codec == KB_CODEC_MP3)
        snprintf(buf, n, "%s in Enhanced RTMP (%s)", name, fourccs[m->codec - KB_CODEC_FOURCC]);
    else if (m->codec == KB_CODEC_UNKNOWN_FOURCC)
        snprintf(buf, n, "an unknown Enhanced RTMP %s codec", video ? "video" : "audio");
    else
        snprintf(buf, n, "%s", name);
}

void kb_caps_describe(const struct kb_caps *c, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + o, n - o, __VA_ARGS__);                                            \
        if (w_ < 0 || (size_t)w_ >= n - o)                                                         \
            return;                                                                                \
        o += (size_t)w_;                                                                           \
    } while (0)
    if (!c->declared) {
        PUT("none");
        return;
    }
    for (int i = 1; i < KB_CAPS_CODECS; i++)
        if (c->codec[i] & TAKES)
            PUT("%s%s", o ? " " : "", fourccs[i]);
    if (c->video_any & TAKES)
        PUT("%s*video", o ? " " : "");
    if (c->audio_any & TAKES)
        PUT("%s*audio", o ? " " : "");
    if (!o)
        PUT("no codec");
    static const char *const bits[] = {"reconnect", "multitrack", "modex", "nano-offset"};
    int first = 1;
    for (int i = 0; i < 4; i++)
        if (c->caps_ex & (1u << i)) {
            PUT("%s%s", first ? ", capsEx " : " ", bits[i]);
            first = 0;
        }
#undef PUT
}

void kb_caps_write_ours(struct kb_amf_w *w)
{
    kb_amf_w_name(w, "fourCcList");
    kb_amf_w_strict_begin(w, (uint32_t)(N(ours_video) + N(ours_audio)));
    for (size_t i = 0; i < N(ours_video); i++)
        kb_amf_w_string(w, fourccs[ours_video[i] - KB_CODEC_FOURCC]);
    for (size_t i = 0; i < N(ours_audio); i++)
        kb_amf_w_string(w, fourccs[ours_audio[i] - KB_CODEC_FOURCC]);
    kb_amf_w_name(w, "videoFourCcInfoMap");
    kb_amf_w_object_begin(w);
    for (size_t i = 0; i < N(ours_video); i++)
        kb_amf_w_prop_number(w, fourccs[ours_video[i] - KB_CODEC_FOURCC], KB_FOURCC_CAN_FORWARD);
    kb_amf_w_object_end(w);
    kb_amf_w_name(w, "audioFourCcInfoMap");
    kb_amf_w_object_begin(w);
    for (size_t i = 0; i < N(ours_audio); i++)
        kb_amf_w_prop_number(w, fourccs[ours_audio[i] - KB_CODEC_FOURCC], KB_FOURCC_CAN_FORWARD);
    kb_amf_w_object_end(w);
    kb_amf_w_prop_number(w, "capsEx", OURS_CAPS_EX);
}
