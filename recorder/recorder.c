/* The recorder's front: stream handles, the worker thread that drains their
 * queues, status snapshots, and the job thread's start and stop.
 *
 * The loop thread never waits on the recorder. Each stream has a
 * single-producer/single-consumer queue (queue.c): kb_recorder_stream_msg
 * asks the keyframe gate (relay/rtmp/gate.h, the rule every bounded media
 * queue in kebun follows) whether the message fits under record_queue,
 * takes a reference and appends it, with no lock and no system call. Past
 * the bound the stream skips to its next keyframe (setup messages always
 * get through, the muxer needs them) and counts what it skipped; where the
 * skip ends, a KB__IT_SKIP item tells the recording to close the segment
 * there. Control items (begin, gap, end, new limits) travel in the same
 * queue, in order, and are never dropped (a reserve block covers them when
 * memory is short).
 *
 * The worker sleeps on a semaphore with a periodic tick: media waits for
 * the next tick unless a stream has WAKE_BYTES waiting, control items wake
 * it at once (sem_post never blocks). One worker serves every stream, a
 * batch at a time each, so a busy stream cannot starve a quiet one.
 * Exports and retention passes, which can take minutes, run on the job
 * thread (jobs.c), so that the worker only ever waits for the writes of the
 * media it is given.
 *
 * Status snapshots are the only thing the loop thread reads under a lock:
 * a short per-stream one, taken by the worker after each batch. The list of
 * streams only grows; it is published with a release store, so the worker
 * and the job thread walk it without a lock (adding takes one, rarely).
 */
#include "internal.h"

#include <errno.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay/rtmp/gate.h"

#define BATCH 64 ///< items the worker takes from one stream before the next

/* The worker drains the queues every TICK_MS, or at once when a stream
 * has WAKE_BYTES waiting or is told something other than media. Recording
 * is not latency-sensitive; batching a tick's messages keeps the cost per
 * message to a few atomic operations. */
#define TICK_MS 100
#define WAKE_BYTES (1024 * 1024)

struct kb_recorder_stream {
    struct kb_recorder *r;
    char name[KB__NAME_MAX + 1];
    struct kb__queue q;
    /* The producer (loop thread) only: */
    struct kb_gate gate;
    int nomem; ///< the last message found no memory: the next one starts a skip
    /* Written by the producer, read anywhere: */
    atomic_uint_least64_t drops;     ///< the gate's drop counter
    atomic_uint_least64_t drop_base; ///< its value when the broadcast began
    atomic_int wake_pending;         ///< a wake-up for its bytes is posted, not yet served
    /* The worker only: */
    struct kb__recording *rec;
    struct kb_recorder_limits limits;
    /* Under st_lock: */
    pthread_mutex_t st_lock;
    struct kb_recorder_status st;
    struct kb_recorder_stream *next; ///< set before the stream is published, then never
};

struct kb_recorder {
    struct kb__env env;
    char *dir;
    uint64_t queue_bytes;
    atomic_uint shutdown_timeout_ms;
    sem_t wake;
    int sem_ok;
    pthread_t thread;
    int started;
    struct kb__jobs *jobs;
    atomic_int stop;
    atomic_int hold;
    pthread_mutex_t list_lock; ///< held to add a stream
    _Atomic(struct kb_recorder_stream *) streams;
};

static struct kb_recorder_stream *first_stream(struct kb_recorder *r)
{
    return atomic_load_explicit(&r->streams, memory_order_acquire);
}

/* env.live: asked by the job thread before it exports or deletes. */
static int is_live(void *ud, const char *rel)
{
    struct kb_recorder *r = ud;
    int live = 0;
    for (struct kb_recorder_stream *s = first_stream(r); s && !live; s = s->next) {
        pthread_mutex_lock(&s->st_lock);
        live = s->st.dir[0] && strcmp(s->st.dir, rel) == 0;
        pthread_mutex_unlock(&s->st_lock);
    }
    return live;
}

/* ---- the loop thread's side ------------------------------------------- */

static const char *kind_name(int kind)
{
    switch (kind) {
    case KB__IT_BEGIN:
        return "begin";
    case KB__IT_GAP:
        return "gap";
    case KB__IT_END:
        return "end";
    case KB__IT_LIMITS:
        return "limits";
    }
    return "skip";
}

