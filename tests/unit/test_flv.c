/* kebun: unit tests for FLV tag headers (relay/rtmp/flv.c): the one reader
 * (kb_flv_tag_parse) and the relay's classification built on it.
 *
 * Payloads follow the FLV specification v10.1 (legacy audio/video tag
 * headers) and veovera's Enhanced RTMP v1/v2 (extended headers with
 * FourCCs, ModEx, Multitrack). Every packet type of both is read here, and
 * every one cut short at every length. */
#include "relay/rtmp/flv.h"

#include <errno.h>
#include <string.h>

#include "relay/rtmp/msg.h"
#include "test.h"

/* A message holding exactly these bytes (so ASan catches over-reads). */
static struct kb_msg *msg(uint8_t type, const void *p, uint32_t n)
{
    struct kb_msg *m = kb_msg_new_copy(type, 0, 1, p, n);
    if (!m)
        abort();
    return m;
}

/* Classify and compare flags and codec. */
static int classify(uint8_t type, const void *p, uint32_t n, unsigned flags, unsigned codec,
                    const char *what)
{
    struct kb_msg *m = msg(type, p, n);
    m->flags = 0xFF; /* stale values must be replaced */
    m->codec = 0xFFFF;
    kb_flv_classify(m);
    if (m->flags != flags || m->codec != codec) {
        fprintf(stderr, "%s: flags 0x%03x codec 0x%x, want flags 0x%03x codec 0x%x\n", what,
                m->flags, m->codec, flags, codec);
        kb_msg_unref(m);
        return 1;
    }
    kb_msg_unref(m);
    return 0;
}

#define V KB_MSGF_VIDEO
#define A KB_MSGF_AUDIO
#define VX (KB_MSGF_VIDEO | KB_MSGF_EX) ///< E-RTMP video: only for peers that declared it
#define AX (KB_MSGF_AUDIO | KB_MSGF_EX)
#define MT KB_MSGF_MULTITRACK

static int test_avc(void)
{
    const uint8_t seq[] = {0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1F, 0xFF};
    ASSERT_OK(classify(KB_MSG_VIDEO, seq, sizeof(seq), V | KB_MSGF_SEQHDR, KB_FLV_VIDEO_AVC,
                       "AVC sequence header"));
    const uint8_t key[] = {0x17, 0x01, 0, 0, 0x28, 0, 0, 0, 5, 0x65, 1, 2, 3, 4};
    ASSERT_OK(classify(KB_MSG_VIDEO, key, sizeof(key), V | KB_MSGF_KEY, KB_FLV_VIDEO_AVC,
                       "AVC keyframe"));
    const uint8_t inter[] = {0x27, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9A};
    ASSERT_OK(classify(KB_MSG_VIDEO, inter, sizeof(inter), V, KB_FLV_VIDEO_AVC, "AVC inter frame"));
    const uint8_t eos[] = {0x17, 0x02, 0, 0, 0};
    ASSERT_OK(classify(KB_MSG_VIDEO, eos, sizeof(eos), V | KB_MSGF_EOS, KB_FLV_VIDEO_AVC,
                       "AVC end of sequence"));
    /* Disposable inter frame (frame type 3). */
    const uint8_t disp[] = {0x37, 0x01, 0, 0, 0, 0xAA};
    ASSERT_OK(
        classify(KB_MSG_VIDEO, disp, sizeof(disp), V, KB_FLV_VIDEO_AVC, "AVC disposable frame"));
    /* The pre-E-RTMP HEVC codec id 12 behaves like AVC. */
    const uint8_t hevc_seq[] = {0x1C, 0x00, 0, 0, 0, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, hevc_seq, sizeof(hevc_seq), V | KB_MSGF_SEQHDR,
                       KB_FLV_VIDEO_HEVC_LEGACY, "legacy HEVC sequence header"));
    const uint8_t hevc_key[] = {0x1C, 0x01, 0, 0, 0, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, hevc_key, sizeof(hevc_key), V | KB_MSGF_KEY,
                       KB_FLV_VIDEO_HEVC_LEGACY, "legacy HEVC keyframe"));
    /* Other legacy codecs: keyframe from the frame type alone. */
    /* Frame type 5 is a command, whatever byte follows: StartSeek (0) is
     * no AVC sequence header and never replaces one. */
    const uint8_t start_seek[] = {0x57, 0x00};
    ASSERT_OK(classify(KB_MSG_VIDEO, start_seek, sizeof(start_seek), V, KB_FLV_VIDEO_AVC,
                       "AVC command StartSeek"));
    const uint8_t vp6_key[] = {0x14, 0x00, 0x11};
    ASSERT_OK(classify(KB_MSG_VIDEO, vp6_key, sizeof(vp6_key), V | KB_MSGF_KEY, 4, "VP6 keyframe"));
    const uint8_t h263_inter[] = {0x22, 0x00};
    ASSERT_OK(classify(KB_MSG_VIDEO, h263_inter, sizeof(h263_inter), V, 2, "Sorenson inter frame"));
    return 0;
}

static int test_legacy_audio(void)
{
    const uint8_t aac_seq[] = {0xAF, 0x00, 0x12, 0x10};
    ASSERT_OK(classify(KB_MSG_AUDIO, aac_seq, sizeof(aac_seq), A | KB_MSGF_SEQHDR, KB_FLV_AUDIO_AAC,
                       "AAC sequence header"));
    const uint8_t aac_raw[] = {0xAF, 0x01, 0x21, 0x10, 0x04};
    ASSERT_OK(classify(KB_MSG_AUDIO, aac_raw, sizeof(aac_raw), A, KB_FLV_AUDIO_AAC, "AAC raw"));
    /* MP3 (SoundFormat 2), 44 kHz, 16 bit, stereo: 0x2F; byte 1 is MP3
     * data (a frame sync), never a sequence header even when it is 0. */
    const uint8_t mp3[] = {0x2F, 0xFF, 0xFB, 0x90, 0x64};
    ASSERT_OK(classify(KB_MSG_AUDIO, mp3, sizeof(mp3), A, KB_FLV_AUDIO_MP3, "MP3"));
    const uint8_t mp3zero[] = {0x2F, 0x00, 0x00};
    ASSERT_OK(classify(KB_MSG_AUDIO, mp3zero, sizeof(mp3zero), A, KB_FLV_AUDIO_MP3,
                       "MP3 starting with 0"));
    const uint8_t speex[] = {0xB6, 0x01};
    ASSERT_OK(classify(KB_MSG_AUDIO, speex, sizeof(speex), A, 11, "Speex"));
    return 0;
}

