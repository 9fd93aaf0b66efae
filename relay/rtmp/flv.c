/* FLV and Enhanced RTMP tag headers: the one reader both the relay and the
 * recorder use.
 *
 * Legacy video:  [frame type 4 | codec 4] then, for AVC and the legacy HEVC
 *                id, [AVCPacketType] [composition time SI24]; a command
 *                frame (type 5) has a command byte instead.
 * E-RTMP video:  [1 | frame type 3 | packet type 4]
 *                ModEx*:     [size-1 UI8 (UI16 when 255)] [data] [type 4 | packet type 4]
 *                command:    [command UI8] (frame type 5, not Metadata; no FourCC)
 *                Multitrack: [multitrack type 4 | packet type 4] [FourCC]
 *                            [track id] ([track size UI24] unless OneTrack)
 *                            (ManyTracksManyCodecs: the FourCC is the track's own
 *                            and comes first in each track, at the same place for
 *                            the first one)
 *                otherwise:  [FourCC]
 *                then the body: CodedFrames of AVC/HEVC/VVC start with a
 *                composition time SI24.
 * Legacy audio:  [format 4 | rate 2 | size 1 | type 1], AAC then [AACPacketType].
 * E-RTMP audio:  [9 | packet type 4], then ModEx, Multitrack and FourCC as
 *                for video (veovera Enhanced RTMP v2).
 */
#include "flv.h"

#include <errno.h>
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

/* Codecs whose CodedFrames carry a composition time. */
static int has_cts(uint16_t codec)
{
    return codec == KB_FLV_VIDEO_AVC || codec == KB_FLV_VIDEO_HEVC_LEGACY ||
           codec == KB_CODEC_AVC1 || codec == KB_CODEC_HVC1 || codec == KB_CODEC_VVC1;
}

static int32_t si24(const uint8_t *p)
{
    return (int32_t)(kb_get_be24(p) << 8) >> 8;
}

/* What each packet type carries, plus one (0: reserved, or a wrapper that
 * is read past before). Legacy AVCPacketType 0-2 and AACPacketType 0-1
 * mean what the E-RTMP types of the same numbers do. */
static const uint8_t video_what[16] = {
    [KB_FLV_VPT_SEQUENCE_START] = KB_FLV_CONFIG + 1,
    [KB_FLV_VPT_CODED_FRAMES] = KB_FLV_MEDIA + 1,
    [KB_FLV_VPT_SEQUENCE_END] = KB_FLV_END + 1,
    [KB_FLV_VPT_CODED_FRAMES_X] = KB_FLV_MEDIA + 1,
    [KB_FLV_VPT_METADATA] = KB_FLV_INFO + 1,
    [KB_FLV_VPT_MPEG2TS_SEQUENCE_START] = KB_FLV_CONFIG + 1,
};
static const uint8_t audio_what[16] = {
    [KB_FLV_APT_SEQUENCE_START] = KB_FLV_CONFIG + 1,
    [KB_FLV_APT_CODED_FRAMES] = KB_FLV_MEDIA + 1,
    [KB_FLV_APT_SEQUENCE_END] = KB_FLV_END + 1,
    [KB_FLV_APT_MULTICHANNEL_CONFIG] = KB_FLV_LAYOUT + 1,
};

/* The tracks of a Multitrack message from `o` on (after the AvMultitrackType
 * byte, and after the shared FourCC unless each track names its own): each
 * ([FourCC]) [track id] ([size UI24]) [data], OneTrack's data running to the
 * end of the message and every other track's to its size, the last ending
 * where the message does. Describes the track `want` (-1: the first) in t
 * and *off / *end, and counts them all. 0, -ENOENT or -EINVAL. */
static int tracks(const uint8_t *p, size_t n, size_t o, int mt, int want, struct kb_flv_tag *t,
                  size_t *off, size_t *end)
{
    const uint16_t shared = t->codec;
    int found = 0;
    unsigned count = 0;
    do {
        uint16_t codec = shared;
        if (mt == KB_FLV_MT_MANY_CODECS) {
            if (n - o < 4)
                return -EINVAL;
            codec = fourcc_codec(p + o);
            o += 4;
        }
        if (o >= n)
            return -EINVAL;
        uint8_t id = p[o++];
        size_t size = n - o;
        if (mt != KB_FLV_MT_ONE_TRACK) {
            if (n - o < 3 || kb_get_be24(p + o) > n - o - 3)
                return -EINVAL;
            size = kb_get_be24(p + o);
            o += 3;
        }
        if (!found && (want < 0 || id == want)) {
            found = 1;
            t->codec = codec;
            t->track_id = id;
            *off = o;
            *end = o + size;
        }
        o += size;
        count++;
    } while (o < n && mt != KB_FLV_MT_ONE_TRACK);
    t->tracks = (uint8_t)(count > 255 ? 255 : count);
    return found ? 0 : -ENOENT;
}

