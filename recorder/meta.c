/* meta.json, the recording's index card, and the recovery pass.
 *
 * meta.json is rewritten (temp + rename) when a recording starts, after
 * every segment, on failure and resume, at the end, and when its export
 * completes. "end" stays null while the recording is open, which is how
 * the recovery pass at start-up knows a crash left it open: it closes the
 * playlist with EXT-X-ENDLIST and marks the recording "interrupted".
 * "export_pending" is true from the end of a recording (with export_mp4 on)
 * until its recording.mp4 is written, so an export that a crash or a
 * shutdown cut off is done at the next start.
 *
 * The recovery pass also deletes, in every recording, the temp files that
 * kebun's writers left when they died (kb__remove_temps): its own names
 * only, and never one that a live writer still holds.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static const char *const statuses[] = {"live", "complete", "interrupted", "failed"};

/* cJSON reports allocation failure by returning NULL from each Add; count
 * them instead of checking every line. */
static void add_str(cJSON *o, const char *k, const char *v, int *bad)
{
    if (!(v && v[0] ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)))
        (*bad)++;
}

static void add_num(cJSON *o, const char *k, double v, int *bad)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        (*bad)++;
}

int kb__meta_write(const struct kb__meta *m, const char *dir)
{
    char t0[32] = "", t1[32] = "", path[PATH_MAX];
    int bad = 0;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    kb__iso_time(m->start_ms, 0, t0, sizeof(t0));
    if (m->end_ms)
        kb__iso_time(m->end_ms, 0, t1, sizeof(t1));
    add_str(o, "stream", m->stream, &bad);
    add_str(o, "status", m->status, &bad);
    add_str(o, "start", t0, &bad);
    add_str(o, "end", t1, &bad);
    add_num(o, "duration", (double)m->duration_ms / 1000.0, &bad);
    add_str(o, "format", m->format == KB_REC_FMP4 ? "fmp4" : "mpegts", &bad);
    add_str(o, "playlist", "index.m3u8", &bad);
    cJSON *codecs = cJSON_AddObjectToObject(o, "codecs");
    if (codecs) {
        add_str(codecs, "video", m->vcodec, &bad);
        add_str(codecs, "audio", m->acodec, &bad);
    } else {
        bad++;
    }
    add_num(o, "width", m->width, &bad);
    add_num(o, "height", m->height, &bad);
    add_num(o, "sample_rate", m->sample_rate, &bad);
    add_num(o, "channels", m->channels, &bad);
    add_num(o, "bytes", (double)m->bytes, &bad);
    add_num(o, "segments", m->segments, &bad);
    add_num(o, "parts", m->parts, &bad);
    add_num(o, "dropped", (double)m->dropped, &bad);
    add_str(o, "last_error", m->last_error, &bad);
    add_str(o, "thumb", m->thumb ? "thumb.jpg" : NULL, &bad);
    add_str(o, "export", m->exported ? "recording.mp4" : NULL, &bad);
    if (!cJSON_AddBoolToObject(o, "export_pending", m->export_pending))
        bad++;
    char *text = bad ? NULL : cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return -ENOMEM;
    int err = 0;
    if (snprintf(path, sizeof(path), "%s/meta.json", dir) >= (int)sizeof(path))
        err = -ENAMETOOLONG;
    if (!err)
        err = kb__write_atomic(path, text, strlen(text));
    cJSON_free(text);
    return err;
}

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double get_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int kb__meta_read(struct kb__meta *m, const char *dir)
{
    memset(m, 0, sizeof(*m));
    char path[PATH_MAX], *text;
    size_t len;
    if (snprintf(path, sizeof(path), "%s/meta.json", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int err = kb__read_file(path, 1u << 20, &text, &len);
    if (err < 0)
        return err;
    cJSON *o = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    const char *s;
    snprintf(m->stream, sizeof(m->stream), "%s", (s = get_str(o, "stream")) ? s : "");
    m->status = NULL;
    if ((s = get_str(o, "status")))
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
            if (strcmp(s, statuses[i]) == 0)
                m->status = statuses[i];
    m->start_ms = kb__parse_iso(get_str(o, "start"));
    m->end_ms = (s = get_str(o, "end")) ? kb__parse_iso(s) : 0;
    if (m->end_ms < 0)
        m->end_ms = 0;
    m->duration_ms = (int64_t)(get_num(o, "duration") * 1000 + 0.5);
    m->format =
        (s = get_str(o, "format")) && strcmp(s, "mpegts") == 0 ? KB_REC_MPEGTS : KB_REC_FMP4;
    const cJSON *codecs = cJSON_GetObjectItemCaseSensitive(o, "codecs");
    snprintf(m->vcodec, sizeof(m->vcodec), "%s", (s = get_str(codecs, "video")) ? s : "");
    snprintf(m->acodec, sizeof(m->acodec), "%s", (s = get_str(codecs, "audio")) ? s : "");
    m->width = (int)get_num(o, "width");
    m->height = (int)get_num(o, "height");
    m->sample_rate = (int)get_num(o, "sample_rate");
    m->channels = (int)get_num(o, "channels");
    m->bytes = (uint64_t)get_num(o, "bytes");
    m->segments = (uint32_t)get_num(o, "segments");
    m->parts = (uint32_t)get_num(o, "parts");
    m->dropped = (uint64_t)get_num(o, "dropped");
    snprintf(m->last_error, sizeof(m->last_error), "%s", (s = get_str(o, "last_error")) ? s : "");
    m->thumb = get_str(o, "thumb") != NULL;
    m->exported = get_str(o, "export") != NULL;
    m->export_pending = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "export_pending"));
    cJSON_Delete(o);
    return m->status ? 0 : -EINVAL;
}

