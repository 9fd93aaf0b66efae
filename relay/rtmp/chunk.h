/* kebun: the RTMP chunk stream, as pure functions over buffers.
 *
 * The reader turns a peer's bytes into whole messages. It is fully
 * incremental: bytes may arrive split anywhere (even inside a chunk header),
 * the reader keeps the few header bytes it has seen and the partial message
 * of each chunk stream, and the caller never has to keep unconsumed bytes.
 * It accepts all four header formats, extended timestamps (including the two
 * styles seen in the wild for format-3 chunks: repeated or absent), chunk
 * size changes between messages and any interleaving of chunk streams.
 * Memory per partial message grows with the bytes actually received, so a
 * peer that announces large messages and never sends them costs nothing.
 *
 * The encoder writes a message as one format-0 chunk followed by format-3
 * continuation chunks. Format 0 carries the absolute timestamp, so the same
 * bytes are valid for every receiver whatever it was sent before: that is
 * what lets players share one encoded copy of each message.
 */
#ifndef KB_CHUNK_H
#define KB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "msg.h"

#define KB_CHUNK_DEFAULT 128         ///< chunk size before any Set Chunk Size
#define KB_CHUNK_MAX 0x7FFFFFFF      ///< largest chunk size the spec allows
#define KB_CHUNK_MAX_STREAMS 64      ///< distinct chunk stream ids per connection
#define KB_CHUNK_EXT_TS 0xFFFFFF     ///< timestamp field value that means "extended"
#define KB_CHUNK_MAX_HEADER 18       ///< 3 basic + 11 message + 4 extended

struct kb_chunk_hdr {
    uint32_t csid;      ///< chunk stream id (2..65599)
    uint32_t timestamp; ///< absolute timestamp, ms
    uint32_t len;       ///< message length
    uint32_t stream_id; ///< message stream id
    uint8_t type;       ///< message type id
};

/* Bytes kb_chunk_encode() writes for this header and chunk size. */
size_t kb_chunk_encoded_size(const struct kb_chunk_hdr *h, uint32_t chunk);
/* Write h + payload as chunks into out (kb_chunk_encoded_size() bytes). */
size_t kb_chunk_encode(const struct kb_chunk_hdr *h, const uint8_t *payload, uint32_t chunk,
                       uint8_t *out);
/* Append the chunked message to a buffer. 0 or -ENOMEM. */
int kb_chunk_append(struct kb_buf *out, const struct kb_chunk_hdr *h, const uint8_t *payload,
                    uint32_t chunk);

/* What the reader remembers per chunk stream. */
struct kb_chunk_stream {
    uint32_t csid;
    uint32_t timestamp; ///< absolute timestamp of the current or last message
    uint32_t ts_field;  ///< last timestamp or delta field (a new message in a
                        ///< format-3 chunk advances by it, RTMP 1.0 5.3.1.2.4)
    uint32_t len;       ///< length of the current or last message
    uint32_t stream_id;
    uint8_t type;
    uint8_t ext;        ///< last format 0-2 header used an extended timestamp
    struct kb_msg *msg; ///< message being assembled, or NULL between messages
};

struct kb_chunk_reader {
    uint32_t chunk_size;  ///< peer's current chunk size
    uint32_t max_message; ///< largest message accepted (KB_ETOOBIG beyond)
    int state;            ///< internal
    uint8_t fmt;          ///< format of the chunk being parsed
    uint8_t hdr_have;     ///< header bytes collected
    uint8_t hdr_need;     ///< header bytes needed for the current step
    uint8_t hdr[KB_CHUNK_MAX_HEADER];
    uint8_t stash[4];     ///< bytes peeked for an absent format-3 extended timestamp
    uint8_t stash_len, stash_pos;
    uint32_t chunk_left;  ///< payload bytes left in the current chunk
    struct kb_chunk_stream *cur;
    struct kb_chunk_stream *streams; ///< grown on demand up to KB_CHUNK_MAX_STREAMS
    uint32_t n_streams;
    uint32_t bad_csid;    ///< for error messages: the chunk stream at fault
    char why[128];        ///< after an error: what was wrong and where, for the log
};

void kb_chunk_reader_init(struct kb_chunk_reader *r, uint32_t max_message);
void kb_chunk_reader_free(struct kb_chunk_reader *r);
/* Apply the peer's Set Chunk Size (1..KB_CHUNK_MAX, else KB_ECHUNKSIZE). */
int kb_chunk_reader_set_chunk_size(struct kb_chunk_reader *r, uint32_t size);
/* Apply the peer's Abort: drop the partial message on csid. */
void kb_chunk_reader_abort(struct kb_chunk_reader *r, uint32_t csid);

/* Consume bytes until one message completes or the input ends.
 * *used tells how many bytes were consumed. Returns 1 with *out set (the
 * caller owns the reference), 0 when all input was consumed without
 * completing a message, or KB_ECHUNK, KB_ETOOBIG, KB_ETOOMANY, -ENOMEM.
 * Call it again (with what is left, even nothing) until it returns 0: bytes
 * it peeked for an absent extended timestamp may already hold the next
 * message. After an error the reader is unusable (the connection must end)
 * and r->why says what was wrong and on which chunk stream. */
int kb_chunk_read(struct kb_chunk_reader *r, const uint8_t *p, size_t n, size_t *used,
                  struct kb_msg **out);

#endif
