/* kebun: what an audio, video or data message is, read from its FLV tag
 * header (legacy FLV and Enhanced RTMP v1/v2 extended headers).
 *
 * kb_flv_tag_parse is the one reader of audio and video tag headers: the
 * relay's classification (kb_flv_classify: keyframes, sequence headers,
 * what a cache keeps) and the recorder's codec reader (recorder/media.c)
 * both start from its description, so they never disagree on what a tag
 * is. What is codec-specific (an AudioSpecificConfig, parameter sets) is
 * left to whoever needs it.
 */
#ifndef KB_FLV_H
#define KB_FLV_H

#include <stddef.h>
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

/* Video FrameType (legacy and E-RTMP). */
enum {
    KB_FLV_FRAME_KEY = 1,
    KB_FLV_FRAME_INTER = 2,
    KB_FLV_FRAME_DISPOSABLE = 3,    ///< H.263 only
    KB_FLV_FRAME_GENERATED_KEY = 4, ///< reserved for servers
    KB_FLV_FRAME_COMMAND = 5,       ///< video info / command frame: no picture
};

/* E-RTMP VideoPacketType. Legacy AVCPacketType (AVC and the legacy HEVC
 * id) uses the same numbers for its three values. */
enum {
    KB_FLV_VPT_SEQUENCE_START = 0,
    KB_FLV_VPT_CODED_FRAMES = 1,
    KB_FLV_VPT_SEQUENCE_END = 2,
    KB_FLV_VPT_CODED_FRAMES_X = 3, ///< composition time 0, not sent
    KB_FLV_VPT_METADATA = 4,       ///< AMF (colorInfo), no picture
    KB_FLV_VPT_MPEG2TS_SEQUENCE_START = 5,
    KB_FLV_VPT_MULTITRACK = 6,
    KB_FLV_VPT_MODEX = 7,
};

/* E-RTMP AudioPacketType. Legacy AACPacketType uses 0 and 1 the same way. */
enum {
    KB_FLV_APT_SEQUENCE_START = 0,
    KB_FLV_APT_CODED_FRAMES = 1,
    KB_FLV_APT_SEQUENCE_END = 2,
    KB_FLV_APT_MULTICHANNEL_CONFIG = 4,
    KB_FLV_APT_MULTITRACK = 5,
    KB_FLV_APT_MODEX = 7,
};

/* AvMultitrackType (E-RTMP v2). */
enum {
    KB_FLV_MT_ONE_TRACK = 0,
    KB_FLV_MT_MANY_TRACKS = 1,
    KB_FLV_MT_MANY_CODECS = 2, ///< each track names its own FourCC
};

/* What a tag carries. */
enum kb_flv_what {
    KB_FLV_MEDIA,  ///< coded frames
    KB_FLV_CONFIG, ///< codec configuration (SequenceStart, MPEG2TSSequenceStart, legacy
                   ///< AVC/HEVC/AAC sequence header)
    KB_FLV_LAYOUT, ///< E-RTMP audio MultichannelConfig: a channel layout beside the config
    KB_FLV_END,    ///< end of sequence
    KB_FLV_INFO,   ///< nothing to decode: E-RTMP video Metadata, a command frame
};

/* An audio or video tag's header, fully read. */
struct kb_flv_tag {
    uint8_t video;       ///< 1: a video tag; 0: an audio tag
    uint8_t ex;          ///< E-RTMP extended header (the codec is a FourCC)
    uint8_t what;        ///< enum kb_flv_what
    uint8_t key;         ///< coded frames of a video keyframe
    uint8_t frame_type;  ///< video FrameType (KB_FLV_FRAME_*); 0 for audio
    uint8_t packet_type; ///< KB_FLV_VPT_* / KB_FLV_APT_* once ModEx and Multitrack are
                         ///< read past; legacy AVC/HEVC/AAC keep theirs (the same
                         ///< numbers); other legacy codecs, which have none: CODED_FRAMES
    uint8_t multitrack;  ///< 0: a plain tag; else 1 + its AvMultitrackType (KB_FLV_MT_*)
    uint8_t track_id;    ///< multitrack: the described track's id (the first, unless chosen)
    uint8_t tracks;      ///< multitrack: tracks in the message (1 for OneTrack); else 0
    uint8_t modex;       ///< ModEx prefixes were read past
    uint16_t codec;      ///< legacy codec id or KB_CODEC_* (multitrack: the described track's)
    int32_t cts;         ///< composition time offset, ms (AVC/HEVC/VVC coded frames), else 0
    uint32_t body;       ///< offset of the codec payload (multitrack: the described track's)
    uint32_t body_len;   ///< its length
};

/* Read the header of an audio (video = 0) or video (video = 1) tag body
 * p[0..n). Returns 0, or -EINVAL when the header is cut short or uses a
 * value the specifications reserve; t then holds what was read before
 * (video, ex, frame_type, and the codec when the header gave it first) and
 * what = KB_FLV_INFO. */
int kb_flv_tag_parse(const uint8_t *p, size_t n, int video, struct kb_flv_tag *t);
/* The same, describing the track `track_id` of a multitrack message (its
 * codec, cts and body) instead of its first track. A message that is not
 * multitrack is described as kb_flv_tag_parse does, whatever track_id.
 * Returns -ENOENT (what = KB_FLV_INFO) when a well-formed multitrack
 * message has no such track. */
int kb_flv_tag_parse_track(const uint8_t *p, size_t n, int video, int track_id,
                           struct kb_flv_tag *t);

/* Set m->flags and m->codec from the payload. Never fails: a message too
 * short to classify is left as plain audio/video/data. Sequence headers get
 * KB_MSGF_SEQHDR, an audio MultichannelConfig KB_MSGF_LAYOUT (never
 * SEQHDR: it must not replace the audio sequence header a cache keeps).
 * An E-RTMP extended header gets KB_MSGF_EX (even when the rest of it is
 * malformed), and KB_MSGF_MULTITRACK / KB_MSGF_MODEX for those wrappers:
 * what a receiver must have declared before it is sent the message. */
void kb_flv_classify(struct kb_msg *m);

/* Composition time offset of an AVC/HEVC/VVC coded frame (signed 24-bit),
 * or 0. */
int32_t kb_flv_cts(const struct kb_msg *m);

/* A short name for logs: "H.264", "HEVC", "AAC", ... */
const char *kb_flv_codec_name(uint16_t codec, int video);

#endif
