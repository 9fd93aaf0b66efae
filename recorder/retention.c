/* Retention: keep a stream's recordings under an age and a total size by
 * deleting whole recordings, oldest first. Only finished recordings (with
 * an end in meta.json) are ever deleted; the live one and directories that
 * are not recordings kebun can read are left alone, but still count
 * towards the size. Directory names are UTC start times, so their order is
 * the recordings' order. Runs on the job thread, which also runs the
 * exports, one job at a time: a recording being exported is never deleted
 * under it.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec_item {
    char name[KB__NAME_MAX + 1];
    int64_t end_ms;
    int64_t bytes;
    int finished;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct rec_item *)a)->name, ((const struct rec_item *)b)->name);
}

void kb__retention(const struct kb__env *env, const char *stream,
                   const struct kb_recorder_limits *lim, const atomic_int *cancel)
{
    if (!lim->max_age_ms && !lim->max_bytes)
        return;
    char sdir[PATH_MAX], rdir[PATH_MAX];
    if (snprintf(sdir, sizeof(sdir), "%s/%s", env->root, stream) >= (int)sizeof(sdir))
        return;
    DIR *d = opendir(sdir);
    if (!d)
        return;
    struct rec_item *items = NULL;
    size_t n = 0, cap = 0;
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!kb__name_ok(e->d_name) ||
            snprintf(rdir, sizeof(rdir), "%s/%s", sdir, e->d_name) >= (int)sizeof(rdir))
            continue;
        int64_t bytes = kb__du(rdir);
        if (bytes < 0)
            continue;
        total += bytes;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct rec_item *p = realloc(items, ncap * sizeof(*p));
            if (!p) {
                kb__log(env, KB__ERROR, stream, "retention skipped (out of memory)");
                goto out;
            }
            items = p;
            cap = ncap;
        }
        struct rec_item *it = &items[n++];
        memcpy(it->name, e->d_name, strlen(e->d_name) + 1); /* kb__name_ok: fits */
        it->bytes = bytes;
        struct kb__meta m;
        it->finished =
            kb__meta_read(&m, rdir) == 0 && m.end_ms > 0 && strcmp(m.status, "live") != 0;
        it->end_ms = it->finished ? m.end_ms : 0;
    }
    qsort(items, n, sizeof(*items), by_name);
    int64_t now = kb__wall_ms();
    for (size_t i = 0; i < n; i++) {
        struct rec_item *it = &items[i];
        if (cancel && atomic_load(cancel))
            break;
        char rel[KB__REL_MAX];
        snprintf(rel, sizeof(rel), "%s/%s", stream, it->name);
        /* Asked now, not when the list was made: a stream may have begun
         * a recording meanwhile (its meta.json has no end either). */
        if (!it->finished || kb__env_live(env, rel))
            continue;
        char why[96];
        if (lim->max_age_ms && now - it->end_ms > (int64_t)lim->max_age_ms)
            snprintf(why, sizeof(why), "ended %.1f h ago, limit %.1f h",
                     (double)(now - it->end_ms) / 3.6e6, (double)lim->max_age_ms / 3.6e6);
        else if (lim->max_bytes && total > (int64_t)lim->max_bytes)
            snprintf(why, sizeof(why), "stream uses %.1f MB, limit %.1f MB", (double)total / 1e6,
                     (double)lim->max_bytes / 1e6);
        else
            continue;
        char ebuf[128];
        int err = kb__pathf(rdir, sizeof(rdir), "%s/%s", sdir, it->name);
        if (!err)
            err = kb__rmtree(rdir);
        if (err < 0) {
            kb__log(env, KB__ERROR, stream, "retention could not delete recording %s (%s)", it->name,
                    kb__strerror(err, ebuf, sizeof(ebuf)));
            continue;
        }
        total -= it->bytes;
        kb__log(env, KB__INFO, stream, "retention deleted recording %s (%.1f MB; %s)", it->name,
                (double)it->bytes / 1e6, why);
    }
out:
    closedir(d);
    free(items);
}
