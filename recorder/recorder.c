/* The recorder's front: per-stream queues filled on the loop thread and one
 * worker thread that drains them.
 *
 * The loop thread never waits on disk. kb_rec_msg takes the recorder's
 * mutex only to append a pointer to a ring; the worker takes it only to
 * move a batch of pointers out, so neither holds it across any I/O. Each
 * queue is bounded by the payload bytes it references: past the bound the
 * stream skips to its next keyframe (sequence headers always get through,
 * the muxer needs them) and counts what it skipped.
 *
 * One worker serves every stream, round-robin, a batch at a time, so a busy
 * stream cannot starve a quiet one. Exports and retention passes, which
 * can take minutes, run on the job thread (jobs.c) so that the worker only
 * ever waits for the writes of the media it is given.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64
#define SPARE 8 ///< ring slots kept free for begin/gap/end

enum item_kind {
    IT_MSG,
    IT_BEGIN,
    IT_GAP,
    IT_END,
    IT_SKIP, ///< the queue skipped media before the next item
};

struct item {
    uint8_t kind;
    int64_t wall;   ///< IT_BEGIN: when the broadcast began
    uint64_t drops; ///< IT_BEGIN, IT_END: the stream's drop counter then
    struct kb_msg *m;
};

struct kb_rec_stream {
    struct kb_recorder *r;
    char name[KB__NAME_MAX + 1];
    struct kb_rec_limits limits;
    /* Under r->lock: */
    struct item *q; ///< ring of cap items
    uint32_t cap, head, len;
    uint64_t bytes;     ///< payload referenced by queued messages
    int dropping;       ///< skipping to the next keyframe
    int saw_video;      ///< this broadcast has video (a keyframe ends a skip)
    uint64_t dropped;   ///< messages skipped since the handle was made
    uint64_t drop_base; ///< dropped when the broadcast began
    uint64_t skip_run;  ///< messages skipped in the current skip
    struct kb_rec_status st;
    /* Worker only: */
    struct kb__rec *rec;
    struct kb_rec_stream *next;
};

/* The worker drains the queues every TICK_MS, or at once when a stream
 * has WAKE_BYTES waiting or a broadcast begins, pauses or ends. Recording
 * is not latency-sensitive; batching a tick's messages keeps the cost per
 * message to a lock and a pointer. */
#define TICK_MS 100
#define WAKE_BYTES (1024 * 1024)

struct kb_recorder {
    struct kb_recorder_conf conf;
    char *dir;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int started;
    struct kb__jobs *jobs;
    /* Under lock: */
    int stop;
    int hold;
    int idle; ///< the worker waits on cond
    struct kb_rec_stream *streams, *rr;
};

void kb__log(const struct kb_recorder *r, int level, const char *stream, const char *fmt, ...)
{
    if (!r->conf.log)
        return;
    va_list ap;
    va_start(ap, fmt);
    r->conf.log(level, stream, fmt, ap);
    va_end(ap);
}

const struct kb_recorder_conf *kb__conf(const struct kb_recorder *r)
{
    return &r->conf;
}

struct kb__jobs *kb__jobs(const struct kb_recorder *r)
{
    return r->jobs;
}

int kb__live(struct kb_recorder *r, const char *rel)
{
    int live = 0;
    pthread_mutex_lock(&r->lock);
    for (struct kb_rec_stream *s = r->streams; s && !live; s = s->next)
        live = s->st.dir[0] && strcmp(s->st.dir, rel) == 0;
    pthread_mutex_unlock(&r->lock);
    return live;
}

/* Wake the worker if it sleeps. Called with the lock held. */
static void wake(struct kb_recorder *r)
{
    if (r->idle)
        pthread_cond_signal(&r->cond);
}

static int ring_grow(struct kb_rec_stream *s)
{
    uint32_t cap = s->cap ? s->cap * 2 : 256;
    struct item *q = malloc(cap * sizeof(*q));
    if (!q)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->len; i++)
        q[i] = s->q[(s->head + i) & (s->cap - 1)];
    free(s->q);
    s->q = q;
    s->cap = cap;
    s->head = 0;
    return 0;
}

static void ring_push(struct kb_rec_stream *s, const struct item *it)
{
    s->q[(s->head + s->len) & (s->cap - 1)] = *it;
    s->len++;
}