static int test_ertmp_video(void)
{
    /* byte 0: IsExHeader | FrameType << 4 | PacketType, then the FourCC. */
    const uint8_t seq[] = {0x90, 'h', 'v', 'c', '1', 0x01, 0x01, 0x60};
    ASSERT_OK(classify(KB_MSG_VIDEO, seq, sizeof(seq), VX | KB_MSGF_SEQHDR, KB_CODEC_HVC1,
                       "HEVC SequenceStart"));
    const uint8_t key[] = {0x91, 'h', 'v', 'c', '1', 0, 0, 0x50, 0, 0, 0, 4, 0x26, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, key, sizeof(key), VX | KB_MSGF_KEY, KB_CODEC_HVC1,
                       "HEVC CodedFrames key"));
    const uint8_t inter[] = {0xA1, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 2, 0x02, 1};
    ASSERT_OK(
        classify(KB_MSG_VIDEO, inter, sizeof(inter), VX, KB_CODEC_HVC1, "HEVC CodedFrames inter"));
    const uint8_t keyx[] = {0x93, 'h', 'v', 'c', '1', 0, 0, 0, 4, 0x26, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, keyx, sizeof(keyx), VX | KB_MSGF_KEY, KB_CODEC_HVC1,
                       "HEVC CodedFramesX key"));
    const uint8_t interx[] = {0xA3, 'h', 'v', 'c', '1', 0, 0, 0, 2, 0x02, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, interx, sizeof(interx), VX, KB_CODEC_HVC1,
                       "HEVC CodedFramesX inter"));
    const uint8_t end[] = {0x92, 'h', 'v', 'c', '1'};
    ASSERT_OK(classify(KB_MSG_VIDEO, end, sizeof(end), VX | KB_MSGF_EOS, KB_CODEC_HVC1,
                       "HEVC SequenceEnd"));
    const uint8_t meta[] = {0x94, 'h', 'v', 'c', '1', 0x02, 0,   9,  'c',
                            'o',  'l', 'o', 'r', 'I', 'n',  'f', 'o'};
    ASSERT_OK(classify(KB_MSG_VIDEO, meta, sizeof(meta), VX, KB_CODEC_HVC1, "HEVC Metadata"));
    /* A command frame has no FourCC. */
    const uint8_t cmd[] = {0xD0, 0x01};
    ASSERT_OK(classify(KB_MSG_VIDEO, cmd, sizeof(cmd), VX, 0, "E-RTMP command EndSeek"));
    const uint8_t ts_seq[] = {0x95, 'a', 'v', '0', '1', 0x80};
    ASSERT_OK(classify(KB_MSG_VIDEO, ts_seq, sizeof(ts_seq), VX | KB_MSGF_SEQHDR, KB_CODEC_AV01,
                       "AV1 MPEG2TSSequenceStart"));
    /* Each FourCC. */
    static const struct {
        char cc[4];
        unsigned codec;
    } ccs[] = {{{'a', 'v', '0', '1'}, KB_CODEC_AV01},
               {{'v', 'p', '0', '9'}, KB_CODEC_VP09},
               {{'a', 'v', 'c', '1'}, KB_CODEC_AVC1},
               {{'v', 'p', '0', '8'}, KB_CODEC_VP08},
               {{'v', 'v', 'c', '1'}, KB_CODEC_VVC1},
               {{'h', 'e', 'v', '1'}, KB_CODEC_UNKNOWN_FOURCC},
               {{'H', 'V', 'C', '1'}, KB_CODEC_UNKNOWN_FOURCC}};
    for (size_t i = 0; i < sizeof(ccs) / sizeof(ccs[0]); i++) {
        uint8_t p[6] = {0x93,
                        (uint8_t)ccs[i].cc[0],
                        (uint8_t)ccs[i].cc[1],
                        (uint8_t)ccs[i].cc[2],
                        (uint8_t)ccs[i].cc[3],
                        0};
        ASSERT_OK(classify(KB_MSG_VIDEO, p, sizeof(p), VX | KB_MSGF_KEY, ccs[i].codec, "FourCC"));
    }
    return 0;
}