/* A control item: always queued (a reserve block covers a failed malloc)
 * and the worker is woken for it. */
static void push_control(struct kb_recorder_stream *s, const struct kb__item *it)
{
    if (kb__queue_push(&s->q, it, 1) < 0)
        kb__log(&s->r->env, KB__ERROR, s->name, "recorder lost a %s event (out of memory)",
                kind_name(it->kind));
    sem_post(&s->r->wake);
}

void kb_recorder_stream_limits(struct kb_recorder_stream *s, const struct kb_recorder_limits *lim)
{
    static const struct kb_recorder_limits none;
    if (s)
        push_control(s, &(struct kb__item){.kind = KB__IT_LIMITS, .lim = lim ? *lim : none});
}

void kb_recorder_stream_begin(struct kb_recorder_stream *s)
{
    if (!s)
        return;
    kb_gate_forget(&s->gate);
    s->nomem = 0;
    atomic_store_explicit(&s->drop_base, s->gate.drops, memory_order_relaxed);
    push_control(s, &(struct kb__item){.kind = KB__IT_BEGIN,
                                       .ev = {.wall = kb__wall_ms(), .drops = s->gate.drops}});
}

void kb_recorder_stream_gap(struct kb_recorder_stream *s)
{
    if (s)
        push_control(s, &(struct kb__item){.kind = KB__IT_GAP});
}

void kb_recorder_stream_end(struct kb_recorder_stream *s)
{
    if (s)
        push_control(s, &(struct kb__item){.kind = KB__IT_END, .ev = {.drops = s->gate.drops}});
}

void kb_recorder_stream_msg(struct kb_recorder_stream *s, struct kb_msg *m)
{
    if (!s || (m->type != KB_MSG_AUDIO && m->type != KB_MSG_VIDEO))
        return;
    struct kb_recorder *r = s->r;
    uint64_t queued = kb__queue_bytes(&s->q);
    /* Past the item bound (a flood of tiny messages), or right after
     * memory ran out, the queue counts as full: the gate skips to the next
     * keyframe that fits. */
    int nomem = s->nomem;
    if (nomem || kb__queue_items(&s->q) >= KB__QUEUE_ITEMS_MAX)
        queued = UINT64_MAX;
    s->nomem = 0;
    unsigned ev;
    int pass = kb_gate_admit(&s->gate, m, queued, r->queue_bytes, &ev);
    atomic_store_explicit(&s->drops, s->gate.drops, memory_order_relaxed);
    if ((ev & KB_GATE_EV_SKIP) && !nomem) /* out of memory was said already */
        kb__log(&r->env, KB__WARN, s->name,
                "recorder queue full (%llu bytes wait for the disk): "
                "skipping to the next keyframe",
                (unsigned long long)kb__queue_bytes(&s->q));
    if (!pass)
        return;
    if (ev & KB_GATE_EV_RESUME) {
        /* The SKIP item goes first: it closes the segment where the media
         * written before the hole ends. */
        if (kb__queue_push(&s->q, &(struct kb__item){.kind = KB__IT_SKIP,
                                                      .ev = {.drops = s->gate.drops}},
                           1) < 0)
            kb__log(&r->env, KB__ERROR, s->name, "recorder lost a skip event (out of memory)");
        kb__log(&r->env, KB__INFO, s->name,
                "recorder queue: resumed at a keyframe after skipping %llu messages",
                (unsigned long long)s->gate.run);
    }
    struct kb__item it = {.kind = KB__IT_MSG, .m = kb_msg_ref(m)};
    if (kb__queue_push(&s->q, &it, 0) < 0) {
        kb_msg_unref(m);
        s->nomem = 1;
        kb__log(&r->env, KB__ERROR, s->name,
                "recorder skipped a message (out of memory): skipping to the next keyframe");
        return;
    }
    /* Media waits for the worker's next tick unless a lot has piled up:
     * waking it for every frame would cost a system call and a context
     * switch per message on both threads. */
    if (kb__queue_bytes(&s->q) >= WAKE_BYTES &&
        !atomic_exchange_explicit(&s->wake_pending, 1, memory_order_relaxed))
        sem_post(&r->wake);
}

