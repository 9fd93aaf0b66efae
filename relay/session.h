/* kebun: one RTMP connection to the server.
 *
 * A session owns its TCP handle (embedded; freed only in the close
 * callback), its protocol state and its write queue. The queue holds
 * references to shared messages plus small private messages for commands
 * and control; it writes them with one uv_try_write()/uv_write() of many
 * buffers at a time. A playing session is also a sink of its stream: its
 * queue is bounded in bytes, and past the bound it skips to the next
 * keyframe and counts what it dropped (sequence headers and metadata are
 * never dropped).
 */
#ifndef KB_SESSION_H
#define KB_SESSION_H

#include <stdint.h>
#include <uv.h>

#include "relay/rtmp/handshake.h"
#include "relay/rtmp/proto.h"
#include "relay/stream.h"

struct kb_server;
struct kb_output;
struct kb_tls;

#define KB_PLAY_MSID 1 ///< message stream id of every play stream (shared wire bytes use it)

/* The server's two flush lists: bytes that leave at the end of this loop
 * iteration, and media that waits for the next flush tick. */
enum { KB_FLUSH_NOW, KB_FLUSH_TICK };

enum kb_session_state {
    KB_SS_HANDSHAKE, ///< exchanging C0..C2
    KB_SS_RTMP,      ///< chunk stream running, waiting for connect
    KB_SS_CONNECTED, ///< connect accepted
    KB_SS_PUBLISHING,
    KB_SS_PLAYING,
};

struct kb_session {
    uv_tcp_t tcp;               ///< the connection; memory released in close_cb
    struct kb_server *srv;
    uint64_t id;
    char peer[48];              ///< "ADDR:PORT" for logs
    enum kb_session_state state;
    struct kb_handshake *hs;    ///< only while handshaking
    struct kb_proto proto;
    uint32_t next_msid;         ///< createStream hands out 1, 2, ...

    struct kb_stream *stream;   ///< published or played stream
    uint32_t msid;              ///< its message stream id
    struct kb_sink sink;        ///< when playing

    /* Write queue: a ring of message references. */
    struct kb_msg **q;
    uint32_t q_head, q_len, q_cap;
    uint32_t q_off;             ///< bytes of the head entry already written
    uint64_t q_bytes;           ///< bytes queued, including in flight
    uv_write_t wreq;            ///< the one write in flight
    uint32_t w_count;           ///< queue entries that write covers
    uint32_t w_first_off;       ///< q_off when it started
    int writing;

    /* Player state. */
    int waiting_key;            ///< skipping until the next keyframe
    int paused;
    int catching_up;            ///< being handed the cached GOP
    uint64_t drops;             ///< messages skipped
    uint64_t drop_bytes;

    uint64_t bytes_in, bytes_out;
    uint64_t start_ms;          ///< loop time of accept
    uint64_t role_ms;           ///< loop time publish/play started
    uint64_t last_in_ms;        ///< loop time of the last bytes received
    int close_after_flush;      ///< close once the queue drained
    int closing;
    char close_reason[96];

    /* Client sessions (push outputs) only. */
    int client;                 ///< we connected out (push); never takes commands
    struct kb_output *output;   ///< the push output it serves, NULL once handed off
    uv_connect_t conn_req;
    struct kb_tls *tls;         ///< rtmps: TLS state, NULL for plain TCP
    int tls_ready;              ///< TLS handshake done
    struct kb_buf tls_out;      ///< ciphertext to send
    size_t tls_off;             ///< bytes of tls_out already written
    uint64_t last_progress_ms;  ///< loop time bytes last left (stall detection)

    struct kb_session *prev, *next; ///< server's list
    struct kb_session *flush_next[2]; ///< links in the server's flush lists
    uint8_t dirty[2];               ///< on flush list KB_FLUSH_NOW / KB_FLUSH_TICK
    uint64_t tick_since;            ///< loop time the oldest media no write took was queued
    uint8_t tick_armed;             ///< tick_since is set (some media waits)
};

/* Accept one pending connection on `listener`. */
void kb__session_accept(struct kb_server *srv, uv_stream_t *listener);
/* Begin closing (idempotent); `why` goes into the log line. */
void kb__session_close(struct kb_session *s, const char *why);
/* Write what is queued (called by the server's flush pass). */
void kb__session_flush(struct kb_session *s);
/* Move control/command bytes from proto.out into the queue and mark the
 * session for flushing. */
int kb__session_sync(struct kb_session *s);
/* Queue a shared message for this session (takes its own reference). */
int kb__session_enqueue(struct kb_session *s, struct kb_msg *m);
/* Timeout checks, once a second. */
void kb__session_sweep(struct kb_session *s, uint64_t now);
/* Open a client connection for a push output. `tls` NULL for rtmp://.
 * Returns the session (it takes tls) or NULL with *err set; the output
 * hears back through kb__output_* callbacks. */
struct kb_session *kb__session_connect(struct kb_server *srv, struct kb_output *out,
                                       const struct sockaddr *addr, struct kb_tls *tls,
                                       int *err);
/* Queue a private copy of m chunked with its own timestamp and stream id
 * (push outputs rebase timestamps, so they cannot share the players'
 * bytes). */
int kb__session_send_media(struct kb_session *s, const struct kb_msg *m, uint32_t ts,
                           uint32_t msid);
/* Bytes queued and not yet written. */
uint64_t kb__session_queued(const struct kb_session *s);

/* commands.c: handle one application message from the peer. */
int kb__session_on_message(struct kb_session *s, struct kb_msg *m);
/* commands.c: the publisher or player part of a session ends. */
void kb__session_end_role(struct kb_session *s, const char *why);

extern const struct kb_sink_ops kb__player_sink_ops;

#endif