static int test_ertmp_audio(void)
{
    /* SoundFormat 9 (ExHeader) << 4 | AudioPacketType, then the FourCC. */
    const uint8_t seq[] = {0x90, 'O', 'p', 'u', 's', 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd'};
    ASSERT_OK(classify(KB_MSG_AUDIO, seq, sizeof(seq), AX | KB_MSGF_SEQHDR, KB_CODEC_OPUS,
                       "Opus SequenceStart"));
    const uint8_t frame[] = {0x91, 'O', 'p', 'u', 's', 0xFC, 0xFF, 0xFE};
    ASSERT_OK(classify(KB_MSG_AUDIO, frame, sizeof(frame), AX, KB_CODEC_OPUS, "Opus CodedFrames"));
    const uint8_t end[] = {0x92, 'O', 'p', 'u', 's'};
    ASSERT_OK(classify(KB_MSG_AUDIO, end, sizeof(end), AX | KB_MSGF_EOS, KB_CODEC_OPUS,
                       "Opus SequenceEnd"));
    /* MultichannelConfig is a channel layout beside the sequence header,
     * never in its place. */
    const uint8_t mcc[] = {0x94, 'O', 'p', 'u', 's', 0x00, 0x02};
    ASSERT_OK(classify(KB_MSG_AUDIO, mcc, sizeof(mcc), AX | KB_MSGF_LAYOUT, KB_CODEC_OPUS,
                       "Opus MultichannelConfig"));
    static const struct {
        char cc[4];
        unsigned codec;
    } ccs[] = {
        {{'f', 'L', 'a', 'C'}, KB_CODEC_FLAC}, {{'a', 'c', '-', '3'}, KB_CODEC_AC3},
        {{'e', 'c', '-', '3'}, KB_CODEC_EAC3}, {{'.', 'm', 'p', '3'}, KB_CODEC_MP3},
        {{'m', 'p', '4', 'a'}, KB_CODEC_MP4A}, {{'o', 'p', 'u', 's'}, KB_CODEC_UNKNOWN_FOURCC}};
    for (size_t i = 0; i < sizeof(ccs) / sizeof(ccs[0]); i++) {
        uint8_t p[5] = {0x90, (uint8_t)ccs[i].cc[0], (uint8_t)ccs[i].cc[1], (uint8_t)ccs[i].cc[2],
                        (uint8_t)ccs[i].cc[3]};
        ASSERT_OK(
            classify(KB_MSG_AUDIO, p, sizeof(p), AX | KB_MSGF_SEQHDR, ccs[i].codec, "audio FourCC"));
    }
    return 0;
}

/* E-RTMP v2 multitrack: PacketType 6 in byte 0; byte 1 holds the
 * AvMultitrackType (high nibble) and the packet type of the tracks (low
 * nibble); the FourCC follows (except for ManyTracksManyCodecs), then the
 * track id. The classification must follow the inner packet type and read
 * the FourCC after byte 1. */
static int test_ertmp_multitrack(void)
{
    /* OneTrack (0), SequenceStart (0), hvc1, track 0. */
    const uint8_t vseq[] = {0x96, 0x00, 'h', 'v', 'c', '1', 0x00, 0x01, 0x01, 0x60};
    ASSERT_OK(classify(KB_MSG_VIDEO, vseq, sizeof(vseq), VX | MT | KB_MSGF_SEQHDR, KB_CODEC_HVC1,
                       "multitrack HEVC SequenceStart"));
    /* OneTrack, CodedFrames (1), key frame, hvc1, track 0, SI24 cts. */
    const uint8_t vkey[] = {0x96, 0x01, 'h', 'v', 'c', '1', 0x00, 0, 0, 0, 0, 0, 0, 4, 0x26};
    ASSERT_OK(classify(KB_MSG_VIDEO, vkey, sizeof(vkey), VX | MT | KB_MSGF_KEY, KB_CODEC_HVC1,
                       "multitrack HEVC CodedFrames key"));
    /* ManyTracks (1), CodedFramesX (3), inter frame, av01, track 1 of 5
     * bytes. */
    const uint8_t vinter[] = {0xA6, 0x13, 'a', 'v', '0', '1', 0x01, 0, 0, 5, 0x12, 1, 2, 3, 4};
    ASSERT_OK(classify(KB_MSG_VIDEO, vinter, sizeof(vinter), VX | MT, KB_CODEC_AV01,
                       "multitrack AV1 CodedFramesX inter"));
    /* Audio: SoundFormat 9, AudioPacketType Multitrack (5); OneTrack,
     * SequenceStart, Opus. */
    const uint8_t aseq[] = {0x95, 0x00, 'O', 'p', 'u', 's', 0x00, 'O', 'p', 'u', 's'};
    ASSERT_OK(classify(KB_MSG_AUDIO, aseq, sizeof(aseq), AX | MT | KB_MSGF_SEQHDR, KB_CODEC_OPUS,
                       "multitrack Opus SequenceStart"));
    return 0;
}

/* ---- kb_flv_tag_parse: every field of every packet type ---------------- */

struct tag_case {
    const char *name;
    int video;
    uint8_t b[40];
    uint32_t n;
    int err; ///< 0 or -EINVAL
    struct kb_flv_tag want;
    uint32_t need; ///< body bytes the header requires (a command byte)
    int fixed;     ///< the header gives the body's length (a multitrack track size)
    uint32_t whole; ///< fixed: a shorter length that is still a whole message (one track)
};

#define T(...) ((struct kb_flv_tag){__VA_ARGS__})

static const struct tag_case tag_cases[] = {
    /* Legacy video. */
    {"AVC sequence header", 1, {0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F}, 9, 0,
     T(.video = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .packet_type = 0, .codec = 7,
       .body = 5, .body_len = 4)},
    {"AVC keyframe", 1, {0x17, 1, 0, 0, 0x28, 0, 0, 0, 5}, 9, 0,
     T(.video = 1, .what = KB_FLV_MEDIA, .key = 1, .frame_type = 1, .packet_type = 1,
       .codec = 7, .cts = 40, .body = 5, .body_len = 4)},
    {"AVC inter frame, negative cts", 1, {0x27, 1, 0xFF, 0xFF, 0xFE, 9}, 6, 0,
     T(.video = 1, .what = KB_FLV_MEDIA, .frame_type = 2, .packet_type = 1, .codec = 7,
       .cts = -2, .body = 5, .body_len = 1)},
    {"AVC end of sequence", 1, {0x17, 2, 0, 0, 0}, 5, 0,
     T(.video = 1, .what = KB_FLV_END, .frame_type = 1, .packet_type = 2, .codec = 7,
       .body = 5)},
    {"AVC unknown packet type", 1, {0x17, 3, 0, 0, 0, 1}, 6, -EINVAL,
     T(.video = 1, .what = KB_FLV_INFO, .frame_type = 1, .packet_type = 3, .codec = 7)},
    {"legacy HEVC sequence header", 1, {0x1C, 0, 0, 0, 0, 1, 2}, 7, 0,
     T(.video = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .codec = 12, .body = 5,
       .body_len = 2)},
    {"legacy HEVC inter frame", 1, {0x2C, 1, 0xFF, 0xFF, 0x9C, 7}, 6, 0,
     T(.video = 1, .what = KB_FLV_MEDIA, .frame_type = 2, .packet_type = 1, .codec = 12,
       .cts = -100, .body = 5, .body_len = 1)},
    /* A command frame carries a command byte where AVCPacketType would be:
     * StartSeek (0) is not a sequence header. */
    {"AVC command frame", 1, {0x57, 0}, 2, 0,
     T(.video = 1, .what = KB_FLV_INFO, .frame_type = 5, .codec = 7, .body = 1,
       .body_len = 1),
     .need = 1},
    {"VP6 keyframe", 1, {0x14, 0x00, 0x11}, 3, 0,
     T(.video = 1, .what = KB_FLV_MEDIA, .key = 1, .frame_type = 1, .packet_type = 1,
       .codec = 4, .body = 1, .body_len = 2)},
    {"H.263 disposable frame", 1, {0x32, 0x00, 0x84}, 3, 0,
     T(.video = 1, .what = KB_FLV_MEDIA, .frame_type = 3, .packet_type = 1, .codec = 2,
       .body = 1, .body_len = 2)},
    /* E-RTMP video. */
    {"HEVC SequenceStart", 1, {0x90, 'h', 'v', 'c', '1', 1, 1, 0x60}, 8, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .codec = KB_CODEC_HVC1,
       .body = 5, .body_len = 3)},
    {"HEVC CodedFrames key", 1, {0x91, 'h', 'v', 'c', '1', 0, 0, 0x50, 0, 0, 0, 4, 0x26}, 13, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_MEDIA, .key = 1, .frame_type = 1, .packet_type = 1,
       .codec = KB_CODEC_HVC1, .cts = 80, .body = 8, .body_len = 5)},
    {"AV1 CodedFrames (no cts)", 1, {0xA1, 'a', 'v', '0', '1', 0x12, 0, 0x0A}, 8, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_MEDIA, .frame_type = 2, .packet_type = 1,
       .codec = KB_CODEC_AV01, .body = 5, .body_len = 3)},
    {"HEVC CodedFramesX inter", 1, {0xA3, 'h', 'v', 'c', '1', 0, 0, 0, 2, 0x02, 1}, 11, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_MEDIA, .frame_type = 2, .packet_type = 3,
       .codec = KB_CODEC_HVC1, .body = 5, .body_len = 6)},
    {"avc1 SequenceEnd", 1, {0x92, 'a', 'v', 'c', '1'}, 5, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_END, .frame_type = 1, .packet_type = 2,
       .codec = KB_CODEC_AVC1, .body = 5)},
    {"HEVC Metadata", 1, {0x94, 'h', 'v', 'c', '1', 2, 0, 9, 'c', 'o', 'l', 'o', 'r'}, 13, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_INFO, .frame_type = 1, .packet_type = 4,
       .codec = KB_CODEC_HVC1, .body = 5, .body_len = 8)},
    /* The frame type is ignored for Metadata: not a command. */
    {"Metadata with frame type 5", 1, {0xD4, 'a', 'v', '0', '1', 2, 0}, 7, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_INFO, .frame_type = 5, .packet_type = 4,
       .codec = KB_CODEC_AV01, .body = 5, .body_len = 2)},
    {"AV1 MPEG2TSSequenceStart", 1, {0x95, 'a', 'v', '0', '1', 0x80, 4}, 7, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .packet_type = 5,
       .codec = KB_CODEC_AV01, .body = 5, .body_len = 2)},
    /* An E-RTMP command frame has no FourCC. */
    {"E-RTMP command frame", 1, {0xD1, 0x01}, 2, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_INFO, .frame_type = 5, .packet_type = 1, .body = 1,
       .body_len = 1),
     .need = 1},
    {"Multitrack OneTrack SequenceStart", 1, {0x96, 0x00, 'h', 'v', 'c', '1', 0, 1, 1, 0x60}, 10,
     0,
     T(.video = 1, .ex = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .multitrack = 1,
       .codec = KB_CODEC_HVC1, .body = 7, .body_len = 3)},
    /* Two avc1 tracks; the first one's frame (after its cts) is described. */
    {"Multitrack ManyTracks CodedFrames",
     1,
     {0x96, 0x11, 'a', 'v', 'c', '1', 0, 0, 0, 6, 0, 0, 0x28, 0xAA, 0xBB, 0xCC, 1, 0, 0, 4, 0, 0,
      0, 0xDD},
     24,
     0,
     T(.video = 1, .ex = 1, .what = KB_FLV_MEDIA, .key = 1, .frame_type = 1, .packet_type = 1,
       .multitrack = 2, .codec = KB_CODEC_AVC1, .cts = 40, .body = 13, .body_len = 3),
     .fixed = 1,
     .whole = 16},
    /* Each track names its codec: the first FourCC opens the first track. */
    {"Multitrack ManyTracksManyCodecs SequenceStart",
     1,
     {0x96, 0x20, 'h', 'v', 'c', '1', 0, 0, 0, 3, 1, 2, 3, 'a', 'v', '0', '1', 1, 0, 0, 2, 9, 9},
     23,
     0,
     T(.video = 1, .ex = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .multitrack = 3,
       .codec = KB_CODEC_HVC1, .body = 10, .body_len = 3),
     .fixed = 1,
     .whole = 13},
    {"Multitrack ManyTracks, track 2 first", 1,
     {0xA6, 0x13, 'a', 'v', '0', '1', 2, 0, 0, 2, 0x12, 0}, 12, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_MEDIA, .frame_type = 2, .packet_type = 3,
       .multitrack = 2, .track_id = 2, .codec = KB_CODEC_AV01, .body = 10, .body_len = 2),
     .fixed = 1},
    /* ModEx: TimestampOffsetNano (3 bytes), then CodedFrames. */
    {"ModEx CodedFrames", 1,
     {0x97, 2, 0, 1, 2, 0x01, 'h', 'v', 'c', '1', 0, 0, 0x10, 0x26, 1}, 15, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_MEDIA, .key = 1, .frame_type = 1, .packet_type = 1,
       .modex = 1, .codec = KB_CODEC_HVC1, .cts = 16, .body = 13, .body_len = 2)},
    {"ModEx twice, then Multitrack", 1,
     {0x97, 0, 0xAA, 0x07, 1, 0xBB, 0xCC, 0x06, 0x00, 'a', 'v', '0', '1', 0, 0x81}, 15, 0,
     T(.video = 1, .ex = 1, .what = KB_FLV_CONFIG, .frame_type = 1, .multitrack = 1,
       .modex = 1, .codec = KB_CODEC_AV01, .body = 14, .body_len = 1)},
    {"reserved video packet type", 1, {0x98, 'h', 'v', 'c', '1', 0}, 6, -EINVAL,
     T(.video = 1, .ex = 1, .what = KB_FLV_INFO, .frame_type = 1, .packet_type = 8,
       .codec = KB_CODEC_HVC1)},
    {"Multitrack in Multitrack", 1, {0x96, 0x06, 'h', 'v', 'c', '1', 0}, 7, -EINVAL,
     T(.video = 1, .ex = 1, .what = KB_FLV_INFO, .frame_type = 1)},
    {"reserved multitrack type", 1, {0x96, 0x30, 'h', 'v', 'c', '1', 0}, 7, -EINVAL,
     T(.video = 1, .ex = 1, .what = KB_FLV_INFO, .frame_type = 1)},
    /* Legacy audio. */
    {"AAC sequence header", 0, {0xAF, 0, 0x12, 0x10}, 4, 0,
     T(.what = KB_FLV_CONFIG, .codec = 10, .body = 2, .body_len = 2)},
    {"AAC raw", 0, {0xAF, 1, 0x21, 0x10, 4}, 5, 0,
     T(.what = KB_FLV_MEDIA, .packet_type = 1, .codec = 10, .body = 2, .body_len = 3)},
    {"MP3", 0, {0x2F, 0xFF, 0xFB}, 3, 0,
     T(.what = KB_FLV_MEDIA, .packet_type = 1, .codec = 2, .body = 1, .body_len = 2)},
    /* E-RTMP audio. */
    {"Opus SequenceStart", 0, {0x90, 'O', 'p', 'u', 's', 'O', 'p', 'u', 's'}, 9, 0,
     T(.ex = 1, .what = KB_FLV_CONFIG, .codec = KB_CODEC_OPUS, .body = 5, .body_len = 4)},
    {"mp4a CodedFrames", 0, {0x91, 'm', 'p', '4', 'a', 0x21, 0x10}, 7, 0,
     T(.ex = 1, .what = KB_FLV_MEDIA, .packet_type = 1, .codec = KB_CODEC_MP4A, .body = 5,
       .body_len = 2)},
    {"Opus SequenceEnd", 0, {0x92, 'O', 'p', 'u', 's'}, 5, 0,
     T(.ex = 1, .what = KB_FLV_END, .packet_type = 2, .codec = KB_CODEC_OPUS, .body = 5)},
    {"mp4a MultichannelConfig", 0, {0x94, 'm', 'p', '4', 'a', 1, 2, 0, 0, 0, 3}, 11, 0,
     T(.ex = 1, .what = KB_FLV_LAYOUT, .packet_type = 4, .codec = KB_CODEC_MP4A, .body = 5,
       .body_len = 6)},
    {"audio Multitrack OneTrack SequenceStart", 0,
     {0x95, 0x00, 'O', 'p', 'u', 's', 0, 'O', 'p', 'u', 's'}, 11, 0,
     T(.ex = 1, .what = KB_FLV_CONFIG, .multitrack = 1, .codec = KB_CODEC_OPUS, .body = 7,
       .body_len = 4)},
    {"audio Multitrack ManyTracks CodedFrames", 0,
     {0x95, 0x11, 'm', 'p', '4', 'a', 0, 0, 0, 2, 0x21, 0x10, 1, 0, 0, 1, 0x21}, 17, 0,
     T(.ex = 1, .what = KB_FLV_MEDIA, .packet_type = 1, .multitrack = 2,
       .codec = KB_CODEC_MP4A, .body = 10, .body_len = 2),
     .fixed = 1,
     .whole = 12},
    {"audio Multitrack ManyTracksManyCodecs", 0,
     {0x95, 0x21, '.', 'm', 'p', '3', 0, 0, 0, 1, 0xFF, 'O', 'p', 'u', 's', 1, 0, 0, 1, 0xFC},
     20, 0,
     T(.ex = 1, .what = KB_FLV_MEDIA, .packet_type = 1, .multitrack = 3,
       .codec = KB_CODEC_MP3, .body = 10, .body_len = 1),
     .fixed = 1,
     .whole = 11},
    {"audio ModEx CodedFrames", 0, {0x97, 2, 0, 0, 1, 0x01, 'O', 'p', 'u', 's', 0xFC}, 11, 0,
     T(.ex = 1, .what = KB_FLV_MEDIA, .packet_type = 1, .modex = 1, .codec = KB_CODEC_OPUS,
       .body = 10, .body_len = 1)},
    {"reserved audio packet type", 0, {0x93, 'O', 'p', 'u', 's', 0}, 6, -EINVAL,
     T(.ex = 1, .what = KB_FLV_INFO, .packet_type = 3, .codec = KB_CODEC_OPUS)},
};

