/* One stream's recordings, on the worker thread: the state machine the
 * queue's items drive (kb__recording_begin / _msg / _gap / _skip / _end).
 *
 *   IDLE --begin--> WAITING --headers + keyframe--> RECORDING --end--> IDLE
 *                      ^                               |  |
 *                      +------ codec change -----------+  | write error
 *                                                         v
 *                      FAILED --keyframe, >= 1 s later, writes work--> RECORDING
 *
 * A recording is a directory with one playlist; it has one or more parts,
 * each with its own muxer (and init-N.mp4), separated in the playlist by
 * EXT-X-DISCONTINUITY. A new part starts when a sequence header changes,
 * when a track turns up that the part lacks, and when recording resumes
 * after a failure (in the same directory, whatever the error was, unless
 * the directory itself is gone). All parts share one timeline: the 64-bit
 * unwrap of the stream's 32-bit millisecond timestamps, with the
 * recording's first frame at 0 (shifted forward only where a returning
 * publisher's timeline, or the media after a queue skip, would overlap what
 * was already written).
 *
 * While WAITING, messages are kept (video from its first keyframe, audio
 * from the start) so that a stream whose second track is late or never
 * comes starts with what it had, not at some later keyframe.
 *
 * A recording knows its environment (struct kb__env) and nothing of the
 * stream handle, the queue or the job thread: the front reads its state
 * (kb__recording_status) into the stream's snapshot, and kb__recording_end
 * says what the job thread is to do next.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WAIT_OTHER_MS 2000 ///< how long a lone track waits for the other
#define WAIT_KEY_MS 5000   ///< how long audio waits for a declared video's keyframe
#define RETRY_MS 1000      ///< after a failure, try again at most this often
#define FAIL_LOG_MS 60000  ///< repeat "still failing" this often
#define PENDING_MAX 4096   ///< messages kept while waiting
#define PENDING_BYTES (32u << 20)
#define THUMB_WIDTH 320

struct kb__recording {
    const struct kb__env *env;
    char name[KB__NAME_MAX + 1];
    int active;
    enum kb_recorder_state state;
    int64_t begin_wall;
    uint64_t drops_base; ///< the stream's drop counter when the broadcast began
    uint64_t drops;      ///< ... as the last event told it
    char last_error[160];  ///< the last failure, kept across broadcasts for the status
    int64_t last_error_at; ///< UTC seconds, 0 = never

    int ts_init;
    uint32_t ts_last;
    int64_t ts_ext;

    struct kb__codec codec[2]; ///< the latest sequence header of each kind
    int track[2];              ///< E-RTMP multitrack: 1 + the track recorded of each kind
    uint64_t tracks_seen[2][4]; ///< ... the track ids seen, of each kind
    int told_tracks[2];        ///< "recording track N only" said for this kind
    int warned[2];             ///< "not recorded" said for this kind
    int bad_hdr[2];            ///< "sequence header ignored" said for this kind
    int64_t wait_start;
    struct kb_msg **pend;
    size_t pend_n;
    uint64_t pend_bytes;
    int pend_key; ///< 1 + index of the first video keyframe kept, or 0

    char dirname[KB__NAME_MAX + 1];
    char dir[PATH_MAX];
    int have_dir;
    struct kb__meta meta;
    struct kb__playlist pl;
    int parts;
    uint32_t next_index;
    int64_t base; ///< unwrapped timestamp at recording time 0
    struct kb__seg *seg;
    int part_has[2];
    int part_new; ///< the next segment opens a part
    char part_map[32];
    int need_key;
    int64_t shift;   ///< added to timestamps after a return that overlapped
    int64_t floor;   ///< where what was written before a gap ends
    int floor_armed; ///< the next frame written must not start before floor
    int64_t next_thumb;
    int warned_long; ///< "segment longer than the target duration" said
    char what[96];   ///< what the segment callback failed at

    int64_t fail_since, last_try, last_fail_log;
};

static int open_part(struct kb__recording *rec, const struct kb__frame *key);
static void arm_floor(struct kb__recording *rec);

/* The recording's track of a message (E-RTMP multitrack: one of each kind,
 * the first seen). */
