#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <libavutil/error.h>

#include "aacsilence.h"
#include "flvsink.h"
#include "kb_version.h"
#include "log.h"
#include "output.h"
#include "recsink.h"
#include "relay/http/http.h"
#include "session.h"
#include "status.h"
#include "tls.h"

#define STATUS_MS 250 ///< how often the HTTP side's snapshot is rebuilt

static void on_connection(uv_stream_t *listener, int status)
{
    struct kb_server *srv = listener->data;
    if (status < 0) {
        kb_log(KB_LOG_WARN, NULL, NULL, "accept error: %s", uv_strerror(status));
        return;
    }
    kb__session_accept(srv, listener);
}

/* The hub asks to be called back when a grace period ends. */
static void on_grace_timer(uv_timer_t *t)
{
    struct kb_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    uint64_t next = kb_hub_expire(&srv->hub, now);
    if (next)
        uv_timer_start(t, on_grace_timer, next - now, 0);
}

static void arm_grace(void *ud, uint64_t at)
{
    struct kb_server *srv = ud;
    uint64_t now = uv_now(srv->loop);
    uint64_t due = uv_timer_get_due_in(&srv->grace_timer);
    /* The timer keeps the earliest deadline; a later one is found by
     * kb_hub_expire when the earlier fires. */
    if (!uv_is_active((uv_handle_t *)&srv->grace_timer) || at - now < due)
        uv_timer_start(&srv->grace_timer, on_grace_timer, at > now ? at - now : 0, 0);
}

static void on_sweep(uv_timer_t *t)
{
    struct kb_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    KB_LIST_EACH(l, &srv->sessions)
        kb__session_sweep(kb_container_of(l, struct kb_session, link), now);
    kb_net_sweep(&srv->net, now);
    kb_outputs_sweep(srv, now);
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        if (st->rate_at && now > st->rate_at)
            st->rate_in = (st->total_in - st->rate_bytes) * 8000 / (now - st->rate_at);
        st->rate_at = now;
        st->rate_bytes = st->total_in;
    }
}

static void on_requests(uv_async_t *a)
{
    kb__control_run(a->data);
}

static void on_status_timer(uv_timer_t *t)
{
    kb__status_post(t->data);
}

/* The web side: its thread, the bridge, and what feeds it. */
static int start_http(struct kb_server *srv)
{
    const struct kb_config *c = srv->conf;
    kb_list_init(&srv->flv_viewers);
    if (!c->http.enabled)
        return 0;
    int r = kb_bridge_init(&srv->bridge);
    if (r < 0)
        return r;
    uv_async_init(srv->loop, &srv->requests, on_requests);
    srv->requests.data = srv;
    uv_timer_init(srv->loop, &srv->status_timer);
    srv->status_timer.data = srv;
    srv->http_on = 1;
    kb_bridge_relay_attach(&srv->bridge, &srv->requests);
    struct kb_http_params p = {
        .conf = &c->http,
        .recordings = c->recordings,
        .web_root = c->http.web_root[0] ? c->http.web_root : KB_WEB_ROOT,
        .bridge = &srv->bridge,
    };
    r = kb_http_start(&p, &srv->http);
    if (r < 0)
        return r;
    kb__status_post(srv);
    uv_timer_start(&srv->status_timer, on_status_timer, STATUS_MS, STATUS_MS);
    return 0;
}

