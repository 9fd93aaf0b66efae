/* The loop's side of the API's changes (relay/http/bridge.h): add or
 * remove a destination, kick a publisher, delete a recording, let an
 * HTTP-FLV viewer in and then take its socket over. Each request but the
 * last is answered with an HTTP status and, for destinations, the new
 * contents of the state file that keeps runtime destinations across
 * restarts (the HTTP thread writes it: no disk on the loop). */
#include "control.h"

#include <stdlib.h>
#include <string.h>

#include "flvsink.h"
#include "log.h"
#include "output.h"
#include "recsink.h"
#include "server.h"
#include "session.h"
#include "text.h"

static void fail(struct kb_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct kb_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    r->status = status;
}

static struct kb_output *find_output(struct kb_server *srv, struct kb_stream *st, const char *id)
{
    for (struct kb_output *o = srv->outputs; o; o = o->next)
        if (!o->removing && o->stream == st && strcmp(o->conf->id, id) == 0)
            return o;
    return NULL;
}

/* ---- the state file ----------------------------------------------------- */

static int removed_now(struct kb_server *srv, const char *stream, const char *id)
{
    for (struct kb_removed *r = srv->removed; r; r = r->next)
        if (strcmp(r->stream, stream) == 0 && strcmp(r->id, id) == 0)
            return 1;
    return 0;
}

/* What the config loader merges back at the next start or reload: every
 * destination added through the API, and the config's destinations it
 * removed. NULL on ENOMEM. */
static char *state_text(struct kb_server *srv)
{
    struct kb_text t = {0};
    kb_text_add(&t, "# kebun keeps the destinations added and removed through its API here, and\n"
            "# merges them with %s at every start and reload.\n"
            "# It holds platform keys. Edit it only while kebun is stopped.\n",
        srv->conf->path);
    for (struct kb_stream *st = srv->hub.streams; st; st = st->next) {
        const struct kb_stream_conf *sc = kb_config_stream_by_name(srv->conf, st->name);
        int header = 0;
        for (int i = 0; sc && i < sc->n_removed; i++) {
            if (!header++)
                kb_text_add(&t, "\n[stream %s]\n", st->name);
            kb_text_add(&t, "remove = %s\n", sc->removed[i]);
        }
        for (struct kb_removed *r = srv->removed; r; r = r->next) {
            if (strcmp(r->stream, st->name) != 0)
                continue;
            if (!header++)
                kb_text_add(&t, "\n[stream %s]\n", st->name);
            kb_text_add(&t, "remove = %s\n", r->id);
        }
        for (struct kb_output *o = srv->outputs; o; o = o->next) {
            if (o->removing || o->stream != st || o->conf->source != KB_PUSH_API)
                continue;
            char value[1200];
            if (kb_push_format(o->conf, value, sizeof(value)) < 0)
                continue;
            if (!header++)
                kb_text_add(&t, "\n[stream %s]\n", st->name);
            kb_text_add(&t, "push = %s\n", value);
            memset(value, 0, sizeof(value));
        }
    }
    if (t.oom) {
        kb_text_free(&t);
        return NULL;
    }
    return t.p; /* the caller's now */
}

static void save(struct kb_server *srv, struct kb_req *r)
{
    r->state_text = state_text(srv);
    snprintf(r->state_path, sizeof(r->state_path), "%s", srv->conf->state_path);
    if (!r->state_text)
        kb_log(KB_LOG_ERROR, r->stream, NULL, "out of memory writing the state file");
}

/* ---- the requests ------------------------------------------------------ */

