#include "codecinfo.h"

#include <string.h>

#include "flv.h"

/* ---- reading bits ------------------------------------------------------ */

/* A big-endian bit reader. Reading past the end sets `bad` and yields 0. */
struct bits {
    const uint8_t *p;
    size_t n, pos; ///< bytes, and the bit position
    int bad;
};

static void bits_init(struct bits *b, const uint8_t *p, size_t n)
{
    b->p = p;
    b->n = n;
    b->pos = 0;
    b->bad = 0;
}

static unsigned bit(struct bits *b)
{
    if (b->pos >= b->n * 8) {
        b->bad = 1;
        return 0;
    }
    unsigned v = (b->p[b->pos / 8] >> (7 - b->pos % 8)) & 1;
    b->pos++;
    return v;
}

#define RBSP_MAX 1024 ///< parameter sets are far shorter

/* A NAL unit's payload without its emulation prevention bytes (00 00 03). */
static size_t rbsp(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t o = 0;
    int zeros = 0;
    for (size_t i = 0; i < n && o < RBSP_MAX; i++) {
        if (zeros >= 2 && p[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = p[i] == 0 ? zeros + 1 : 0;
        out[o++] = p[i];
    }
    return o;
}

static uint32_t u(struct bits *b, int k)
{
    uint32_t v = 0;
    for (int i = 0; i < k; i++)
        v = (v << 1) | bit(b);
    return v;
}

/* Exp-Golomb, unsigned and signed. */
static uint32_t ue(struct bits *b)
{
    int zeros = 0;
    while (!bit(b) && !b->bad) {
        if (++zeros > 31) {
            b->bad = 1;
            return 0;
        }
    }
    return ((1u << zeros) - 1) + u(b, zeros);
}

static int32_t se(struct bits *b)
{
    uint32_t k = ue(b);
    return k & 1 ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

/* ---- H.264 ------------------------------------------------------------- */

/* A cropping window (H.264 frame_cropping, HEVC conformance_window): a
 * flag, then four offsets in chroma units. */
struct crop {
    uint32_t l, r, t, b;
};

static struct crop read_crop(struct bits *b)
{
    struct crop c = {0, 0, 0, 0};
    if (u(b, 1)) {
        c.l = ue(b);
        c.r = ue(b);
        c.t = ue(b);
        c.b = ue(b);
    }
    return c;
}

static void skip_scaling_list(struct bits *b, int size)
{
    int last = 8, next = 8;
    for (int j = 0; j < size && !b->bad; j++) {
        if (next != 0)
            next = (last + se(b) + 256) % 256;
        last = next == 0 ? last : next;
    }
}

/* An SPS NAL unit (header byte first). */
static int h264_sps(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    struct bits b;
    uint8_t buf[RBSP_MAX];
    if (n < 4 || (p[0] & 0x1f) != 7)
        return -1;
    bits_init(&b, buf, rbsp(p + 1, n - 1, buf));
    uint32_t profile = u(&b, 8);
    u(&b, 16); /* constraint flags, level */
    ue(&b);    /* seq_parameter_set_id */
    uint32_t chroma = 1;
    if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 ||
        profile == 83 || profile == 86 || profile == 118 || profile == 128 || profile == 138 ||
        profile == 139 || profile == 134 || profile == 135) {
        chroma = ue(&b);
        if (chroma == 3)
            u(&b, 1); /* separate_colour_plane_flag */
        ue(&b);       /* bit depths */
        ue(&b);
        u(&b, 1);
        if (u(&b, 1)) /* seq_scaling_matrix_present_flag */
            for (int i = 0; i < (chroma == 3 ? 12 : 8) && !b.bad; i++)
                if (u(&b, 1))
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
    }
    ue(&b); /* log2_max_frame_num_minus4 */
    uint32_t poc = ue(&b);
    if (poc == 0) {
        ue(&b);
    } else if (poc == 1) {
        u(&b, 1);
        se(&b);
        se(&b);
        uint32_t cycle = ue(&b);
        for (uint32_t i = 0; i < cycle && i < 256 && !b.bad; i++)
            se(&b);
    }
    ue(&b);   /* max_num_ref_frames */
    u(&b, 1); /* gaps_in_frame_num_allowed */
    uint32_t w_mbs = ue(&b) + 1, h_units = ue(&b) + 1;
    uint32_t frame_mbs_only = u(&b, 1);
    if (!frame_mbs_only)
        u(&b, 1);
    u(&b, 1); /* direct_8x8_inference */
    struct crop c = read_crop(&b);
    if (b.bad || w_mbs > 2048 || h_units > 2048)
        return -1;
    uint32_t ux = chroma == 1 || chroma == 2 ? 2 : 1;
    uint32_t uy = (chroma == 1 ? 2 : 1) * (2 - frame_mbs_only);
    int w = (int)(w_mbs * 16) - (int)(ux * (c.l + c.r));
    int h = (int)((2 - frame_mbs_only) * h_units * 16) - (int)(uy * (c.t + c.b));
    if (w <= 0 || h <= 0)
        return -1;
    out->width = w;
    out->height = h;
    if (u(&b, 1)) { /* vui_parameters_present_flag */
        if (u(&b, 1) && u(&b, 8) == 255) /* aspect ratio, extended SAR */
            u(&b, 32);
        if (u(&b, 1)) /* overscan */
            u(&b, 1);
        if (u(&b, 1)) { /* video signal type */
            u(&b, 4);
            if (u(&b, 1))
                u(&b, 24);
        }
        if (u(&b, 1)) { /* chroma location */
            ue(&b);
            ue(&b);
        }
        if (u(&b, 1)) { /* timing info */
            uint32_t tick = u(&b, 32), scale = u(&b, 32);
            if (!b.bad && tick)
                out->fps = (double)scale / (2.0 * tick);
        }
    }
    return 0;
}

int kb_avcc_info(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    /* version, profile, compatibility, level, length size, SPS count */
    if (n < 8 || p[0] != 1 || (p[5] & 0x1f) == 0)
        return -1;
    size_t len = ((size_t)p[6] << 8) | p[7];
    if (8 + len > n)
        return -1;
    return h264_sps(p + 8, len, out);
}

/* ---- HEVC -------------------------------------------------------------- */

static int hevc_sps(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    struct bits b;
    uint8_t buf[RBSP_MAX];
    if (n < 4 || ((p[0] >> 1) & 0x3f) != 33)
        return -1;
    bits_init(&b, buf, rbsp(p + 2, n - 2, buf));
    u(&b, 4); /* sps_video_parameter_set_id */
    uint32_t sub_layers = u(&b, 3);
    u(&b, 1);
    /* profile_tier_level: the general part is 88 bits plus the level. */
    u(&b, 32);
    u(&b, 32);
    u(&b, 24);
    u(&b, 8);
    uint32_t prof[8] = {0}, lev[8] = {0};
    for (uint32_t i = 0; i < sub_layers; i++) {
        prof[i] = u(&b, 1);
        lev[i] = u(&b, 1);
    }
    if (sub_layers > 0)
        for (uint32_t i = sub_layers; i < 8; i++)
            u(&b, 2);
    for (uint32_t i = 0; i < sub_layers; i++) {
        if (prof[i]) {
            u(&b, 32);
            u(&b, 32);
            u(&b, 24);
        }
        if (lev[i])
            u(&b, 8);
    }
    ue(&b); /* sps_seq_parameter_set_id */
    uint32_t chroma = ue(&b);
    if (chroma == 3)
        u(&b, 1);
    uint32_t w = ue(&b), h = ue(&b);
    struct crop c = read_crop(&b);
    if (b.bad || w == 0 || h == 0 || w > 16888 || h > 16888)
        return -1;
    uint32_t sx = chroma == 1 || chroma == 2 ? 2 : 1, sy = chroma == 1 ? 2 : 1;
    int cw = (int)w - (int)(sx * (c.l + c.r)), ch = (int)h - (int)(sy * (c.t + c.b));
    if (cw <= 0 || ch <= 0)
        return -1;
    out->width = cw;
    out->height = ch;
    return 0;
}

int kb_hvcc_info(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    if (n < 23 || p[0] != 1)
        return -1;
    size_t off = 23;
    for (unsigned a = 0; a < p[22] && off + 3 <= n; a++) {
        unsigned type = p[off] & 0x3f;
        size_t count = ((size_t)p[off + 1] << 8) | p[off + 2];
        off += 3;
        for (size_t i = 0; i < count && off + 2 <= n; i++) {
            size_t len = ((size_t)p[off] << 8) | p[off + 1];
            off += 2;
            if (off + len > n)
                return -1;
            if (type == 33)
                return hevc_sps(p + off, len, out);
            off += len;
        }
    }
    return -1;
}

/* ---- AV1 --------------------------------------------------------------- */

static uint64_t leb128(const uint8_t *p, size_t n, size_t *used)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && i < n; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *used = i + 1;
            return v;
        }
    }
    *used = 0;
    return 0;
}

