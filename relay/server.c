#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "output.h"
#include "recsink.h"
#include "session.h"
#include "tls.h"

static void on_connection(uv_stream_t *listener, int status)
{
    struct kb_server *srv = listener->data;
    if (status < 0) {
        kb_log(KB_LOG_WARN, NULL, NULL, "accept error: %s", uv_strerror(status));
        return;
    }
    kb__session_accept(srv, listener);
}

/* Runs right before the loop blocks and right after it wakes: whatever
 * the reads, timers and write callbacks of this iteration queued goes out
 * in one write per session. */
/* A session may sit on both lists; each list has its own link and flag,
 * and flushing twice is harmless (the second finds less or nothing). */
static void flush_list(struct kb_server *srv, int l)
{
    while (srv->flush[l]) {
        struct kb_session *list = srv->flush[l];
        srv->flush[l] = NULL;
        while (list) {
            struct kb_session *s = list;
            list = s->flush_next[l];
            s->flush_next[l] = NULL;
            s->dirty[l] = 0;
            kb__session_flush(s);
        }
    }
}

static void flush_dirty(struct kb_server *srv)
{
    flush_list(srv, KB_FLUSH_NOW);
}

/* Media that did not leave with a video frame (audio between frames, an
 * audio-only stream) leaves once it has waited flush_interval. The timer
 * ticks a few times per interval while anything waits, so nothing waits
 * much longer than that; a session whose media is younger stays listed for
 * a later tick, and is usually carried off by the next video frame first. */
#define TICKS_PER_INTERVAL 4

static void on_flush_tick(uv_timer_t *t)
{
    struct kb_server *srv = t->data;
    if (!srv->flush[KB_FLUSH_TICK]) {
        uv_timer_stop(t); /* idle servers do not tick */
        return;
    }
    uint64_t now = uv_now(srv->loop);
    uint64_t wait = srv->conf->flush_interval;
    struct kb_session *list = srv->flush[KB_FLUSH_TICK], *keep = NULL;
    srv->flush[KB_FLUSH_TICK] = NULL;
    while (list) {
        struct kb_session *s = list;
        list = s->flush_next[KB_FLUSH_TICK];
        int waiting = s->tick_armed && !s->closing;
        if (waiting && now - s->tick_since + 1 < wait) {
            s->flush_next[KB_FLUSH_TICK] = keep;
            keep = s;
            continue;
        }
        s->flush_next[KB_FLUSH_TICK] = NULL;
        s->dirty[KB_FLUSH_TICK] = 0;
        /* A video frame took it all since: nothing to write. */
        if (waiting)
            kb__session_flush(s);
    }
    /* Sessions that queued media during the flushes joined the list head. */
    while (keep) {
        struct kb_session *s = keep;
        keep = s->flush_next[KB_FLUSH_TICK];
        s->flush_next[KB_FLUSH_TICK] = srv->flush[KB_FLUSH_TICK];
        srv->flush[KB_FLUSH_TICK] = s;
    }
}

void kb__server_flush_tick(struct kb_server *srv)
{
    uint64_t period = srv->conf->flush_interval / TICKS_PER_INTERVAL;
    if (period == 0)
        period = 1;
    if (!uv_is_active((uv_handle_t *)&srv->flush_timer) && !srv->stopping)
        uv_timer_start(&srv->flush_timer, on_flush_tick, period, period);
}

static void on_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    flush_dirty(h->data);
}

static void on_sweep(uv_timer_t *t)
{
    struct kb_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    for (struct kb_session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        kb__session_sweep(s, now);
    }
    kb_outputs_sweep(srv, now);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct kb_server *srv = h->data;
    if (signum == SIGHUP) {
        kb_log(KB_LOG_INFO, NULL, NULL, "SIGHUP received, reloading %s", srv->conf->path);
        kb_server_reload(srv);
        return;
    }
    if (signum == SIGUSR1) {
        kb_server_log_status(srv);
        return;
    }
    kb_log(KB_LOG_INFO, NULL, NULL, "%s received, shutting down",
           signum == SIGINT ? "SIGINT" : "SIGTERM");
    kb_server_stop(srv);
}

static int listen_one(struct kb_server *srv, const struct kb_listen_conf *l)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    int r;
    if (strchr(l->host, ':'))
        r = uv_ip6_addr(l->host, l->port, &addr.in6);
    else
        r = uv_ip4_addr(l->host, l->port, &addr.in4);
    if (r < 0)
        return r;
    uv_tcp_t *t = &srv->listeners[srv->n_listeners];
    r = uv_tcp_init(srv->loop, t);
    if (r < 0)
        return r;
    t->data = srv;
    srv->n_listeners++;
    r = uv_tcp_bind(t, &addr.sa, strchr(l->host, ':') ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)t, 511, on_connection);
    return r;
}