static int tag_eq(const struct kb_flv_tag *a, const struct kb_flv_tag *b, const char *name,
                  uint32_t n)
{
#define FIELD(f)                                                                                   \
    if (a->f != b->f) {                                                                            \
        fprintf(stderr, "%s (%u bytes): " #f " is %lld, want %lld\n", name, n, (long long)a->f,   \
                (long long)b->f);                                                                  \
        return 1;                                                                                  \
    }
    FIELD(video)
    FIELD(ex)
    FIELD(what)
    FIELD(key)
    FIELD(frame_type)
    FIELD(multitrack)
    FIELD(track_id)
    FIELD(codec)
    FIELD(cts)
    FIELD(body)
    FIELD(body_len)
    /* Only meaningful once the header is read. */
    if (b->what != KB_FLV_INFO || b->body) {
        FIELD(packet_type)
        FIELD(modex)
    }
#undef FIELD
    return 0;
}

/* Parse exactly n bytes of a heap copy (so ASan sees any over-read). */
static int parse_n(const struct tag_case *c, uint32_t n, struct kb_flv_tag *t)
{
    struct kb_msg *m = msg(c->video ? KB_MSG_VIDEO : KB_MSG_AUDIO, c->b, n);
    memset(t, 0xAB, sizeof(*t)); /* stale values must be replaced */
    int err = kb_flv_tag_parse(m->data, m->len, c->video, t);
    kb_msg_unref(m);
    return err;
}

