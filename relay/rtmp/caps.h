/* kebun: Enhanced RTMP capabilities (veovera E-RTMP v1 and v2), as a peer
 * declares them in its connect command (or a server in its connect
 * _result), and as kebun declares its own.
 *
 *   fourCcList          v1: strict array of FourCC strings, "*" for any
 *   videoFourCcInfoMap  v2: object, FourCC (or "*") -> FourCcInfoMask
 *   audioFourCcInfoMap  v2: likewise for audio
 *   capsEx              v2: number, CapsExMask bits
 *
 * A peer that declares none of them is a legacy peer: it is sent legacy
 * FLV tags only. An extended tag (an E-RTMP FourCC, a multitrack wrapper, a
 * ModEx prefix) goes only to a peer that declared it, so a legacy player
 * or platform never gets bytes it cannot parse. kb_caps_admit() is that
 * rule, per message; the relay decides what to do with a refusal (a player
 * is told NetStream.Play.Failed, a destination is not published to).
 *
 * Pure functions over a decoded AMF document and messages: no I/O.
 */
#ifndef KB_CAPS_H
#define KB_CAPS_H

#include <stddef.h>
#include <stdint.h>

#include "amf.h"
#include "flv.h"
#include "msg.h"

/* FourCcInfoMask: what a peer can do with a codec. */
enum {
    KB_FOURCC_CAN_DECODE = 0x01,
    KB_FOURCC_CAN_ENCODE = 0x02,
    KB_FOURCC_CAN_FORWARD = 0x04,
};

/* CapsExMask: extended capabilities. */
enum {
    KB_CAPSEX_RECONNECT = 0x01,
    KB_CAPSEX_MULTITRACK = 0x02,
    KB_CAPSEX_MODEX = 0x04,
    KB_CAPSEX_TIMESTAMP_NANO_OFFSET = 0x08,
};

#define KB_CAPS_CODECS (KB_CODEC_UNKNOWN_FOURCC - KB_CODEC_FOURCC) ///< FourCCs flv.h knows, + 1

struct kb_caps {
    uint8_t declared;                ///< any E-RTMP property was read (a legacy peer: 0)
    uint8_t video_any;               ///< FourCcInfoMask of the video wildcard "*"
    uint8_t audio_any;               ///< ... of the audio wildcard
    uint8_t codec[KB_CAPS_CODECS];   ///< FourCcInfoMask by KB_CODEC_* - KB_CODEC_FOURCC
    uint32_t caps_ex;                ///< CapsExMask
};

/* What a receiver may be sent of one message. */
enum kb_caps_verdict {
    KB_CAPS_OK,            ///< send it
    KB_CAPS_SKIP,          ///< leave this one out, nothing is lost (an E-RTMP command frame
                           ///< to a legacy peer)
    KB_CAPS_NO_CODEC,      ///< its codec was not declared
    KB_CAPS_NO_MULTITRACK, ///< multitrack, and capsEx has no Multitrack
    KB_CAPS_NO_MODEX,      ///< a ModEx prefix, and capsEx has no ModEx
};

/* Add what the object `obj` (a connect command object, or either object of
 * a connect _result) of `doc` declares to `c` (start from a zeroed one).
 * Values of the wrong type are left out: returns how many were, and
 * describes the first in `why` ("fourCcList entry 2 is not a string"). A
 * FourCC kebun does not know is no error (it is of no use here). */
int kb_caps_parse(struct kb_caps *c, const struct kb_amf_doc *doc,
                  const struct kb_amf_node *obj, char *why, size_t whylen);

/* Everything kebun relays, forwarded, with Multitrack and ModEx: what a
 * destination with `ertmp=on` is taken to have declared. */
void kb_caps_all(struct kb_caps *c);

/* The rule: legacy tags go to everyone; an extended tag needs its FourCC
 * declared (CanDecode or CanForward, for the codec or the wildcard), and
 * capsEx Multitrack / ModEx for those wrappers. A multitrack message is
 * judged by its first track's codec. */
enum kb_caps_verdict kb_caps_admit(const struct kb_caps *c, const struct kb_msg *m);

/* What a refusal names, for "does not accept %s": "HEVC", "H.264 in
 * Enhanced RTMP (avc1)", "Enhanced RTMP multitrack", ... */
void kb_caps_what(enum kb_caps_verdict v, const struct kb_msg *m, char *buf, size_t n);

/* A short account for logs: "avc1 hvc1 av01 *video, capsEx multitrack",
 * or "none". */
void kb_caps_describe(const struct kb_caps *c, char *buf, size_t n);

/* kebun's own declaration, written as properties of the object being
 * written (between kb_amf_w_object_begin and _end): fourCcList,
 * videoFourCcInfoMap, audioFourCcInfoMap (CanForward for each codec kebun
 * relays) and capsEx (Multitrack | ModEx). */
void kb_caps_write_ours(struct kb_amf_w *w);

#endif
