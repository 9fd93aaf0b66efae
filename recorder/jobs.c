/* The job thread: exports and retention passes, off the worker.
 *
 * A faststart export reads and rewrites a whole recording (gigabytes after
 * a long broadcast) and a retention pass deletes whole trees. On the worker
 * either would stall every stream's queue for as long as it takes, and the
 * queues would skip media. Here they run on a thread of their own, one at a
 * time and in order, so a deletion never races an export.
 *
 * What runs, first come first served:
 *   - exports: due when a recording ends, or asked for with
 *     kb_recorder_export; at most JOBS_MAX wait (past it a finished
 *     recording keeps "export_pending" in meta.json and the next start
 *     exports it);
 *   - retention passes, at most one queued per stream (a newer request
 *     only updates the limits).
 * Then, when nothing else waits, the backlog the recovery pass found at
 * start: finished recordings whose export a crash or a shutdown cut off.
 *
 * Neither ever touches a live recording: one without an end in meta.json,
 * or a stream's current directory (kb__env_live), is neither exported nor
 * deleted.
 *
 * At shutdown the recorder first waits, up to its shutdown timeout, for
 * the exports queued (kb__jobs_wait_exports: those of the recordings the
 * shutdown just finished included). Then no job starts any more, the
 * export in progress is cancelled (its temp file deleted, meta.json still
 * says export_pending) and queued requests fail with -ECANCELED. The next
 * start does the exports left.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS_MAX 64 ///< exports waiting at most

struct job {
    int export;                    ///< 1: export rel; 0: retention over the stream rel
    int remove;                    ///< delete the finished recording rel (the API's)
    char rel[KB__REL_MAX];         ///< "STREAM/RECORDING", or "STREAM"
    struct kb_recorder_limits lim; ///< retention
    void (*done)(void *ud, int err);
    void *ud;
    struct job *next;
};

struct kb__jobs {
    const struct kb__env *env;
    pthread_mutex_t lock;
    pthread_cond_t cond; ///< work arrived, or a job finished (kb__jobs_wait)
    pthread_t thread;
    int started;
    atomic_int cancel; ///< read by the export or retention pass in progress
    /* Under lock: */
    int stop;
    int running;
    int running_export; ///< the job running is an export from the queue (not the backlog)
    struct job *head, **tail;
    size_t exports; ///< export jobs queued
    char (*backlog)[KB__REL_MAX];
    size_t backlog_n, backlog_i, backlog_cap;
};

static void export_one(struct kb__jobs *j, const char *rel, int backlog,
                       void (*done)(void *ud, int err), void *ud)
{
    const struct kb__env *env = j->env;
    char dir[PATH_MAX], stream[KB__NAME_MAX + 1];
    snprintf(stream, sizeof(stream), "%.*s", (int)(strchr(rel, '/') - rel), rel);
    int err = kb__pathf(dir, sizeof(dir), "%s/%s", env->root, rel);
    if (err == 0 && kb__env_live(env, rel)) {
        err = -EBUSY;
        kb__log(env, KB__WARN, stream, "export of %s refused: it is being recorded", rel);
    } else if (err == 0) {
        if (backlog)
            kb__log(env, KB__INFO, stream, "exporting %s (left from the last run)", rel);
        err = kb__export_recording(env, dir, rel, stream, &j->cancel);
    }
    if (done)
        done(ud, err);
}

/* Delete one finished recording (asked for through the API), in turn with
 * the exports and retention passes, so that it never goes while one of
 * them reads it. A live one, or one without an end in meta.json, stays. */