void kb_recorder_stream_status(struct kb_recorder_stream *s, struct kb_recorder_status *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    pthread_mutex_lock(&s->st_lock);
    *out = s->st;
    pthread_mutex_unlock(&s->st_lock);
    out->dropped = atomic_load_explicit(&s->drops, memory_order_relaxed) -
                   atomic_load_explicit(&s->drop_base, memory_order_relaxed);
}

/* ---- the worker's side ------------------------------------------------- */

/* Post the recording's state into the stream's snapshot. */
static void post_status(struct kb_recorder_stream *s)
{
    pthread_mutex_lock(&s->st_lock);
    kb__recording_status(s->rec, &s->st);
    pthread_mutex_unlock(&s->st_lock);
}

/* A recording ended: once its snapshot says it is no longer live, the job
 * thread may export it and apply the stream's retention limits (not once
 * the recorder is stopping: a stop deletes nothing). */
static void ended(struct kb_recorder_stream *s, const struct kb__recording_done *d)
{
    struct kb_recorder *r = s->r;
    char ebuf[96];
    post_status(s);
    int err = d->export ? kb__jobs_export(r->jobs, d->rel, NULL, NULL) : 0;
    if (err < 0)
        kb__log(&r->env, err == -ESHUTDOWN ? KB__INFO : KB__WARN, s->name,
                "export of %s left for the next start (%s)", d->rel,
                err == -ESHUTDOWN ? "shutting down"
                : err == -EAGAIN  ? "too many exports waiting"
                                  : kb__strerror(err, ebuf, sizeof(ebuf)));
    if (!atomic_load(&r->stop))
        kb__jobs_retention(r->jobs, s->name, &s->limits);
}

static void run_item(struct kb_recorder_stream *s, struct kb__item *it)
{
    struct kb__recording_done done;
    switch (it->kind) {
    case KB__IT_MSG:
        kb__recording_msg(s->rec, it->m);
        kb_msg_unref(it->m);
        break;
    case KB__IT_BEGIN:
        /* A new broadcast while one is open (no end came): end that one. */
        kb__recording_end(s->rec, it->ev.drops, &done);
        if (done.rel[0])
            ended(s, &done);
        kb__recording_begin(s->rec, it->ev.wall, it->ev.drops);
        break;
    case KB__IT_GAP:
        kb__recording_gap(s->rec);
        break;
    case KB__IT_SKIP:
        kb__recording_skip(s->rec, it->ev.drops);
        break;
    case KB__IT_END:
        kb__recording_end(s->rec, it->ev.drops, &done);
        if (done.rel[0])
            ended(s, &done);
        break;
    case KB__IT_LIMITS:
        s->limits = it->lim;
        kb__jobs_retention(s->r->jobs, s->name, &s->limits);
        break;
    }
}

/* Deal with up to BATCH of the stream's items; returns how many. */
static uint32_t drain(struct kb_recorder_stream *s)
{
    struct kb__item it;
    uint32_t n = 0;
    atomic_store_explicit(&s->wake_pending, 0, memory_order_relaxed);
    while (n < BATCH && kb__queue_take(&s->q, &it)) {
        run_item(s, &it);
        n++;
    }
    if (n) {
        post_status(s);
        kb__queue_done(&s->q, n);
    }
    return n;
}

static void sleep_tick(struct kb_recorder *r)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(&r->wake, &until) < 0 && errno == EINTR)
        ;
}