static int parse(const struct kb__recording *rec, const struct kb_msg *m, struct kb__frame *f)
{
    int kind = m->type == KB_MSG_VIDEO ? KB__V : KB__A;
    return kb__media_parse(m, rec->track[kind] - 1, f);
}

/* A multitrack stream is recorded one track of each kind: the first one
 * seen (a publisher sends its default track, 0, first). Says so once per
 * recording, when a second track shows up. */
static void note_track(struct kb__recording *rec, const struct kb__frame *f)
{
    int k = f->kind;
    if (f->track < 0)
        return;
    if (!rec->track[k])
        rec->track[k] = 1 + f->track;
    rec->tracks_seen[k][f->track >> 6] |= 1ull << (f->track & 63);
    int n = 0;
    for (int i = 0; i < 4; i++)
        n += __builtin_popcountll(rec->tracks_seen[k][i]);
    if (f->tracks > n)
        n = f->tracks;
    if (n < 2 || rec->told_tracks[k])
        return;
    rec->told_tracks[k] = 1;
    kb__log(rec->env, KB__INFO, rec->name, "multitrack %s: recording track %d only (%d tracks)",
            k == KB__V ? "video" : "audio", rec->track[k] - 1, n);
}

int kb__recording_new(const struct kb__env *env, const char *stream, struct kb__recording **out)
{
    struct kb__recording *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return -ENOMEM;
    rec->env = env;
    snprintf(rec->name, sizeof(rec->name), "%s", stream);
    rec->state = KB_RECORDER_IDLE;
    *out = rec;
    return 0;
}

static void pend_clear(struct kb__recording *rec)
{
    for (size_t i = 0; i < rec->pend_n; i++)
        kb_msg_unref(rec->pend[i]);
    rec->pend_n = 0;
    rec->pend_bytes = 0;
    rec->pend_key = 0;
}

static void reset(struct kb__recording *rec)
{
    kb__seg_free(rec->seg);
    rec->seg = NULL;
    pend_clear(rec);
    for (int k = 0; k < 2; k++)
        kb__codec_clear(&rec->codec[k]);
    kb__pl_free(&rec->pl);
    memset(&rec->meta, 0, sizeof(rec->meta));
    rec->active = rec->have_dir = rec->ts_init = rec->parts = 0;
    rec->warned[0] = rec->warned[1] = 0;
    rec->bad_hdr[0] = rec->bad_hdr[1] = 0;
    memset(rec->track, 0, sizeof(rec->track));
    memset(rec->tracks_seen, 0, sizeof(rec->tracks_seen));
    memset(rec->told_tracks, 0, sizeof(rec->told_tracks));
    rec->part_has[0] = rec->part_has[1] = 0;
    rec->state = KB_RECORDER_IDLE;
    rec->base = INT64_MIN;
    rec->wait_start = INT64_MIN;
    rec->next_index = 1;
    rec->fail_since = 0;
    rec->shift = rec->floor = 0;
    rec->floor_armed = 0;
    rec->warned_long = 0;
}

void kb__recording_free(struct kb__recording *rec)
{
    if (!rec)
        return;
    reset(rec);
    free(rec->pend);
    free(rec);
}

static int write_meta(struct kb__recording *rec)
{
    rec->meta.dropped = rec->drops - rec->drops_base;
    return kb__meta_write(&rec->meta, rec->dir, kb__env_sync(rec->env));
}

/* A write failed: say so once, drop the part, keep the stream's messages
 * flowing into nothing until a retry works. */
