/* /api/v1: what staff see and change (docs/API.md is the contract).
 *
 * Reads come from the relay's latest snapshot and the recordings on disk;
 * changes go to the relay loop as requests through the bridge and are
 * answered when it has made them. A request waiting for its answer is
 * kept on h->waiting; if its connection dies first, h2o disposes of the
 * request's memory and the answer finds nobody to send to.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/log.h"
#include "route.h"

/* A request waiting for the loop. Allocated apart from h2o's request so
 * that an answer can always find it; `req` goes NULL when h2o disposes of
 * the request first. */
struct waiting {
    struct kb_list link;
    h2o_req_t *req;
    struct waiting **watch; ///< the slot in the request's pool that points here
};

static void on_req_disposed(void *p)
{
    struct waiting **slot = p;
    if (*slot)
        (*slot)->req = NULL;
}

/* ---- JSON of the snapshot ---------------------------------------------- */

static void add_time(cJSON *o, const char *k, int64_t ms)
{
    char t[40];
    if (ms <= 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    kb__iso_ms(ms, t, sizeof(t));
    cJSON_AddStringToObject(o, k, t);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v && v[0])
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *dest_json(const struct kb_status_dest *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", d->id);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "url", d->url);
    cJSON_AddStringToObject(o, "source", d->source == KB_PUSH_API ? "api" : "config");
    cJSON_AddStringToObject(o, "state", d->state);
    add_time(o, "since", d->since);
    cJSON_AddNumberToObject(o, "bitrate", (double)d->bitrate);
    cJSON_AddNumberToObject(o, "bytes", (double)d->bytes);
    cJSON_AddNumberToObject(o, "drops", (double)d->drops);
    cJSON_AddNumberToObject(o, "drops_video", (double)d->drops_video);
    cJSON_AddNumberToObject(o, "drops_audio", (double)d->drops_audio);
    cJSON_AddNumberToObject(o, "reconnects", (double)d->reconnects);
    add_str_or_null(o, "last_error", d->last_error);
    add_time(o, "last_error_at", d->last_error[0] ? d->last_error_at : 0);
    return o;
}

static cJSON *rec_json(const struct kb_status_rec *r)
{
    if (!r->on)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "state", r->state);
    add_str_or_null(o, "path", r->path);
    add_str_or_null(o, "file", r->file);
    cJSON_AddNumberToObject(o, "segments", r->segments);
    cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
    cJSON_AddNumberToObject(o, "parts", r->parts);
    cJSON_AddNumberToObject(o, "dropped", (double)r->dropped);
    add_str_or_null(o, "last_error", r->last_error);
    add_time(o, "last_error_at", r->last_error[0] ? r->last_error_at : 0);
    return o;
}

/* public: the view of a reader without the token off loopback (buyers'
 * pages): no publisher address, no destinations. */
static cJSON *stream_json(const struct kb_status_stream *s, int public)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char path[96];
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddStringToObject(o, "state", s->state);
    add_time(o, "since", s->since);
    if (public) {
        /* neither key: not "none", but "not shown" */
    } else if (s->publisher[0]) {
        cJSON *p = cJSON_AddObjectToObject(o, "publisher");
        if (p) {
            cJSON_AddStringToObject(p, "address", s->publisher);
            add_time(p, "since", s->publisher_since);
        }
    } else {
        cJSON_AddNullToObject(o, "publisher");
    }
    if (s->vcodec[0]) {
        cJSON *v = cJSON_AddObjectToObject(o, "video");
        if (v) {
            cJSON_AddStringToObject(v, "codec", s->vcodec);
            if (s->width > 0) {
                cJSON_AddNumberToObject(v, "width", s->width);
                cJSON_AddNumberToObject(v, "height", s->height);
            } else {
                cJSON_AddNullToObject(v, "width");
                cJSON_AddNullToObject(v, "height");
            }
            if (s->fps > 0)
                cJSON_AddNumberToObject(v, "fps", s->fps);
            else
                cJSON_AddNullToObject(v, "fps");
        }
    } else {
        cJSON_AddNullToObject(o, "video");
    }
    if (s->acodec[0]) {
        cJSON *a = cJSON_AddObjectToObject(o, "audio");
        if (a) {
            cJSON_AddStringToObject(a, "codec", s->acodec);
            cJSON_AddBoolToObject(a, "silent", s->silent);
            if (s->sample_rate > 0) {
                cJSON_AddNumberToObject(a, "sample_rate", s->sample_rate);
                cJSON_AddNumberToObject(a, "channels", s->channels);
            } else {
                cJSON_AddNullToObject(a, "sample_rate");
                cJSON_AddNullToObject(a, "channels");
            }
        }
    } else {
        cJSON_AddNullToObject(o, "audio");
    }
    cJSON_AddNumberToObject(o, "bitrate_in", (double)s->bitrate_in);
    cJSON_AddNumberToObject(o, "bytes_in", (double)s->bytes_in);
    cJSON_AddNumberToObject(o, "players", s->players);
    cJSON_AddNumberToObject(o, "bytes_out", (double)s->bytes_out);
    cJSON *d = public ? NULL : cJSON_AddArrayToObject(o, "destinations");
    for (uint32_t i = 0; d && i < s->n_dests; i++)
        cJSON_AddItemToArray(d, dest_json(&s->dests[i]));
    cJSON_AddItemToObject(o, "recording", rec_json(&s->rec));
    snprintf(path, sizeof(path), "/watch/%s", s->name);
    cJSON_AddStringToObject(o, "watch", path);
    snprintf(path, sizeof(path), "/live/%s.flv", s->name);
    cJSON_AddStringToObject(o, "flv", path);
    return o;
}

