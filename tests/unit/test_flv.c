/* kebun: unit tests for FLV tag classification (relay/rtmp/flv.c).
 *
 * Payloads follow the FLV specification v10.1 (legacy audio/video tag
 * headers) and veovera's Enhanced RTMP v1/v2 (extended headers with
 * FourCCs). */
#include "relay/rtmp/flv.h"

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
        fprintf(stderr, "%s: flags 0x%02x codec 0x%x, want flags 0x%02x codec 0x%x\n", what,
                m->flags, m->codec, flags, codec);
        kb_msg_unref(m);
        return 1;
    }
    kb_msg_unref(m);
    return 0;
}

#define V KB_MSGF_VIDEO
#define A KB_MSGF_AUDIO

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
    ASSERT_OK(classify(KB_MSG_VIDEO, seq, sizeof(seq), V | KB_MSGF_SEQHDR, KB_CODEC_HVC1,
                       "HEVC SequenceStart"));
    const uint8_t key[] = {0x91, 'h', 'v', 'c', '1', 0, 0, 0x50, 0, 0, 0, 4, 0x26, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, key, sizeof(key), V | KB_MSGF_KEY, KB_CODEC_HVC1,
                       "HEVC CodedFrames key"));
    const uint8_t inter[] = {0xA1, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 2, 0x02, 1};
    ASSERT_OK(
        classify(KB_MSG_VIDEO, inter, sizeof(inter), V, KB_CODEC_HVC1, "HEVC CodedFrames inter"));
    const uint8_t keyx[] = {0x93, 'h', 'v', 'c', '1', 0, 0, 0, 4, 0x26, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, keyx, sizeof(keyx), V | KB_MSGF_KEY, KB_CODEC_HVC1,
                       "HEVC CodedFramesX key"));
    const uint8_t interx[] = {0xA3, 'h', 'v', 'c', '1', 0, 0, 0, 2, 0x02, 1};
    ASSERT_OK(classify(KB_MSG_VIDEO, interx, sizeof(interx), V, KB_CODEC_HVC1,
                       "HEVC CodedFramesX inter"));
    const uint8_t end[] = {0x92, 'h', 'v', 'c', '1'};
    ASSERT_OK(classify(KB_MSG_VIDEO, end, sizeof(end), V | KB_MSGF_EOS, KB_CODEC_HVC1,
                       "HEVC SequenceEnd"));
    const uint8_t meta[] = {0x94, 'h', 'v', 'c', '1', 0x02, 0,   9,  'c',
                            'o',  'l', 'o', 'r', 'I', 'n',  'f', 'o'};
    ASSERT_OK(classify(KB_MSG_VIDEO, meta, sizeof(meta), V, KB_CODEC_HVC1, "HEVC Metadata"));
    const uint8_t ts_seq[] = {0x95, 'a', 'v', '0', '1', 0x80};
    ASSERT_OK(classify(KB_MSG_VIDEO, ts_seq, sizeof(ts_seq), V | KB_MSGF_SEQHDR, KB_CODEC_AV01,
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
        ASSERT_OK(classify(KB_MSG_VIDEO, p, sizeof(p), V | KB_MSGF_KEY, ccs[i].codec, "FourCC"));
    }
    return 0;
}

static int test_ertmp_audio(void)
{
    /* SoundFormat 9 (ExHeader) << 4 | AudioPacketType, then the FourCC. */
    const uint8_t seq[] = {0x90, 'O', 'p', 'u', 's', 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd'};
    ASSERT_OK(classify(KB_MSG_AUDIO, seq, sizeof(seq), A | KB_MSGF_SEQHDR, KB_CODEC_OPUS,
                       "Opus SequenceStart"));
    const uint8_t frame[] = {0x91, 'O', 'p', 'u', 's', 0xFC, 0xFF, 0xFE};
    ASSERT_OK(classify(KB_MSG_AUDIO, frame, sizeof(frame), A, KB_CODEC_OPUS, "Opus CodedFrames"));
    const uint8_t end[] = {0x92, 'O', 'p', 'u', 's'};
    ASSERT_OK(classify(KB_MSG_AUDIO, end, sizeof(end), A | KB_MSGF_EOS, KB_CODEC_OPUS,
                       "Opus SequenceEnd"));
    const uint8_t mcc[] = {0x94, 'O', 'p', 'u', 's', 0x00, 0x02};
    ASSERT_OK(classify(KB_MSG_AUDIO, mcc, sizeof(mcc), A | KB_MSGF_SEQHDR, KB_CODEC_OPUS,
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
            classify(KB_MSG_AUDIO, p, sizeof(p), A | KB_MSGF_SEQHDR, ccs[i].codec, "audio FourCC"));
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
    ASSERT_OK(classify(KB_MSG_VIDEO, vseq, sizeof(vseq), V | KB_MSGF_SEQHDR, KB_CODEC_HVC1,
                       "multitrack HEVC SequenceStart"));
    /* OneTrack, CodedFrames (1), key frame, hvc1, track 0, SI24 cts. */
    const uint8_t vkey[] = {0x96, 0x01, 'h', 'v', 'c', '1', 0x00, 0, 0, 0, 0, 0, 0, 4, 0x26};
    ASSERT_OK(classify(KB_MSG_VIDEO, vkey, sizeof(vkey), V | KB_MSGF_KEY, KB_CODEC_HVC1,
                       "multitrack HEVC CodedFrames key"));
    /* ManyTracks (1), CodedFramesX (3), inter frame, av01. */
    const uint8_t vinter[] = {0xA6, 0x13, 'a', 'v', '0', '1', 0x01, 0, 0, 5, 0x12};
    ASSERT_OK(classify(KB_MSG_VIDEO, vinter, sizeof(vinter), V, KB_CODEC_AV01,
                       "multitrack AV1 CodedFramesX inter"));
    /* Audio: SoundFormat 9, AudioPacketType Multitrack (5); OneTrack,
     * SequenceStart, Opus. */
    const uint8_t aseq[] = {0x95, 0x00, 'O', 'p', 'u', 's', 0x00, 'O', 'p', 'u', 's'};
    ASSERT_OK(classify(KB_MSG_AUDIO, aseq, sizeof(aseq), A | KB_MSGF_SEQHDR, KB_CODEC_OPUS,
                       "multitrack Opus SequenceStart"));
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
        ASSERT_OK(classify(KB_MSG_VIDEO, ex, n, V, 0, "short E-RTMP video"));
        uint8_t a[5] = {0x90, 'O', 'p', 'u', 's'};
        ASSERT_OK(classify(KB_MSG_AUDIO, a, n, A, 0, "short E-RTMP audio"));
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
    RUN(test_data_messages);
    RUN(test_too_short);
    RUN(test_cts);
    RUN(test_codec_names);
    return test_summary();
}
