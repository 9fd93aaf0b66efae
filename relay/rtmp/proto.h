/* kebun: one RTMP connection's protocol state, sans-IO.
 *
 * Wraps the chunk reader and answers the protocol's housekeeping itself:
 * Set Chunk Size, Abort, Window Acknowledgement Size, Set Peer Bandwidth,
 * acknowledgements when the peer's window is reached (some clients stall
 * without them), and PingRequest. Everything the application must see
 * (commands, data, audio, video, other user control events) comes out of
 * kb_proto_read(). Bytes to send accumulate in `out`, which the caller
 * drains to its transport; media fan-out bypasses `out` with shared buffers.
 */
#ifndef KB_PROTO_H
#define KB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "amf.h"
#include "buf.h"
#include "chunk.h"
#include "msg.h"

/* User Control event types (RTMP 1.0 7.1.7). */
enum {
    KB_UC_STREAM_BEGIN = 0,
    KB_UC_STREAM_EOF = 1,
    KB_UC_STREAM_DRY = 2,
    KB_UC_SET_BUFFER_LENGTH = 3,
    KB_UC_STREAM_IS_RECORDED = 4,
    KB_UC_PING_REQUEST = 6,
    KB_UC_PING_RESPONSE = 7,
};

struct kb_proto {
    struct kb_chunk_reader rd;
    struct kb_buf out;       ///< bytes to send, drained by the transport
    uint32_t out_chunk;      ///< chunk size we send with
    uint32_t ack_window;     ///< peer's Window Ack Size: ack after this many bytes
    uint32_t peer_bw;        ///< bandwidth the peer asked us to keep to (informational)
    uint64_t in_bytes;       ///< bytes received since the handshake
    uint64_t in_acked;       ///< in_bytes at our last Acknowledgement
    uint32_t peer_acked;     ///< sequence number of the peer's last Acknowledgement
    uint32_t buffer_ms;      ///< player's SetBufferLength
    uint32_t last_ping;      ///< timestamp of the peer's last PingResponse
};

void kb_proto_init(struct kb_proto *p, uint32_t max_message);
void kb_proto_free(struct kb_proto *p);

/* Consume bytes until an application message is ready (returns 1 and sets
 * *out; the caller owns it) or the input is consumed (returns 0). As with
 * kb_chunk_read, call it until it returns 0, even with no bytes left. Protocol
 * control messages are handled inside and may append to `out`. Negative on
 * a protocol fault: the connection must end. */
int kb_proto_read(struct kb_proto *p, const uint8_t *buf, size_t n, size_t *used,
                  struct kb_msg **out);
/* After kb_proto_read failed: what was wrong and where ("chunk stream 6: a
 * 9000000-byte message (type 9) is over max_message_size 8388608"), or "". */
const char *kb_proto_why(const struct kb_proto *p);

/* Append one message, chunked with out_chunk, to `out`. */
int kb_proto_send(struct kb_proto *p, uint32_t csid, uint8_t type, uint32_t ts, uint32_t msid,
                  const uint8_t *payload, uint32_t len);
/* Protocol control messages. */
int kb_proto_send_chunk_size(struct kb_proto *p, uint32_t size); ///< also switches out_chunk
int kb_proto_send_window_ack(struct kb_proto *p, uint32_t size);
int kb_proto_send_peer_bw(struct kb_proto *p, uint32_t size, uint8_t limit_type);
int kb_proto_send_user_control(struct kb_proto *p, uint16_t event, uint32_t value);
int kb_proto_send_buffer_length(struct kb_proto *p, uint32_t msid, uint32_t ms);

/* A command being built: name and transaction id are written by
 * kb_proto_cmd_begin(), the rest with the kb_amf_w_* calls on `w`, and
 * kb_proto_cmd_end() chunks it into `out`. */
struct kb_cmd_builder {
    struct kb_buf body;
    struct kb_amf_w w;
};
void kb_proto_cmd_begin(struct kb_cmd_builder *b, const char *name, double txn);
int kb_proto_cmd_end(struct kb_proto *p, struct kb_cmd_builder *b, uint32_t msid);

/* onStatus(0, null, {level, code, description}) on message stream msid. */
int kb_proto_send_status(struct kb_proto *p, uint32_t msid, const char *level,
                         const char *code, const char *description);

/* The server's answer to a connect: _result(txn, {fmsVer, capabilities,
 * mode, and kebun's Enhanced RTMP declaration: fourCcList,
 * videoFourCcInfoMap, audioFourCcInfoMap, capsEx}, {level status,
 * NetConnection.Connect.Success, objectEncoding}). */
int kb_proto_connect_result(struct kb_proto *p, double txn, double object_encoding);

/* A decoded command: name, transaction id and the values after them. */
struct kb_cmd {
    struct kb_amf_doc doc;
    const struct kb_amf_node *name;
    double txn;
    const struct kb_amf_node *obj;  ///< command object (often null)
    const struct kb_amf_node *arg1; ///< first argument after it, or NULL
    const struct kb_amf_node *arg2;
    const struct kb_amf_node *arg3;
};

/* Decode a command message (type 20, or 17 with its leading AMF3 marker).
 * 0 or KB_EAMF / KB_ECMD. The nodes point into msg's payload. */
int kb_cmd_parse(struct kb_cmd *c, const struct kb_msg *msg);

#endif