static int test_tag_every_packet_type(void)
{
    for (size_t i = 0; i < sizeof(tag_cases) / sizeof(tag_cases[0]); i++) {
        const struct tag_case *c = &tag_cases[i];
        struct kb_flv_tag t;
        int err = parse_n(c, c->n, &t);
        if (err != c->err) {
            fprintf(stderr, "%s: returned %d, want %d\n", c->name, err, c->err);
            return 1;
        }
        if (tag_eq(&t, &c->want, c->name, c->n))
            return 1;
    }
    return 0;
}

/* Every case cut short at every length: a header that is not whole is
 * refused (and nothing past the end is read); once the header is whole,
 * the body is what is there, except where the header says how long it is:
 * then only a cut after a whole track leaves a message. */
static int test_tag_truncated(void)
{
    for (size_t i = 0; i < sizeof(tag_cases) / sizeof(tag_cases[0]); i++) {
        const struct tag_case *c = &tag_cases[i];
        if (c->err)
            continue;
        for (uint32_t n = 0; n < c->n; n++) {
            struct kb_flv_tag t;
            int err = parse_n(c, n, &t);
            const struct kb_flv_tag *w = &c->want;
            int whole = c->fixed ? c->whole && n == c->whole : n >= w->body + c->need;
            if (!whole) {
                if (err != -EINVAL || t.what != KB_FLV_INFO || t.key || t.cts) {
                    fprintf(stderr, "%s cut to %u bytes: returned %d what %d key %d\n",
                            c->name, n, err, t.what, t.key);
                    return 1;
                }
                continue;
            }
            struct kb_flv_tag cut = *w;
            if (!c->fixed)
                cut.body_len = n - w->body;
            if (err != 0 || tag_eq(&t, &cut, c->name, n))
                return 1;
        }
    }
    return 0;
}

