/* kebun: one RTMP connection's transport, whatever it is for.
 *
 * A connection owns its TCP handle, its TLS state (rtmps), the RTMP
 * handshake (server or client side), the chunk codec (kb_proto) and a write
 * queue, and knows nothing of what the bytes mean: a role (a publisher or
 * player session, a push output to a platform) gives it a small table of
 * callbacks and is called back with the messages. Arrows run from roles to
 * the connection, never back.
 *
 * The write queue holds references to shared messages (their chunked form,
 * built once for every player) and small private messages (replies,
 * control, a push output's own copies). It writes many of them with one
 * uv_try_write() (and, when the socket is full, one uv_write() in flight),
 * when the flusher says so: at once for replies and video, at the flush
 * tick for audio alone (relay/flush.h).
 *
 * rtmps: a client connection (push output) is handed its TLS state; an
 * accepted one gets it from its listener, when the server marked that
 * listener as TLS (kb_net_tls_listener). Either way the TLS handshake runs
 * first, then the RTMP handshake inside it, and the role sees nothing
 * different.
 *
 * Memory: a connection is allocated with room for its role's state after
 * it (kb_conn_accept's `size`), and all of it is released only in the
 * handle's close callback, so a role may look at c->closing after any call
 * that could have closed it.
 */
#ifndef KB_CONN_H
#define KB_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "flush.h"
#include "list.h"
#include "relay/rtmp/handshake.h"
#include "relay/rtmp/proto.h"

struct kb_conn;
struct kb_tls;
struct kb_tls_server;

/* What a role hears. Any of them may be NULL. Once on_closed ran, or the
 * role let go with kb_conn_disown, no callback follows. */
struct kb_conn_ops {
    /* Client connections: TCP connected and TLS (if any) done; the RTMP
     * handshake starts now. */
    void (*on_ready)(struct kb_conn *c);
    /* The RTMP handshake completed: messages may be sent. */
    void (*on_handshake_done)(struct kb_conn *c);
    /* An application message: command, data, audio, video or aggregate
     * (protocol control is answered inside). The role owns the reference.
     * A negative return closes the connection ("bad message: ..."). */
    int (*on_message)(struct kb_conn *c, struct kb_msg *m);
    /* The connection is closing, for `why`. The role lets go of it (detach
     * from streams, log its end). The memory stays until the close
     * callback. */
    void (*on_closed)(struct kb_conn *c, const char *why);
};

/* What every connection shares. */
struct kb_net {
    uv_loop_t *loop;
    const struct kb_config *conf; ///< the running config (replaced on reload)
    struct kb_flusher flush;
    struct kb_list conns;         ///< every open connection (kb_conn.link)
    uint64_t n_conns;
    uint64_t next_id;
    int closing;
    /* rtmps ingest */
    struct kb_tls_server *tls;    ///< context for new TLS connections (owned), NULL without
    const uv_stream_t *tls_listeners[KB_CONF_MAX_LISTEN]; ///< listeners that speak TLS first
    int n_tls_listeners;
};

/* How far a connection got. */
enum kb_conn_stage {
    KB_CONN_TCP,       ///< connecting (client)
    KB_CONN_TLS,       ///< TLS handshake
    KB_CONN_HANDSHAKE, ///< RTMP handshake (C0..C2 / S0..S2)
    KB_CONN_RTMP,      ///< chunk stream running
};

struct kb_conn {
    uv_tcp_t tcp;                 ///< the connection; memory released in its close callback
    struct kb_net *net;
    const struct kb_conn_ops *ops; ///< NULL once disowned
    void *ud;                     ///< the role's pointer, for roles not allocated with the conn
    uint64_t id;
    char peer[48];                ///< "ADDR:PORT" for logs
    char stream[KB_CONF_NAME_MAX + 1]; ///< stream it serves, for logs ("" when none)
    enum kb_conn_stage stage;
    int client;                   ///< we connected out (push)
    struct kb_handshake *hs;      ///< only while handshaking
    struct kb_proto proto;

    /* Write queue: a ring of message references. */
    struct kb_msg **q;
    uint32_t q_head, q_len, q_cap;
    uint32_t q_off;               ///< bytes of the head entry already written
    uint64_t q_bytes;             ///< bytes queued, including in flight
    uv_write_t wreq;              ///< the one write in flight
    uint32_t w_count;             ///< queue entries that write covers
    uint32_t w_first_off;         ///< q_off when it started
    int writing;
    struct kb_flush_item flush;

