/* /live/NAME.flv: a live stream as HTTP-FLV, for mpegts.js in a browser.
 *
 * This side only opens the response: it asks the loop whether the stream
 * exists and a viewer may start (FLV_OPEN), sends the response head
 * (200, video/x-flv, chunked) and gives the socket up to the relay's loop
 * (h2o_http1_upgrade hands a connection's socket over once its head is
 * written; the descriptor travels as FLV_ADOPT). The loop then serves the
 * viewer like an RTMP player (relay/flvsink.h), so the web side costs a
 * viewer nothing after its first request.
 */
#include "internal.h"

#include <h2o/http1.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/log.h"
#include "route.h"

/* What the upgrade callback needs (the request is gone by then). */
struct handover {
    struct kb_http *h;
    char stream[KB_CONF_NAME_MAX + 1];
};

int kb__live_serve(h2o_handler_t *self, h2o_req_t *req)
{
    struct kb_http *h = ((struct kb_handler_ctx *)self)->h;
    const char *p = req->path_normalized.base;
    size_t n = req->path_normalized.len;
    static const char prefix[] = "/live/", suffix[] = ".flv";
    size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1;
    if (n <= pl + sl || memcmp(p, prefix, pl) != 0 || memcmp(p + n - sl, suffix, sl) != 0 ||
        !kb_route_name_ok(p + pl, n - pl - sl, KB_CONF_NAME_MAX)) {
        kb__send(req, 404, "text/plain; charset=utf-8", "Not Found\n", 10);
        return 0;
    }
    enum kb_method m = kb_route_method(req->method.base, req->method.len);
    if (m != KB_M_GET && m != KB_M_HEAD) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        kb__send(req, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
        return 0;
    }
    if (h->stopping) {
        kb__send(req, 503, "text/plain; charset=utf-8", "Service Unavailable\n", 20);
        return 0;
    }
    char name[KB_CONF_NAME_MAX + 1];
    memcpy(name, p + pl, n - pl - sl);
    name[n - pl - sl] = '\0';
    struct kb_req *r = kb_req_new(KB_REQ_FLV_OPEN, name, NULL);
    if (!r) {
        kb__send(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return 0;
    }
    return kb__ask_relay(h, req, r);
}

/* The head is written and h2o let go of the connection: the socket is
 * ours, to hand to the loop. */
static void on_handed_over(void *ud, h2o_socket_t *sock, size_t reqsize)
{
    (void)reqsize; /* whatever the client sent after its request is not read */
    struct handover *ho = ud;
    h2o_socket_export_t info;
    if (!sock) {
        free(ho); /* the client left while the head was being written */
        return;
    }
    if (h2o_socket_export(sock, &info) != 0) {
        kb_log(KB_LOG_WARN, ho->stream, NULL, "http-flv viewer dropped (cannot take its socket)");
        h2o_socket_close(sock);
        free(ho);
        return;
    }
    h2o_buffer_dispose(&info.input);
    struct kb_req *r = kb_req_new(KB_REQ_FLV_ADOPT, ho->stream, NULL);
    if (r) {
        r->fd = info.fd; /* closed with r unless the loop takes it */
        if (kb_bridge_request(ho->h->bridge, r) < 0)
            kb_req_free(r);
    } else {
        close(info.fd);
    }
    free(ho);
}

void kb__live_opened(struct kb_http *h, h2o_req_t *req, struct kb_req *r)
{
    if (!req)
        return; /* the client left before the answer */
    if (r->status != 200) {
        kb__send(req, r->status, "text/plain; charset=utf-8", r->error, strlen(r->error));
        return;
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        kb__send(req, 200, "video/x-flv", "", 0);
        return;
    }
    struct handover *ho = calloc(1, sizeof(*ho));
    if (!ho) {
        kb__send(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return;
    }
    ho->h = h;
    snprintf(ho->stream, sizeof(ho->stream), "%s", r->stream);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("video/x-flv"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    /* The loop frames the body as chunks; h2o adds "Connection: upgrade",
     * which only says the connection is not kept for another request. */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL,
                   H2O_STRLIT("chunked"));
    /* Pages on other origins may play it. */
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-origin"),
                          0, NULL, H2O_STRLIT("*"));
    h2o_http1_upgrade(req, NULL, 0, on_handed_over, ho);
}
