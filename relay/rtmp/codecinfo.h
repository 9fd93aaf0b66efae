/* kebun: what a sequence header says about its stream, for people: the
 * picture's size and frame rate (H.264 and HEVC SPS, AV1 sequence header),
 * the sound's sample rate and channels (AAC AudioSpecificConfig, Opus
 * header, legacy FLV audio flags). Pure functions over the message's
 * bytes; anything unreadable is left at 0. */
#ifndef KB_CODECINFO_H
#define KB_CODECINFO_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct kb_codec_info {
    int width, height; ///< pixels shown (after cropping)
    double fps;        ///< from the timing information, when the header has it
    int sample_rate;   ///< Hz
    int channels;
};

/* Fill *out from a classified video or audio sequence header (kb_flv_classify
 * ran). 0 when something was read, -1 when nothing could be. */
int kb_codec_info(const struct kb_msg *seqhdr, struct kb_codec_info *out);

/* The parts, for tests: an AVCDecoderConfigurationRecord, an
 * HEVCDecoderConfigurationRecord, an AV1CodecConfigurationRecord, an
 * AudioSpecificConfig. 0 or -1. */
int kb_avcc_info(const uint8_t *p, size_t n, struct kb_codec_info *out);
int kb_hvcc_info(const uint8_t *p, size_t n, struct kb_codec_info *out);
int kb_av1c_info(const uint8_t *p, size_t n, struct kb_codec_info *out);
int kb_asc_info(const uint8_t *p, size_t n, struct kb_codec_info *out);

#endif
