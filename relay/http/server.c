/* The HTTP thread: h2o on a libuv loop of its own.
 *
 * Everything h2o is touched here only. Connections are accepted into our
 * own record (kb_hconn) so that there is a cap (h2o has none) and a way to
 * find downloads that stopped moving (h2o has no write timeout: a client
 * that stops reading would keep a connection forever). Requests are bounded
 * by h2o's request timeout (a total deadline for the head and body, which
 * also ends slowloris), max_request_entity_size, and our own check of the
 * head's size.
 *
 * Shutdown (kb_http_stop, from the loop thread at SIGTERM): stop listening,
 * answer every waiting API request 503, close idle connections, give the rest a moment, then close whatever
 * is left; once the last connection is gone the loop stops, and h2o's
 * context is disposed outside it (h2o_context_dispose runs the loop itself).
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "relay/log.h"

#define SWEEP_MS 250
#define SHUTDOWN_GRACE_MS 2000 ///< connections still busy after this are closed

static struct kb_hconn *of_link(struct kb_list *l)
{
    return kb_container_of(l, struct kb_hconn, link);
}

/* Close a connection h2o owns: shut the socket down and let h2o notice
 * (closing its handle under it would break h2o). */
static void hangup(struct kb_hconn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        shutdown(fd, SHUT_RDWR);
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct kb_hconn *c = (struct kb_hconn *)handle;
    struct kb_http *h = c->h;
    kb_list_remove(&c->link);
    h->n_conns--;
    free(c);
    if (h->stopping && h->n_conns == 0)
        uv_stop(&h->loop); /* h2o's own async handle would keep the loop alive */
}