/* The part of an E-RTMP header that audio and video share, from byte 1 on:
 * ModEx prefixes, a command (video), the Multitrack wrapper and the
 * FourCC. Sets t->packet_type, codec, multitrack, tracks, track_id, modex,
 * *off (where the described track's body starts) and *end (where it
 * ends). 0, -ENOENT (no track `want`) or -EINVAL. */
static int ex_header(const uint8_t *p, size_t n, int want, struct kb_flv_tag *t, size_t *off,
                     size_t *end)
{
    const int multitrack = t->video ? KB_FLV_VPT_MULTITRACK : KB_FLV_APT_MULTITRACK;
    int pkt = p[0] & 0x0f;
    size_t o = 1;
    while (pkt == KB_FLV_VPT_MODEX) { /* 7 for audio too */
        /* ModEx data of 1 to 256 bytes, or 1 to 65536 behind a 255. */
        if (o >= n)
            return -EINVAL;
        size_t size = (size_t)p[o++] + 1;
        if (size == 256) {
            if (o + 2 > n)
                return -EINVAL;
            size = (size_t)kb_get_be16(p + o) + 1;
            o += 2;
        }
        if (size >= n - o)
            return -EINVAL;
        o += size;
        pkt = p[o++] & 0x0f;
        t->modex = 1;
    }
    if (t->video && t->frame_type == KB_FLV_FRAME_COMMAND && pkt != KB_FLV_VPT_METADATA) {
        /* A command byte and nothing else: no FourCC. */
        t->packet_type = (uint8_t)pkt;
        if (o >= n)
            return -EINVAL;
        *off = o;
        *end = n;
        return 0;
    }
    int mt = -1;
    if (pkt == multitrack) {
        if (o >= n)
            return -EINVAL;
        mt = p[o] >> 4;
        pkt = p[o++] & 0x0f;
        if (mt > KB_FLV_MT_MANY_CODECS || pkt == multitrack || pkt == KB_FLV_VPT_MODEX)
            return -EINVAL;
        t->multitrack = (uint8_t)(mt + 1);
    }
    t->packet_type = (uint8_t)pkt;
    if (mt == KB_FLV_MT_MANY_CODECS) {
        /* The first track's own FourCC comes where the shared one would:
         * the codec is known even when the rest is cut short. */
        if (o + 4 > n)
            return -EINVAL;
        t->codec = fourcc_codec(p + o);
        return tracks(p, n, o, mt, want, t, off, end);
    }
    if (o + 4 > n)
        return -EINVAL;
    t->codec = fourcc_codec(p + o);
    o += 4;
    if (mt >= 0)
        return tracks(p, n, o, mt, want, t, off, end);
    *off = o;
    *end = n;
    return 0;
}

/* Coded video frames: a keyframe or not, and for AVC/HEVC/VVC
 * CodedFrames the composition time in front of the data. */
static int video_frames(const uint8_t *p, struct kb_flv_tag *t, size_t *off, size_t end)
{
    t->key = t->frame_type == KB_FLV_FRAME_KEY;
    if (t->packet_type != KB_FLV_VPT_CODED_FRAMES || !has_cts(t->codec))
        return 0;
    if (*off + 3 > end)
        return -EINVAL;
    t->cts = si24(p + *off);
    *off += 3;
    return 0;
}

/* An E-RTMP audio or video tag. */
static int parse_ex(const uint8_t *p, size_t n, int want, struct kb_flv_tag *t, size_t *off,
                    size_t *end)
{
    t->ex = 1;
    int err = ex_header(p, n, want, t, off, end);
    if (err < 0)
        return err;
    if (t->video && t->frame_type == KB_FLV_FRAME_COMMAND &&
        t->packet_type != KB_FLV_VPT_METADATA) {
        t->what = KB_FLV_INFO;
        return 0;
    }
    int what = (t->video ? video_what : audio_what)[t->packet_type] - 1;
    if (what < 0)
        return -EINVAL; /* reserved */
    t->what = (uint8_t)what;
    return t->video && what == KB_FLV_MEDIA ? video_frames(p, t, off, *end) : 0;
}

