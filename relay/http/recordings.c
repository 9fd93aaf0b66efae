/* The recordings as the API shows them: each recording's meta.json (the
 * recorder writes it atomically), with its id, whether it is being
 * recorded now, and the URLs of its files. Read from disk on the HTTP
 * thread, which may block; the relay loop never does. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "route.h"

#define META_MAX (256 * 1024) ///< a meta.json larger than this is not kebun's
#define LIST_MAX 10000        ///< recordings listed at most (newest first)

int kb__recording_live(const struct kb_status *st, const char *stream, const char *id)
{
    const struct kb_status_stream *s = kb_status_stream(st, stream);
    if (!s || !s->rec.on || !s->rec.path[0])
        return 0;
    char rel[KB_CONF_NAME_MAX + KB_ROUTE_ID_MAX + 2];
    snprintf(rel, sizeof(rel), "%s/%s", stream, id);
    return strcmp(s->rec.path, rel) == 0;
}

static cJSON *read_meta(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/meta.json", dir) >= (int)sizeof(path))
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    cJSON *doc = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < META_MAX &&
        (buf = malloc((size_t)st.st_size)) != NULL &&
        read(fd, buf, (size_t)st.st_size) == st.st_size)
        doc = cJSON_ParseWithLength(buf, (size_t)st.st_size);
    free(buf);
    close(fd);
    if (doc && !cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    return doc;
}

/* The recording's start (meta.json "start") in UTC ms, or 0. */
static int64_t start_ms(const cJSON *meta)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(meta, "start");
    struct tm tm = {0};
    if (!cJSON_IsString(s) || !strptime(s->valuestring, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

static void add_url(cJSON *urls, const char *k, const char *stream, const char *id,
                    const char *file, int present)
{
    char u[320];
    if (!present) {
        cJSON_AddNullToObject(urls, k);
        return;
    }
    if (file)
        snprintf(u, sizeof(u), "/rec/%s/%s/%s", stream, id, file);
    else
        snprintf(u, sizeof(u), "/replay/%s/%s", stream, id);
    cJSON_AddStringToObject(urls, k, u);
}

/* meta.json plus id, live and urls; NULL when the directory holds no
 * readable meta.json. */
static cJSON *summary(struct kb_http *h, const struct kb_status *st, const char *stream,
                      const char *id)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/%s/%s", h->recordings, stream, id) >= (int)sizeof(dir))
        return NULL;
    cJSON *m = read_meta(dir);
    if (!m)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(m, "id");
    cJSON_AddStringToObject(m, "id", id);
    /* The directory is the truth about which stream it belongs to. */
    cJSON_DeleteItemFromObjectCaseSensitive(m, "stream");
    cJSON_AddStringToObject(m, "stream", stream);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "live");
    cJSON_AddBoolToObject(m, "live", kb__recording_live(st, stream, id));
    const cJSON *thumb = cJSON_GetObjectItemCaseSensitive(m, "thumb");
    const cJSON *mp4 = cJSON_GetObjectItemCaseSensitive(m, "export");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "urls");
    cJSON *urls = cJSON_AddObjectToObject(m, "urls");
    if (urls) {
        add_url(urls, "page", stream, id, NULL, 1);
        add_url(urls, "playlist", stream, id, "index.m3u8", 1);
        add_url(urls, "mp4", stream, id, "recording.mp4", cJSON_IsString(mp4));
        add_url(urls, "thumb", stream, id, "thumb.jpg", cJSON_IsString(thumb));
    }
    return m;
}

cJSON *kb__recording_get(struct kb_http *h, const struct kb_status *st, const char *stream,
                         const char *id)
{
    return summary(h, st, stream, id);
}

struct found {
    int64_t start;
    cJSON *doc;
};

static int newest_first(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    return x->start < y->start ? 1 : x->start > y->start ? -1 : 0;
}

/* Every recording of one stream into *all. */
static void scan_stream(struct kb_http *h, const struct kb_status *st, const char *stream,
                        int64_t from, int64_t to, struct found **all, size_t *n, size_t *cap)
{
    char sdir[PATH_MAX];
    if (snprintf(sdir, sizeof(sdir), "%s/%s", h->recordings, stream) >= (int)sizeof(sdir))
        return;
    DIR *d = opendir(sdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && *n < LIST_MAX) {
        if (!kb_route_name_ok(e->d_name, strlen(e->d_name), KB_ROUTE_ID_MAX))
            continue;
        cJSON *doc = summary(h, st, stream, e->d_name);
        if (!doc)
            continue;
        int64_t t = start_ms(doc);
        if ((from && t < from) || (to && t > to)) {
            cJSON_Delete(doc);
            continue;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            struct found *f = realloc(*all, nc * sizeof(*f));
            if (!f) {
                cJSON_Delete(doc);
                break;
            }
            *all = f;
            *cap = nc;
        }
        (*all)[(*n)++] = (struct found){t, doc};
    }
    closedir(d);
}

cJSON *kb__recordings_list(struct kb_http *h, const struct kb_status *st, const char *stream,
                           int64_t from, int64_t to)
{
    struct found *all = NULL;
    size_t n = 0, cap = 0;
    if (stream[0]) {
        scan_stream(h, st, stream, from, to, &all, &n, &cap);
    } else {
        DIR *d = opendir(h->recordings);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL)
            if (kb_route_name_ok(e->d_name, strlen(e->d_name), KB_CONF_NAME_MAX))
                scan_stream(h, st, e->d_name, from, to, &all, &n, &cap);
        if (d)
            closedir(d);
    }
    if (n)
        qsort(all, n, sizeof(*all), newest_first);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (arr)
            cJSON_AddItemToArray(arr, all[i].doc);
        else
            cJSON_Delete(all[i].doc);
    }
    free(all);
    return arr;
}
