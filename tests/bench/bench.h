/* kebun benchmark tools: what kebun-load and kebun-floor share.
 *
 * - a media source: an FLV file read into memory, or generated frames of a
 *   given bitrate, as a list of tags with their timestamps (source.c);
 * - a latency histogram with about 1.5 % precision (hist.c);
 * - the player's chunk "skimmer": an RTMP chunk stream parser that reads
 *   headers only and never copies a media payload, keeping just the bytes a
 *   benchmark needs (first two for the frame type, last eight for the
 *   latency tag) (skim.c).
 *
 * These are test tools: they favour clear numbers over generality.
 */
#ifndef KB_BENCH_H
#define KB_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "relay/rtmp/msg.h"

/* ---- media source (source.c) ---- */

enum {
    BT_CONFIG = 1 << 0, ///< sequence header or metadata: sent once, never tagged
    BT_KEY = 1 << 1,    ///< video keyframe
    BT_VIDEO = 1 << 2,
    BT_AUDIO = 1 << 3,
};

struct bt_tag {
    uint8_t type;        ///< RTMP message type: 8 audio, 9 video, 18 data
    uint8_t flags;       ///< BT_*
    uint32_t ts;         ///< milliseconds from the first tag
    uint32_t len;
    const uint8_t *data; ///< points into the source's memory
};

struct bt_source {
    struct bt_tag *tags;
    size_t n;
    uint8_t *mem;         ///< owns the tag bytes
    uint32_t period_ms;   ///< one pass: a loop restarts this much later
    uint64_t media_bytes; ///< payload bytes of one pass (tags not BT_CONFIG)
    uint32_t media_msgs;  ///< messages of one pass (tags not BT_CONFIG)
};

/* Read an FLV file. 0, or negative with a sentence in err. */
int bt_source_load_flv(struct bt_source *s, const char *path, char *err, size_t errlen);
/* Generate `seconds` of H.264-shaped video (30 fps, keyframe every gop_ms)
 * plus AAC-shaped audio (44.1 kHz, 128 kbit/s) totalling about `kbps`.
 * The bytes are filler: nothing decodes them, servers only read the tag
 * headers. 0 or -ENOMEM. */
int bt_source_generate(struct bt_source *s, uint32_t kbps, uint32_t gop_ms, uint32_t seconds);
void bt_source_free(struct bt_source *s);
/* Bytes one tag takes on the wire as a format-0 chunked message. */
size_t bt_wire_size(const struct bt_tag *t, uint32_t chunk);

/* ---- histogram (hist.c) ---- */

#define BT_HIST_SUB 64     ///< linear sub-buckets per power of two
#define BT_HIST_POW 40     ///< powers of two covered (values up to 2^40)

/* Values are unsigned integers (the tools record microseconds). */
struct bt_hist {
    uint64_t count, sum, min, max;
    uint32_t b[BT_HIST_POW * BT_HIST_SUB];
};

void bt_hist_add(struct bt_hist *h, uint64_t v);
void bt_hist_merge(struct bt_hist *dst, const struct bt_hist *src);
/* The value below which fraction q (0..1) of the samples lie (bucket
 * midpoint), 0 when empty. */
uint64_t bt_hist_quantile(const struct bt_hist *h, double q);

/* ---- chunk skimmer (skim.c) ---- */

#define BT_SKIM_STREAMS 8    ///< chunk streams a server may use towards one player
#define BT_SKIM_KEEP 65536   ///< non-media messages up to this size are kept whole

struct bt_skim_cs {
    uint32_t csid;
    uint32_t ts;       ///< absolute timestamp of the current or last message
    uint32_t ts_field; ///< last timestamp or delta field
    uint32_t len;
    uint32_t msid;
    uint32_t have;     ///< payload bytes of the current message seen so far
    uint8_t type;
    uint8_t ext;       ///< last header used an extended timestamp
    uint8_t active;    ///< a message is in progress
    uint8_t head[2];   ///< first payload bytes (frame type, packet type)
    uint8_t tail[8];   ///< last payload bytes (where the publisher put its tag)
    struct kb_msg *keep; ///< a non-media message being assembled, or NULL
};