static void *worker(void *arg)
{
    struct kb_recorder *r = arg;
    for (;;) {
        int stop = atomic_load(&r->stop);
        int more = 0;
        if (stop || !atomic_load(&r->hold))
            for (struct kb_recorder_stream *s = first_stream(r); s; s = s->next)
                more |= drain(s) == BATCH;
        if (more)
            continue;
        if (stop)
            break;
        sleep_tick(r);
    }
    /* Queues are drained; close what is still open. Its export is queued:
     * kb_recorder_free waits for it up to the shutdown timeout. */
    for (struct kb_recorder_stream *s = first_stream(r); s; s = s->next) {
        struct kb__recording_done done;
        kb__recording_end(s->rec, atomic_load(&s->drops), &done);
        if (done.rel[0])
            ended(s, &done);
    }
    return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

int kb_recorder_new(const struct kb_recorder_conf *conf, struct kb_recorder **out)
{
    *out = NULL;
    if (!conf || !conf->dir || !conf->dir[0])
        return -EINVAL;
    struct kb_recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int err = -ENOMEM;
    if (!(r->dir = strdup(conf->dir)))
        goto fail;
    for (size_t n = strlen(r->dir); n > 1 && r->dir[n - 1] == '/'; n--)
        r->dir[n - 1] = 0;
    r->env = (struct kb__env){
        .root = r->dir,
        .segment_ms = conf->segment_ms ? conf->segment_ms : 4000,
        .format = conf->format,
        .thumb_interval_ms = conf->thumb_interval_ms,
        .export_mp4 = conf->export_mp4,
        .log = conf->log,
        .live = is_live,
        .live_ud = r,
    };
    atomic_init(&r->env.fsync, (int)conf->fsync);
    atomic_init(&r->shutdown_timeout_ms, conf->shutdown_timeout_ms);
    atomic_init(&r->streams, NULL);
    r->queue_bytes = conf->queue_bytes ? conf->queue_bytes : 64u << 20;
    if ((err = -pthread_mutex_init(&r->list_lock, NULL)) < 0)
        goto fail;
    if (sem_init(&r->wake, 0, 0) < 0) {
        err = -errno;
        pthread_mutex_destroy(&r->list_lock);
        goto fail;
    }
    r->sem_ok = 1;
    /* The job thread first: recovery hands it the exports left to do. */
    if ((err = kb__jobs_new(&r->env, &r->jobs)) < 0) {
        kb_recorder_free(r);
        return err;
    }
    char ebuf[96];
    if ((err = kb__mkdir_p(r->dir)) < 0)
        kb__log(&r->env, KB__ERROR, NULL,
                "recordings directory %s cannot be created (%s); "
                "recordings will fail until it can",
                r->dir, kb__strerror(err, ebuf, sizeof(ebuf)));
    else
        kb__recover(&r->env, r->jobs);
    if ((err = pthread_create(&r->thread, NULL, worker, r)) != 0) {
        kb_recorder_free(r);
        return -err;
    }
    r->started = 1;
    *out = r;
    return 0;
fail:
    free(r->dir);
    free(r);
    return err;
}

void kb_recorder_reload(struct kb_recorder *r, enum kb_recorder_fsync fsync,
                        uint32_t shutdown_timeout_ms)
{
    if (!r)
        return;
    atomic_store(&r->env.fsync, (int)fsync);
    atomic_store(&r->shutdown_timeout_ms, shutdown_timeout_ms);
}

/* At shutdown, the exports of the recordings just finished (and any
 * queued before) get up to the shutdown timeout; what is left is cancelled
 * and stays due in its meta.json. */
static void wait_exports(struct kb_recorder *r)
{
    uint32_t ms = atomic_load(&r->shutdown_timeout_ms);
    if (!ms || kb__jobs_wait_exports(r->jobs, 0))
        return;
    kb__log(&r->env, KB__INFO, NULL, "shutdown: waiting up to %.1f s for exports to finish",
            ms / 1000.0);
    if (!kb__jobs_wait_exports(r->jobs, ms))
        kb__log(&r->env, KB__WARN, NULL,
                "shutdown: exports still running after %.1f s (shutdown_timeout): "
                "left for the next start",
                ms / 1000.0);
}

void kb_recorder_free(struct kb_recorder *r)
{
    if (!r)
        return;
    if (r->started) {
        atomic_store(&r->stop, 1);
        sem_post(&r->wake);
        pthread_join(r->thread, NULL);
        wait_exports(r);
    }
    kb__jobs_stop(r->jobs);
    struct kb_recorder_stream *s = first_stream(r);
    while (s) {
        struct kb_recorder_stream *next = s->next;
        kb__queue_destroy(&s->q);
        kb__recording_free(s->rec);
        pthread_mutex_destroy(&s->st_lock);
        free(s);
        s = next;
    }
    kb__jobs_free(r->jobs);
    if (r->sem_ok) {
        sem_destroy(&r->wake);
        pthread_mutex_destroy(&r->list_lock);
    }
    free(r->dir);
    free(r);
}

/* A name as it may be logged: control characters shown as '?', cut short. */
static void loggable(const char *name, char *buf, size_t n)
{
    size_t i = 0;
    for (; name[i] && i + 1 < n; i++)
        buf[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
    buf[i] = 0;
}

static struct kb_recorder_stream *find(struct kb_recorder *r, const char *name)
{
    for (struct kb_recorder_stream *s = first_stream(r); s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static struct kb_recorder_stream *stream_new(struct kb_recorder *r, const char *name)
{
    struct kb_recorder_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->r = r;
    snprintf(s->name, sizeof(s->name), "%s", name);
    kb_gate_init(&s->gate, 0);
    atomic_init(&s->drops, 0);
    atomic_init(&s->drop_base, 0);
    atomic_init(&s->wake_pending, 0);
    if (pthread_mutex_init(&s->st_lock, NULL) != 0) {
        free(s);
        return NULL;
    }
    if (kb__queue_init(&s->q) < 0 || kb__recording_new(&r->env, name, &s->rec) < 0) {
        kb__queue_destroy(&s->q);
        pthread_mutex_destroy(&s->st_lock);
        free(s);
        return NULL;
    }
    kb__recording_status(s->rec, &s->st);
    return s;
}

struct kb_recorder_stream *kb_recorder_stream_get(struct kb_recorder *r, const char *name)
{
    if (!r || !name)
        return NULL;
    if (!kb__name_ok(name)) {
        char shown[KB__NAME_MAX + 8];
        loggable(name, shown, sizeof(shown));
        kb__log(&r->env, KB__ERROR, NULL,
                "stream name \"%s\" refused for recording (empty, \".\", "
                "\"..\", a slash, a control character or over %d bytes)",
                shown, KB__NAME_MAX);
        return NULL;
    }
    pthread_mutex_lock(&r->list_lock);
    struct kb_recorder_stream *s = find(r, name);
    if (!s && (s = stream_new(r, name)) != NULL) {
        s->next = first_stream(r);
        atomic_store_explicit(&r->streams, s, memory_order_release);
    }
    pthread_mutex_unlock(&r->list_lock);
    if (!s)
        kb__log(&r->env, KB__ERROR, name, "recording disabled (out of memory)");
    return s;
}

int kb_recorder_export(struct kb_recorder *r, const char *recording,
                       void (*done)(void *ud, int err), void *ud)
{
    if (!r || !kb__recording_path_ok(recording))
        return -EINVAL;
    return kb__jobs_export(r->jobs, recording, done, ud);
}

int kb_recorder_delete(struct kb_recorder *r, const char *recording,
                       void (*done)(void *ud, int err), void *ud)
{
    if (!r || !kb__recording_path_ok(recording))
        return -EINVAL;
    return kb__jobs_delete(r->jobs, recording, done, ud);
}

int kb_recorder_export_dir(const char *dir, kb_recorder_log_fn log)
{
    /* No recorder: an environment with a log, where nothing is live. */
    struct kb__env env = {.root = "", .log = log};
    char path[PATH_MAX];
    if (!realpath(dir, path))
        return -errno;
    char *name = strrchr(path, '/');
    if (!name || name == path)
        return -EINVAL;
    *name = '\0';
    char stream[KB__NAME_MAX + 1], rel[KB__REL_MAX];
    snprintf(stream, sizeof(stream), "%.*s", KB__NAME_MAX,
             strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    snprintf(rel, sizeof(rel), "%s/%.*s", stream, KB__NAME_MAX, name + 1);
    *name = '/';
    return kb__export_recording(&env, path, rel, stream, NULL);
}

/* ---- for tests --------------------------------------------------------- */

void kb__recorder_hold(struct kb_recorder *r, int hold)
{
    atomic_store(&r->hold, hold);
    sem_post(&r->wake);
}

uint64_t kb__recorder_stream_queued(struct kb_recorder_stream *s)
{
    return kb__queue_bytes(&s->q);
}

int kb__recorder_stream_idle(struct kb_recorder_stream *s)
{
    return kb__queue_idle(&s->q);
}

void kb__recorder_wait_jobs(struct kb_recorder *r)
{
    kb__jobs_wait(r->jobs);
}
