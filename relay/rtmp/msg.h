/* kebun: an RTMP message, immutable and refcounted once it is built.
 *
 * The chunk reader assembles a message from a publisher's chunks; once it
 * is complete the stream stamps its timeline timestamp and classification
 * and from then on nobody writes to it again: every player, push output and
 * the recorder thread hold references to the same bytes. The refcount is
 * atomic because the recorder thread drops its references off the loop.
 *
 * For RTMP sinks the message also carries its chunked wire form (format-0
 * header with an absolute timestamp, so every player can send the very same
 * bytes), built once on the loop thread by kb_msg_wire().
 */
#ifndef KB_MSG_H
#define KB_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Message type ids (RTMP 1.0 section 5.4 and 7.1). */
enum {
    KB_MSG_SET_CHUNK_SIZE = 1,
    KB_MSG_ABORT = 2,
    KB_MSG_ACK = 3,
    KB_MSG_USER_CONTROL = 4,
    KB_MSG_WINDOW_ACK_SIZE = 5,
    KB_MSG_SET_PEER_BW = 6,
    KB_MSG_AUDIO = 8,
    KB_MSG_VIDEO = 9,
    KB_MSG_DATA_AMF3 = 15,
    KB_MSG_SHARED_OBJECT_AMF3 = 16,
    KB_MSG_COMMAND_AMF3 = 17,
    KB_MSG_DATA_AMF0 = 18,
    KB_MSG_SHARED_OBJECT_AMF0 = 19,
    KB_MSG_COMMAND_AMF0 = 20,
    KB_MSG_AGGREGATE = 22,
};

/* Classification flags, set by kb_flv_classify() before sharing. */
enum {
    KB_MSGF_VIDEO = 1 << 0,    ///< video tag
    KB_MSGF_AUDIO = 1 << 1,    ///< audio tag
    KB_MSGF_KEY = 1 << 2,      ///< video keyframe (a place a new viewer may start)
    KB_MSGF_SEQHDR = 1 << 3,   ///< codec configuration (AVC/HEVC/AV1 config, AAC ASC)
    KB_MSGF_METADATA = 1 << 4, ///< onMetaData
    KB_MSGF_EOS = 1 << 5,      ///< end-of-sequence marker
    KB_MSGF_LAYOUT = 1 << 6,   ///< E-RTMP audio MultichannelConfig: setup kept beside the
                               ///< audio sequence header, never in its place
    KB_MSGF_EX = 1 << 7,       ///< E-RTMP extended header: only for peers that declared it
    KB_MSGF_MULTITRACK = 1 << 8, ///< E-RTMP v2 Multitrack (capsEx Multitrack)
    KB_MSGF_MODEX = 1 << 9,    ///< E-RTMP v2 ModEx prefix (capsEx ModEx)
};

/* Chunk stream ids kebun uses when it sends. */
enum {
    KB_CSID_CONTROL = 2,
    KB_CSID_COMMAND = 3,
    KB_CSID_AUDIO = 4,
    KB_CSID_DATA = 5,
    KB_CSID_VIDEO = 6,
};

struct kb_msg {
    atomic_uint refcnt;  ///< owners; the last kb_msg_unref frees
    uint8_t type;        ///< message type id
    uint16_t flags;      ///< KB_MSGF_*
    uint16_t codec;      ///< FLV codec id, or 0x100+n for E-RTMP FourCCs (see flv.h)
    uint32_t timestamp;  ///< milliseconds; the stream's timeline once shared
    uint32_t stream_id;  ///< message stream id it arrived on
    uint32_t len;        ///< payload bytes in data[]
    uint32_t cap;        ///< bytes allocated for data[] (grows while assembling)
    uint32_t wire_len;   ///< bytes in wire
    uint32_t wire_chunk; ///< chunk size the wire form was built for
    uint32_t wire_msid;  ///< message stream id the wire form carries
    uint8_t *wire;       ///< chunked form for sinks that speak RTMP, or NULL
    uint8_t data[];      ///< payload
};

/* A message with room for `cap` payload bytes and len 0, refcount 1.
 * NULL on allocation failure. */
struct kb_msg *kb_msg_new(uint8_t type, uint32_t timestamp, uint32_t stream_id, uint32_t cap);
/* A message holding a copy of p[0..n). */
struct kb_msg *kb_msg_new_copy(uint8_t type, uint32_t timestamp, uint32_t stream_id,
                               const void *p, uint32_t n);
/* Grow the payload room to at least `cap` (only while unshared). 0 or -ENOMEM;
 * *m may move. */
int kb_msg_grow(struct kb_msg **m, uint32_t cap);

static inline struct kb_msg *kb_msg_ref(struct kb_msg *m)
{
    atomic_fetch_add_explicit(&m->refcnt, 1, memory_order_relaxed);
    return m;
}
void kb_msg_unref(struct kb_msg *m);

/* Setup: what a decoder needs before any frame (onMetaData, sequence
 * headers, an audio channel layout). Caches keep it, and no queue ever
 * drops it. */
static inline int kb_msg_is_setup(const struct kb_msg *m)
{
    return (m->flags & (KB_MSGF_SEQHDR | KB_MSGF_METADATA | KB_MSGF_LAYOUT)) != 0;
}

/* Build (once) the chunked form with message stream id `msid` and chunk
 * size `chunk`. Once built it never changes, since sessions' write queues
 * point into it: a later call with other values returns -EBUSY and the
 * caller sends its own copy (players agree on both: kebun's play stream id
 * is always KB_PLAY_MSID and chunk_size needs a restart). Loop thread only.
 * Returns 0, -EBUSY or -ENOMEM. */
int kb_msg_wire(struct kb_msg *m, uint32_t chunk, uint32_t msid);

#endif