static void fail(struct kb__recording *rec, const char *what, int err)
{
    char ebuf[96], msg[sizeof(rec->meta.last_error)];
    snprintf(msg, sizeof(msg), "%s: %s", what, kb__strerror(err, ebuf, sizeof(ebuf)));
    int64_t now = kb__mono_ms();
    if (rec->state != KB_RECORDER_FAILED) {
        kb__log(rec->env, KB__ERROR, rec->name, "recording failed: %s", msg);
        rec->fail_since = rec->last_fail_log = now;
    } else if (now - rec->last_fail_log >= FAIL_LOG_MS) {
        kb__log(rec->env, KB__WARN, rec->name, "recording still failing after %lld s: %s",
                (long long)((now - rec->fail_since) / 1000), msg);
        rec->last_fail_log = now;
    } else {
        kb__log(rec->env, KB__DEBUG, rec->name, "recording retry failed: %s", msg);
    }
    arm_floor(rec);
    kb__seg_free(rec->seg);
    rec->seg = NULL;
    rec->part_has[0] = rec->part_has[1] = 0;
    pend_clear(rec);
    rec->state = KB_RECORDER_FAILED;
    rec->last_try = now;
    snprintf(rec->meta.last_error, sizeof(rec->meta.last_error), "%s", msg);
    snprintf(rec->last_error, sizeof(rec->last_error), "%s", msg);
    rec->last_error_at = kb__wall_ms() / 1000;
    if (rec->have_dir) {
        rec->meta.status = "failed";
        write_meta(rec); /* likely fails too; the status snapshot still says it */
    }
}

void kb__recording_begin(struct kb__recording *rec, int64_t wall_ms, uint64_t drops_total)
{
    reset(rec);
    rec->active = 1;
    rec->state = KB_RECORDER_WAITING;
    rec->begin_wall = wall_ms;
    rec->drops_base = rec->drops = drops_total;
}

static int make_dir(struct kb__recording *rec)
{
    const char *root = rec->env->root;
    char sdir[PATH_MAX], stamp[32];
    snprintf(rec->what, sizeof(rec->what), "create %s/", rec->name);
    if (snprintf(sdir, sizeof(sdir), "%s/%s", root, rec->name) >= (int)sizeof(sdir))
        return -ENAMETOOLONG;
    int err = kb__mkdir_p(sdir);
    if (err < 0)
        return err;
    kb__iso_time(rec->begin_wall, 1, stamp, sizeof(stamp));
    for (int i = 1; i < 100; i++) {
        if (i == 1)
            snprintf(rec->dirname, sizeof(rec->dirname), "%s", stamp);
        else
            snprintf(rec->dirname, sizeof(rec->dirname), "%s-%d", stamp, i);
        if ((err = kb__pathf(rec->dir, sizeof(rec->dir), "%s/%s", sdir, rec->dirname)) < 0)
            return err;
        if (mkdir(rec->dir, 0755) == 0)
            break;
        err = -errno;
        if (err != -EEXIST || i == 99)
            return err;
    }
    snprintf(rec->what, sizeof(rec->what), "write meta.json");
    memset(&rec->meta, 0, sizeof(rec->meta));
    snprintf(rec->meta.stream, sizeof(rec->meta.stream), "%s", rec->name);
    rec->meta.format = rec->env->format;
    rec->meta.start_ms = rec->begin_wall;
    rec->meta.status = "live";
    kb__pl_free(&rec->pl);
    rec->pl.format = rec->env->format;
    rec->pl.target_s = kb__pl_target_s(rec->env->segment_ms);
    rec->parts = 0;
    rec->next_index = 1;
    rec->base = INT64_MIN;
    rec->shift = rec->floor = 0;
    rec->floor_armed = 0;
    rec->have_dir = 1;
    kb__log(rec->env, KB__INFO, rec->name, "recording to %s/%s", rec->name, rec->dirname);
    if ((err = write_meta(rec)) < 0)
        return err;
    rec->what[0] = 0;
    return 0;
}