static void stop_http(struct kb_server *srv)
{
    if (!srv->http_on)
        return;
    /* Requests from now on are refused; viewers' responses end. */
    kb_bridge_relay_attach(&srv->bridge, NULL);
    kb__flvsink_end_stream(srv, NULL);
    kb__control_forget(srv);
    kb_http_stop(srv->http);
    uv_close((uv_handle_t *)&srv->requests, NULL);
    uv_close((uv_handle_t *)&srv->status_timer, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct kb_server *srv = h->data;
    if (signum == SIGHUP) {
        kb_log(KB_LOG_INFO, NULL, NULL, "SIGHUP received, reloading %s", srv->conf->path);
        /* Under systemd (Type=notify) `systemctl reload` waits for READY. */
        sd_notify(0, "RELOADING=1");
        kb_server_reload(srv);
        sd_notify(0, "READY=1");
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

static void addr_text(const struct kb_listen_conf *l, char *buf, size_t n)
{
    int v6 = strchr(l->host, ':') != NULL;
    snprintf(buf, n, "%s%s%s:%u", v6 ? "[" : "", l->host, v6 ? "]" : "", l->port);
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
    kb_list_init(&srv->sessions);
    srv->loop = loop;
    srv->conf = conf;
    int r = kb_hub_init(&srv->hub, conf, arm_grace, srv);
    if (r < 0)
        return r;
    r = kb_silent_aac_make(&srv->silent_aac);
    if (r == 0)
        kb_hub_set_silence(&srv->hub, &srv->silent_aac);
    else
        kb_log(KB_LOG_WARN, NULL, NULL, "silent_audio does nothing: no AAC encoder (%s)",
               av_err2str(r));
    r = kb_net_init(&srv->net, loop, conf);
    if (r < 0)
        return r;
    uv_timer_init(loop, &srv->grace_timer);
    srv->grace_timer.data = srv;
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, on_sweep, 1000, 1000);
    static const int signums[KB_SERVER_SIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (int i = 0; i < KB_SERVER_SIGNALS; i++) {
        uv_signal_init(loop, &srv->signals[i]);
        srv->signals[i].data = srv;
        uv_signal_start(&srv->signals[i], on_signal, signums[i]);
    }

    /* RTMPS: the certificate and key are parsed once, before any port
     * opens; a pair that cannot be used stops the start like any other
     * config error. */
    char err[2048];
    if (conf->n_listen_tls &&
        (r = kb__server_tls_load(srv, conf, "loaded", err, sizeof(err))) < 0) {
        kb_log_lines(KB_LOG_ERROR, err);
        kb_log(KB_LOG_ERROR, NULL, NULL, "kebun cannot start: the RTMPS certificate is not usable");
        kb_server_stop(srv);
        return r;
    }
    int n_plain = conf->n_listen, n_all = conf->n_listen + conf->n_listen_tls;
    for (int i = 0; i < n_all; i++) {
        int tls = i >= n_plain;
        const struct kb_listen_conf *l = tls ? &conf->listen_tls[i - n_plain] : &conf->listen[i];
        char addr[80];
        addr_text(l, addr, sizeof(addr));
        r = listen_one(srv, l);
        if (r < 0) {
            kb_log(KB_LOG_ERROR, NULL, NULL, "cannot listen on %s: %s", addr, uv_strerror(r));
            kb_server_stop(srv);
            return r;
        }
        if (tls)
            kb_net_tls_listener(&srv->net,
                                (uv_stream_t *)&srv->listeners[srv->n_listeners - 1]);
        kb_log(KB_LOG_INFO, NULL, NULL, "listening for %s on %s", tls ? "RTMPS" : "RTMP", addr);
    }
    r = kb_outputs_start(srv);
    if (r < 0) {
        kb_server_stop(srv);
        return r;
    }
    r = start_http(srv);
    if (r < 0) {
        kb_server_stop(srv);
        return r;
    }
    /* A recorder that cannot start (an unwritable directory) leaves the
     * relay and the pushes running; the log says why nothing is recorded. */
    if (kb__recsink_start(srv) < 0)
        kb_log(KB_LOG_ERROR, NULL, NULL, "recording is off until the problem is fixed and "
                                         "kebun restarted");
    /* Under systemd (Type=notify) the service is up once kebun listens. */
    sd_notifyf(0, "READY=1\nSTATUS=%d stream(s), listening on %d address(es)",
               conf->n_streams, srv->n_listeners);
    return 0;
}

int kb__server_tls_load(struct kb_server *srv, const struct kb_config *conf, const char *how,
                        char *err, size_t errlen)
{
    struct kb_tls_server *tls;
    int r = kb_tls_server_new(&tls, conf, err, errlen);
    if (r < 0)
        return r;
    kb_log(KB_LOG_INFO, NULL, NULL, "RTMPS certificate %s from %s (%s)", how,
           conf->tls_cert.path, kb_tls_server_about(tls));
    if (kb_tls_server_warning(tls))
        kb_log(KB_LOG_WARN, NULL, NULL, "RTMPS: %s", kb_tls_server_warning(tls));
    kb_net_set_tls(&srv->net, tls);
    return 0;
}

void kb_server_stop(struct kb_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    sd_notify(0, "STOPPING=1");
    srv->hub.closing = 1;
    /* Platforms get FCUnpublish/deleteStream, sent (by kb_net_close) now
     * if the socket takes them, before every connection closes. */
    kb_outputs_stop(srv);
    stop_http(srv);
    for (int i = 0; i < srv->n_listeners; i++)
        uv_close((uv_handle_t *)&srv->listeners[i], NULL);
    kb_net_close(&srv->net);
    kb_hub_close(&srv->hub);
    kb__recsink_stop(srv);
    uv_close((uv_handle_t *)&srv->grace_timer, NULL);
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    for (int i = 0; i < KB_SERVER_SIGNALS; i++)
        uv_close((uv_handle_t *)&srv->signals[i], NULL);
}

static const char *const bcast_names[] = {"idle", "live", "grace"};

void kb_server_log_status(struct kb_server *srv)
{
    kb_log(KB_LOG_INFO, NULL, NULL, "status: %llu connections",
           (unsigned long long)srv->net.n_conns);
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        int players = st->n_sinks[KB_SINK_PLAYER];
        kb_log(KB_LOG_INFO, st->name, st->publisher ? st->publisher->conn.peer : NULL,
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
               "%llu dropped (%llu video, %llu audio), %llu reconnects, last error%s: %s",
               o->conf->name, kb_output_state_name(o->state),
               (double)(kb_wall_ms() - o->since) / 1000.0, (unsigned long long)o->bytes_sent,
               (unsigned long long)o->msgs_sent, (unsigned long long)o->bitrate,
               (unsigned long long)o->gate.drops, (unsigned long long)o->gate.drops_video,
               (unsigned long long)o->gate.drops_audio, (unsigned long long)o->reconnects, when,
               o->last_error[0] ? o->last_error : "none");
    }
}

void kb_server_free(struct kb_server *srv)
{
    /* The recorder's job thread may answer a deletion through the bridge,
     * and the HTTP thread may still finish its connections: both go before
     * the bridge does. */
    kb__recsink_free(srv);
    kb_http_free(srv->http);
    srv->http = NULL;
    if (srv->http_on)
        kb_bridge_destroy(&srv->bridge);
    srv->http_on = 0;
    kb_tls_forget_contexts();
    kb_net_set_tls(&srv->net, NULL);
    kb_hub_free(&srv->hub);
    kb_config_free(srv->conf);
    srv->conf = NULL;
}