static void on_raw_closed(uv_handle_t *handle)
{
    free(handle);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct kb_http *h = listener->data;
    if (status < 0)
        return;
    struct kb_hconn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(&h->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_raw_closed);
        return;
    }
    if (h->n_conns >= h->conf.max_connections || h->stopping) {
        if (!h->stopping)
            kb_log(KB_LOG_WARN, NULL, NULL,
                   "http: connection refused ([http] max_connections %llu reached)",
                   (unsigned long long)h->conf.max_connections);
        uv_close((uv_handle_t *)&c->tcp, on_raw_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->h = h;
    kb_list_push(&h->conns, &c->link);
    h->n_conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    h2o_accept(&h->accept_ctx, sock);
}

/* A download whose bytes stopped leaving for request_timeout is a client
 * that stopped reading: close it (live viewers have their own bound). */
static void on_sweep(uv_timer_t *t)
{
    struct kb_http *h = t->data;
    uint64_t now = uv_now(&h->loop);
    int force = h->stopping && now - h->stop_at >= SHUTDOWN_GRACE_MS;
    KB_LIST_EACH(l, &h->conns) {
        struct kb_hconn *c = of_link(l);
        size_t q = c->tcp.write_queue_size;
        if (q == 0 || q != c->last_queue) {
            c->stall_since = q ? now : 0;
            c->last_queue = q;
        }
        if (force || (c->stall_since && now - c->stall_since >= h->conf.request_timeout))
            hangup(c);
    }
}

/* Shutdown: connections waiting for their next request have nothing to
 * finish. */
static int hang_up_idle(h2o_req_t *req, void *ud)
{
    (void)ud;
    if (req->timestamps.response_start_at.tv_sec == 0) {
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        if (sock)
            shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    }
    return 0;
}

static void on_stop(uv_async_t *a)
{
    struct kb_http *h = a->data;
    if (h->stopping)
        return;
    h->stopping = 1;
    h->stop_at = uv_now(&h->loop);
    uv_close((uv_handle_t *)&h->listener, NULL);
    /* Not h2o_context_request_shutdown: it arms an HTTP/2 timer that makes
     * h2o_context_dispose abort when it runs within a second. */
    h->ctx.shutdown_requested = 1;
    kb__api_stop(h);
    h->config.http1.callbacks.foreach_request(&h->ctx, hang_up_idle, NULL);
    if (h->n_conns == 0)
        uv_stop(&h->loop);
}

static void on_wake(uv_async_t *a)
{
    struct kb_http *h = a->data;
    struct kb_req *list = kb_bridge_take_answers(h->bridge);
    if (list)
        kb__api_answers(h, list);
}

/* ---- request counts --------------------------------------------------- */

struct counter {
    h2o_logger_t super;
    struct kb_http *h;
    enum kb_handler kind;
};

static void on_log(h2o_logger_t *self, h2o_req_t *req)
{
    struct counter *c = (struct counter *)self;
    kb__count(c->h, c->kind, req->res.status);
}

/* Every path starts with this: the head's size, and the count. */
static int guard(h2o_handler_t *self, h2o_req_t *req)
{
    struct kb_handler_ctx *g = (struct kb_handler_ctx *)self;
    if (kb__head_size(req) > g->h->conf.max_header) {
        if (g->kind == KB_H_API)
            kb__send_error(req, 431, "the request's headers are larger than [http] max_header "
                                     "(%llu bytes)",
                           (unsigned long long)g->h->conf.max_header);
        else
            kb__send(req, 431, "text/plain; charset=utf-8", "Request Header Fields Too Large\n",
                     32);
        return 0;
    }
    return -1;
}

void kb__route_common(struct kb_http *h, h2o_pathconf_t *pc, enum kb_handler kind)
{
    /* h2o's own error log writes to stderr in its own format. */
    pc->error_log.emit_request_errors = 0;
    struct counter *log = (struct counter *)h2o_create_logger(pc, sizeof(*log));
    log->super.log_access = on_log;
    log->h = h;
    log->kind = kind;
    struct kb_handler_ctx *g = (struct kb_handler_ctx *)h2o_create_handler(pc, sizeof(*g));
    g->super.on_req = guard;
    g->h = h;
    g->kind = kind;
}

static void route(struct kb_http *h, h2o_hostconf_t *host, const char *path,
                  enum kb_handler kind, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    kb__route_common(h, pc, kind);
    struct kb_handler_ctx *r = (struct kb_handler_ctx *)h2o_create_handler(pc, sizeof(*r));
    r->super.on_req = on_req;
    r->h = h;
    r->kind = kind;
}

/* ---- the thread -------------------------------------------------------- */

static int setup(struct kb_http *h)
{
    h2o_config_init(&h->config);
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("kebun"));
    /* The API's own limit answers in JSON; h2o refuses what is far past it
     * (plain text, connection closed) before reading it. */
    h->config.max_request_entity_size = (size_t)h->conf.max_body * 4;
    h->config.http1.req_timeout = h->conf.request_timeout;
    h->config.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only */
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    host->fallback_path.error_log.emit_request_errors = 0;
    /* The first registered prefix that matches wins: "/" last. */
    route(h, host, "/api", KB_H_API, kb__api_serve);
    route(h, host, "/public", KB_H_API, kb__public_serve);
    route(h, host, "/metrics", KB_H_METRICS, kb__metrics_serve);
    route(h, host, "/live", KB_H_LIVE, kb__live_serve);
    if (kb__files_register(h, host) < 0)
        return -EINVAL;
    h2o_context_init(&h->ctx, &h->loop, &h->config);
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;
    return 0;
}

static int listen_on(struct kb_http *h)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    const struct kb_listen_conf *l = &h->conf.listen;
    int v6 = strchr(l->host, ':') != NULL;
    int r = v6 ? uv_ip6_addr(l->host, l->port, &addr.in6) : uv_ip4_addr(l->host, l->port, &addr.in4);
    if (r < 0)
        return r;
    uv_tcp_init(&h->loop, &h->listener);
    h->listener.data = h;
    r = uv_tcp_bind(&h->listener, &addr.sa, v6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&h->listener, 511, on_accept);
    return r;
}

static void started(struct kb_http *h, int err)
{
    pthread_mutex_lock(&h->start_lock);
    h->start_done = 1;
    h->start_err = err;
    pthread_cond_signal(&h->start_cond);
    pthread_mutex_unlock(&h->start_lock);
}