static int64_t mtime_ms(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    if (kb__pathf(path, sizeof(path), "%s/%s", dir, name) < 0 || stat(path, &st) < 0)
        return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Close a recording a crash left open. */
static void close_open(struct kb_recorder *r, const char *stream, const char *dir, const char *name,
                       struct kb__meta *mp)
{
    struct kb__meta m = *mp;
    struct kb__playlist pl;
    int err = kb__pl_read(&pl, dir);
    if (err == -ENOENT) {
        memset(&pl, 0, sizeof(pl));
        pl.format = m.format;
        err = 0;
    }
    char ebuf[128];
    if (err < 0) {
        kb__log(r, KB__ERROR, stream,
                "recording %s left open by a crash: cannot read its "
                "playlist (%s)",
                name, kb__strerror(err, ebuf, sizeof(ebuf)));
        return;
    }
    pl.ended = 1;
    if ((err = kb__pl_write(&pl, dir)) < 0) {
        kb__log(r, KB__ERROR, stream,
                "recording %s left open by a crash: cannot close its "
                "playlist (%s)",
                name, kb__strerror(err, ebuf, sizeof(ebuf)));
        kb__pl_free(&pl);
        return;
    }
    m.end_ms = mtime_ms(dir, "index.m3u8");
    int64_t mt = mtime_ms(dir, "meta.json");
    /* The playlist was just rewritten; the last segment dates the end. */
    if (pl.n) {
        int64_t seg = mtime_ms(dir, pl.e[pl.n - 1].name);
        if (seg)
            m.end_ms = seg;
    } else if (mt) {
        m.end_ms = mt;
    }
    if (m.end_ms < m.start_ms)
        m.end_ms = m.start_ms;
    m.duration_ms = kb__pl_duration_ms(&pl);
    m.segments = (uint32_t)pl.n;
    m.bytes = 0;
    for (size_t i = 0; i < pl.n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (kb__pathf(path, sizeof(path), "%s/%s", dir, pl.e[i].name) == 0 && stat(path, &st) == 0)
            m.bytes += (uint64_t)st.st_size;
    }
    m.status = "interrupted";
    m.export_pending = kb__conf(r)->export_mp4 && pl.n > 0;
    if ((err = kb__meta_write(&m, dir)) < 0)
        kb__log(r, KB__ERROR, stream,
                "recording %s left open by a crash: cannot update "
                "meta.json (%s)",
                name, kb__strerror(err, ebuf, sizeof(ebuf)));
    else
        kb__log(r, KB__WARN, stream,
                "recording %s was left open by a crash: closed as "
                "interrupted (%u segments, %.1f s)",
                name, m.segments, (double)m.duration_ms / 1000.0);
    kb__pl_free(&pl);
    if (err == 0)
        *mp = m;
}

static void recover_one(struct kb_recorder *r, const char *stream, const char *dir,
                        const char *name)
{
    int export_tmp = 0;
    kb__remove_temps(dir, &export_tmp);
    char path[PATH_MAX];
    if (kb__pathf(path, sizeof(path), "%s/thumbs", dir) == 0)
        kb__remove_temps(path, NULL);
    struct kb__meta m;
    if (kb__meta_read(&m, dir) < 0)
        return;
    if (!m.end_ms)
        close_open(r, stream, dir, name, &m);
    if (!m.end_ms || m.exported || !m.segments)
        return;
    if (export_tmp && !m.export_pending) {
        /* Cut off by a crash of a kebun that did not say in meta.json that
         * an export was due. */
        m.export_pending = 1;
        kb__meta_write(&m, dir);
    }
    char rel[2 * KB__NAME_MAX + 2];
    if (m.export_pending && kb__conf(r)->export_mp4 &&
        kb__pathf(rel, sizeof(rel), "%s/%s", stream, name) == 0 &&
        kb__jobs_backlog(kb__jobs(r), rel) < 0)
        kb__log(r, KB__ERROR, stream, "export of %s left for later (out of memory)", rel);
}

void kb__recover(struct kb_recorder *r)
{
    const char *root = kb__conf(r)->dir;
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!kb__name_ok(e->d_name))
            continue;
        char sdir[PATH_MAX];
        if (snprintf(sdir, sizeof(sdir), "%s/%s", root, e->d_name) >= (int)sizeof(sdir))
            continue;
        DIR *sd = opendir(sdir);
        if (!sd)
            continue;
        struct dirent *re;
        while ((re = readdir(sd))) {
            char rdir[PATH_MAX];
            if (!kb__name_ok(re->d_name) ||
                snprintf(rdir, sizeof(rdir), "%s/%s", sdir, re->d_name) >= (int)sizeof(rdir))
                continue;
            recover_one(r, e->d_name, rdir, re->d_name);
        }
        closedir(sd);
    }
    closedir(d);
}