static void delete_one(struct kb__jobs *j, const char *rel, void (*done)(void *ud, int err),
                       void *ud)
{
    const struct kb__env *env = j->env;
    char dir[PATH_MAX], stream[KB__NAME_MAX + 1];
    struct kb__meta m;
    snprintf(stream, sizeof(stream), "%.*s", (int)(strchr(rel, '/') - rel), rel);
    int err = kb__pathf(dir, sizeof(dir), "%s/%s", env->root, rel);
    if (err == 0 && kb__env_live(env, rel))
        err = -EBUSY;
    else if (err == 0 && (err = kb__meta_read(&m, dir)) == 0 && m.end_ms == 0)
        err = -EBUSY;
    if (err == 0)
        err = kb__rmtree(dir);
    if (err == 0)
        kb__log(env, KB__INFO, stream, "recording %s deleted through the API", rel);
    else if (err != -ENOENT && err != -EBUSY)
        kb__log(env, KB__ERROR, stream, "cannot delete recording %s (%s)", rel, strerror(-err));
    if (done)
        done(ud, err);
}

static void *run(void *arg)
{
    struct kb__jobs *j = arg;
    pthread_mutex_lock(&j->lock);
    while (!j->stop) {
        struct job *jb = j->head;
        if (jb) {
            j->head = jb->next;
            if (!j->head)
                j->tail = &j->head;
            j->exports -= jb->export;
            j->running = 1;
            j->running_export = jb->export;
            pthread_mutex_unlock(&j->lock);
            if (jb->export)
                export_one(j, jb->rel, 0, jb->done, jb->ud);
            else if (jb->remove)
                delete_one(j, jb->rel, jb->done, jb->ud);
            else
                kb__retention(j->env, jb->rel, &jb->lim, &j->cancel);
            free(jb);
        } else if (j->backlog_i < j->backlog_n) {
            char rel[KB__REL_MAX];
            memcpy(rel, j->backlog[j->backlog_i++], sizeof(rel));
            j->running = 1;
            pthread_mutex_unlock(&j->lock);
            export_one(j, rel, 1, NULL, NULL);
        } else {
            pthread_cond_wait(&j->cond, &j->lock);
            continue;
        }
        pthread_mutex_lock(&j->lock);
        j->running = j->running_export = 0;
        pthread_cond_broadcast(&j->cond);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

int kb__jobs_new(const struct kb__env *env, struct kb__jobs **out)
{
    *out = NULL;
    struct kb__jobs *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->env = env;
    j->tail = &j->head;
    /* Waits with a timeout measure on the monotonic clock (a shutdown's
     * wait must not stretch when the wall clock is set back). */
    pthread_condattr_t ca;
    int err = pthread_mutex_init(&j->lock, NULL);
    if (err) {
        free(j);
        return -err;
    }
    if ((err = pthread_condattr_init(&ca)) == 0) {
        err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!err)
            err = pthread_cond_init(&j->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (err) {
        pthread_mutex_destroy(&j->lock);
        free(j);
        return -err;
    }
    if ((err = pthread_create(&j->thread, NULL, run, j)) != 0) {
        kb__jobs_free(j);
        return -err;
    }
    j->started = 1;
    *out = j;
    return 0;
}

/* Queue jb, or say why not (the caller frees it then). With the lock. */
static int push_locked(struct kb__jobs *j, struct job *jb)
{
    int err = 0;
    if (j->stop) {
        err = -ESHUTDOWN;
    } else if (jb->export && j->exports >= JOBS_MAX) {
        err = -EAGAIN;
    } else {
        *j->tail = jb;
        j->tail = &jb->next;
        j->exports += jb->export;
        pthread_cond_broadcast(&j->cond);
    }
    return err;
}

/* Queue jb, or free it and say why not. Called without the lock. */
static int push(struct kb__jobs *j, struct job *jb)
{
    pthread_mutex_lock(&j->lock);
    int err = push_locked(j, jb);
    pthread_mutex_unlock(&j->lock);
    if (err)
        free(jb);
    return err;
}

int kb__jobs_export(struct kb__jobs *j, const char *rel, void (*done)(void *ud, int err), void *ud)
{
    if (!kb__recording_path_ok(rel))
        return -EINVAL;
    struct job *jb = calloc(1, sizeof(*jb));
    if (!jb)
        return -ENOMEM;
    jb->export = 1;
    snprintf(jb->rel, sizeof(jb->rel), "%s", rel);
    jb->done = done;
    jb->ud = ud;
    return push(j, jb);
}

int kb__jobs_delete(struct kb__jobs *j, const char *rel, void (*done)(void *ud, int err), void *ud)
{
    if (!kb__recording_path_ok(rel))
        return -EINVAL;
    struct job *jb = calloc(1, sizeof(*jb));
    if (!jb)
        return -ENOMEM;
    jb->remove = 1;
    snprintf(jb->rel, sizeof(jb->rel), "%s", rel);
    jb->done = done;
    jb->ud = ud;
    return push(j, jb);
}

int kb__jobs_retention(struct kb__jobs *j, const char *stream, const struct kb_recorder_limits *lim)
{
    int none = !lim->max_age_ms && !lim->max_bytes;
    struct job *jb = NULL;
    if (!none && !(jb = calloc(1, sizeof(*jb))))
        return -ENOMEM;
    /* One pass per stream: one already queued takes the newest limits,
     * including none at all (a reload that switched retention off must
     * not let an older pass delete anything). Search and insert under one
     * hold of the lock, so two threads cannot both queue one. */
    int err = 0;
    pthread_mutex_lock(&j->lock);
    struct job *q = j->head;
    while (q && (q->export || strcmp(q->rel, stream) != 0))
        q = q->next;
    if (q) {
        q->lim = *lim;
    } else if (jb) {
        snprintf(jb->rel, sizeof(jb->rel), "%s", stream);
        jb->lim = *lim;
        err = push_locked(j, jb);
        if (!err)
            jb = NULL;
    }
    pthread_mutex_unlock(&j->lock);
    free(jb);
    return err;
}

int kb__jobs_backlog(struct kb__jobs *j, const char *rel)
{
    if (!kb__recording_path_ok(rel))
        return -EINVAL;
    int err = 0;
    pthread_mutex_lock(&j->lock);
    if (j->backlog_n == j->backlog_cap) {
        size_t cap = j->backlog_cap ? 2 * j->backlog_cap : 16;
        char(*b)[KB__REL_MAX] = realloc(j->backlog, cap * sizeof(*b));
        if (b) {
            j->backlog = b;
            j->backlog_cap = cap;
        } else {
            err = -ENOMEM;
        }
    }
    if (!err) {
        snprintf(j->backlog[j->backlog_n++], KB__REL_MAX, "%s", rel);
        pthread_cond_broadcast(&j->cond);
    }
    pthread_mutex_unlock(&j->lock);
    return err;
}

void kb__jobs_wait(struct kb__jobs *j)
{
    pthread_mutex_lock(&j->lock);
    while (!j->stop && (j->head || j->running || j->backlog_i < j->backlog_n))
        pthread_cond_wait(&j->cond, &j->lock);
    pthread_mutex_unlock(&j->lock);
}

int kb__jobs_wait_exports(struct kb__jobs *j, uint32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int left, err = 0;
    pthread_mutex_lock(&j->lock);
    while ((left = !j->stop && (j->exports || j->running_export)) && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&j->cond, &j->lock, &until);
    pthread_mutex_unlock(&j->lock);
    return !left;
}

void kb__jobs_stop(struct kb__jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    atomic_store(&j->cancel, 1);
    pthread_cond_broadcast(&j->cond);
    struct job *q = j->head;
    j->head = NULL;
    j->tail = &j->head;
    j->exports = 0;
    pthread_mutex_unlock(&j->lock);
    if (j->started) {
        pthread_join(j->thread, NULL);
        j->started = 0;
    }
    while (q) {
        struct job *next = q->next;
        if (q->export) {
            char stream[KB__NAME_MAX + 1];
            snprintf(stream, sizeof(stream), "%.*s", (int)strcspn(q->rel, "/"), q->rel);
            kb__log(j->env, KB__INFO, stream, "export of %s left for the next start (shutting down)",
                    q->rel);
        }
        if (q->done)
            q->done(q->ud, -ECANCELED);
        free(q);
        q = next;
    }
}

void kb__jobs_free(struct kb__jobs *j)
{
    if (!j)
        return;
    kb__jobs_stop(j);
    free(j->backlog);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->lock);
    free(j);
}
