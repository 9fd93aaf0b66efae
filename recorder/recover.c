/* The start-up pass over every recording: what a crash, a kill or a
 * shutdown left behind is put right before the recorder takes new work.
 *
 *   - temp files that kebun's writers left when they died
 *     (kb__remove_temps): its own names only, and never one that a live
 *     writer (kebun --export beside us) still holds;
 *   - recordings a crash left open (meta.json without an end): the
 *     playlist gets EXT-X-ENDLIST, meta.json "interrupted" with the last
 *     segment's time as its end and the listed segments' duration and size;
 *   - finished recordings whose export is still due (export_pending, or an
 *     export's temp file was left): handed to the job thread's backlog.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int64_t mtime_ms(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    if (kb__pathf(path, sizeof(path), "%s/%s", dir, name) < 0 || stat(path, &st) < 0)
        return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Close a recording a crash left open. */
static void close_open(const struct kb__env *env, const char *stream, const char *dir,
                       const char *name, struct kb__meta *mp)
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
        kb__log(env, KB__ERROR, stream,
                "recording %s left open by a crash: cannot read its "
                "playlist (%s)",
                name, kb__strerror(err, ebuf, sizeof(ebuf)));
        return;
    }
    pl.ended = 1;
    if ((err = kb__pl_write(&pl, dir, kb__env_sync(env))) < 0) {
        kb__log(env, KB__ERROR, stream,
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
    m.export_pending = env->export_mp4 && pl.n > 0;
    if ((err = kb__meta_write(&m, dir, kb__env_sync(env))) < 0)
        kb__log(env, KB__ERROR, stream,
                "recording %s left open by a crash: cannot update "
                "meta.json (%s)",
                name, kb__strerror(err, ebuf, sizeof(ebuf)));
    else
        kb__log(env, KB__WARN, stream,
                "recording %s was left open by a crash: closed as "
                "interrupted (%u segments, %.1f s)",
                name, m.segments, (double)m.duration_ms / 1000.0);
    kb__pl_free(&pl);
    if (err == 0)
        *mp = m;
}

static void recover_one(const struct kb__env *env, struct kb__jobs *jobs, const char *stream,
                        const char *dir, const char *name)
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
        close_open(env, stream, dir, name, &m);
    if (!m.end_ms || m.exported || !m.segments)
        return;
    if (export_tmp && !m.export_pending) {
        /* Cut off by a crash of a kebun that did not say in meta.json that
         * an export was due. */
        m.export_pending = 1;
        kb__meta_write(&m, dir, kb__env_sync(env));
    }
    char rel[KB__REL_MAX];
    if (m.export_pending && env->export_mp4 &&
        kb__pathf(rel, sizeof(rel), "%s/%s", stream, name) == 0 &&
        kb__jobs_backlog(jobs, rel) < 0)
        kb__log(env, KB__ERROR, stream, "export of %s left for later (out of memory)", rel);
}

void kb__recover(const struct kb__env *env, struct kb__jobs *jobs)
{
    const char *root = env->root;
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
            recover_one(env, jobs, e->d_name, rdir, re->d_name);
        }
        closedir(sd);
    }
    closedir(d);
}
