/* What an FLV audio or video tag body holds, for the muxer: the codec, the
 * configuration record of a sequence header, or a coded frame with its
 * composition time. The tag header is read by relay/rtmp/flv.c
 * (kb_flv_tag_parse), the same reader the relay classifies messages with;
 * what is left here is codec-specific: which codecs kebun records and how
 * (AVCodecID), the AudioSpecificConfig, and parameter sets repeated
 * in-band. Legacy FLV (AVC, the unofficial HEVC id 12, AAC) and Enhanced
 * RTMP (hvc1, av01, avc1, mp4a, one track of a multitrack stream) are
 * recorded; anything else is reported with codec AV_CODEC_ID_NONE so the
 * caller can say it is not.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/mem.h>

#include "relay/rtmp/flv.h"

static enum AVCodecID codec_id(const struct kb_flv_tag *t)
{
    if (!t->video)
        return t->codec == KB_FLV_AUDIO_AAC || t->codec == KB_CODEC_MP4A ? AV_CODEC_ID_AAC
                                                                         : AV_CODEC_ID_NONE;
    switch (t->codec) {
    case KB_FLV_VIDEO_AVC:
    case KB_CODEC_AVC1:
        return AV_CODEC_ID_H264;
    case KB_FLV_VIDEO_HEVC_LEGACY:
    case KB_CODEC_HVC1:
        return AV_CODEC_ID_HEVC;
    case KB_CODEC_AV01:
        return AV_CODEC_ID_AV1;
    }
    return AV_CODEC_ID_NONE;
}

int kb__media_parse(const struct kb_msg *m, int track, struct kb__frame *f)
{
    memset(f, 0, sizeof(*f));
    f->track = -1;
    if (m->type != KB_MSG_VIDEO && m->type != KB_MSG_AUDIO)
        return -EINVAL;
    int video = m->type == KB_MSG_VIDEO;
    struct kb_flv_tag t;
    f->kind = video ? KB__V : KB__A;
    int err = kb_flv_tag_parse_track(m->data, m->len, video, track, &t);
    if (err == -ENOENT) {
        /* Another track's message: say which, for the caller's count. */
        if (kb_flv_tag_parse(m->data, m->len, video, &t) < 0)
            return -EINVAL;
        f->track = t.track_id;
        f->tracks = t.tracks;
        return -ENOENT;
    }
    if (err < 0)
        return -EINVAL;
    f->codec = codec_id(&t);
    f->name = kb_flv_codec_name(t.codec, video);
    if (t.multitrack) {
        /* One track of several: the caller records one of each kind. */
        f->track = t.track_id;
        f->tracks = t.tracks;
    }
    /* Only a SequenceStart holds a configuration record the muxer takes
     * (not an MPEG2TSSequenceStart's descriptor); a channel layout, an end
     * of sequence, metadata and commands hold nothing to record. */
    f->seqhdr = t.what == KB_FLV_CONFIG && t.packet_type == KB_FLV_VPT_SEQUENCE_START;
    f->skip = !f->seqhdr && t.what != KB_FLV_MEDIA;
    f->key = video ? t.key : 1; /* every audio frame is a keyframe */
    f->cts = t.cts;
    f->data = m->data + t.body;
    f->len = t.body_len;
    return 0;
}

/* Reads the start of an AudioSpecificConfig (ISO 14496-3 1.6.2.1): object
 * type, sampling frequency, channel configuration. */
static int parse_asc(const uint8_t *p, size_t n, int *rate, int *channels)
{
    static const int rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                  22050, 16000, 12000, 11025, 8000,  7350};
    uint64_t bits = 0;
    for (size_t i = 0; i < 8; i++)
        bits = (bits << 8) | (i < n ? p[i] : 0);
    int pos = 0;
