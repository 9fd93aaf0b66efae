/* kebun: the daemon: one libuv loop that owns every socket.
 *
 * The server listens, accepts connections into sessions, keeps the stream
 * hub, runs a one-second sweep for timeouts, and flushes the sessions that
 * have queued bytes once per loop iteration (after all reads of that
 * iteration), which coalesces many small media messages into one write.
 */
#ifndef KB_SERVER_H
#define KB_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "relay/stream.h"

struct kb_session;
struct kb_output;
struct kb_recorder;
struct kb__recsink;

struct kb_server {
    uv_loop_t *loop;
    struct kb_config *conf;         ///< owned
    struct kb_hub hub;
    uv_tcp_t listeners[KB_CONF_MAX_LISTEN];
    int n_listeners;
    uv_check_t flush_check;         ///< flushes dirty sessions after each poll
    uv_prepare_t flush_prepare;     ///< and before each poll (timer-made writes)
    uv_timer_t sweep;               ///< timeouts, once a second
    uv_signal_t sig_int, sig_term, sig_hup, sig_usr1;
    struct kb_session *sessions;    ///< every open session
    uint64_t n_sessions;
    struct kb_session *flush[2];    ///< KB_FLUSH_NOW: send this iteration; KB_FLUSH_TICK:
                                    ///< media for the next flush tick
    uv_timer_t flush_timer;         ///< ticks every flush_interval while media waits
    struct kb_output *outputs;      ///< every push destination
    struct kb_recorder *recorder;   ///< the recording thread, or NULL
    struct kb__recsink *rec_sinks;  ///< one per recorded stream
    uint64_t next_id;
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
/* Make sure the media flush timer runs (session.c). */
void kb__server_flush_tick(struct kb_server *srv);
/* SIGHUP: apply the config file's changes (reload.c). */
void kb_server_reload(struct kb_server *srv);
/* SIGUSR1: log the state of every stream and push destination. */
void kb_server_log_status(struct kb_server *srv);

#endif