struct bt_skim {
    uint32_t chunk_size;
    int state;
    uint8_t fmt;
    uint8_t hdr_have, hdr_need;
    uint8_t hdr[18];
    uint32_t chunk_left;
    struct bt_skim_cs *cur;
    uint8_t n_cs;
    struct bt_skim_cs cs[BT_SKIM_STREAMS];
};

/* A message the skimmer finished. Media (audio, video, data) comes with its
 * first and last bytes only; anything else (control, commands) whole in
 * `keep`, which the caller then owns (NULL when it was larger than
 * BT_SKIM_KEEP). */
struct bt_skim_msg {
    uint8_t type;
    uint32_t ts, len, msid;
    uint8_t head[2];
    uint8_t tail[8];
    struct kb_msg *keep;
};

void bt_skim_init(struct bt_skim *k);
void bt_skim_free(struct bt_skim *k);
/* Like kb_chunk_read(): consume bytes until one message completes (returns
 * 1 and fills *out) or the input ends (returns 0); negative on a malformed
 * stream. Call it again with what is left until it returns 0. */
int bt_skim_read(struct bt_skim *k, const uint8_t *p, size_t n, size_t *used,
                 struct bt_skim_msg *out);
/* The server's Set Chunk Size. 0 or KB_ECHUNKSIZE. */
int bt_skim_set_chunk_size(struct bt_skim *k, uint32_t size);

/* ---- HTTP-FLV reader (flvskim.c) ---- */

/* An HTTP/1.1 response with a chunked FLV body, read as it arrives. */
struct bt_flvskim {
    int hstate, tstate;
    int status;             ///< the response's status, once its first line was read
    char line[128];
    size_t line_len;
    uint64_t chunk_left;
    int size_digits;
    uint8_t hdr[16];        ///< FLV file header, tag header or previous size
    uint32_t need, have_hdr;
    uint32_t len, have;     ///< the tag's payload
    struct bt_skim_msg msg; ///< the tag being read
};

void bt_flvskim_init(struct bt_flvskim *k);
/* Consume bytes until a tag completes (returns 1 and fills *out; keep is
 * always NULL) or the input ends (0); negative on a malformed response or a
 * status other than 200. Call it again with what is left. */
int bt_flvskim_read(struct bt_flvskim *k, const uint8_t *p, size_t n, size_t *used,
                    struct bt_skim_msg *out);

/* ---- latency tags ----
 *
 * The publisher overwrites the last 8 bytes of each audio and video frame
 * (never a sequence header) with a tag: 2 magic bytes, the publisher's
 * index and a sequence number. The player looks the sequence number up in
 * the publisher's table of send times (both live in one process with one
 * clock). Neither server looks past a frame's first few bytes, and timestamps
 * (which servers may rebase) play no part in the match. */
#define BT_TAG_MAGIC0 0x6b
#define BT_TAG_MAGIC1 0xb7
#define BT_TAG_MIN_LEN 16 ///< shorter frames are sent untagged

static inline int bt_tag_parse(const uint8_t tail[8], uint32_t *pub, uint32_t *seq)
{
    if (tail[0] != BT_TAG_MAGIC0 || tail[1] != BT_TAG_MAGIC1)
        return 0;
    *pub = (uint32_t)tail[2] << 8 | tail[3];
    *seq = (uint32_t)tail[4] << 24 | (uint32_t)tail[5] << 16 | (uint32_t)tail[6] << 8 | tail[7];
    return 1;
}

/* Classify a video message by its first two bytes: 1 keyframe (coded), 2
 * sequence header, 0 other. */
static inline int bt_video_kind(const uint8_t head[2], uint32_t len)
{
    if (len < 2)
        return 0;
    if (head[0] & 0x80) { /* E-RTMP: FrameType in bits 6-4, PacketType in 3-0 */
        if ((head[0] & 0x0f) == 0)
            return 2;
        return ((head[0] >> 4) & 7) == 1 ? 1 : 0;
    }
    if ((head[0] & 0x0f) == 7 && head[1] == 0) /* AVC sequence header */
        return 2;
    return (head[0] >> 4) == 1 ? 1 : 0;
}

#endif