static void add_dest(struct kb_server *srv, struct kb_stream *st, struct kb_req *r)
{
    struct kb_push_conf *p;
    char why[200];
    int err = kb_push_parse(r->arg, &p, why, sizeof(why));
    if (err < 0) {
        fail(r, err == -ENOMEM ? 500 : 400, "%s", err == -ENOMEM ? "out of memory" : why);
        return;
    }
    p->source = KB_PUSH_API;
    for (struct kb_output *o = srv->outputs; o; o = o->next) {
        if (!o->removing && o->stream == st && kb_push_same(o->conf, p)) {
            fail(r, 409, "stream %s already pushes there (destination %s)", st->name,
                 o->conf->id);
            kb_push_free(p);
            return;
        }
    }
    /* An id no destination of the stream has: its label, or label-N. The
     * label becomes the id, so that the state file gives it back. */
    char id[160];
    for (int n = 1;; n++) {
        if (n == 1)
            snprintf(id, sizeof(id), "%s", p->name);
        else
            snprintf(id, sizeof(id), "%s-%d", p->name, n);
        for (char *c = id; *c; c++)
            if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
                !(*c >= '0' && *c <= '9') && *c != '.' && *c != '_' && *c != '-')
                *c = '-';
        if (id[0] == '.')
            id[0] = '-';
        if (!find_output(srv, st, id))
            break;
    }
    free(p->id);
    free(p->name);
    p->id = strdup(id);
    p->name = strdup(id);
    struct kb_output *o = p->id && p->name ? kb_output_new(srv, st, p) : NULL;
    kb_push_free(p);
    if (!o) {
        fail(r, 500, "out of memory");
        return;
    }
    kb_log(KB_LOG_INFO, st->name, o->conf->masked, "push %s added through the API", o->conf->id);
    r->status = 201;
    kb__status_dest(&r->dest, o);
    save(srv, r);
}

static void del_dest(struct kb_server *srv, struct kb_stream *st, struct kb_req *r)
{
    struct kb_output *o = find_output(srv, st, r->arg);
    if (!o) {
        fail(r, 404, "stream %s has no destination '%s'", st->name, r->arg);
        return;
    }
    if (o->conf->source == KB_PUSH_CONFIG && !removed_now(srv, st->name, r->arg)) {
        struct kb_removed *rm = calloc(1, sizeof(*rm));
        if (!rm) {
            fail(r, 500, "out of memory");
            return;
        }
        snprintf(rm->stream, sizeof(rm->stream), "%s", st->name);
        snprintf(rm->id, sizeof(rm->id), "%.159s", r->arg);
        rm->next = srv->removed;
        srv->removed = rm;
    }
    kb_log(KB_LOG_INFO, st->name, o->conf->masked, "push %s removed through the API",
           o->conf->id);
    kb_output_remove(o);
    r->status = 200;
    snprintf(r->info, sizeof(r->info), "%.255s", r->arg);
    save(srv, r);
}

static void kick(struct kb_stream *st, struct kb_req *r)
{
    struct kb_session *p = st->publisher;
    if (!p) {
        fail(r, 409, "nobody publishes stream %s", st->name);
        return;
    }
    snprintf(r->info, sizeof(r->info), "%s", p->conn.peer);
    kb_log(KB_LOG_WARN, st->name, p->conn.peer, "publisher kicked through the API");
    kb__session_close(p, "kicked through the API");
    r->status = 200;
}

static void handle(struct kb_server *srv, struct kb_req *r)
{
    if (r->op == KB_REQ_FLV_ADOPT) {
        int fd = r->fd;
        r->fd = -1;
        kb__flvsink_adopt(srv, r->stream, fd);
        kb_req_free(r);
        return;
    }
    struct kb_stream *st = kb_hub_find_name(&srv->hub, r->stream);
    if (!st) {
        fail(r, 404, "no stream named '%s'", r->stream);
    } else if (srv->stopping) {
        fail(r, 503, "kebun is shutting down");
    } else {
        switch (r->op) {
        case KB_REQ_ADD_DEST:
            add_dest(srv, st, r);
            break;
        case KB_REQ_DEL_DEST:
            del_dest(srv, st, r);
            break;
        case KB_REQ_KICK:
            kick(st, r);
            break;
        case KB_REQ_DEL_REC:
            if (kb__recsink_delete(srv, r) == 0)
                return; /* answered by the recorder's job thread */
            break;
        case KB_REQ_FLV_OPEN: {
            char why[128];
            if (kb__flvsink_admit(srv, why, sizeof(why)) < 0)
                fail(r, 503, "%s", why);
            else
                r->status = 200;
            break;
        }
        case KB_REQ_FLV_ADOPT:
            break;
        }
    }
    kb_bridge_answer(&srv->bridge, r);
}

void kb__control_run(struct kb_server *srv)
{
    struct kb_req *list = kb_bridge_take_requests(&srv->bridge);
    int changed = list != NULL; /* every request changes something, a viewer's count at least */
    while (list) {
        struct kb_req *r = list;
        list = r->next;
        handle(srv, r);
    }
    /* A read right after a change sees it. */
    if (changed)
        kb__status_post(srv);
}

void kb__control_forget(struct kb_server *srv)
{
    while (srv->removed) {
        struct kb_removed *r = srv->removed;
        srv->removed = r->next;
        free(r);
    }
}