/* The segmenter completed a segment: list it. */
static int on_segment(void *ud, const struct kb__seg_info *info)
{
    struct kb__recording *rec = ud;
    struct kb__pl_entry e = {.part = rec->parts, .dur_ms = info->dur_ms};
    snprintf(e.name, sizeof(e.name), "%s", info->name);
    if (rec->part_new) {
        e.disc = rec->parts > 1;
        snprintf(e.map, sizeof(e.map), "%s", rec->part_map);
        rec->part_new = 0;
    }
    int64_t max_ms = kb__pl_max_ms(rec->pl.target_s);
    if (info->dur_ms > max_ms && !rec->warned_long) {
        /* The playlist's target duration must not change (RFC 8216 6.2.1),
         * so the segment stays as it is: only a keyframe can end it. */
        rec->warned_long = 1;
        kb__log(rec->env, KB__WARN, rec->name,
                "recording %s: segment %s lasts %.1f s, over the playlist's target duration "
                "(%d s): the publisher's keyframe interval is too long; some players may "
                "stall (send a keyframe at least every %d s)",
                rec->dirname, info->name, (double)info->dur_ms / 1000.0, rec->pl.target_s,
                rec->pl.target_s);
    }
    rec->meta.bytes += info->bytes;
    rec->meta.segments++;
    rec->meta.duration_ms += info->dur_ms;
    rec->next_index = (uint32_t)strtoul(info->name, NULL, 10) + 1;
    snprintf(rec->what, sizeof(rec->what), "list %s", info->name);
    int err = kb__pl_add(&rec->pl, &e);
    if (err < 0)
        return err;
    snprintf(rec->what, sizeof(rec->what), "write index.m3u8");
    if ((err = kb__pl_write(&rec->pl, rec->dir, kb__env_sync(rec->env))) < 0)
        return err;
    snprintf(rec->what, sizeof(rec->what), "write meta.json");
    if ((err = write_meta(rec)) < 0)
        return err;
    rec->what[0] = 0;
    return 0;
}

/* Segmenter errors name their file; a failing callback named its own. */
static void seg_fail(struct kb__recording *rec, int err)
{
    char what[96];
    snprintf(what, sizeof(what), "%s", rec->what[0] ? rec->what : kb__seg_what(rec->seg));
    rec->what[0] = 0;
    fail(rec, what, err);
}

static void thumb_extra(struct kb__recording *rec, const struct kb__frame *f, int64_t t)
{
    char path[PATH_MAX], what[96] = "create thumbs/", ebuf[96];
    int w, h;
    int err = kb__pathf(path, sizeof(path), "%s/thumbs", rec->dir);
    if (!err)
        err = kb__mkdir_p(path);
    if (!err)
        err =
            kb__pathf(path, sizeof(path), "%s/thumbs/%06lld.jpg", rec->dir, (long long)(t / 1000));
    if (!err)
        err = kb__thumb(&rec->codec[KB__V], f->data, f->len, path, THUMB_WIDTH, &w, &h, what,
                        sizeof(what));
    if (err < 0)
        kb__log(rec->env, KB__WARN, rec->name, "thumbnail skipped: %s (%s)", what,
                kb__strerror(err, ebuf, sizeof(ebuf)));
}

/* Remember where the written media ends, so that what comes after a gap
 * never starts before it. The relay continues a returning publisher's
 * timeline 1 ms after the last timestamp it handed out, but the last frames
 * are shown (and the last audio frame plays) beyond that timestamp. */
static void arm_floor(struct kb__recording *rec)
{
    if (rec->seg && kb__seg_end_ms(rec->seg) > rec->floor)
        rec->floor = kb__seg_end_ms(rec->seg);
    rec->floor_armed = 1;
}

static void write_frame(struct kb__recording *rec, const struct kb__frame *f, int64_t ext)
{
    if (!rec->part_has[f->kind])
        return;
    /* Video (re)starts at a keyframe. */
    if (f->kind == KB__V && rec->need_key && !f->key)
        return;
    if (rec->base == INT64_MIN)
        rec->base = ext;
    int64_t t = ext - rec->base + rec->shift;
    if (rec->floor_armed) {
        if (t < rec->floor) {
            rec->shift += rec->floor - t;
            t = rec->floor;
        }
        rec->floor_armed = 0;
    }
    if (t < 0)
        return; /* before the recording's first keyframe */
    int err;
    if (f->kind == KB__V) {
        rec->need_key = 0;
        err = kb__seg_video(rec->seg, t, f->cts, f->key, f->data, f->len);
        if (err >= 0 && f->key && rec->env->thumb_interval_ms && t >= rec->next_thumb) {
            thumb_extra(rec, f, t);
            rec->next_thumb = t + rec->env->thumb_interval_ms;
        }
    } else {
        err = kb__seg_audio(rec->seg, t, f->data, f->len);
    }
    if (err < 0)
        seg_fail(rec, err);
}

