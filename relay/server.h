/* kebun: the daemon: one libuv loop that owns every socket.
 *
 * The server listens, accepts connections into sessions, keeps the stream
 * hub and its grace timer, the push outputs and the recording glue, runs a
 * one-second sweep for timeouts, and answers signals (SIGHUP reload,
 * SIGUSR1 status, SIGINT/SIGTERM shutdown).
 */
#ifndef KB_SERVER_H
#define KB_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "conn.h"
#include "control.h"
#include "relay/http/bridge.h"
#include "relay/stream.h"

struct kb_session;
struct kb_output;
struct kb_recorder;
struct kb__recsink;
struct kb_http;

#define KB_SERVER_SIGNALS 4

struct kb_server {
    uv_loop_t *loop;
    struct kb_config *conf;         ///< owned
    struct kb_net net;              ///< every connection, and when their bytes are written
    struct kb_hub hub;
    struct kb_silent_aac silent_aac; ///< silent_audio's bytes, made once at start
    uv_timer_t grace_timer;         ///< ends broadcasts whose grace period is over
    uv_tcp_t listeners[2 * KB_CONF_MAX_LISTEN]; ///< listen, then listen_tls
    int n_listeners;
    uv_timer_t sweep;               ///< timeouts, once a second
    uv_signal_t signals[KB_SERVER_SIGNALS]; ///< SIGINT, SIGTERM, SIGHUP, SIGUSR1
    struct kb_list sessions;        ///< every open server-side session (kb_session.link)
    struct kb_output *outputs;      ///< every push destination
    struct kb_recorder *recorder;   ///< the recording thread, or NULL
    struct kb__recsink *rec_sinks;  ///< one per recorded stream
    /* The web side (when [http] listen is not off). */
    struct kb_http *http;           ///< its thread
    struct kb_bridge bridge;        ///< what passes between it and this loop
    uv_async_t requests;            ///< the HTTP thread sent requests
    uv_timer_t status_timer;        ///< posts a snapshot a few times a second
    struct kb_list flv_viewers;     ///< HTTP-FLV viewers (flvsink.c)
    uint64_t n_flv_viewers;         ///< on that list (they count against max_connections)
    struct kb_removed *removed;     ///< config destinations removed through the API
    int http_on;                    ///< the bridge and its handles exist
    int stopping;
    int listen_overridden;          ///< --listen given: reloads keep it
};

/* Start listening on the config's addresses. `conf` becomes the server's.
 * Returns 0 or a negative libuv error (after logging which address failed). */
int kb_server_start(struct kb_server *srv, uv_loop_t *loop, struct kb_config *conf);
/* Close listeners, sessions and handles; the loop then runs dry. */
void kb_server_stop(struct kb_server *srv);
/* Free what is left after the loop ended. */
void kb_server_free(struct kb_server *srv);
/* SIGHUP: apply the config file's changes (reload.c). */
void kb_server_reload(struct kb_server *srv);
/* SIGUSR1: log the state of every stream and push destination. */
void kb_server_log_status(struct kb_server *srv);
/* Parse the config's RTMPS certificate and key into the context new TLS
 * connections use, and log what it serves (`how`: "loaded", "reloaded").
 * On error keeps the running context, writes "FILE:LINE: ..." lines into
 * err and returns a negative errno. */
int kb__server_tls_load(struct kb_server *srv, const struct kb_config *conf, const char *how,
                        char *err, size_t errlen);
/* Build and post a snapshot for the HTTP side now (status.c). */
void kb__status_post(struct kb_server *srv);

#endif
