/* kebun: the silent AAC track's bytes (see relay/silence.h). */
#ifndef KB_AACSILENCE_H
#define KB_AACSILENCE_H

#include "silence.h"

/* Encode AAC-LC silence (48 kHz stereo) with libavcodec: the sequence
 * header and one frame, as FLV audio payloads. 0 or an AVERROR (no AAC
 * encoder in this FFmpeg); `out` is zeroed on failure. */
int kb_silent_aac_make(struct kb_silent_aac *out);

#endif