static int replay_pending(struct kb__recording *rec)
{
    for (size_t i = 0; i < rec->pend_n && rec->state == KB_RECORDER_RECORDING; i++) {
        struct kb__frame f;
        struct kb_msg *m = rec->pend[i];
        /* Kept messages are recent: their signed distance to the last
         * unwrapped timestamp places them on the 64-bit timeline. */
        if (parse(rec, m, &f) == 0)
            write_frame(rec, &f, rec->ts_ext + (int32_t)(m->timestamp - rec->ts_last));
    }
    pend_clear(rec);
    return 0;
}

/* Start a part once both tracks can start: both sequence headers and a
 * video keyframe. When a sequence header is still missing after
 * WAIT_OTHER_MS of stream time, or a declared video track has sent no
 * keyframe after WAIT_KEY_MS (or when `force`d), start with what there is;
 * a track that turns up later starts a new part. */
static void try_start(struct kb__recording *rec, int64_t ext, int force)
{
    int have_v = rec->codec[KB__V].id != AV_CODEC_ID_NONE;
    int use_v = have_v && rec->pend_key;
    int use_a = rec->codec[KB__A].id != AV_CODEC_ID_NONE;
    if (!use_v && !use_a)
        return;
    int64_t waited = ext - rec->wait_start;
    if (!(use_v && use_a) && !force && waited < (have_v && !use_v ? WAIT_KEY_MS : WAIT_OTHER_MS))
        return;
    struct kb__frame key = {0};
    if (use_v && parse(rec, rec->pend[rec->pend_key - 1], &key) < 0)
        return;
    if (!(use_v && use_a))
        kb__log(rec->env, KB__INFO, rec->name, "recording %s only for now (no %s yet)",
                use_v ? "video" : "audio",
                use_v                                      ? "audio sequence header"
                : rec->codec[KB__V].id != AV_CODEC_ID_NONE ? "video keyframe"
                                                           : "video sequence header");
    if (open_part(rec, use_v ? &key : NULL) == 0)
        replay_pending(rec);
}