/* kb_flv_tag_parse_track: the recorder keeps one track of a multitrack
 * stream, wherever it sits in a message. */
static int test_tag_track(void)
{
    /* ManyTracksManyCodecs CodedFrames: hvc1 track 3 (cts 2, 2 bytes),
     * then av01 track 0 (3 bytes), then hvc1 track 1 (cts -1, 1 byte). */
    const uint8_t p[] = {0x96, 0x21, 'h', 'v', 'c', '1', 3,   0,   0,   5,   0,   0,
                         2,    0xAA, 0xBB, 'a', 'v', '0', '1', 0,   0,   0,   3,   0x12,
                         0,    0x0A, 'h', 'v', 'c', '1', 1,   0,   0,   4,   0xFF, 0xFF,
                         0xFF, 0xCC};
    struct kb_msg *m = msg(KB_MSG_VIDEO, p, sizeof(p));
    struct kb_flv_tag t;
    ASSERT_EQ(kb_flv_tag_parse(m->data, m->len, 1, &t), 0);
    ASSERT_EQ(t.tracks, 3);
    ASSERT_EQ(t.track_id, 3);
    ASSERT_EQ(t.codec, KB_CODEC_HVC1);
    ASSERT_EQ(t.cts, 2);
    ASSERT_EQ(t.body, 13);
    ASSERT_EQ(t.body_len, 2);
    ASSERT_EQ(kb_flv_tag_parse_track(m->data, m->len, 1, 0, &t), 0);
    ASSERT_EQ(t.track_id, 0);
    ASSERT_EQ(t.codec, KB_CODEC_AV01);
    ASSERT_EQ(t.what, KB_FLV_MEDIA);
    ASSERT_EQ(t.key, 1);
    ASSERT_EQ(t.cts, 0);
    ASSERT_EQ(t.body, 23);
    ASSERT_EQ(t.body_len, 3);
    ASSERT_EQ(t.tracks, 3);
    ASSERT_EQ(kb_flv_tag_parse_track(m->data, m->len, 1, 1, &t), 0);
    ASSERT_EQ(t.codec, KB_CODEC_HVC1);
    ASSERT_EQ(t.cts, -1);
    ASSERT_EQ(t.body, 37);
    ASSERT_EQ(t.body_len, 1);
    /* No track 2: a well-formed message without it. */
    ASSERT_EQ(kb_flv_tag_parse_track(m->data, m->len, 1, 2, &t), -ENOENT);
    ASSERT_EQ(t.what, KB_FLV_INFO);
    /* Cut inside the last track: refused whichever track is asked for. */
    ASSERT_EQ(kb_flv_tag_parse_track(m->data, m->len - 1, 1, 0, &t), -EINVAL);
    kb_flv_classify(m);
    ASSERT_EQ(m->flags, VX | MT | KB_MSGF_KEY);
    kb_msg_unref(m);

    /* OneTrack: the one track, or none. */
    const uint8_t one[] = {0x95, 0x01, 'm', 'p', '4', 'a', 1, 0x21, 0x10};
    ASSERT_EQ(kb_flv_tag_parse_track(one, sizeof(one), 0, 1, &t), 0);
    ASSERT_EQ(t.tracks, 1);
    ASSERT_EQ(t.body, 7);
    ASSERT_EQ(t.body_len, 2);
    ASSERT_EQ(kb_flv_tag_parse_track(one, sizeof(one), 0, 0, &t), -ENOENT);
    /* Not multitrack: any track id describes the message itself. */
    const uint8_t plain[] = {0x91, 'm', 'p', '4', 'a', 0x21, 0x10};
    ASSERT_EQ(kb_flv_tag_parse_track(plain, sizeof(plain), 0, 7, &t), 0);
    ASSERT_EQ(t.tracks, 0);
    ASSERT_EQ(t.body, 5);
    return 0;
}

