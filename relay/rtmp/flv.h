/* kebun: what an audio, video or data message is, read from its FLV tag
 * header (legacy FLV and Enhanced RTMP v1/v2 extended headers). */
#ifndef KB_FLV_H
#define KB_FLV_H

#include <stdint.h>

#include "msg.h"

/* Legacy FLV codec ids (video CodecID, audio SoundFormat). */
enum {
    KB_FLV_VIDEO_AVC = 7,
    KB_FLV_VIDEO_HEVC_LEGACY = 12, ///< the unofficial pre-E-RTMP HEVC id
    KB_FLV_AUDIO_MP3 = 2,
    KB_FLV_AUDIO_AAC = 10,
    KB_FLV_AUDIO_EX = 9,           ///< E-RTMP v2 extended audio header
};

/* E-RTMP FourCCs, stored in kb_msg.codec as KB_CODEC_FOURCC + n. */
enum {
    KB_CODEC_FOURCC = 0x100,
    KB_CODEC_HVC1 = KB_CODEC_FOURCC + 1,
    KB_CODEC_AV01,
    KB_CODEC_VP09,
    KB_CODEC_AVC1,
    KB_CODEC_VP08,
    KB_CODEC_VVC1,
    KB_CODEC_OPUS,
    KB_CODEC_FLAC,
    KB_CODEC_AC3,
    KB_CODEC_EAC3,
    KB_CODEC_MP3,
    KB_CODEC_MP4A,
    KB_CODEC_UNKNOWN_FOURCC,
};

/* Set m->flags and m->codec from the payload. Never fails: a message too
 * short to classify is left as plain audio/video/data. */
void kb_flv_classify(struct kb_msg *m);

/* Composition time offset of an AVC/HEVC coded frame (signed 24-bit), or 0. */
int32_t kb_flv_cts(const struct kb_msg *m);

/* A short name for logs: "H.264", "HEVC", "AAC", ... */
const char *kb_flv_codec_name(uint16_t codec, int video);

#endif