static void *run(void *arg)
{
    struct kb_http *h = arg;
    /* Every connection keeps its input buffer while it is open (a live
     * viewer for hours). h2o 2.2.5 starts it at 8 KiB, twice what one read
     * asks for (4 KiB); a request larger than that grows it as before.
     * Per thread, set before this thread accepts anything, so every buffer
     * of the recycling allocator has the one size. */
    h2o_socket_buffer_prototype._initial_buf.capacity = H2O_SOCKET_INITIAL_INPUT_BUFFER_SIZE;
    int r = uv_loop_init(&h->loop);
    if (r < 0) {
        started(h, r);
        return NULL;
    }
    kb_list_init(&h->conns);
    kb_list_init(&h->waiting);
    r = setup(h);
    if (r == 0)
        r = listen_on(h);
    uv_async_init(&h->loop, &h->wake, on_wake);
    h->wake.data = h;
    uv_async_init(&h->loop, &h->stop, on_stop);
    h->stop.data = h;
    uv_timer_init(&h->loop, &h->sweep);
    h->sweep.data = h;
    if (r == 0) {
        uv_timer_start(&h->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        kb_bridge_http_attach(h->bridge, &h->wake);
    } else if (uv_is_active((uv_handle_t *)&h->listener) || h->listener.loop) {
        uv_close((uv_handle_t *)&h->listener, NULL);
    }
    started(h, r);
    if (r == 0)
        uv_run(&h->loop, UV_RUN_DEFAULT);
    /* The loop has stopped: no answer or media wakes it any more. */
    kb_bridge_http_attach(h->bridge, NULL);
    uv_close((uv_handle_t *)&h->wake, NULL);
    uv_close((uv_handle_t *)&h->stop, NULL);
    uv_close((uv_handle_t *)&h->sweep, NULL);
    if (h->ctx.loop)
        h2o_context_dispose(&h->ctx); /* runs the loop once itself */
    uv_run(&h->loop, UV_RUN_DEFAULT);
    h2o_config_dispose(&h->config);
    kb__api_free(h);
    if (uv_loop_close(&h->loop) != 0)
        kb_log(KB_LOG_ERROR, NULL, NULL, "http: handles left open at exit");
    return NULL;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

int kb_http_start(const struct kb_http_params *p, struct kb_http **out)
{
    *out = NULL;
    struct kb_http *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->conf = *p->conf;
    h->conf.token = dup_or_empty(p->conf->token);
    h->conf.web_root = NULL; /* h->web_root is the one used */
    h->recordings = dup_or_empty(p->recordings);
    h->web_root = dup_or_empty(p->web_root);
    h->bridge = p->bridge;
    atomic_init(&h->stop_sent, 0);
    pthread_mutex_init(&h->start_lock, NULL);
    pthread_cond_init(&h->start_cond, NULL);
    if (!h->conf.token || !h->recordings || !h->web_root) {
        kb_http_free(h);
        return -ENOMEM;
    }
    struct in6_addr a6;
    h->loopback = strncmp(h->conf.listen.host, "127.", 4) == 0 ||
                  (inet_pton(AF_INET6, h->conf.listen.host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
    /* The thread takes no signal: SIGTERM and friends are the loop's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = -pthread_create(&h->thread, NULL, run, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        kb_http_free(h);
        return r;
    }
    h->started = 1;
    pthread_mutex_lock(&h->start_lock);
    while (!h->start_done)
        pthread_cond_wait(&h->start_cond, &h->start_lock);
    r = h->start_err;
    pthread_mutex_unlock(&h->start_lock);
    const struct kb_listen_conf *l = &h->conf.listen;
    int v6 = strchr(l->host, ':') != NULL;
    if (r < 0) {
        kb_log(KB_LOG_ERROR, NULL, NULL, "http: cannot listen on %s%s%s:%u: %s", v6 ? "[" : "",
               l->host, v6 ? "]" : "", l->port, uv_strerror(r));
        /* The thread has ended by itself. */
        pthread_join(h->thread, NULL);
        h->started = 0;
        kb_http_free(h);
        return r;
    }
    kb_log(KB_LOG_INFO, NULL, NULL, "listening for HTTP on %s%s%s:%u (dashboard http://%s%s%s:%u/)",
           v6 ? "[" : "", l->host, v6 ? "]" : "", l->port, v6 ? "[" : "", l->host, v6 ? "]" : "",
           l->port);
    *out = h;
    return 0;
}

void kb_http_stop(struct kb_http *h)
{
    /* Once: the thread closes its async handle after the stop. */
    if (h && h->started && !atomic_exchange(&h->stop_sent, 1))
        uv_async_send(&h->stop);
}

void kb_http_free(struct kb_http *h)
{
    if (!h)
        return;
    if (h->started) {
        kb_http_stop(h);
        pthread_join(h->thread, NULL);
    }
    pthread_mutex_destroy(&h->start_lock);
    pthread_cond_destroy(&h->start_cond);
    if (h->conf.token) {
        memset(h->conf.token, 0, strlen(h->conf.token));
        free(h->conf.token);
    }
    free(h->recordings);
    free(h->web_root);
    free(h);
}