static int open_part(struct kb__recording *rec, const struct kb__frame *key)
{
    char what[96] = "", path[PATH_MAX], ebuf[96];
    int err = 0, first = !rec->have_dir;
    if (!rec->have_dir && (err = make_dir(rec)) < 0) {
        fail(rec, rec->what, err);
        return err;
    }
    int w = 0, h = 0;
    if (key) {
        err = kb__pathf(path, sizeof(path), "%s/thumb.jpg", rec->dir);
        if (err == 0)
            err = kb__thumb(&rec->codec[KB__V], key->data, key->len, rec->meta.thumb ? NULL : path,
                            THUMB_WIDTH, &w, &h, what, sizeof(what));
        if (err < 0)
            kb__log(rec->env, KB__WARN, rec->name, "first keyframe: %s (%s)", what,
                    kb__strerror(err, ebuf, sizeof(ebuf)));
        else
            rec->meta.thumb = 1;
    }
    int part = rec->parts + 1;
    char init[32] = "init.mp4";
    if (part > 1)
        snprintf(init, sizeof(init), "init-%d.mp4", part);
    struct kb__seg_conf c = {
        .format = rec->env->format,
        .dir = rec->dir,
        .init_name = init,
        .first_index = rec->next_index,
        .target_ms = rec->env->segment_ms,
        .max_ms = (uint32_t)kb__pl_max_ms(rec->pl.target_s),
        .video = key ? &rec->codec[KB__V] : NULL,
        .audio = rec->codec[KB__A].id != AV_CODEC_ID_NONE ? &rec->codec[KB__A] : NULL,
        .width = w,
        .height = h,
        .inband = part > 1,
        .done = on_segment,
        .ud = rec,
        .fsync = &rec->env->fsync,
    };
    err = kb__seg_new(&c, &rec->seg, what, sizeof(what));
    if (err < 0) {
        fail(rec, what, err);
        return err;
    }
    rec->parts = part;
    rec->part_new = 1;
    snprintf(rec->part_map, sizeof(rec->part_map), "%s",
             rec->env->format == KB_RECORDER_FMP4 ? init : "");
    rec->part_has[KB__V] = c.video != NULL;
    rec->part_has[KB__A] = c.audio != NULL;
    rec->need_key = c.video != NULL;
    if (first)
        rec->next_thumb = rec->env->thumb_interval_ms;
    struct kb__meta *m = &rec->meta;
    snprintf(m->vcodec, sizeof(m->vcodec), "%s", c.video ? c.video->name : "");
    snprintf(m->acodec, sizeof(m->acodec), "%s", c.audio ? c.audio->name : "");
    m->width = w;
    m->height = h;
    m->sample_rate = c.audio ? c.audio->sample_rate : 0;
    m->channels = c.audio ? c.audio->channels : 0;
    m->parts = (uint32_t)part;
    m->status = "live";
    int was_failed = rec->state == KB_RECORDER_FAILED;
    rec->state = KB_RECORDER_RECORDING;
    if ((err = write_meta(rec)) < 0) {
        fail(rec, "write meta.json", err);
        return err;
    }
    long long down = (long long)((kb__mono_ms() - rec->fail_since) / 1000);
    if (was_failed && part > 1)
        kb__log(rec->env, KB__INFO, rec->name,
                "recording resumed as part %d after %lld s (writes succeed again)", part, down);
    else if (was_failed)
        kb__log(rec->env, KB__INFO, rec->name,
                "recording resumed in %s/%s after %lld s (writes succeed again)", rec->name,
                rec->dirname, down);
    else if (part > 1)
        kb__log(rec->env, KB__INFO, rec->name, "recording part %d (codec parameters changed)", part);
    return 0;
}

/* Finish the part in order (its last segment is listed). */
static int close_part(struct kb__recording *rec)
{
    if (!rec->seg)
        return 0;
    int err = kb__seg_finish(rec->seg);
    if (err < 0) {
        seg_fail(rec, err);
        return err;
    }
    arm_floor(rec);
    kb__seg_free(rec->seg);
    rec->seg = NULL;
    rec->part_has[0] = rec->part_has[1] = 0;
    return 0;
}

static void pend_push(struct kb__recording *rec, struct kb_msg *m, const struct kb__frame *f)
{
    /* Video is kept from its first keyframe on; audio from the start, as the
     * source had it (players start where both tracks are). */
    if (f->kind == KB__V && !f->key && !rec->pend_key)
        return;
    if (rec->pend_n == PENDING_MAX || rec->pend_bytes + m->len > PENDING_BYTES) {
        pend_clear(rec);
        if (f->kind == KB__V && !f->key)
            return;
    }
    if (!rec->pend) {
        rec->pend = malloc(PENDING_MAX * sizeof(*rec->pend));
        if (!rec->pend) {
            kb__log(rec->env, KB__ERROR, rec->name, "recording start delayed (out of memory)");
            return;
        }
    }
    rec->pend[rec->pend_n++] = kb_msg_ref(m);
    rec->pend_bytes += m->len;
    if (!rec->pend_key && f->kind == KB__V && f->key)
        rec->pend_key = (int)rec->pend_n;
}