int kb_av1c_info(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    /* 4 bytes of av1C, then configOBUs: a sequence header OBU. */
    if (n < 6 || (p[0] & 0x80) == 0)
        return -1;
    size_t off = 4;
    uint8_t hdr = p[off];
    if (((hdr >> 3) & 0x0f) != 1) /* OBU_SEQUENCE_HEADER */
        return -1;
    off += 1 + ((hdr >> 2) & 1); /* extension byte */
    size_t size = n - off, used = 0;
    if (hdr & 0x02) {
        size = (size_t)leb128(p + off, n - off, &used);
        if (!used || off + used + size > n)
            return -1;
        off += used;
    }
    struct bits b;
    bits_init(&b, p + off, size);
    u(&b, 3); /* seq_profile */
    u(&b, 1); /* still_picture */
    int reduced = (int)u(&b, 1);
    int decoder_model = 0, delay_len = 0;
    if (reduced) {
        u(&b, 5);
    } else {
        if (u(&b, 1)) { /* timing_info_present_flag */
            uint32_t tick = u(&b, 32), scale = u(&b, 32);
            if (tick)
                out->fps = (double)scale / tick;
            if (u(&b, 1)) { /* equal_picture_interval: uvlc */
                int z = 0;
                while (!bit(&b) && !b.bad && z < 32)
                    z++;
                if (z < 32)
                    u(&b, z);
            }
            decoder_model = (int)u(&b, 1);
            if (decoder_model) {
                delay_len = (int)u(&b, 5) + 1;
                u(&b, 32);
                u(&b, 10);
            }
        }
        int initial_delay = (int)u(&b, 1);
        uint32_t ops = u(&b, 5) + 1;
        for (uint32_t i = 0; i < ops && !b.bad; i++) {
            u(&b, 12);
            if (u(&b, 5) > 7)
                u(&b, 1);
            if (decoder_model && u(&b, 1)) {
                u(&b, delay_len);
                u(&b, delay_len);
                u(&b, 1);
            }
            if (initial_delay && u(&b, 1))
                u(&b, 4);
        }
    }
    int wbits = (int)u(&b, 4) + 1, hbits = (int)u(&b, 4) + 1;
    uint32_t w = u(&b, wbits) + 1, h = u(&b, hbits) + 1;
    if (b.bad)
        return -1;
    out->width = (int)w;
    out->height = (int)h;
    return 0;
}

