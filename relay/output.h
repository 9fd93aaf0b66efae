/* kebun: push outputs, the stream sent on to a platform (YouTube, Facebook
 * Live, TikTok, shopping platforms, another kebun).
 *
 * Each configured destination of a stream is one kb_output: a sink of its
 * stream that, while a broadcast runs, keeps one client connection to the
 * platform (RTMP or RTMPS, on the same loop and the same sans-IO codec as
 * the server), and reconnects with exponential backoff and jitter whenever
 * it fails. Its queue is bounded like a player's; timestamps are its own,
 * starting at 0 with each connection and monotonic across the publisher's
 * gaps (the stream timeline already is).
 */
#ifndef KB_OUTPUT_H
#define KB_OUTPUT_H

#include <stdint.h>
#include <uv.h>

#include "config/push.h"
#include "relay/rtmp/caps.h"
#include "relay/rtmp/gate.h"
#include "relay/stream.h"

struct kb_server;
struct kb_conn;

enum kb_output_state {
    KB_OUT_IDLE,       ///< no broadcast
    KB_OUT_CONNECTING, ///< resolving, connecting, TLS, handshake, connect, publish
    KB_OUT_LIVE,       ///< publishing to the platform
    KB_OUT_RETRYING,   ///< waiting to try again after a failure
    KB_OUT_FAILED,     ///< a local problem retrying cannot fix (e.g. unreadable CA file)
    KB_OUT_REFUSED,    ///< the platform cannot take the stream's codec (E-RTMP): not published
                       ///< until the codecs change, a reload or the next broadcast
};

struct kb_output {
    struct kb_sink sink;           ///< attached to its stream for its whole life
    struct kb_server *srv;
    struct kb_stream *stream;      ///< not to be touched once removing
    char stream_name[72];          ///< for logs, which may outlive the stream
    struct kb_push_conf *conf;     ///< own copy (configs come and go on reload)
    enum kb_output_state state;
    int64_t since;                 ///< UTC ms the state began
    struct kb_conn *c;             ///< the connection, or NULL
    uv_timer_t timer;              ///< retry delay and attempt timeout
    uv_getaddrinfo_t gai;
    int resolving;
    struct addrinfo *addrs;        ///< resolved addresses still to try
    struct addrinfo *addr_next;
    int removing;                  ///< being deleted; freed once its handles closed
    int handles;                   ///< open handles and requests

    /* The publish conversation. */
    int phase;
    struct kb_caps caps;           ///< what the platform takes: its connect _result's E-RTMP
                                   ///< declaration, or all / none (conf->ertmp on / off)
    int refused;                   ///< while KB_OUT_REFUSED: why (enum kb_caps_verdict)
    uint32_t msid;                 ///< from createStream
    double txn;                    ///< last transaction id used

    /* Media. */
    struct kb_gate gate;           ///< what the platform's queue (push_queue) admits
    int catching_up;               ///< being handed the cached GOP (pinned by the cache: not counted)
    int have_base;
    uint32_t ts_base;              ///< stream time of this connection's timestamp 0
    uint32_t attempt;              ///< consecutive failures
    uint64_t live_at;              ///< loop time the connection went live
    uint64_t delay_ms;             ///< current backoff

    /* Status for the API and logs. */
    uint64_t bytes_sent, msgs_sent, reconnects; ///< drops: gate.drops
    uint64_t bitrate;              ///< bits per second over the last sweep interval
    uint64_t rate_bytes;           ///< bytes_sent at the last sample
    uint64_t rate_at;              ///< loop time of the last sample
    char last_error[192];
    int64_t last_error_at;         ///< UTC ms, 0 = never

    struct kb_output *next;        ///< server's list
};

/* Create the outputs of every stream's push destinations. */
int kb_outputs_start(struct kb_server *srv);
/* Add one destination to a stream (starts at once when the stream is live). */
struct kb_output *kb_output_new(struct kb_server *srv, struct kb_stream *st,
                                const struct kb_push_conf *conf);
/* Remove one destination: a live one unpublishes cleanly first. */
void kb_output_remove(struct kb_output *o);
/* A reload kept this destination: one that failed for good tries again. */
void kb_output_reloaded(struct kb_output *o);
/* Once a second: bitrate samples and stall detection. */
void kb_outputs_sweep(struct kb_server *srv, uint64_t now);
/* Shutdown: remove them all. */
void kb_outputs_stop(struct kb_server *srv);
const char *kb_output_state_name(enum kb_output_state s);
/* UTC milliseconds (state times). */
int64_t kb_wall_ms(void);

#endif