/* ---- reads ------------------------------------------------------------- */

static int no_status(h2o_req_t *req)
{
    kb__send_error(req, 503, "kebun is starting");
    return 0;
}

static int get_streams(h2o_req_t *req, struct kb_status *st, int public)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "streams") : NULL;
    for (uint32_t i = 0; arr && i < st->n_streams; i++)
        cJSON_AddItemToArray(arr, stream_json(&st->streams[i], public));
    kb__send_json(req, 200, doc);
    return 0;
}

static int get_stream(h2o_req_t *req, struct kb_status *st, const char *name, int public)
{
    const struct kb_status_stream *s = kb_status_stream(st, name);
    if (!s) {
        kb__send_error(req, 404, "no stream named '%s'", name);
        return 0;
    }
    kb__send_json(req, 200, stream_json(s, public));
    return 0;
}

/* An ISO 8601 UTC time ("2026-12-06T08:15:00Z", seconds and the Z
 * optional) as ms, or -1. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (!end || (*end && strcmp(end, "Z") != 0))
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

static int get_recordings(struct kb_http *h, h2o_req_t *req, struct kb_status *st)
{
    char stream[KB_CONF_NAME_MAX + 1] = "", from[40] = "", to[40] = "";
    const char *q = "";
    size_t qn = 0;
    if (req->query_at != SIZE_MAX) {
        q = req->path.base + req->query_at + 1;
        qn = req->path.len - req->query_at - 1;
    }
    if (kb_query_param(q, qn, "stream", stream, sizeof(stream)) < 0 ||
        (stream[0] && !kb_route_name_ok(stream, strlen(stream), KB_CONF_NAME_MAX))) {
        kb__send_error(req, 400, "stream= is not a stream name");
        return 0;
    }
    int64_t t0 = 0, t1 = 0;
    if (kb_query_param(q, qn, "from", from, sizeof(from)) < 0 ||
        (from[0] && (t0 = parse_time(from)) < 0)) {
        kb__send_error(req, 400, "from= is not a time like 2026-12-06T08:15:00Z");
        return 0;
    }
    if (kb_query_param(q, qn, "to", to, sizeof(to)) < 0 || (to[0] && (t1 = parse_time(to)) < 0)) {
        kb__send_error(req, 400, "to= is not a time like 2026-12-06T08:15:00Z");
        return 0;
    }
    cJSON *list = kb__recordings_list(h, st, stream, t0, t1);
    cJSON *doc = list ? cJSON_CreateObject() : NULL;
    if (doc)
        cJSON_AddItemToObject(doc, "recordings", list);
    else
        cJSON_Delete(list);
    kb__send_json(req, 200, doc);
    return 0;
}

/* ---- changes ----------------------------------------------------------- */