/* ---- audio ------------------------------------------------------------- */

int kb_asc_info(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    static const int rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                  22050, 16000, 12000, 11025, 8000,  7350};
    struct bits b;
    if (n < 2)
        return -1;
    bits_init(&b, p, n);
    if (u(&b, 5) == 31) /* audio object type, escaped */
        u(&b, 6);
    uint32_t idx = u(&b, 4);
    int rate = idx == 15 ? (int)u(&b, 24) : idx < 13 ? rates[idx] : 0;
    uint32_t ch = u(&b, 4);
    if (b.bad || rate <= 0)
        return -1;
    out->sample_rate = rate;
    /* 0: a program config element says; stereo is what it says in practice. */
    out->channels = ch == 0 ? 2 : ch == 7 ? 8 : ch < 7 ? (int)ch : 2;
    return 0;
}

static int opus_head(const uint8_t *p, size_t n, struct kb_codec_info *out)
{
    if (n < 19 || memcmp(p, "OpusHead", 8) != 0)
        return -1;
    out->channels = p[9];
    out->sample_rate = 48000; /* Opus always decodes at 48 kHz */
    return 0;
}

int kb_codec_info(const struct kb_msg *m, struct kb_codec_info *out)
{
    memset(out, 0, sizeof(*out));
    if (!(m->flags & KB_MSGF_SEQHDR) || (m->type != KB_MSG_VIDEO && m->type != KB_MSG_AUDIO))
        return -1;
    /* The shared tag reader finds the record, behind a legacy header, an
     * extended one, ModEx or a multitrack wrapper (its first track). */
    int video = m->type == KB_MSG_VIDEO;
    struct kb_flv_tag t;
    if (kb_flv_tag_parse(m->data, m->len, video, &t) < 0 || t.what != KB_FLV_CONFIG ||
        t.packet_type != KB_FLV_VPT_SEQUENCE_START)
        return -1;
    const uint8_t *rec = m->data + t.body;
    size_t n = t.body_len;
    switch (t.codec) {
    case KB_FLV_VIDEO_AVC:
    case KB_CODEC_AVC1:
        return video ? kb_avcc_info(rec, n, out) : -1;
    case KB_FLV_VIDEO_HEVC_LEGACY:
    case KB_CODEC_HVC1:
        return video ? kb_hvcc_info(rec, n, out) : -1;
    case KB_CODEC_AV01:
        return kb_av1c_info(rec, n, out);
    case KB_FLV_AUDIO_AAC:
    case KB_CODEC_MP4A:
        return video ? -1 : kb_asc_info(rec, n, out);
    case KB_CODEC_OPUS:
        return opus_head(rec, n, out);
    }
    return -1;
}
