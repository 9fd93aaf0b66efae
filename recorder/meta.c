/* meta.json, the recording's index card.
 *
 * meta.json is rewritten (temp + rename) when a recording starts, after
 * every segment, on failure and resume, at the end, and when its export
 * completes. "end" stays null while the recording is open, which is how
 * the recovery pass at start-up (recover.c) knows a crash left it open.
 * "export_pending" is true from the end of a recording (with export_mp4 on)
 * until its recording.mp4 is written, so an export that a crash or a
 * shutdown cut off is done at the next start.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int kb__meta_write(const struct kb__meta *m, const char *dir, int sync)
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
    add_str(o, "format", m->format == KB_RECORDER_FMP4 ? "fmp4" : "mpegts", &bad);
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
        err = kb__write_atomic(path, text, strlen(text), sync);
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
        (s = get_str(o, "format")) && strcmp(s, "mpegts") == 0 ? KB_RECORDER_MPEGTS : KB_RECORDER_FMP4;
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