static void push_control(struct kb_rec_stream *s, enum item_kind kind)
{
    struct kb_recorder *r = s->r;
    struct item it = {.kind = (uint8_t)kind, .wall = kb__wall_ms()};
    pthread_mutex_lock(&r->lock);
    it.drops = s->dropped;
    if (kind == IT_BEGIN) {
        s->dropping = 0;
        s->saw_video = 0;
        s->drop_base = s->dropped;
    }
    if (s->len == s->cap && ring_grow(s) < 0) {
        pthread_mutex_unlock(&r->lock);
        kb__log(r, KB__ERROR, s->name, "recorder lost a %s event (out of memory)",
                kind == IT_BEGIN ? "begin"
                : kind == IT_GAP ? "gap"
                                 : "end");
        return;
    }
    ring_push(s, &it);
    wake(r);
    pthread_mutex_unlock(&r->lock);
}

void kb_rec_begin(struct kb_rec_stream *s)
{
    if (s)
        push_control(s, IT_BEGIN);
}

void kb_rec_gap(struct kb_rec_stream *s)
{
    if (s)
        push_control(s, IT_GAP);
}

void kb_rec_end(struct kb_rec_stream *s)
{
    if (s)
        push_control(s, IT_END);
}

void kb_rec_msg(struct kb_rec_stream *s, struct kb_msg *m)
{
    if (!s || (m->type != KB_MSG_AUDIO && m->type != KB_MSG_VIDEO))
        return;
    struct kb_recorder *r = s->r;
    uint64_t bound = r->conf.queue_bytes;
    int always = (m->flags & KB_MSGF_SEQHDR) != 0;
    int video = (m->flags & KB_MSGF_VIDEO) != 0;
    int log_start = 0, resume = 0;
    uint64_t log_run = 0, log_bytes = 0;
    pthread_mutex_lock(&r->lock);
    s->saw_video |= video;
    int fits = s->bytes + m->len <= bound && s->len + SPARE < KB__QUEUE_ITEMS_MAX;
    if (!always) {
        /* A skip ends where a player could start: a video keyframe, or any
         * audio frame in a stream without video. */
        int sync = video ? (m->flags & KB_MSGF_KEY) != 0 : !s->saw_video;
        if (s->dropping && fits && sync) {
            s->dropping = 0;
            log_run = s->skip_run;
            resume = 1;
        }
        if (!s->dropping && !fits) {
            s->dropping = 1;
            s->skip_run = 0;
            log_start = 1;
            log_bytes = s->bytes;
        }
        if (s->dropping) {
            s->dropped++;
            s->skip_run++;
            pthread_mutex_unlock(&r->lock);
            if (log_start)
                kb__log(r, KB__WARN, s->name,
                        "recorder queue full (%llu bytes wait for the disk): "
                        "skipping to the next keyframe",
                        (unsigned long long)log_bytes);
            return;
        }
    }
    if (s->cap - s->len < SPARE && ring_grow(s) < 0) {
        /* No memory for the ring: skip like a full queue would. */
        s->dropped++;
        if (!always)
            s->dropping = 1, s->skip_run = 1;
        pthread_mutex_unlock(&r->lock);
        kb__log(r, KB__ERROR, s->name, "recorder skipped a message (out of memory)");
        return;
    }
    if (resume) {
        struct item skip = {.kind = IT_SKIP};
        ring_push(s, &skip); /* SPARE slots are free */
    }
    struct item it = {.kind = IT_MSG, .m = kb_msg_ref(m)};
    ring_push(s, &it);
    s->bytes += m->len;
    /* Media waits for the worker's next tick unless a lot has piled up:
     * waking it for every frame would cost a futex wake and a context
     * switch per message on both threads. */
    if (s->bytes >= WAKE_BYTES)
        wake(r);
    pthread_mutex_unlock(&r->lock);
    if (log_run)
        kb__log(r, KB__INFO, s->name,
                "recorder queue: resumed at a keyframe after skipping %llu messages",
                (unsigned long long)log_run);
}

void kb__publish(struct kb_rec_stream *s, const struct kb__pub *p)
{
    pthread_mutex_lock(&s->r->lock);
    struct kb_rec_status *st = &s->st;
    st->state = p->state;
    snprintf(st->dir, sizeof(st->dir), "%s", p->dir);
    snprintf(st->file, sizeof(st->file), "%s", p->file);
    st->bytes = p->bytes;
    st->segments = p->segments;
    st->parts = p->parts;
    if (p->last_error) {
        snprintf(st->last_error, sizeof(st->last_error), "%s", p->last_error);
        st->last_error_at = p->last_error_at;
    }
    pthread_mutex_unlock(&s->r->lock);
}