    uint64_t bytes_in, bytes_out;
    uint64_t start_ms;            ///< loop time of accept or connect
    uint64_t last_in_ms;          ///< loop time bytes last arrived
    uint64_t last_progress_ms;    ///< loop time bytes last left
    uint64_t goodbye_at;          ///< close_after_flush: loop time to give up waiting (0 = none)
    int close_after_flush;        ///< close once the queue drained
    int closing;
    char close_reason[192];

    /* rtmps */
    uv_connect_t conn_req;
    struct kb_tls *tls;           ///< TLS state, NULL for plain TCP
    int tls_ready;                ///< TLS handshake done
    struct kb_buf tls_out;        ///< ciphertext to send
    size_t tls_off;               ///< bytes of tls_out already written

    struct kb_list link;          ///< on the net's list
};

int kb_net_init(struct kb_net *n, uv_loop_t *loop, const struct kb_config *conf);
/* Shutdown: flush what is queued, close every connection, close the
 * flusher. The loop then runs dry. */
void kb_net_close(struct kb_net *n);
/* Connections accepted on `listener` speak TLS first. */
void kb_net_tls_listener(struct kb_net *n, const uv_stream_t *listener);
/* The server context for TLS connections accepted from now on (NULL: none):
 * taken; the previous one is let go, and connections that use it keep it. */
void kb_net_set_tls(struct kb_net *n, struct kb_tls_server *tls);
/* "ADDR:PORT" (IPv6 in brackets) for log lines. */
void kb_net_name_peer(char *out, size_t n, const struct sockaddr *sa);
/* Once a second: connections whose goodbye (close_after_flush) takes too
 * long are closed. */
void kb_net_sweep(struct kb_net *n, uint64_t now);

/* Accept one pending connection on `listener` as a server-side RTMP
 * connection, allocated with `size` bytes (>= sizeof(struct kb_conn); the
 * role's state follows the conn). NULL when refused (max_connections, out
 * of memory, accept failed: logged). */
struct kb_conn *kb_conn_accept(struct kb_net *n, uv_stream_t *listener, size_t size,
                               const struct kb_conn_ops *ops, void *ud);
/* Connect out (a push output). `tls` (NULL for rtmp://) is taken in every
 * case. Returns the connection, or NULL with *err set; on success the role
 * hears on_ready, then on_handshake_done (or on_closed). */
struct kb_conn *kb_conn_connect(struct kb_net *n, const struct sockaddr *addr,
                                struct kb_tls *tls, const struct kb_conn_ops *ops, void *ud,
                                int *err);

/* Begin closing (idempotent): the role hears on_closed, the log gets one
 * line with `why`. */
void kb_conn_close(struct kb_conn *c, const char *why);
/* Send what is queued, then close for `why`; give up and close anyway if
 * that takes longer than timeout_ms (a peer that stopped reading). */
void kb_conn_close_after_flush(struct kb_conn *c, const char *why, uint64_t timeout_ms);
/* The role lets go: no callback follows (messages that still arrive are
 * dropped). Used with close_after_flush for a goodbye that outlives it. */
void kb_conn_disown(struct kb_conn *c);
/* Stream name for this connection's log lines (NULL: none). */
void kb_conn_set_stream(struct kb_conn *c, const char *name);

/* Move what the codec wrote into proto.out to the queue and send it in
 * this loop iteration. 0 or -ENOMEM. */
int kb_conn_sync(struct kb_conn *c);
/* Queue a shared message's chunked form (kb_msg_wire, built by the stream)
 * and take a reference. 0, -ENOMEM or -ENOBUFS. */
int kb_conn_enqueue(struct kb_conn *c, struct kb_msg *m);
/* Queue a private copy of m chunked with its own timestamp and message
 * stream id (for receivers that cannot share the players' bytes). */
int kb_conn_send_media(struct kb_conn *c, const struct kb_msg *m, uint32_t ts, uint32_t msid);
/* Bytes queued and not yet taken by the socket (ciphertext included). */
uint64_t kb_conn_queued(const struct kb_conn *c);

const char *kb_conn_stage_name(enum kb_conn_stage s);

#endif
