/* /metrics in Prometheus' text format (version 0.0.4), written by hand as
 * SRS and MediaMTX do: no C client library is packaged. Base units,
 * `_total` on counters, labels that are names kebun knows (streams,
 * destination ids, handlers, status codes), never a client's address or a
 * key. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_version.h"
#include "relay/text.h"

static void family(struct kb_text *t, const char *name, const char *type, const char *help)
{
    kb_text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Names are kebun's ([A-Za-z0-9._-]); escape anyway, as the format asks. */
static const char *label(const char *v, char *buf, size_t n)
{
    size_t o = 0;
    for (; *v && o + 2 < n; v++) {
        if (*v == '\\' || *v == '"') {
            buf[o++] = '\\';
            buf[o++] = *v;
        } else if (*v == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *v;
        }
    }
    buf[o] = '\0';
    return buf;
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void streams(struct kb_text *t, const struct kb_status *st)
{
    char s[160], d[400];
    struct {
        const char *name, *type, *help;
    } fams[] = {
        {"kebun_stream_live", "gauge", "1 while a publisher sends the stream."},
        {"kebun_stream_players", "gauge", "RTMP players and HTTP-FLV viewers of the stream."},
        {"kebun_stream_received_bytes_total", "counter", "Media bytes received from publishers."},
        {"kebun_stream_sent_bytes_total", "counter", "Bytes sent to the stream's players."},
    };
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        family(t, fams[f].name, fams[f].type, fams[f].help);
        for (uint32_t i = 0; i < st->n_streams; i++) {
            const struct kb_status_stream *x = &st->streams[i];
            uint64_t v = f == 0 ? strcmp(x->state, "live") == 0
                         : f == 1 ? x->players
                         : f == 2 ? x->bytes_in
                                  : x->bytes_out;
            kb_text_add(t, "%s{stream=\"%s\"} %llu\n", fams[f].name, label(x->name, s, sizeof(s)),
                (unsigned long long)v);
        }
    }
    struct {
        const char *name, *type, *help;
    } dfams[] = {
        {"kebun_destination_up", "gauge", "1 while the push destination is live."},
        {"kebun_destination_sent_bytes_total", "counter", "Media bytes sent to the destination."},
        {"kebun_destination_reconnects_total", "counter", "Attempts after a failure."},
        {"kebun_destination_dropped_messages_total", "counter",
         "Messages skipped because the destination was too slow."},
    };
    for (size_t f = 0; f < sizeof(dfams) / sizeof(dfams[0]); f++) {
        family(t, dfams[f].name, dfams[f].type, dfams[f].help);
        for (uint32_t i = 0; i < st->n_streams; i++) {
            const struct kb_status_stream *x = &st->streams[i];
            for (uint32_t j = 0; j < x->n_dests; j++) {
                const struct kb_status_dest *y = &x->dests[j];
                uint64_t v = f == 0 ? strcmp(y->state, "live") == 0
                             : f == 1 ? y->bytes
                             : f == 2 ? y->reconnects
                                      : y->drops;
                kb_text_add(t, "%s{stream=\"%s\",destination=\"%s\"} %llu\n", dfams[f].name,
                    label(x->name, s, sizeof(s)), label(y->id, d, sizeof(d)),
                    (unsigned long long)v);
            }
        }
    }
    struct {
        const char *name, *help;
    } rfams[] = {
        {"kebun_recorder_written_bytes_total", "Bytes of recorded media written."},
        {"kebun_recorder_segments_total", "Recording segments completed."},
        {"kebun_recorder_failures_total", "Times a recording failed (disk full, I/O error)."},
        {"kebun_recorder_dropped_messages_total",
         "Messages the recorder's queue skipped because the disk was too slow."},
    };
    for (size_t f = 0; f < sizeof(rfams) / sizeof(rfams[0]); f++) {
        family(t, rfams[f].name, "counter", rfams[f].help);
        for (uint32_t i = 0; i < st->n_streams; i++) {
            const struct kb_status_stream *x = &st->streams[i];
            if (!x->rec.on)
                continue;
            uint64_t v = f == 0 ? x->rec.bytes_total
                         : f == 1 ? x->rec.segments_total
                         : f == 2 ? x->rec.failures_total
                                  : x->rec.dropped_total;
            kb_text_add(t, "%s{stream=\"%s\"} %llu\n", rfams[f].name, label(x->name, s, sizeof(s)),
                (unsigned long long)v);
        }
    }
}

int kb__metrics_serve(h2o_handler_t *self, h2o_req_t *req)
{
    struct kb_http *h = ((struct kb_handler_ctx *)self)->h;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        kb__send(req, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
        return 0;
    }
    struct kb_text t = {0};
    family(&t, "kebun_build_info", "gauge", "kebun's version (the value is always 1).");
    kb_text_add(&t, "kebun_build_info{version=\"%s\"} 1\n", KB_VERSION);
    family(&t, "kebun_process_resident_memory_bytes", "gauge", "Resident memory of the process.");
    kb_text_add(&t, "kebun_process_resident_memory_bytes %llu\n", (unsigned long long)rss_bytes());
    struct kb_status *st = kb_bridge_status(h->bridge);
    family(&t, "kebun_connections", "gauge", "Open RTMP connections (publishers, players, pushes).");
    kb_text_add(&t, "kebun_connections %llu\n", st ? (unsigned long long)st->connections : 0ull);
    family(&t, "kebun_http_connections", "gauge", "Open HTTP connections.");
    kb_text_add(&t, "kebun_http_connections %llu\n", (unsigned long long)h->n_conns);
    if (st)
        streams(&t, st);
    family(&t, "kebun_http_requests_total", "counter", "HTTP requests answered, by handler and "
                                                      "status code.");
    static const char *const handlers[KB_H_COUNT] = {"api", "metrics", "live", "recordings",
                                                      "pages"};
    for (int k = 0; k < KB_H_COUNT; k++)
        for (int c = 0; c < KB_CODES; c++) {
            if (!h->counts[k][c])
                continue;
            int code = kb__count_code(c);
            if (code)
                kb_text_add(&t, "kebun_http_requests_total{handler=\"%s\",code=\"%d\"} %llu\n",
                    handlers[k], code, (unsigned long long)h->counts[k][c]);
            else
                kb_text_add(&t, "kebun_http_requests_total{handler=\"%s\",code=\"other\"} %llu\n",
                    handlers[k], (unsigned long long)h->counts[k][c]);
        }
    if (st)
        kb_status_unref(st);
    if (t.oom) {
        kb_text_free(&t);
        kb__send(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return 0;
    }
    kb__send(req, 200, "text/plain; version=0.0.4; charset=utf-8", t.p, t.len);
    kb_text_free(&t);
    return 0;
}