/* ModEx data longer than 255 bytes takes a 16-bit size after 0xFF. */
static int test_tag_modex_long(void)
{
    uint8_t p[4 + 300 + 1 + 4 + 2] = {0x97, 0xFF, 0x01, 0x2B}; /* 0x12B + 1 = 300 bytes */
    size_t o = 4 + 300;
    p[o++] = 0x03; /* TimestampOffsetNano | CodedFramesX */
    memcpy(p + o, "av01", 4);
    o += 4;
    p[o++] = 0x12;
    p[o++] = 0x00;
    struct kb_msg *m = msg(KB_MSG_VIDEO, p, (uint32_t)o);
    struct kb_flv_tag t;
    ASSERT_EQ(kb_flv_tag_parse(m->data, m->len, 1, &t), 0);
    ASSERT_EQ(t.what, KB_FLV_MEDIA);
    ASSERT_EQ(t.key, 1);
    ASSERT_EQ(t.modex, 1);
    ASSERT_EQ(t.codec, KB_CODEC_AV01);
    ASSERT_EQ(t.body, o - 2);
    ASSERT_EQ(t.body_len, 2);
    kb_flv_classify(m);
    ASSERT_EQ(m->flags, VX | KB_MSGF_MODEX | KB_MSGF_KEY);
    /* The size says 300 bytes; 299 are there. */
    ASSERT_EQ(kb_flv_tag_parse(m->data, 4 + 299, 1, &t), -EINVAL);
    kb_msg_unref(m);
    return 0;
}

/* What the relay's caches do with E-RTMP audio: SequenceStart is the audio
 * sequence header; a MultichannelConfig after it is setup kept beside it
 * (never dropped by a queue), never the header itself. */
static int test_multichannel_after_sequence_start(void)
{
    const uint8_t seq[] = {0x90, 'm', 'p', '4', 'a', 0x11, 0x90};
    const uint8_t mcc[] = {0x94, 'm', 'p', '4', 'a', 1, 6, 0, 0, 0, 0x3F};
    const uint8_t frame[] = {0x91, 'm', 'p', '4', 'a', 0x21, 0x10};
    struct kb_msg *in[] = {msg(KB_MSG_AUDIO, seq, sizeof(seq)), msg(KB_MSG_AUDIO, mcc, sizeof(mcc)),
                           msg(KB_MSG_AUDIO, frame, sizeof(frame))};
    struct kb_msg *audio_hdr = NULL;
    for (size_t i = 0; i < 3; i++) {
        kb_flv_classify(in[i]);
        /* relay/stream.c's rule: a sequence header replaces the cached one. */
        if (in[i]->flags & KB_MSGF_SEQHDR)
            audio_hdr = in[i];
    }
    ASSERT_TRUE(audio_hdr == in[0]);
    ASSERT_EQ(in[1]->flags, AX | KB_MSGF_LAYOUT);
    ASSERT_TRUE(kb_msg_is_setup(in[1]));
    ASSERT_TRUE(!kb_msg_is_setup(in[2]));
    for (size_t i = 0; i < 3; i++)
        kb_msg_unref(in[i]);
    return 0;
}

static int test_data_messages(void)
{
    const uint8_t meta[] = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a',
                            't',  'a',  0x08, 0,   0,   0,   0,   0,   0,   9};
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, meta, sizeof(meta), KB_MSGF_METADATA, 0, "onMetaData"));
    const uint8_t sdf[] = {0x02, 0x00, 0x0D, '@',  's',  'e',  't', 'D', 'a', 't', 'a', 'F', 'r',
                           'a',  'm',  'e',  0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e', 't', 'a', 'D',
                           'a',  't',  'a',  0x08, 0,    0,    0,   0,   0,   0,   9};
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, sdf, sizeof(sdf), KB_MSGF_METADATA, 0,
                       "@setDataFrame onMetaData"));
    /* Just the names, nothing after them. */
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, meta, 13, KB_MSGF_METADATA, 0, "bare onMetaData"));
    /* @setDataFrame with something else. */
    const uint8_t sdf_other[] = {0x02, 0x00, 0x0D, '@', 's', 'e', 't', 'D',  'a',
                                 't',  'a',  'F',  'r', 'a', 'm', 'e', 0x02, 0x00,
                                 0x06, 'o',  'n',  'C', 'u', 'e', 'P'};
    ASSERT_OK(
        classify(KB_MSG_DATA_AMF0, sdf_other, sizeof(sdf_other), 0, 0, "@setDataFrame onCueP"));
    /* @setDataFrame cut before its second string. */
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, sdf, 16, 0, 0, "@setDataFrame alone"));
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, sdf, 20, 0, 0, "@setDataFrame cut"));
    const uint8_t other[] = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'A'};
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, other, sizeof(other), 0, 0, "onMetaDatA"));
    const uint8_t prefix[] = {0x02, 0x00, 0x06, 'o', 'n', 'M', 'e', 't', 'a'};
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, prefix, sizeof(prefix), 0, 0, "onMeta"));
    const uint8_t number[] = {0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, number, sizeof(number), 0, 0, "a number"));
    /* The same bytes as a command or AMF3 data are not metadata. */
    ASSERT_OK(classify(KB_MSG_COMMAND_AMF0, meta, sizeof(meta), 0, 0, "onMetaData command"));
    return 0;
}