static int parse_video(const uint8_t *p, size_t n, int want, struct kb_flv_tag *t, size_t *off,
                       size_t *end)
{
    if (p[0] & 0x80) {
        t->frame_type = (p[0] >> 4) & 7;
        return parse_ex(p, n, want, t, off, end);
    }
    t->frame_type = p[0] >> 4;
    t->codec = p[0] & 0x0f;
    *end = n;
    *off = 1;
    if (t->frame_type == KB_FLV_FRAME_COMMAND) {
        t->what = KB_FLV_INFO;
        return n < 2 ? -EINVAL : 0;
    }
    t->packet_type = KB_FLV_VPT_CODED_FRAMES;
    if (t->codec != KB_FLV_VIDEO_AVC && t->codec != KB_FLV_VIDEO_HEVC_LEGACY) {
        /* No packet type: every tag is a picture. */
        t->what = KB_FLV_MEDIA;
        t->key = t->frame_type == KB_FLV_FRAME_KEY;
        return 0;
    }
    /* AVCPacketType 0-2 and a composition time, always there. */
    if (n < 5 || p[1] > KB_FLV_VPT_SEQUENCE_END)
        return -EINVAL;
    t->packet_type = p[1];
    t->what = (uint8_t)(video_what[p[1]] - 1);
    *off = 5;
    if (t->what == KB_FLV_MEDIA) {
        t->key = t->frame_type == KB_FLV_FRAME_KEY;
        t->cts = si24(p + 2);
    }
    return 0;
}

static int parse_audio(const uint8_t *p, size_t n, int want, struct kb_flv_tag *t, size_t *off,
                       size_t *end)
{
    int fmt = p[0] >> 4;
    if (fmt == KB_FLV_AUDIO_EX)
        return parse_ex(p, n, want, t, off, end);
    t->codec = (uint16_t)fmt;
    t->packet_type = KB_FLV_APT_CODED_FRAMES;
    t->what = KB_FLV_MEDIA;
    *off = 1;
    *end = n;
    if (fmt != KB_FLV_AUDIO_AAC)
        return 0;
    if (n < 2)
        return -EINVAL;
    /* AACPacketType: 0 AudioSpecificConfig, 1 raw frames. */
    t->packet_type = p[1];
    t->what = p[1] == 0 ? KB_FLV_CONFIG : KB_FLV_MEDIA;
    *off = 2;
    return 0;
}

int kb_flv_tag_parse_track(const uint8_t *p, size_t n, int video, int track_id,
                           struct kb_flv_tag *t)
{
    memset(t, 0, sizeof(*t));
    t->video = video != 0;
    t->what = KB_FLV_INFO;
    if (n == 0 || n > UINT32_MAX)
        return -EINVAL;
    size_t off = 0, end = 0;
    int want = track_id < 0 ? -1 : track_id;
    int err = video ? parse_video(p, n, want, t, &off, &end)
                    : parse_audio(p, n, want, t, &off, &end);
    if (err < 0) {
        t->what = KB_FLV_INFO;
        t->key = 0;
        t->cts = 0;
        return err;
    }
    t->body = (uint32_t)off;
    t->body_len = (uint32_t)(end - off);
    return 0;
}

int kb_flv_tag_parse(const uint8_t *p, size_t n, int video, struct kb_flv_tag *t)
{
    return kb_flv_tag_parse_track(p, n, video, -1, t);
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
    if (m->type == KB_MSG_DATA_AMF0) {
        classify_data(m);
        return;
    }
    if (m->type != KB_MSG_VIDEO && m->type != KB_MSG_AUDIO)
        return;
    int video = m->type == KB_MSG_VIDEO;
    struct kb_flv_tag t;
    int err = kb_flv_tag_parse(m->data, m->len, video, &t);
    m->flags = video ? KB_MSGF_VIDEO : KB_MSGF_AUDIO;
    m->codec = t.codec;
    if (t.ex)
        m->flags |= KB_MSGF_EX;
    if (t.multitrack)
        m->flags |= KB_MSGF_MULTITRACK;
    if (t.modex)
        m->flags |= KB_MSGF_MODEX;
    if (err < 0)
        return;
    switch (t.what) {
    case KB_FLV_CONFIG:
        m->flags |= KB_MSGF_SEQHDR;
        break;
    case KB_FLV_LAYOUT:
        m->flags |= KB_MSGF_LAYOUT;
        break;
    case KB_FLV_END:
        m->flags |= KB_MSGF_EOS;
        break;
    case KB_FLV_MEDIA:
        if (t.key)
            m->flags |= KB_MSGF_KEY;
        break;
    }
}

int32_t kb_flv_cts(const struct kb_msg *m)
{
    struct kb_flv_tag t;
    if (m->type != KB_MSG_VIDEO || kb_flv_tag_parse(m->data, m->len, 1, &t) < 0)
        return 0;
    return t.cts;
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