void kb_rec_status(struct kb_rec_stream *s, struct kb_rec_status *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    pthread_mutex_lock(&s->r->lock);
    *out = s->st;
    out->dropped = s->dropped - s->drop_base;
    pthread_mutex_unlock(&s->r->lock);
}

uint64_t kb__dropped(struct kb_rec_stream *s)
{
    pthread_mutex_lock(&s->r->lock);
    uint64_t d = s->dropped;
    pthread_mutex_unlock(&s->r->lock);
    return d;
}

void kb__limits(struct kb_rec_stream *s, struct kb_rec_limits *out)
{
    pthread_mutex_lock(&s->r->lock);
    *out = s->limits;
    pthread_mutex_unlock(&s->r->lock);
}

uint64_t kb__queued_bytes(struct kb_rec_stream *s)
{
    pthread_mutex_lock(&s->r->lock);
    uint64_t b = s->bytes;
    pthread_mutex_unlock(&s->r->lock);
    return b;
}

void kb__recorder_hold(struct kb_recorder *r, int hold)
{
    pthread_mutex_lock(&r->lock);
    r->hold = hold;
    wake(r);
    pthread_mutex_unlock(&r->lock);
}

static void run_item(struct kb_rec_stream *s, struct item *it)
{
    switch (it->kind) {
    case IT_MSG:
        kb__rec_msg(s->rec, it->m);
        kb_msg_unref(it->m);
        break;
    case IT_BEGIN:
        kb__rec_begin(s->rec, it->wall, it->drops);
        break;
    case IT_GAP:
        kb__rec_gap(s->rec);
        break;
    case IT_SKIP:
        /* Close the segment where the written media ends and go on from
         * there, as after a publisher gap: a segment spanning the hole
         * would outlast the playlist's target duration. */
        kb__rec_gap(s->rec);
        break;
    case IT_END:
        kb__rec_end(s->rec, 0, it->drops);
        break;
    }
}

int kb_recording_export(const char *dir, kb_rec_log_fn log)
{
    /* A recorder with no thread and no streams: only its log is used. */
    struct kb_recorder r = {.conf = {.log = log}};
    char path[PATH_MAX];
    if (!realpath(dir, path))
        return -errno;
    char *name = strrchr(path, '/');
    if (!name || name == path)
        return -EINVAL;
    *name = '\0';
    char stream[KB__NAME_MAX + 1], rel[2 * KB__NAME_MAX + 2];
    snprintf(stream, sizeof(stream), "%.*s", KB__NAME_MAX,
             strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    snprintf(rel, sizeof(rel), "%s/%.*s", stream, KB__NAME_MAX, name + 1);
    *name = '/';
    return kb__export_recording(&r, path, rel, stream, NULL);
}

/* Called with the lock held; returns a stream with queued work, round-robin. */
static struct kb_rec_stream *next_stream(struct kb_recorder *r)
{
    struct kb_rec_stream *s = r->rr ? r->rr->next : NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (; s; s = s->next)
            if (s->len && (!r->hold || r->stop))
                return r->rr = s;
        s = r->streams;
    }
    return NULL;
}

static void *worker(void *arg)
{
    struct kb_recorder *r = arg;
    struct item batch[BATCH];
    pthread_mutex_lock(&r->lock);
    for (;;) {
        struct kb_rec_stream *s = next_stream(r);
        if (s) {
            uint32_t n = 0;
            while (n < BATCH && s->len) {
                batch[n] = s->q[s->head];
                if (batch[n].kind == IT_MSG)
                    s->bytes -= batch[n].m->len;
                s->head = (s->head + 1) & (s->cap - 1);
                s->len--;
                n++;
            }
            pthread_mutex_unlock(&r->lock);
            for (uint32_t i = 0; i < n; i++)
                run_item(s, &batch[i]);
            pthread_mutex_lock(&r->lock);
            continue;
        }
        if (r->stop)
            break;
        r->idle = 1;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cond, &r->lock, &until);
        r->idle = 0;
    }
    pthread_mutex_unlock(&r->lock);
    /* Queues are drained; close what is still open. */
    for (struct kb_rec_stream *s = r->streams; s; s = s->next)
        kb__rec_end(s->rec, 1, kb__dropped(s));
    return NULL;
}