static int test_too_short(void)
{
    static const uint8_t z[8];
    ASSERT_OK(classify(KB_MSG_VIDEO, z, 0, V, 0, "empty video"));
    ASSERT_OK(classify(KB_MSG_AUDIO, z, 0, A, 0, "empty audio"));
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, z, 0, 0, 0, "empty data"));
    const uint8_t avc1[] = {0x17};
    ASSERT_OK(classify(KB_MSG_VIDEO, avc1, 1, V, KB_FLV_VIDEO_AVC, "AVC, 1 byte"));
    const uint8_t aac1[] = {0xAF};
    ASSERT_OK(classify(KB_MSG_AUDIO, aac1, 1, A, KB_FLV_AUDIO_AAC, "AAC, 1 byte"));
    /* Extended headers need the whole FourCC. */
    const uint8_t ex[] = {0x90, 'h', 'v', 'c', '1'};
    for (uint32_t n = 1; n < 5; n++) {
        ASSERT_OK(classify(KB_MSG_VIDEO, ex, n, VX, 0, "short E-RTMP video"));
        uint8_t a[5] = {0x90, 'O', 'p', 'u', 's'};
        ASSERT_OK(classify(KB_MSG_AUDIO, a, n, AX, 0, "short E-RTMP audio"));
    }
    const uint8_t str[] = {0x02, 0x00, 0x0A, 'o', 'n'};
    ASSERT_OK(classify(KB_MSG_DATA_AMF0, str, sizeof(str), 0, 0, "cut string"));
    return 0;
}

static int cts(const void *p, uint32_t n, uint8_t type)
{
    struct kb_msg *m = msg(type, p, n);
    int32_t v = kb_flv_cts(m);
    kb_msg_unref(m);
    return v;
}

static int test_cts(void)
{
    const uint8_t pos[] = {0x17, 0x01, 0x00, 0x00, 0x28, 0, 0, 0, 1, 0x65};
    ASSERT_EQ(cts(pos, sizeof(pos), KB_MSG_VIDEO), 40);
    const uint8_t neg[] = {0x27, 0x01, 0xFF, 0xFF, 0xFE, 0, 0, 0, 1, 0x41};
    ASSERT_EQ(cts(neg, sizeof(neg), KB_MSG_VIDEO), -2);
    const uint8_t min[] = {0x27, 0x01, 0x80, 0x00, 0x00};
    ASSERT_EQ(cts(min, sizeof(min), KB_MSG_VIDEO), -8388608);
    const uint8_t max[] = {0x27, 0x01, 0x7F, 0xFF, 0xFF};
    ASSERT_EQ(cts(max, sizeof(max), KB_MSG_VIDEO), 8388607);
    const uint8_t hevc_legacy[] = {0x2C, 0x01, 0xFF, 0xFF, 0x9C};
    ASSERT_EQ(cts(hevc_legacy, sizeof(hevc_legacy), KB_MSG_VIDEO), -100);
    /* Sequence headers and end of sequence carry none. */
    const uint8_t seq[] = {0x17, 0x00, 0x00, 0x00, 0x28, 1};
    ASSERT_EQ(cts(seq, sizeof(seq), KB_MSG_VIDEO), 0);
    /* Only video. */
    ASSERT_EQ(cts(neg, sizeof(neg), KB_MSG_AUDIO), 0);
    /* Too short for the field. */
    ASSERT_EQ(cts(neg, 4, KB_MSG_VIDEO), 0);

    /* E-RTMP: CodedFrames of hvc1/avc1/vvc1 carry SI24 after the FourCC. */
    const uint8_t ex[] = {0xA1, 'h', 'v', 'c', '1', 0xFF, 0xFF, 0x9C, 0, 0, 0, 1, 2};
    ASSERT_EQ(cts(ex, sizeof(ex), KB_MSG_VIDEO), -100);
    const uint8_t exavc[] = {0x91, 'a', 'v', 'c', '1', 0x00, 0x00, 0x50};
    ASSERT_EQ(cts(exavc, sizeof(exavc), KB_MSG_VIDEO), 80);
    const uint8_t exvvc[] = {0x91, 'v', 'v', 'c', '1', 0xFF, 0xFF, 0xFF};
    ASSERT_EQ(cts(exvvc, sizeof(exvvc), KB_MSG_VIDEO), -1);
    /* CodedFramesX: composition time 0 and no field. */
    const uint8_t exx[] = {0xA3, 'h', 'v', 'c', '1', 0xFF, 0xFF, 0x9C};
    ASSERT_EQ(cts(exx, sizeof(exx), KB_MSG_VIDEO), 0);
    /* AV1 and VP9 have no composition time. */
    const uint8_t av1[] = {0x91, 'a', 'v', '0', '1', 0xFF, 0xFF, 0x9C};
    ASSERT_EQ(cts(av1, sizeof(av1), KB_MSG_VIDEO), 0);
    /* Cut inside the field. */
    ASSERT_EQ(cts(ex, 7, KB_MSG_VIDEO), 0);
    return 0;
}

static int test_codec_names(void)
{
    ASSERT_STR_EQ(kb_flv_codec_name(KB_FLV_VIDEO_AVC, 1), "H.264");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_FLV_VIDEO_HEVC_LEGACY, 1), "HEVC");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_CODEC_HVC1, 1), "HEVC");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_CODEC_AV01, 1), "AV1");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_FLV_AUDIO_AAC, 0), "AAC");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_FLV_AUDIO_MP3, 0), "MP3");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_CODEC_OPUS, 0), "Opus");
    /* The same small number names a different codec for audio and video. */
    ASSERT_STR_EQ(kb_flv_codec_name(2, 1), "Sorenson H.263");
    ASSERT_STR_EQ(kb_flv_codec_name(2, 0), "MP3");
    ASSERT_STR_EQ(kb_flv_codec_name(KB_CODEC_UNKNOWN_FOURCC, 1), "unknown");
    ASSERT_STR_EQ(kb_flv_codec_name(99, 0), "unknown");
    return 0;
}

int main(void)
{
    RUN(test_avc);
    RUN(test_legacy_audio);
    RUN(test_ertmp_video);
    RUN(test_ertmp_audio);
    RUN(test_ertmp_multitrack);
    RUN(test_tag_every_packet_type);
    RUN(test_tag_truncated);
    RUN(test_tag_track);
    RUN(test_tag_modex_long);
    RUN(test_multichannel_after_sequence_start);
    RUN(test_data_messages);
    RUN(test_too_short);
    RUN(test_cts);
    RUN(test_codec_names);
    return test_summary();
}