int kb__ask_relay(struct kb_http *h, h2o_req_t *req, struct kb_req *r)
{
    struct waiting *w = calloc(1, sizeof(*w));
    if (!w) {
        kb_req_free(r);
        kb__send_error(req, 500, "out of memory");
        return 0;
    }
    w->req = req;
    w->watch = h2o_mem_alloc_shared(&req->pool, sizeof(*w->watch), on_req_disposed);
    *w->watch = w;
    r->ud = w;
    if (kb_bridge_request(h->bridge, r) < 0) {
        kb_req_free(r);
        *w->watch = NULL;
        free(w);
        kb__send_error(req, 503, "kebun is shutting down");
        return 0;
    }
    kb_list_push(&h->waiting, &w->link);
    return 0;
}

static int add_dest(struct kb_http *h, h2o_req_t *req, const struct kb_route_match *m)
{
    char value[1024], err[256];
    if (kb_body_push(req->entity.base ? req->entity.base : "", req->entity.len, value,
                     sizeof(value), err, sizeof(err)) < 0) {
        kb__send_error(req, 400, "%s", err);
        return 0;
    }
    struct kb_req *r = kb_req_new(KB_REQ_ADD_DEST, m->name, value);
    memset(value, 0, sizeof(value));
    if (!r) {
        kb__send_error(req, 500, "out of memory");
        return 0;
    }
    return kb__ask_relay(h, req, r);
}

static int simple(struct kb_http *h, h2o_req_t *req, enum kb_req_op op, const char *stream,
                  const char *arg)
{
    struct kb_req *r = kb_req_new(op, stream, arg);
    if (!r) {
        kb__send_error(req, 500, "out of memory");
        return 0;
    }
    return kb__ask_relay(h, req, r);
}

/* Write the state file of runtime destinations: temp file, fsync, rename;
 * mode 0600 since it holds platform keys. 0 or -errno. */
static int write_state(const char *path, const char *text)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), off = 0;
    int err = 0;
    while (off < len && !err) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0)
            err = -errno;
        else
            off += (size_t)w;
    }
    if (!err && fsync(fd) < 0)
        err = -errno;
    if (close(fd) < 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) < 0)
        err = -errno;
    if (err)
        unlink(tmp);
    return err;
}

/* The request an answer is for (NULL when its client left meanwhile). */
static h2o_req_t *take_waiting(struct kb_req *r)
{
    struct waiting *w = r->ud;
    h2o_req_t *req = w->req;
    kb_list_remove(&w->link);
    if (req)
        *w->watch = NULL;
    free(w);
    return req;
}

static void answer(struct kb_http *h, h2o_req_t *req, struct kb_req *r)
{
    if (r->state_text) {
        int err = write_state(r->state_path, r->state_text);
        if (err < 0) {
            kb_log(KB_LOG_ERROR, r->stream, NULL,
                   "http: the change is made but not saved: cannot write %s (%s)", r->state_path,
                   strerror(-err));
            if (req && r->status < 300) {
                kb__send_error(req, 500, "the change is made but could not be saved in %s (%s); "
                                         "it will not survive a restart",
                               r->state_path, strerror(-err));
                req = NULL;
            }
        }
    }
    if (!req)
        return;
    if (r->status >= 400) {
        kb__send_error(req, r->status, "%s", r->error);
        return;
    }
    cJSON *doc;
    switch (r->op) {
    case KB_REQ_ADD_DEST:
        doc = dest_json(&r->dest);
        break;
    case KB_REQ_DEL_DEST:
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "removed", r->info);
        break;
    case KB_REQ_KICK:
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "kicked", r->info);
        break;
    default:
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "deleted", r->info);
        break;
    }
    kb__send_json(req, r->status, doc);
    (void)h;
}

void kb__api_answers(struct kb_http *h, struct kb_req *list)
{
    while (list) {
        struct kb_req *r = list;
        list = r->next;
        h2o_req_t *req = take_waiting(r);
        if (r->op == KB_REQ_FLV_OPEN)
            kb__live_opened(h, req, r);
        else
            answer(h, req, r);
        kb_req_free(r);
    }
}

void kb__api_stop(struct kb_http *h)
{
    /* The records stay listed until their answer (or kb__api_free). */
    KB_LIST_EACH(l, &h->waiting) {
        struct waiting *w = kb_container_of(l, struct waiting, link);
        if (w->req) {
            *w->watch = NULL;
            kb__send_error(w->req, 503, "kebun is shutting down");
            w->req = NULL;
        }
    }
}

void kb__api_free(struct kb_http *h)
{
    KB_LIST_EACH(l, &h->waiting) {
        struct waiting *w = kb_container_of(l, struct waiting, link);
        kb_list_remove(&w->link);
        free(w);
    }
}