static void on_seqhdr(struct kb__recording *rec, const struct kb__frame *f)
{
    struct kb__codec *c = &rec->codec[f->kind];
    if (kb__codec_same(c, f))
        return;
    /* Frames kept for the old parameters must not meet the new ones. */
    if (rec->state == KB_RECORDER_WAITING && c->id != AV_CODEC_ID_NONE)
        pend_clear(rec);
    int err = kb__codec_set(c, f);
    if (err < 0) {
        /* Said once per broadcast: a broken encoder repeats itself. */
        char ebuf[96];
        int level = err == -ENOMEM ? KB__ERROR : rec->bad_hdr[f->kind] ? KB__DEBUG : KB__WARN;
        rec->bad_hdr[f->kind] = 1;
        kb__log(rec->env, level, rec->name, "%s sequence header ignored (%s)", f->name,
                kb__strerror(err, ebuf, sizeof(ebuf)));
        return;
    }
    if (rec->state != KB_RECORDER_RECORDING)
        return;
    /* New parameters (or a track the part lacks): a new part. */
    if (close_part(rec) < 0)
        return;
    rec->state = KB_RECORDER_WAITING;
    rec->wait_start = INT64_MIN;
}

static void failed_msg(struct kb__recording *rec, struct kb_msg *m, const struct kb__frame *f,
                       int64_t ext)
{
    int video = rec->codec[KB__V].id != AV_CODEC_ID_NONE;
    if ((video && !(f->kind == KB__V && f->key)) || (!video && f->kind != KB__A))
        return;
    int64_t now = kb__mono_ms();
    if (now - rec->last_try < RETRY_MS)
        return;
    rec->last_try = now;
    /* Resume in the same directory, as a new part, whatever the trouble
     * was: space, I/O, or permissions and read-only mounts (EACCES, EPERM,
     * EROFS), which an operator fixes as surely as a full disk. Only a
     * directory that is gone (or is no longer a directory) cannot take the
     * recording on: then a new recording starts. */
    struct stat st;
    int gone = 0;
    if (rec->have_dir && stat(rec->dir, &st) < 0)
        gone = errno == ENOENT || errno == ENOTDIR;
    else if (rec->have_dir)
        gone = !S_ISDIR(st.st_mode);
    if (gone) {
        kb__log(rec->env, KB__WARN, rec->name, "recording %s vanished: starting a new recording",
                rec->dirname);
        rec->have_dir = 0;
        rec->begin_wall = kb__wall_ms();
    }
    pend_clear(rec);
    pend_push(rec, m, f);
    try_start(rec, ext, 1);
}

void kb__recording_msg(struct kb__recording *rec, struct kb_msg *m)
{
    struct kb__frame f;
    int err = parse(rec, m, &f);
    if (err == -ENOENT)
        note_track(rec, &f); /* only another track: not recorded */
    if (err < 0)
        return;
    note_track(rec, &f);
    if (!rec->active)
        kb__recording_begin(rec, kb__wall_ms(), rec->drops);
    int64_t ext;
    if (!rec->ts_init) {
        rec->ts_init = 1;
        ext = m->timestamp;
    } else {
        ext = rec->ts_ext + (int32_t)(m->timestamp - rec->ts_last);
    }
    rec->ts_last = m->timestamp;
    rec->ts_ext = ext;
    const char *why = NULL;
    if (f.codec == AV_CODEC_ID_NONE)
        why = "kebun records H.264, HEVC or AV1 video and AAC audio";
    else if (f.codec == AV_CODEC_ID_AV1 && rec->env->format == KB_RECORDER_MPEGTS)
        why = "AV1 needs record_format fmp4";
    if (why) {
        if (!rec->warned[f.kind])
            kb__log(rec->env, KB__WARN, rec->name, "%s %s is not recorded (%s)",
                    f.kind == KB__V ? "video" : "audio", f.name, why);
        rec->warned[f.kind] = 1;
        return;
    }
    if (f.skip || (!f.seqhdr && f.len == 0))
        return;
    if (f.seqhdr) {
        on_seqhdr(rec, &f);
        return;
    }
    switch (rec->state) {
    case KB_RECORDER_WAITING:
        if (rec->wait_start == INT64_MIN)
            rec->wait_start = ext;
        pend_push(rec, m, &f);
        try_start(rec, ext, 0);
        break;
    case KB_RECORDER_RECORDING:
        if (f.kind == KB__V && f.key && !rec->part_has[KB__V] &&
            rec->codec[KB__V].id != AV_CODEC_ID_NONE) {
            /* Video came after an audio-only start: a new part with both. */
            if (close_part(rec) < 0)
                break;
            rec->state = KB_RECORDER_WAITING;
            pend_push(rec, m, &f);
            try_start(rec, ext, 1);
            break;
        }
        write_frame(rec, &f, ext);
        break;
    case KB_RECORDER_FAILED:
        failed_msg(rec, m, &f, ext);
        break;
    case KB_RECORDER_IDLE:
        break;
    }
}

