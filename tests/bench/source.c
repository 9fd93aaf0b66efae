/* kebun benchmark tools: the media source, from an FLV file or generated. */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/rtmp/amf.h"
#include "relay/rtmp/chunk.h"

static uint8_t classify(uint8_t type, const uint8_t *p, uint32_t len)
{
    if (type == KB_MSG_DATA_AMF0)
        return BT_CONFIG;
    if (type == KB_MSG_VIDEO) {
        uint8_t head[2] = {len > 0 ? p[0] : 0, len > 1 ? p[1] : 0};
        int k = bt_video_kind(head, len);
        return (uint8_t)(BT_VIDEO | (k == 2 ? BT_CONFIG : k == 1 ? BT_KEY : 0));
    }
    /* AAC sequence header: SoundFormat 10, AACPacketType 0. */
    if (len >= 2 && (p[0] >> 4) == 10 && p[1] == 0)
        return BT_AUDIO | BT_CONFIG;
    return BT_AUDIO;
}

static void finish(struct bt_source *s)
{
    uint32_t last = 0;
    uint32_t first_media = UINT32_MAX;
    s->media_bytes = 0;
    s->media_msgs = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct bt_tag *t = &s->tags[i];
        if (t->ts > last)
            last = t->ts;
        if (!(t->flags & BT_CONFIG)) {
            s->media_bytes += t->len;
            s->media_msgs++;
            if (t->ts < first_media)
                first_media = t->ts;
        }
    }
    /* A pass lasts until the last tag plus one average frame interval, so
     * the loop restarts at the rhythm the file had. */
    uint32_t step = s->media_msgs > 1 ? (last - (first_media == UINT32_MAX ? 0 : first_media)) /
                                            (s->media_msgs - 1)
                                      : 33;
    s->period_ms = last + (step ? step : 1);
}

