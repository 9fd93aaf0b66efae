#include "flv.h"

#include <string.h>

#include "amf.h"

static uint16_t fourcc_codec(const uint8_t *p)
{
    static const struct {
        char cc[4];
        uint16_t codec;
    } map[] = {
        {"hvc1", KB_CODEC_HVC1}, {"av01", KB_CODEC_AV01}, {"vp09", KB_CODEC_VP09},
        {"avc1", KB_CODEC_AVC1}, {"vp08", KB_CODEC_VP08}, {"vvc1", KB_CODEC_VVC1},
        {"Opus", KB_CODEC_OPUS}, {"fLaC", KB_CODEC_FLAC}, {"ac-3", KB_CODEC_AC3},
        {"ec-3", KB_CODEC_EAC3}, {".mp3", KB_CODEC_MP3},  {"mp4a", KB_CODEC_MP4A},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (memcmp(p, map[i].cc, 4) == 0)
            return map[i].codec;
    return KB_CODEC_UNKNOWN_FOURCC;
}

/* E-RTMP video packet types. */
enum {
    VPT_SEQUENCE_START = 0,
    VPT_CODED_FRAMES = 1,
    VPT_SEQUENCE_END = 2,
    VPT_CODED_FRAMES_X = 3,
    VPT_METADATA = 4,
    VPT_MPEG2TS_SEQUENCE_START = 5,
    VPT_MULTITRACK = 6,
};

/* Multitrack types (E-RTMP v2). */
enum {
    MT_ONE_TRACK = 0,
    MT_MANY_TRACKS = 1,
    MT_MANY_CODECS = 2,
};

#define APT_MULTITRACK 5 ///< audio packet type of a multitrack audio tag

/* An E-RTMP extended header: the packet type in byte 0's low nibble and
 * a FourCC after it, except for multitrack tags (v2), whose real packet
 * type shares the next byte with the multitrack type and whose FourCC
 * follows (after the first track id when every track has its own codec).
 * Returns the packet type and sets m->codec, or -1 when too short. */
static int ex_header(struct kb_msg *m, uint8_t multitrack)
{
    const uint8_t *p = m->data;
    int pkt = p[0] & 0x0f;
    const uint8_t *cc = p + 1;
    if (pkt == multitrack) {
        if (m->len < 2)
            return -1;
        cc = (p[1] >> 4) == MT_MANY_CODECS ? p + 3 : p + 2;
        pkt = p[1] & 0x0f;
    }
    if (m->len < (uint32_t)(cc - p) + 4)
        return -1;
    m->codec = fourcc_codec(cc);
    return pkt;
}

static void classify_video(struct kb_msg *m)
{
    const uint8_t *p = m->data;
    m->flags = KB_MSGF_VIDEO;
    if (m->len < 1)
        return;
    uint8_t frame_type;
    if (p[0] & 0x80) {
        frame_type = (p[0] >> 4) & 7;
        int pkt = ex_header(m, VPT_MULTITRACK);
        if (pkt < 0)
            return;
        if (pkt == VPT_SEQUENCE_START || pkt == VPT_MPEG2TS_SEQUENCE_START)
            m->flags |= KB_MSGF_SEQHDR;
        else if (pkt == VPT_SEQUENCE_END)
            m->flags |= KB_MSGF_EOS;
        else if ((pkt == VPT_CODED_FRAMES || pkt == VPT_CODED_FRAMES_X) && frame_type == 1)
            m->flags |= KB_MSGF_KEY;
        return;
    }
    frame_type = p[0] >> 4;
    m->codec = p[0] & 0x0f;
    if (m->codec == KB_FLV_VIDEO_AVC || m->codec == KB_FLV_VIDEO_HEVC_LEGACY) {
        if (m->len < 2)
            return;
        if (p[1] == 0)
            m->flags |= KB_MSGF_SEQHDR;
        else if (p[1] == 2)
            m->flags |= KB_MSGF_EOS;
        else if (frame_type == 1)
            m->flags |= KB_MSGF_KEY;
        return;
    }
    if (frame_type == 1)
        m->flags |= KB_MSGF_KEY;
}

static void classify_audio(struct kb_msg *m)
{
    const uint8_t *p = m->data;
    m->flags = KB_MSGF_AUDIO;
    if (m->len < 1)
        return;
    uint8_t fmt = p[0] >> 4;
    if (fmt == KB_FLV_AUDIO_EX) {
        int pkt = ex_header(m, APT_MULTITRACK);
        if (pkt < 0)
            return;
        /* SequenceStart and MultichannelConfig both configure the decoder. */
        if (pkt == 0 || pkt == 4)
            m->flags |= KB_MSGF_SEQHDR;
        else if (pkt == 2)
            m->flags |= KB_MSGF_EOS;
        return;
    }
    m->codec = fmt;
    if (fmt == KB_FLV_AUDIO_AAC && m->len >= 2 && p[1] == 0)
        m->flags |= KB_MSGF_SEQHDR;
}

static void classify_data(struct kb_msg *m)
{
    size_t off = 0, len;
    const char *s;
    if (kb_amf_read_string(m->data, m->len, &off, &s, &len) < 0)
        return;
    if (len == 13 && memcmp(s, "@setDataFrame", 13) == 0 &&
        kb_amf_read_string(m->data, m->len, &off, &s, &len) < 0)
        return;
    if (len == 10 && memcmp(s, "onMetaData", 10) == 0)
        m->flags |= KB_MSGF_METADATA;
}

void kb_flv_classify(struct kb_msg *m)
{
    m->flags = 0;
    m->codec = 0;
    if (m->type == KB_MSG_VIDEO)
        classify_video(m);
    else if (m->type == KB_MSG_AUDIO)
        classify_audio(m);
    else if (m->type == KB_MSG_DATA_AMF0)
        classify_data(m);
}

int32_t kb_flv_cts(const struct kb_msg *m)
{
    const uint8_t *p = m->data;
    if (m->type != KB_MSG_VIDEO || m->len < 5)
        return 0;
    uint32_t v;
    if (p[0] & 0x80) {
        /* Only CodedFrames carries a composition time, after the FourCC. */
        if ((p[0] & 0x0f) != VPT_CODED_FRAMES || m->len < 8)
            return 0;
        uint16_t c = fourcc_codec(p + 1);
        if (c != KB_CODEC_HVC1 && c != KB_CODEC_AVC1 && c != KB_CODEC_VVC1)
            return 0;
        v = kb_get_be24(p + 5);
    } else {
        uint8_t codec = p[0] & 0x0f;
        if ((codec != KB_FLV_VIDEO_AVC && codec != KB_FLV_VIDEO_HEVC_LEGACY) || p[1] != 1)
            return 0;
        v = kb_get_be24(p + 2);
    }
    /* Sign-extend 24 bits. */
    return (int32_t)(v << 8) >> 8;
}

const char *kb_flv_codec_name(uint16_t codec, int video)
{
    switch (codec) {
    case KB_CODEC_HVC1:
        return "HEVC";
    case KB_CODEC_AV01:
        return "AV1";
    case KB_CODEC_VP09:
        return "VP9";
    case KB_CODEC_AVC1:
        return "H.264";
    case KB_CODEC_VP08:
        return "VP8";
    case KB_CODEC_VVC1:
        return "VVC";
    case KB_CODEC_OPUS:
        return "Opus";
    case KB_CODEC_FLAC:
        return "FLAC";
    case KB_CODEC_AC3:
        return "AC-3";
    case KB_CODEC_EAC3:
        return "E-AC-3";
    case KB_CODEC_MP3:
        return "MP3";
    case KB_CODEC_MP4A:
        return "AAC";
    }
    if (video) {
        switch (codec) {
        case KB_FLV_VIDEO_AVC:
            return "H.264";
        case KB_FLV_VIDEO_HEVC_LEGACY:
            return "HEVC";
        case 2:
            return "Sorenson H.263";
        case 4:
            return "VP6";
        }
    } else {
        switch (codec) {
        case KB_FLV_AUDIO_AAC:
            return "AAC";
        case KB_FLV_AUDIO_MP3:
            return "MP3";
        case 11:
            return "Speex";
        case 7:
        case 8:
            return "G.711";
        }
    }
    return "unknown";
}
