/* kebun: unit tests for what sequence headers say (relay/rtmp/codecinfo.c).
 *
 * The records below were made by Debian 12's ffmpeg (libx264 640x360 at
 * 30 fps, so the SPS crops 368 rows to 360; libx265 426x240; libsvtav1
 * 320x180 at 24 fps; AAC-LC 44.1 kHz mono) and cut out of the FLV or MP4
 * it wrote. */
#include "relay/rtmp/codecinfo.h"

#include "relay/rtmp/flv.h"
#include "test.h"

static const uint8_t avc_seqhdr_640x360[] = {
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0xf4, 0x00, 0x1e, 0xff, 0xe1, 0x00,
    0x19, 0x67, 0xf4, 0x00, 0x1e, 0x91, 0x96, 0x80, 0xa0, 0x2f, 0xf8, 0x9c,
    0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc5,
    0x8b, 0xa8, 0x01, 0x00, 0x05, 0x68, 0xce, 0x0f, 0x19, 0x20, 0xff, 0xf8,
    0xf8, 0x00,
};

static const uint8_t hvcc_426x240[] = {
    0x01, 0x04, 0x08, 0x00, 0x00, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x00, 0x00,
    0x3c, 0xf0, 0x00, 0xfc, 0xff, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20,
    0x00, 0x01, 0x00, 0x17, 0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x04, 0x08,
    0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x03, 0x00, 0x00, 0x3c,
    0x95, 0x94, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2c, 0x42, 0x01, 0x01, 0x04,
    0x08, 0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x3c, 0x90, 0x01, 0xb1, 0x01, 0xe3, 0x9f, 0xcb, 0x2b, 0x2a, 0x52, 0x61,
    0x78, 0x0b, 0x70, 0x20, 0x20, 0x00, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
    0x00, 0x00, 0x06, 0x42, 0x22, 0x00, 0x01, 0x00, 0x08, 0x44, 0x01, 0xc0,
    0x73, 0x18, 0x30, 0x18, 0x90,
};

static const uint8_t av1c_320x180_24[] = {
    0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xfe,
    0xcc, 0x02, 0xf8, 0x00, 0x40,
};

static const uint8_t aac_seqhdr_44100[] = {
    0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00,
};

static struct kb_msg *msg(uint8_t type, const uint8_t *p, size_t n)
{
    struct kb_msg *m = kb_msg_new_copy(type, 0, 1, p, (uint32_t)n);
    if (!m)
        abort();
    kb_flv_classify(m);
    return m;
}

static int test_h264(void)
{
    struct kb_msg *m = msg(KB_MSG_VIDEO, avc_seqhdr_640x360, sizeof(avc_seqhdr_640x360));
    struct kb_codec_info i;
    ASSERT_EQ(kb_codec_info(m, &i), 0);
    ASSERT_EQ(i.width, 640);
    ASSERT_EQ(i.height, 360);
    ASSERT_DBL_EQ(i.fps, 30.0);
    kb_msg_unref(m);
    /* The same record in an E-RTMP v2 avc1 SequenceStart. */
    uint8_t ex[512];
    size_t n = sizeof(avc_seqhdr_640x360) - 5;
    ex[0] = 0x80 | (1 << 4) | 0;
    memcpy(ex + 1, "avc1", 4);
    memcpy(ex + 5, avc_seqhdr_640x360 + 5, n);
    m = msg(KB_MSG_VIDEO, ex, n + 5);
    ASSERT_EQ(kb_codec_info(m, &i), 0);
    ASSERT_EQ(i.width, 640);
    kb_msg_unref(m);
    return 0;
}

static int test_hevc(void)
{
    uint8_t ex[512];
    ex[0] = 0x80 | (1 << 4) | 0;
    memcpy(ex + 1, "hvc1", 4);
    memcpy(ex + 5, hvcc_426x240, sizeof(hvcc_426x240));
    struct kb_msg *m = msg(KB_MSG_VIDEO, ex, sizeof(hvcc_426x240) + 5);
    struct kb_codec_info i;
    ASSERT_EQ(kb_codec_info(m, &i), 0);
    ASSERT_EQ(i.width, 426);
    ASSERT_EQ(i.height, 240);
    kb_msg_unref(m);
    return 0;
}

static int test_av1(void)
{
    struct kb_codec_info i = {0};
    ASSERT_EQ(kb_av1c_info(av1c_320x180_24, sizeof(av1c_320x180_24), &i), 0);
    ASSERT_EQ(i.width, 320);
    ASSERT_EQ(i.height, 180);
    return 0;
}

static int test_aac(void)
{
    struct kb_msg *m = msg(KB_MSG_AUDIO, aac_seqhdr_44100, sizeof(aac_seqhdr_44100));
    struct kb_codec_info i;
    ASSERT_EQ(kb_codec_info(m, &i), 0);
    ASSERT_EQ(i.sample_rate, 44100);
    ASSERT_EQ(i.channels, 1); /* lavfi's sine is mono */
    kb_msg_unref(m);
    /* 48 kHz stereo (AAC-LC: 00010 0011 0010 000). */
    static const uint8_t asc48[] = {0x11, 0x90};
    ASSERT_EQ(kb_asc_info(asc48, sizeof(asc48), &i), 0);
    ASSERT_EQ(i.sample_rate, 48000);
    ASSERT_EQ(i.channels, 2);
    return 0;
}

/* Every prefix of every record is read without a fault and never claims a
 * picture it could not read (ASan watches the reads). */
static int test_truncated(void)
{
    struct {
        const uint8_t *p;
        size_t n;
        int (*fn)(const uint8_t *, size_t, struct kb_codec_info *);
    } recs[] = {
        {avc_seqhdr_640x360 + 5, sizeof(avc_seqhdr_640x360) - 5, kb_avcc_info},
        {hvcc_426x240, sizeof(hvcc_426x240), kb_hvcc_info},
        {av1c_320x180_24, sizeof(av1c_320x180_24), kb_av1c_info},
        {aac_seqhdr_44100 + 2, sizeof(aac_seqhdr_44100) - 2, kb_asc_info},
    };
    for (size_t r = 0; r < sizeof(recs) / sizeof(recs[0]); r++) {
        for (size_t n = 0; n < recs[r].n; n++) {
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, recs[r].p, n);
            struct kb_codec_info i = {0};
            int rc = recs[r].fn(copy, n, &i);
            free(copy);
            if (rc == 0 && i.width == 0 && i.sample_rate == 0) {
                fprintf(stderr, "record %zu cut at %zu: success with nothing read\n", r, n);
                return 1;
            }
        }
    }
    /* Garbage. */
    uint64_t seed = 5;
    for (int k = 0; k < 2000; k++) {
        uint8_t junk[64];
        for (size_t j = 0; j < sizeof(junk); j++)
            junk[j] = (uint8_t)test_rand(&seed);
        junk[0] = 1;
        struct kb_codec_info i;
        kb_avcc_info(junk, sizeof(junk), &i);
        kb_hvcc_info(junk, sizeof(junk), &i);
        junk[0] = 0x81;
        kb_av1c_info(junk, sizeof(junk), &i);
    }
    return 0;
}

int main(void)
{
    RUN(test_h264);
    RUN(test_hevc);
    RUN(test_av1);
    RUN(test_aac);
    RUN(test_truncated);
    return test_summary();
}