int bt_source_load_flv(struct bt_source *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 13 || size > (1L << 30)) {
        fclose(f);
        snprintf(err, errlen, "%s: not an FLV file of a sensible size", path);
        return -EINVAL;
    }
    s->mem = malloc((size_t)size);
    if (!s->mem || fread(s->mem, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        snprintf(err, errlen, "%s: cannot read", path);
        return -EIO;
    }
    fclose(f);
    const uint8_t *p = s->mem;
    if (memcmp(p, "FLV", 3) != 0) {
        snprintf(err, errlen, "%s: no FLV signature", path);
        return -EINVAL;
    }
    size_t off = kb_get_be32(p + 5) + 4; /* header, then PreviousTagSize0 */
    size_t cap = 0;
    uint32_t base = 0;
    int have_base = 0;
    while (off + 11 <= (size_t)size) {
        uint8_t type = p[off] & 0x1f;
        uint32_t len = kb_get_be24(p + off + 1);
        uint32_t ts = kb_get_be24(p + off + 4) | (uint32_t)p[off + 7] << 24;
        if (off + 11 + len > (size_t)size)
            break; /* a truncated last tag */
        if (type == KB_MSG_AUDIO || type == KB_MSG_VIDEO || type == KB_MSG_DATA_AMF0) {
            if (s->n == cap) {
                cap = cap ? cap * 2 : 4096;
                struct bt_tag *t = realloc(s->tags, cap * sizeof(*t));
                if (!t) {
                    snprintf(err, errlen, "out of memory");
                    return -ENOMEM;
                }
                s->tags = t;
            }
            if (!have_base) {
                base = ts;
                have_base = 1;
            }
            struct bt_tag *t = &s->tags[s->n++];
            t->type = type;
            t->ts = ts - base;
            t->len = len;
            t->data = p + off + 11;
            t->flags = classify(type, t->data, len);
        }
        off += 11 + len + 4;
    }
    if (s->n == 0) {
        snprintf(err, errlen, "%s: no audio or video tags", path);
        return -EINVAL;
    }
    finish(s);
    return 0;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

int bt_source_generate(struct bt_source *s, uint32_t kbps, uint32_t gop_ms, uint32_t seconds)
{
    memset(s, 0, sizeof(*s));
    const uint32_t fps = 30, abps = 128000, arate = 44100;
    if (kbps < 200)
        kbps = 200;
    if (gop_ms < 100)
        gop_ms = 100;
    uint32_t vframes = seconds * fps;
    uint32_t aframes = (uint32_t)((uint64_t)seconds * arate / 1024);
    uint32_t gop = gop_ms * fps / 1000;
    /* Keyframes are eight inter frames' worth; sizes add up to the rate. */
    uint64_t vbytes_per_gop = (uint64_t)(kbps * 1000 - abps) / 8 * gop / fps;
    uint32_t inter = (uint32_t)(vbytes_per_gop / (gop - 1 + 8));
    uint32_t key = inter * 8;
    uint32_t aframe = abps / 8 * 1024 / arate;

    uint64_t total = 4096 + (uint64_t)vframes * inter + (uint64_t)(vframes / gop + 1) * key +
                     (uint64_t)aframes * aframe;
    s->mem = malloc(total);
    s->tags = malloc((3 + vframes + aframes) * sizeof(*s->tags));
    if (!s->mem || !s->tags) {
        bt_source_free(s);
        return -ENOMEM;
    }
    uint8_t *w = s->mem;
    uint64_t rng = 0x9e3779b97f4a7c15ull;

    /* onMetaData, as an encoder's file carries it. */
    struct kb_buf md = {0};
    struct kb_amf_w aw = {.out = &md};
    kb_amf_w_string(&aw, "onMetaData");
    kb_amf_w_ecma_begin(&aw, 7);
    kb_amf_w_prop_number(&aw, "width", 1280);
    kb_amf_w_prop_number(&aw, "height", 720);
    kb_amf_w_prop_number(&aw, "framerate", fps);
    kb_amf_w_prop_number(&aw, "videocodecid", 7);
    kb_amf_w_prop_number(&aw, "videodatarate", (kbps * 1000 - abps) / 1000.0);
    kb_amf_w_prop_number(&aw, "audiocodecid", 10);
    kb_amf_w_prop_number(&aw, "audiodatarate", abps / 1000.0);
    kb_amf_w_object_end(&aw);
    if (aw.err || md.len > 1024) {
        kb_buf_free(&md);
        bt_source_free(s);
        return -ENOMEM;
    }
    memcpy(w, md.data, md.len);
    s->tags[s->n++] = (struct bt_tag){KB_MSG_DATA_AMF0, BT_CONFIG, 0, (uint32_t)md.len, w};
    w += md.len;
    kb_buf_free(&md);

    /* AVC sequence header: an avcC with a plausible SPS and PPS. */
    static const uint8_t avc_hdr[] = {
        0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x0c,
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00,
        0x01, 0x00, 0x04, 0x68, 0xeb, 0xe3, 0xcb};
    memcpy(w, avc_hdr, sizeof(avc_hdr));
    s->tags[s->n++] = (struct bt_tag){KB_MSG_VIDEO, BT_VIDEO | BT_CONFIG, 0, sizeof(avc_hdr), w};
    w += sizeof(avc_hdr);
    /* AAC sequence header: AAC-LC, 44.1 kHz, stereo. */
    static const uint8_t aac_hdr[] = {0xaf, 0x00, 0x12, 0x10};
    memcpy(w, aac_hdr, sizeof(aac_hdr));
    s->tags[s->n++] = (struct bt_tag){KB_MSG_AUDIO, BT_AUDIO | BT_CONFIG, 0, sizeof(aac_hdr), w};
    w += sizeof(aac_hdr);

    /* Interleave by timestamp, video first on ties (as encoders do). */
    uint32_t vi = 0, ai = 0;
    while (vi < vframes || ai < aframes) {
        uint32_t vts = vi * 1000 / fps;
        uint32_t ats = (uint32_t)((uint64_t)ai * 1024 * 1000 / arate);
        int video = vi < vframes && (ai >= aframes || vts <= ats);
        uint32_t len;
        if (video) {
            int is_key = vi % gop == 0;
            len = is_key ? key : inter;
            w[0] = is_key ? 0x17 : 0x27;
            w[1] = 0x01; /* AVC NALU */
            w[2] = w[3] = w[4] = 0;
            kb_put_be32(w + 5, len - 9);
            w[9] = is_key ? 0x65 : 0x41;
            for (uint32_t i = 10; i < len; i += 8) {
                uint64_t r = rng_next(&rng);
                memcpy(w + i, &r, len - i < 8 ? len - i : 8);
            }
            s->tags[s->n++] = (struct bt_tag){KB_MSG_VIDEO,
                                              (uint8_t)(BT_VIDEO | (is_key ? BT_KEY : 0)), vts,
                                              len, w};
            vi++;
        } else {
            len = aframe;
            w[0] = 0xaf;
            w[1] = 0x01;
            for (uint32_t i = 2; i < len; i += 8) {
                uint64_t r = rng_next(&rng);
                memcpy(w + i, &r, len - i < 8 ? len - i : 8);
            }
            s->tags[s->n++] = (struct bt_tag){KB_MSG_AUDIO, BT_AUDIO, ats, len, w};
            ai++;
        }
        w += len;
    }
    finish(s);
    return 0;
}

void bt_source_free(struct bt_source *s)
{
    free(s->tags);
    free(s->mem);
    memset(s, 0, sizeof(*s));
}

size_t bt_wire_size(const struct bt_tag *t, uint32_t chunk)
{
    struct kb_chunk_hdr h = {
        .csid = t->type == KB_MSG_VIDEO   ? KB_CSID_VIDEO
                : t->type == KB_MSG_AUDIO ? KB_CSID_AUDIO
                                          : KB_CSID_DATA,
        .timestamp = t->ts,
        .len = t->len,
        .type = t->type,
        .stream_id = 1,
    };
    return kb_chunk_encoded_size(&h, chunk);
}
