/* kebun: SIGHUP. Read the config again and apply what changed, touching
 * nothing that did not: a destination added or removed starts or stops
 * alone (the others keep their connections); streams may be added, removed
 * when idle, or get a new key; server settings apply to what happens next
 * (new sessions, the next retry). Listen addresses need a restart. The
 * RTMPS certificate and key are read again: new TLS connections get the
 * renewed pair, live ones keep the context they started with. A config
 * with errors (a certificate that cannot be used among them) is refused
 * whole and the running one stays. */
#include <string.h>

#include "flvsink.h"
#include "log.h"
#include "output.h"
#include "recsink.h"
#include "server.h"
#include "session.h"
#include "tls.h"

static int addrs_same(const struct kb_listen_conf *a, int na, const struct kb_listen_conf *b,
                      int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i].host, b[i].host) != 0 || a[i].port != b[i].port)
            return 0;
    return 1;
}

static void refuse(char *err)
{
    kb_log(KB_LOG_ERROR, NULL, NULL, "reload refused, keeping the running config:");
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
        kb_log(KB_LOG_ERROR, NULL, NULL, "  %s", line);
}

static void sync_outputs(struct kb_server *srv, struct kb_stream *st,
                         const struct kb_stream_conf *sc, int *added, int *removed)
{
    /* Keep the outputs whose destination is still configured. */
    for (struct kb_output *o = srv->outputs, *next; o; o = next) {
        next = o->next;
        if (o->stream != st || o->removing)
            continue;
        int keep = 0;
        for (const struct kb_push_conf *p = sc ? sc->pushes : NULL; p && !keep; p = p->next)
            keep = kb_push_same(o->conf, p);
        if (keep)
            kb_output_reloaded(o);
        if (!keep) {
            kb_log(KB_LOG_INFO, st->name, o->conf->masked, "push %s removed by reload",
                   o->conf->name);
            kb_output_remove(o);
            (*removed)++;
        }
    }
    for (const struct kb_push_conf *p = sc ? sc->pushes : NULL; p; p = p->next) {
        int have = 0;
        for (struct kb_output *o = srv->outputs; o && !have; o = o->next)
            have = o->stream == st && !o->removing && kb_push_same(o->conf, p);
        if (have)
            continue;
        if (kb_output_new(srv, st, p)) {
            kb_log(KB_LOG_INFO, st->name, p->masked, "push %s added by reload", p->name);
            (*added)++;
        } else {
            kb_log(KB_LOG_ERROR, st->name, p->masked, "push %s: out of memory", p->name);
        }
    }
}

void kb_server_reload(struct kb_server *srv)
{
    struct kb_config *next;
    char err[4096];
    const char *path = srv->conf->path;
    if (kb_config_load(path, &next, err, sizeof(err)) < 0) {
        refuse(err);
        return;
    }
    /* A renewed certificate: the last thing that may refuse the reload. */
    if (next->n_listen_tls && kb__server_tls_load(srv, next, "reloaded", err, sizeof(err)) < 0) {
        refuse(err);
        kb_config_free(next);
        return;
    }
    /* Listening sockets stay as they are (and --listen keeps winning). */
    const struct kb_config *cur = srv->conf;
    if (!addrs_same(cur->listen, cur->n_listen, next->listen, next->n_listen) &&
        !srv->listen_overridden)
        kb_log(KB_LOG_WARN, NULL, NULL, "listen addresses changed: restart kebun to apply");
    if (!addrs_same(cur->listen_tls, cur->n_listen_tls, next->listen_tls, next->n_listen_tls))
        kb_log(KB_LOG_WARN, NULL, NULL, "listen_tls addresses changed: restart kebun to apply%s",
               next->n_listen_tls ? "" : " (the running certificate stays)");
    memcpy(next->listen, cur->listen, sizeof(next->listen));
    next->n_listen = cur->n_listen;
    memcpy(next->listen_tls, cur->listen_tls, sizeof(next->listen_tls));
    next->n_listen_tls = cur->n_listen_tls;
    /* Players share each message's chunked bytes, built at one chunk size. */
    if (next->chunk_size != srv->conf->chunk_size) {
        kb_log(KB_LOG_WARN, NULL, NULL, "chunk_size changed: restart kebun to apply");
        next->chunk_size = srv->conf->chunk_size;
    }
    kb_log_set_level((enum kb_log_level)next->log_level);
    kb_log_lines(KB_LOG_WARN, next->notes);
    kb_tls_forget_contexts(); /* CA files may have been replaced on disk */

    int added = 0, removed = 0, streams_added = 0, streams_removed = 0;
    for (struct kb_stream *st = srv->hub.streams, *nst; st; st = nst) {
        nst = st->next;
        const struct kb_stream_conf *sc = kb_config_stream_by_name(next, st->name);
        if (sc) {
            if (strcmp(st->key, sc->key) != 0)
                kb_log(KB_LOG_INFO, st->name, NULL, "stream key changed by reload");
            kb_stream_apply(st, next, sc);
            sync_outputs(srv, st, sc, &added, &removed);
            continue;
        }
        if (st->bcast != KB_BC_IDLE || st->publisher) {
            kb_log(KB_LOG_WARN, st->name, NULL,
                   "stream removed from the config but live: it stays until it ends and "
                   "the next reload");
            continue;
        }
        sync_outputs(srv, st, NULL, &added, &removed);
        /* Players of an idle stream are told it is gone by closing them. */
        KB_LIST_EACH(l, &srv->sessions) {
            struct kb_session *s = kb_container_of(l, struct kb_session, link);
            if (s->stream == st)
                kb__session_close(s, "stream removed from the config");
        }
        kb__flvsink_end_stream(srv, st);
        kb_log(KB_LOG_INFO, st->name, NULL, "stream removed by reload");
        kb_hub_remove(&srv->hub, st);
        streams_removed++;
    }
    for (const struct kb_stream_conf *sc = next->streams; sc; sc = sc->next) {
        if (kb_hub_find_name(&srv->hub, sc->name))
            continue;
        struct kb_stream *st = kb_hub_add(&srv->hub, next, sc);
        if (!st) {
            kb_log(KB_LOG_ERROR, sc->name, NULL, "cannot add stream: out of memory");
            continue;
        }
        kb_log(KB_LOG_INFO, sc->name, NULL, "stream added by reload");
        streams_added++;
        sync_outputs(srv, st, sc, &added, &removed);
    }
    if (strcmp(srv->conf->recordings, next->recordings) != 0 ||
        srv->conf->segment_duration != next->segment_duration ||
        srv->conf->record_format != next->record_format ||
        srv->conf->record_queue != next->record_queue ||
        srv->conf->thumbnail_interval != next->thumbnail_interval ||
        srv->conf->export_mp4 != next->export_mp4)
        kb_log(KB_LOG_WARN, NULL, NULL, "recorder settings changed: restart kebun to apply");
    kb_config_free(srv->conf);
    srv->conf = next;
    srv->net.conf = next;
    srv->net.flush.interval = next->flush_interval;
    if (srv->recorder)
        kb__recsink_sync(srv);
    kb_log(KB_LOG_INFO, NULL, NULL,
           "config reloaded from %s: %d stream(s) added, %d removed, %d push destination(s) "
           "added, %d removed",
           next->path, streams_added, streams_removed, added, removed);
}