/* ---- the handler ------------------------------------------------------- */

enum { KB_AUTH_REFUSED, KB_AUTH_FULL, KB_AUTH_PUBLIC };

/* Changes need the token; so do reads, off loopback. (Buyers' pages read
 * /public/v1/, which shows what a buyer may see, to anyone.) */
static int authorized(struct kb_http *h, h2o_req_t *req, enum kb_method m)
{
    if (!kb_route_mutates(m) && h->loopback)
        return KB_AUTH_FULL;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (!h->conf.token[0]) {
        kb__send_error(req, 403, "changes through the API are off: set [http] token in the config");
        return KB_AUTH_REFUSED;
    }
    if (i >= 0 && kb_token_ok(req->headers.entries[i].value.base,
                              req->headers.entries[i].value.len, h->conf.token))
        return KB_AUTH_FULL;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"kebun\""));
    kb__send_error(req, 401, i >= 0 ? "wrong token" : "this needs the token: "
                                                       "Authorization: Bearer TOKEN");
    return KB_AUTH_REFUSED;
}

/* /api/v1/ (public 0) and its read-only public view /public/v1/. */
static int serve(struct kb_http *h, h2o_req_t *req, int public)
{
    if (h->stopping) {
        kb__send_error(req, 503, "kebun is shutting down");
        return 0;
    }
    struct kb_route_match m;
    const char *path = req->path_normalized.base;
    size_t n = req->path_normalized.len;
    if ((public ? kb_route_public(path, n, &m) : kb_route_api(path, n, &m)) == KB_R_NONE) {
        kb__send_error(req, 404, "no such endpoint (see docs/API.md)");
        return 0;
    }
    enum kb_method method = kb_route_method(req->method.base, req->method.len);
    if (!kb_route_allows(m.route, method) || (public && kb_route_mutates(method))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, m.allow,
                       strlen(m.allow));
        kb__send_error(req, 405, "this endpoint takes %s", m.allow);
        return 0;
    }
    int auth = public ? KB_AUTH_PUBLIC : authorized(h, req, method);
    if (auth == KB_AUTH_REFUSED)
        return 0;
    if (req->entity.len > h->conf.max_body) {
        kb__send_error(req, 413, "the body is larger than [http] max_body (%llu bytes)",
                       (unsigned long long)h->conf.max_body);
        return 0;
    }
    if (m.route == KB_R_DESTS)
        return add_dest(h, req, &m);
    if (m.route == KB_R_DEST)
        return simple(h, req, KB_REQ_DEL_DEST, m.name, m.id);
    if (m.route == KB_R_KICK)
        return simple(h, req, KB_REQ_KICK, m.name, NULL);
    struct kb_status *st = kb_bridge_status(h->bridge);
    if (!st)
        return no_status(req);
    if (m.route == KB_R_RECORDING && method == KB_M_DELETE) {
        if (kb__recording_live(st, m.name, m.id))
            kb__send_error(req, 409, "recording %s/%s is being recorded; it can be deleted once "
                                     "its broadcast ends",
                           m.name, m.id);
        else
            simple(h, req, KB_REQ_DEL_REC, m.name, m.id);
        kb_status_unref(st);
        return 0;
    }
    switch (m.route) {
    case KB_R_STREAMS:
        get_streams(req, st, auth == KB_AUTH_PUBLIC);
        break;
    case KB_R_STREAM:
        get_stream(req, st, m.name, auth == KB_AUTH_PUBLIC);
        break;
    case KB_R_RECORDINGS:
        get_recordings(h, req, st);
        break;
    case KB_R_RECORDING: {
        cJSON *doc = kb__recording_get(h, st, m.name, m.id);
        if (doc)
            kb__send_json(req, 200, doc);
        else
            kb__send_error(req, 404, "no recording %s/%s", m.name, m.id);
        break;
    }
    default:
        kb__send_error(req, 404, "no such endpoint");
        break;
    }
    kb_status_unref(st);
    return 0;
}

int kb__api_serve(h2o_handler_t *self, h2o_req_t *req)
{
    return serve(((struct kb_handler_ctx *)self)->h, req, 0);
}

int kb__public_serve(h2o_handler_t *self, h2o_req_t *req)
{
    return serve(((struct kb_handler_ctx *)self)->h, req, 1);
}