int kb_recorder_new(const struct kb_recorder_conf *conf, struct kb_recorder **out)
{
    *out = NULL;
    if (!conf || !conf->dir || !conf->dir[0])
        return -EINVAL;
    struct kb_recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->conf = *conf;
    r->dir = strdup(conf->dir);
    if (!r->dir) {
        free(r);
        return -ENOMEM;
    }
    for (size_t n = strlen(r->dir); n > 1 && r->dir[n - 1] == '/'; n--)
        r->dir[n - 1] = 0;
    r->conf.dir = r->dir;
    if (!r->conf.segment_ms)
        r->conf.segment_ms = 4000;
    if (!r->conf.queue_bytes)
        r->conf.queue_bytes = 64u << 20;
    char ebuf[96];
    int err;
    if ((err = pthread_mutex_init(&r->lock, NULL)) != 0) {
        free(r->dir);
        free(r);
        return -err;
    }
    if ((err = pthread_cond_init(&r->cond, NULL)) != 0) {
        pthread_mutex_destroy(&r->lock);
        free(r->dir);
        free(r);
        return -err;
    }
    /* The job thread first: recovery hands it the exports left to do. */
    if ((err = kb__jobs_new(r, &r->jobs)) < 0) {
        kb_recorder_free(r);
        return err;
    }
    if ((err = kb__mkdir_p(r->dir)) < 0)
        kb__log(r, KB__ERROR, NULL,
                "recordings directory %s cannot be created (%s); "
                "recordings will fail until it can",
                r->dir, kb__strerror(err, ebuf, sizeof(ebuf)));
    else
        kb__recover(r);
    if ((err = pthread_create(&r->thread, NULL, worker, r)) != 0) {
        kb_recorder_free(r);
        return -err;
    }
    r->started = 1;
    *out = r;
    return 0;
}

void kb_recorder_free(struct kb_recorder *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    /* Jobs stop first, so that the worker, closing what is still open,
     * starts no export: stopping never waits for one. */
    kb__jobs_stop(r->jobs);
    if (r->started)
        pthread_join(r->thread, NULL);
    while (r->streams) {
        struct kb_rec_stream *s = r->streams;
        r->streams = s->next;
        for (uint32_t i = 0; i < s->len; i++) {
            struct item *it = &s->q[(s->head + i) & (s->cap - 1)];
            if (it->kind == IT_MSG)
                kb_msg_unref(it->m);
        }
        free(s->q);
        kb__rec_free(s->rec);
        free(s);
    }
    kb__jobs_free(r->jobs);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
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

struct kb_rec_stream *kb_recorder_stream(struct kb_recorder *r, const char *name,
                                         const struct kb_rec_limits *limits)
{
    if (!r || !name)
        return NULL;
    if (!kb__name_ok(name)) {
        char shown[KB__NAME_MAX + 8];
        loggable(name, shown, sizeof(shown));
        kb__log(r, KB__ERROR, NULL,
                "stream name \"%s\" refused for recording (empty, \".\", "
                "\"..\", a slash, a control character or over %d bytes)",
                shown, KB__NAME_MAX);
        return NULL;
    }
    static const struct kb_rec_limits none;
    pthread_mutex_lock(&r->lock);
    for (struct kb_rec_stream *s = r->streams; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            /* New limits (a reload) apply at once, sparing the live one. */
            s->limits = limits ? *limits : none;
            pthread_mutex_unlock(&r->lock);
            kb__jobs_retention(r->jobs, s->name, limits ? limits : &none);
            return s;
        }
    }
    pthread_mutex_unlock(&r->lock);
    struct kb_rec_stream *s = calloc(1, sizeof(*s));
    if (!s || kb__rec_new(r, s, name, &s->rec) < 0) {
        free(s);
        kb__log(r, KB__ERROR, name, "recording disabled (out of memory)");
        return NULL;
    }
    s->r = r;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->limits = limits ? *limits : none;
    pthread_mutex_lock(&r->lock);
    s->next = r->streams;
    r->streams = s;
    pthread_mutex_unlock(&r->lock);
    kb__jobs_retention(r->jobs, s->name, &s->limits);
    return s;
}

int kb_recorder_export(struct kb_recorder *r, const char *recording,
                       void (*done)(void *ud, int err), void *ud)
{
    if (!r || !kb__recording_path_ok(recording))
        return -EINVAL;
    return kb__jobs_export(r->jobs, recording, done, ud);
}