int kb_server_start(struct kb_server *srv, uv_loop_t *loop, struct kb_config *conf)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->conf = conf;
    int r = kb_hub_init(&srv->hub, loop, conf);
    if (r < 0)
        return r;

    uv_check_init(loop, &srv->flush_check);
    srv->flush_check.data = srv;
    uv_check_start(&srv->flush_check, on_check);
    uv_prepare_init(loop, &srv->flush_prepare);
    srv->flush_prepare.data = srv;
    uv_prepare_start(&srv->flush_prepare, on_prepare);
    uv_timer_init(loop, &srv->flush_timer);
    srv->flush_timer.data = srv;
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, on_sweep, 1000, 1000);
    uv_signal_init(loop, &srv->sig_int);
    srv->sig_int.data = srv;
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &srv->sig_term);
    srv->sig_term.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_init(loop, &srv->sig_hup);
    srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
    uv_signal_init(loop, &srv->sig_usr1);
    srv->sig_usr1.data = srv;
    uv_signal_start(&srv->sig_usr1, on_signal, SIGUSR1);

    for (int i = 0; i < conf->n_listen; i++) {
        const struct kb_listen_conf *l = &conf->listen[i];
        r = listen_one(srv, l);
        if (r < 0) {
            kb_log(KB_LOG_ERROR, NULL, NULL, "cannot listen on %s%s%s:%u: %s",
                   strchr(l->host, ':') ? "[" : "", l->host, strchr(l->host, ':') ? "]" : "",
                   l->port, uv_strerror(r));
            kb_server_stop(srv);
            return r;
        }
        kb_log(KB_LOG_INFO, NULL, NULL, "listening for RTMP on %s%s%s:%u",
               strchr(l->host, ':') ? "[" : "", l->host, strchr(l->host, ':') ? "]" : "",
               l->port);
    }
    r = kb_outputs_start(srv);
    if (r < 0) {
        kb_server_stop(srv);
        return r;
    }
    /* A recorder that cannot start (an unwritable directory) leaves the
     * relay and the pushes running; the log says why nothing is recorded. */
    if (kb__recsink_start(srv) < 0)
        kb_log(KB_LOG_ERROR, NULL, NULL, "recording is off until the problem is fixed and "
                                         "kebun restarted");
    return 0;
}

void kb_server_stop(struct kb_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv->hub.closing = 1;
    /* Platforms get FCUnpublish/deleteStream, sent now if the socket takes
     * them, before every connection closes. */
    kb_outputs_stop(srv);
    flush_dirty(srv);
    flush_list(srv, KB_FLUSH_TICK);
    for (int i = 0; i < srv->n_listeners; i++)
        uv_close((uv_handle_t *)&srv->listeners[i], NULL);
    for (struct kb_session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        kb__session_close(s, "server shutting down");
    }
    kb_hub_close(&srv->hub);
    kb__recsink_stop(srv);
    uv_close((uv_handle_t *)&srv->flush_check, NULL);
    uv_close((uv_handle_t *)&srv->flush_prepare, NULL);
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    uv_close((uv_handle_t *)&srv->flush_timer, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    uv_close((uv_handle_t *)&srv->sig_usr1, NULL);
}

static const char *const bcast_names[] = {"idle", "live", "grace"};

void kb_server_log_status(struct kb_server *srv)
{
    kb_log(KB_LOG_INFO, NULL, NULL, "status: %llu connections",
           (unsigned long long)srv->n_sessions);
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        int players = 0;
        for (struct kb_session *s = srv->sessions; s; s = s->next)
            players += s->stream == st && s->state == KB_SS_PLAYING;
        kb_log(KB_LOG_INFO, st->name, st->publisher ? st->publisher->peer : NULL,
               "status: %s, %d player(s), %llu messages in this session", bcast_names[st->bcast],
               players, (unsigned long long)st->msgs_in);
        struct kb_recorder_status rs;
        kb__recsink_status(srv, st, &rs);
        static const char *const rec_names[] = {"idle", "waiting", "recording", "failed"};
        if (rs.state != KB_RECORDER_IDLE || rs.dir[0])
            kb_log(KB_LOG_INFO, st->name, NULL,
                   "status: recording %s, %s%s%s, %u segments, %llu bytes, %u part(s), %llu "
                   "dropped, last error: %s",
                   rec_names[rs.state], rs.dir[0] ? rs.dir : "-", rs.file[0] ? "/" : "", rs.file,
                   rs.segments, (unsigned long long)rs.bytes, rs.parts,
                   (unsigned long long)rs.dropped, rs.last_error[0] ? rs.last_error : "none");
    }
    for (struct kb_output *o = srv->outputs; o; o = o->next) {
        if (o->removing)
            continue;
        char when[40] = "";
        if (o->last_error_at) {
            time_t t = (time_t)(o->last_error_at / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), " (at %Y-%m-%dT%H:%M:%SZ)", &tm);
        }
        kb_log(KB_LOG_INFO, o->stream_name, o->conf->masked,
               "status: push %s %s for %.0f s, %llu bytes and %llu messages sent, %llu bit/s, "
               "%llu dropped, %llu reconnects, last error%s: %s",
               o->conf->name, kb_output_state_name(o->state),
               (double)(kb_wall_ms() - o->since) / 1000.0, (unsigned long long)o->bytes_sent,
               (unsigned long long)o->msgs_sent, (unsigned long long)o->bitrate,
               (unsigned long long)o->drops, (unsigned long long)o->reconnects, when,
               o->last_error[0] ? o->last_error : "none");
    }
}

void kb_server_free(struct kb_server *srv)
{
    kb__recsink_free(srv);
    kb_tls_forget_contexts();
    kb_hub_free(&srv->hub);
    kb_config_free(srv->conf);
    srv->conf = NULL;
}