#define TAKE(k) ((int)((bits >> (64 - (pos += (k)))) & ((1u << (k)) - 1)))
    if (n < 2)
        return -EINVAL;
    int aot = TAKE(5);
    if (aot == 31)
        aot = 32 + TAKE(6);
    int idx = TAKE(4);
    if (idx == 15) {
        if (n < 5)
            return -EINVAL;
        *rate = TAKE(24);
    } else if (idx < 13) {
        *rate = rates[idx];
    } else {
        return -EINVAL;
    }
    int ch = TAKE(4);
#undef TAKE
    /* 0 means a program config element follows; stereo is the usual one. */
    *channels = ch == 0 ? 2 : ch == 7 ? 8 : ch < 7 ? ch : 2;
    return (*rate > 0 && aot > 0) ? 0 : -EINVAL;
}

void kb__codec_clear(struct kb__codec *c)
{
    av_freep(&c->extradata);
    memset(c, 0, sizeof(*c));
}

int kb__codec_set(struct kb__codec *c, const struct kb__frame *f)
{
    int rate = 0, channels = 0;
    if (f->codec == AV_CODEC_ID_AAC && parse_asc(f->data, f->len, &rate, &channels) < 0)
        return -EINVAL;
    if (f->len == 0 || f->len > 1 << 20)
        return -EINVAL;
    uint8_t *x = av_mallocz(f->len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!x)
        return -ENOMEM;
    memcpy(x, f->data, f->len);
    kb__codec_clear(c);
    c->id = f->codec;
    c->name = f->name;
    c->extradata = x;
    c->size = (int)f->len;
    c->sample_rate = rate;
    c->channels = channels;
    return 0;
}

int kb__codec_same(const struct kb__codec *c, const struct kb__frame *f)
{
    return c->id == f->codec && (size_t)c->size == f->len &&
           memcmp(c->extradata, f->data, f->len) == 0;
}

int kb__codec_copy(struct kb__codec *dst, const struct kb__codec *src)
{
    if (dst == src)
        return 0;
    kb__codec_clear(dst);
    if (src->id == AV_CODEC_ID_NONE)
        return 0;
    uint8_t *x = av_mallocz((size_t)src->size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!x)
        return -ENOMEM;
    memcpy(x, src->extradata, (size_t)src->size);
    *dst = *src;
    dst->extradata = x;
    return 0;
}

static size_t put_nal(uint8_t *dst, const uint8_t *nal, size_t len, int lsize)
{
    for (int i = lsize - 1; i >= 0; i--)
        *dst++ = (uint8_t)(len >> (8 * i));
    memcpy(dst, nal, len);
    return (size_t)lsize + len;
}

int kb__inband_ps(enum AVCodecID id, const uint8_t *x, size_t n, uint8_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    size_t off, w = 0;
    int lsize, arrays;
    if (id == AV_CODEC_ID_H264 && n >= 7 && x[0] == 1) {
        lsize = (x[4] & 3) + 1;
        arrays = 2; /* SPS list (count in the low 5 bits), then PPS list */
        off = 5;
    } else if (id == AV_CODEC_ID_HEVC && n >= 23 && x[0] == 1) {
        lsize = (x[21] & 3) + 1;
        arrays = x[22];
        off = 23;
    } else {
        return 0;
    }
    /* Each NAL grows by at most 2 bytes (a 4-byte length replacing 2). */
    uint8_t *buf = malloc(n * 2 + 16);
    if (!buf)
        return -ENOMEM;
    for (int a = 0; a < arrays && off < n; a++) {
        size_t count;
        if (id == AV_CODEC_ID_H264) {
            count = a == 0 ? (x[off] & 0x1f) : x[off];
            off += 1;
        } else {
            if (off + 3 > n)
                break;
            count = ((size_t)x[off + 1] << 8) | x[off + 2];
            off += 3;
        }
        for (size_t i = 0; i < count && off + 2 <= n; i++) {
            size_t len = ((size_t)x[off] << 8) | x[off + 1];
            off += 2;
            if (off + len > n || (lsize < 4 && len >> (8 * lsize)))
                break;
            w += put_nal(buf + w, x + off, len, lsize);
            off += len;
        }
    }
    *out = buf;
    *out_n = w;
    return 0;
}