void kb__recording_gap(struct kb__recording *rec)
{
    if (rec->state != KB_RECORDER_RECORDING || !rec->seg)
        return;
    /* The publisher may never come back: make what we have visible now. */
    int err = kb__seg_cut(rec->seg);
    if (err < 0) {
        seg_fail(rec, err);
        return;
    }
    rec->need_key = rec->part_has[KB__V];
    arm_floor(rec);
}

void kb__recording_skip(struct kb__recording *rec, uint64_t drops_total)
{
    /* Close the segment where the written media ends and go on from there,
     * as after a publisher gap: a segment spanning the hole would outlast
     * the playlist's target duration. */
    rec->drops = drops_total;
    kb__recording_gap(rec);
}

void kb__recording_end(struct kb__recording *rec, uint64_t drops_total,
                       struct kb__recording_done *done)
{
    memset(done, 0, sizeof(*done));
    if (!rec->active)
        return;
    char ebuf[96];
    rec->drops = drops_total;
    if (rec->state == KB_RECORDER_RECORDING)
        close_part(rec);
    if (rec->have_dir) {
        struct kb__meta *m = &rec->meta;
        rec->pl.ended = 1;
        int err = kb__pl_write(&rec->pl, rec->dir, kb__env_sync(rec->env));
        if (err < 0)
            kb__log(rec->env, KB__ERROR, rec->name, "recording %s: cannot close index.m3u8 (%s)",
                    rec->dirname, kb__strerror(err, ebuf, sizeof(ebuf)));
        m->end_ms = kb__wall_ms();
        m->status = rec->state == KB_RECORDER_FAILED ? "failed" : "complete";
        /* Said before the export starts, so that one a crash or a shutdown
         * cuts off is done at the next start. */
        done->export = rec->env->export_mp4 && rec->pl.n > 0;
        m->export_pending = done->export;
        if ((err = write_meta(rec)) < 0)
            kb__log(rec->env, KB__ERROR, rec->name, "recording %s: cannot write meta.json (%s)",
                    rec->dirname, kb__strerror(err, ebuf, sizeof(ebuf)));
        kb__log(rec->env, KB__INFO, rec->name,
                "recording %s %s: %u segments, %.1f s, %.1f MB, %u part%s, %llu dropped",
                rec->dirname, m->status, m->segments, (double)m->duration_ms / 1000.0,
                (double)m->bytes / 1e6, m->parts, m->parts == 1 ? "" : "s",
                (unsigned long long)m->dropped);
        snprintf(done->rel, sizeof(done->rel), "%s/%s", rec->name, rec->dirname);
    }
    reset(rec);
}

void kb__recording_status(const struct kb__recording *rec, struct kb_recorder_status *out)
{
    out->state = rec->state;
    if (rec->have_dir)
        snprintf(out->dir, sizeof(out->dir), "%s/%s", rec->name, rec->dirname);
    else
        out->dir[0] = 0;
    snprintf(out->file, sizeof(out->file), "%s", rec->seg ? kb__seg_file(rec->seg) : "");
    out->bytes = rec->meta.bytes;
    out->segments = rec->meta.segments;
    out->parts = rec->meta.parts;
    snprintf(out->last_error, sizeof(out->last_error), "%s", rec->last_error);
    out->last_error_at = rec->last_error_at;
}
