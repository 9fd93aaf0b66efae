/* kebun: the recorder's internal interfaces, shared by its files and by its
 * tests; nothing outside recorder/ and tests/recorder/ includes this.
 *
 * recorder.c   the front: public API, stream handles (each the producer
 *              end of its queue, behind the keyframe gate), the worker
 *              thread, status snapshots, the job thread's start and stop
 * queue.c      one stream's lock-free single-producer/single-consumer queue
 * env.c        what the worker-side files get instead of the recorder:
 *              settings, the log, "is this recording live?"
 * recording.c  one recording on the worker: state machine, timeline,
 *              parts, failure and resume
 * media.c      FLV / E-RTMP tag bodies to codec configs and frames
 * segmenter.c  one part's muxer: init.mp4 + segments, temp + rename
 * playlist.c   index.m3u8: write atomically, parse back
 * meta.c       meta.json: write atomically, parse back
 * recover.c    the start-up pass: stale temp files, recordings a crash
 *              left open, exports still due
 * thumb.c      decode a keyframe, scale, encode JPEG
 * export.c     segments to one faststart MP4
 * jobs.c       the job thread: exports and retention, off the worker
 * retention.c  delete a stream's oldest finished recordings
 * fsutil.c     names, paths, atomic (and durable) writes, time strings
 *
 * Only recorder.c uses the recorder's handles (kb_recorder,
 * kb_recorder_stream): every other file gets a struct kb__env and what it
 * works on, and never calls back into the front (recorder.h is included
 * here for its public types; tests/recorder/layers.py checks the calls).
 */
#ifndef KB_RECORDER_INTERNAL_H
#define KB_RECORDER_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libavcodec/codec_id.h>

#include "recorder.h"

/* Log levels, as relay/log.h numbers them. */
enum {
    KB__ERROR = 0,
    KB__WARN = 1,
    KB__INFO = 2,
    KB__DEBUG = 3,
};

#define KB__NAME_MAX 64                ///< longest stream name, as recorder.h promises
#define KB__REL_MAX (2 * KB__NAME_MAX + 2) ///< "STREAM/RECORDING" and its NUL
#define KB__QUEUE_ITEMS_MAX (1u << 20) ///< items per stream queue, whatever their size

/* ---- env.c ------------------------------------------------------------- */

/* The worker-side files' view of their surroundings. The recorder fills one
 * in; kebun --export makes one with a log and nothing else. */
struct kb__env {
    const char *root;                ///< recordings root, no trailing '/' ("" for --export)
    uint32_t segment_ms;             ///< target segment length
    enum kb_recorder_format format;
    uint32_t thumb_interval_ms;      ///< extra thumbnails this often (0 = first only)
    int export_mp4;                  ///< exports are due when recordings finish
    atomic_int fsync;                ///< enum kb_recorder_fsync; a reload may change it
    kb_recorder_log_fn log;          ///< NULL: silent
    /* 1 when `rel` ("STREAM/RECORDING") is a stream's current recording.
     * Any thread. NULL: nothing is being recorded. */
    int (*live)(void *ud, const char *rel);
    void *live_ud;
};

void kb__log(const struct kb__env *env, int level, const char *stream, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int kb__env_live(const struct kb__env *env, const char *rel);
/* 1 when what is written must reach the disk before it is listed. */
int kb__env_sync(const struct kb__env *env);

/* ---- fsutil.c ---------------------------------------------------------- */

/* 1 when `name` is a stream name that cannot escape the recordings root. */
int kb__name_ok(const char *name);
/* 1 when `rel` is "STREAM/RECORDING" with both parts safe names. */
int kb__recording_path_ok(const char *rel);
/* mkdir -p with mode 0755. 0 or a negative errno. */
int kb__mkdir_p(const char *path);
/* Write `len` bytes to a new temp file (kb__tmp_open), then rename it over
 * `path`. With `sync` the file is fsync'd before the rename and its
 * directory after it, so the new file is on the disk when this returns.
 * 0 or -errno. */
int kb__write_atomic(const char *path, const void *data, size_t len, int sync);
/* fsync the directory that holds `path`. 0 or -errno. */
int kb__sync_dir_of(const char *path);
/* Create a temp file for `path` in the same directory, named
 * .NAME.XXXXXX.tmp (a fresh random part, O_EXCL, mode 0644), and hold an
 * exclusive flock on it for as long as the descriptor stays open. Two
 * processes writing the same file (kebun --export beside the server) never
 * share a temp file, and kb__remove_temps leaves a locked one alone. The
 * path goes to tmp[]. Returns the descriptor or a negative errno. */
int kb__tmp_open(const char *path, char *tmp, size_t n);
/* Delete the temp files kebun's own writers left in `dir` when they died:
 * NAME.tmp (segmenter) and unlocked .NAME.XXXXXX.tmp (kb__tmp_open), for
 * the names kebun writes in a recording directory (and thumbs/). Any other
 * file is left alone. Sets *export_tmp when one was an export's. */
void kb__remove_temps(const char *dir, int *export_tmp);
/* Read a whole file of at most `max` bytes, NUL-terminated. 0 or -errno. */
int kb__read_file(const char *path, size_t max, char **out, size_t *len);
/* rm -rf. 0 or the first negative errno. */
int kb__rmtree(const char *path);
/* Bytes used by the regular files below `path`, or a negative errno. */
int64_t kb__du(const char *path);
/* snprintf for paths: 0, or -ENAMETOOLONG when it did not fit. */
int kb__pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int64_t kb__wall_ms(void);
int64_t kb__mono_ms(void);
/* "2026-11-27T08:15:00Z", or with dashes for a directory name
 * ("2026-11-27T08-15-00Z") when `for_path`. */
void kb__iso_time(int64_t ms, int for_path, char *buf, size_t n);
/* Parses both forms back; -1 when it is neither. */
int64_t kb__parse_iso(const char *s);
/* Appends to buf (NUL-terminated, capacity cap). 0 or -ENOMEM. */
struct kb__str {
    char *p;
    size_t len, cap;
};
int kb__str_addf(struct kb__str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kb__str_free(struct kb__str *s);
/* "No space left on device" for an errno or AVERROR. */
const char *kb__strerror(int err, char *buf, size_t n);

/* ---- queue.c ----------------------------------------------------------- */

/* What the loop thread tells the worker about one stream, in order. */
enum kb__item_kind {
    KB__IT_MSG,    ///< m: a message to record
    KB__IT_BEGIN,  ///< ev: a broadcast began (wall clock, the stream's drop counter)
    KB__IT_GAP,    ///< the publisher left; the broadcast may resume
    KB__IT_SKIP,   ///< ev.drops: the keyframe gate skipped media before the next item
    KB__IT_END,    ///< ev.drops: the broadcast is over
    KB__IT_LIMITS, ///< lim: new retention limits
};

struct kb__item {
    uint8_t kind; ///< enum kb__item_kind
    union {
        struct kb_msg *m; ///< KB__IT_MSG: a reference the queue owns
        struct {
            int64_t wall;
            uint64_t drops;
        } ev;
        struct kb_recorder_limits lim;
    };
};

struct kb__qblock;

/* A single-producer/single-consumer queue: a linked list of fixed-size
 * blocks, so it grows without a lock. The producer (the loop thread) only
 * ever writes the tail block and publishes each item with a release store;
 * the consumer (the worker) reads up to what it acquires and recycles the
 * blocks it finished. Neither side waits for the other. */
struct kb__queue {
    /* Producer only: */
    struct kb__qblock *tail;
    struct kb__qblock *reserve; ///< a block kept for control items when malloc fails
    uint64_t bytes_in;          ///< payload bytes of the messages pushed so far
    /* Consumer only: */
    struct kb__qblock *head;
    uint32_t head_i; ///< next item to take in head
    /* Shared: */
    _Atomic(struct kb__qblock *) spare; ///< one finished block, handed back for reuse
    atomic_uint_least64_t bytes_out;    ///< payload bytes the consumer took
    atomic_uint_least64_t items_out;    ///< items the consumer took
    atomic_uint_least64_t items_done;   ///< items the consumer finished (kb__queue_done)
    atomic_uint_least64_t items_in;     ///< items pushed (written by the producer only)
};

int kb__queue_init(struct kb__queue *q);
/* Unrefs the messages still queued and frees every block. Neither side
 * may use the queue any more. */
void kb__queue_destroy(struct kb__queue *q);
/* Producer: append a copy of *it (a KB__IT_MSG's reference passes to the
 * queue). A control item may take the reserve block when memory is short.
 * 0 or -ENOMEM (nothing appended). */
int kb__queue_push(struct kb__queue *q, const struct kb__item *it, int control);
/* Producer: payload bytes and items pushed and not yet taken. */
uint64_t kb__queue_bytes(const struct kb__queue *q);
uint64_t kb__queue_items(const struct kb__queue *q);
/* Consumer: move the next item to *out. 1, or 0 when the queue is empty. */
int kb__queue_take(struct kb__queue *q, struct kb__item *out);
/* Consumer: n items taken have been dealt with (tests wait for this). */
void kb__queue_done(struct kb__queue *q, uint32_t n);
/* Any thread: every item pushed so far has been dealt with. */
int kb__queue_idle(struct kb__queue *q);

/* ---- recorder.c: for tests ---------------------------------------------- */

/* While `hold` is set the worker consumes no stream queue, so a test can
 * fill one deterministically. */
void kb__recorder_hold(struct kb_recorder *r, int hold);
/* The payload bytes now queued for `s` (the stream's producer thread). */
uint64_t kb__recorder_stream_queued(struct kb_recorder_stream *s);
/* 1 once the worker has dealt with everything `s` was told (its status
 * snapshot included). Any thread. */
int kb__recorder_stream_idle(struct kb_recorder_stream *s);
/* Wait until the job thread has nothing queued or running. */
void kb__recorder_wait_jobs(struct kb_recorder *r);

/* ---- media.c ----------------------------------------------------------- */

enum kb__kind {
    KB__V = 0,
    KB__A = 1,
};

/* What one audio or video message carries, parsed from its tag body. */
struct kb__frame {
    int kind;             ///< KB__V or KB__A
    enum AVCodecID codec; ///< AV_CODEC_ID_NONE: a codec kebun does not record
    const char *name;     ///< codec name for logs ("H.264", "MP3", ...)
    int seqhdr;           ///< codec configuration (avcC, hvcC, av1C, ASC)
    int key;              ///< video keyframe; every audio frame is one
    int skip;             ///< nothing to record (end of sequence, metadata, ...)
    int32_t cts;          ///< composition time offset, ms
    const uint8_t *data;  ///< configuration record or coded frame
    size_t len;
    int track;            ///< E-RTMP multitrack: the track described (after -ENOENT: the
                          ///< message's first); -1: not multitrack
    int tracks;           ///< ... how many tracks the message holds
};

/* Describe track `track` of a multitrack message (-1: its first track; a
 * message that is not multitrack is described whatever `track` says). 0;
 * -ENOENT for a multitrack message without that track (only kind, track
 * and tracks are set); -EINVAL for a message that is not audio or video or
 * too short. */
int kb__media_parse(const struct kb_msg *m, int track, struct kb__frame *f);

/* A codec configuration from a sequence header. */
struct kb__codec {
    enum AVCodecID id; ///< AV_CODEC_ID_NONE when unset
    const char *name;
    uint8_t *extradata; ///< av_malloc'd, padded
    int size;
    int sample_rate; ///< audio, from the AudioSpecificConfig
    int channels;
};

/* Copy a sequence header into c (replacing what it held). 0, -ENOMEM, or
 * -EINVAL for an AudioSpecificConfig kebun cannot read. */
int kb__codec_set(struct kb__codec *c, const struct kb__frame *f);
/* 1 when c already holds exactly this sequence header. */
int kb__codec_same(const struct kb__codec *c, const struct kb__frame *f);
int kb__codec_copy(struct kb__codec *dst, const struct kb__codec *src);
/* The parameter sets of an avcC or hvcC record as length-prefixed NAL units
 * (the record's own length size), to put in front of a keyframe so that a
 * decoder that never sees the new init segment still follows a change.
 * *out is NULL (and 0 returned) for other codecs. 0 or -ENOMEM. */
int kb__inband_ps(enum AVCodecID id, const uint8_t *x, size_t n, uint8_t **out, size_t *out_n);
void kb__codec_clear(struct kb__codec *c);

/* ---- segmenter.c ------------------------------------------------------- */

struct kb__seg;

/* A segment that has just become complete (renamed to its final name). */
struct kb__seg_info {
    char name[32];    ///< "000004.m4s"
    int64_t start_ms; ///< first timestamp, on the recording's timeline
    int64_t dur_ms;
    uint64_t bytes;
};

struct kb__seg_conf {
    enum kb_recorder_format format;
    const char *dir;                       ///< absolute path of the recording directory
    const char *init_name;                 ///< "init.mp4", "init-2.mp4" (fMP4 only)
    uint32_t first_index;                  ///< number of this part's first segment
    uint32_t target_ms;                    ///< cut at the first keyframe after this
    uint32_t max_ms;                       ///< cut earlier rather than exceed this (0: no limit)
    const struct kb__codec *video, *audio; ///< NULL: the part has no such track
    int width, height;
    int inband; ///< repeat the parameter sets in the first keyframe
    const atomic_int *fsync; ///< when set and nonzero, a segment (and init segment) reaches
                             ///< the disk, with its name, before `done` hears of it
    /* Called when a segment is complete; a negative return fails the write. */
    int (*done)(void *ud, const struct kb__seg_info *info);
    void *ud;
};

/* Write the init segment (fMP4) and get ready for the first packet. On
 * failure returns a negative error and describes it in what[] ("write
 * init.mp4"). */
int kb__seg_new(const struct kb__seg_conf *c, struct kb__seg **out, char *what, size_t n);
/* Times are milliseconds on the recording's timeline (>= 0). */
int kb__seg_video(struct kb__seg *s, int64_t dts_ms, int32_t cts, int key, const uint8_t *p,
                  size_t n);
int kb__seg_audio(struct kb__seg *s, int64_t dts_ms, const uint8_t *p, size_t n);
/* Complete the current segment now (the publisher left); the next one
 * starts at the next keyframe. */
int kb__seg_cut(struct kb__seg *s);
/* Complete the last segment. The part can only be freed afterwards. */
int kb__seg_finish(struct kb__seg *s);
/* Frees everything; an unfinished segment's temp file is deleted. */
void kb__seg_free(struct kb__seg *s);
const char *kb__seg_what(const struct kb__seg *s); ///< what failed last
const char *kb__seg_file(const struct kb__seg *s); ///< segment being written, or ""
uint32_t kb__seg_next_index(const struct kb__seg *s);
int64_t kb__seg_end_ms(const struct kb__seg *s); ///< end of what has been written

/* ---- playlist.c -------------------------------------------------------- */

struct kb__pl_entry {
    char name[32];
    char map[32]; ///< EXT-X-MAP before this segment, or ""
    int disc;     ///< EXT-X-DISCONTINUITY before it
    int part;     ///< 1-based
    int64_t dur_ms;
};

struct kb__playlist {
    enum kb_recorder_format format;
    int target_s; ///< EXT-X-TARGETDURATION, fixed for the playlist's life; 0: from the segments
    struct kb__pl_entry *e;
    size_t n, cap;
    int ended; ///< EXT-X-ENDLIST
};

int kb__pl_add(struct kb__playlist *pl, const struct kb__pl_entry *e);
/* EXT-X-TARGETDURATION for a recording whose segments target `segment_ms`
 * (RFC 8216 6.2.1: it never changes once the playlist exists), and the
 * longest segment that still fits it (EXTINF rounded to the nearest
 * second). */
int kb__pl_target_s(uint32_t segment_ms);
int64_t kb__pl_max_ms(int target_s);
/* Write DIR/index.m3u8 atomically (and durably with `sync`). */
int kb__pl_write(const struct kb__playlist *pl, const char *dir, int sync);
/* Read DIR/index.m3u8 (as kebun writes it). 0, -ENOENT, -EINVAL, -ENOMEM. */
int kb__pl_read(struct kb__playlist *pl, const char *dir);
int64_t kb__pl_duration_ms(const struct kb__playlist *pl);
void kb__pl_free(struct kb__playlist *pl);

/* ---- meta.c ------------------------------------------------------------ */

struct kb__meta {
    char stream[KB__NAME_MAX + 1];
    enum kb_recorder_format format;
    int64_t start_ms, end_ms; ///< wall clock; end_ms 0 while open
    int64_t duration_ms;
    char vcodec[16], acodec[16];
    int width, height, sample_rate, channels;
    uint64_t bytes;
    uint32_t segments, parts;
    const char *status; ///< "live", "complete", "interrupted", "failed"
    uint64_t dropped;
    char last_error[160];
    int thumb;          ///< thumb.jpg written
    int exported;       ///< recording.mp4 written
    int export_pending; ///< finished, and an export is due that has not completed yet
};

/* Write DIR/meta.json atomically (and durably with `sync`). */
int kb__meta_write(const struct kb__meta *m, const char *dir, int sync);
int kb__meta_read(struct kb__meta *m, const char *dir);

/* ---- recover.c --------------------------------------------------------- */

struct kb__jobs;

/* The start-up pass over every recording below env->root: delete the temp
 * files a crash or kill left, close recordings a crash left open
 * ("interrupted"), and hand `jobs` the finished recordings whose export is
 * still due (export_pending, or an export's temp file was left). */
void kb__recover(const struct kb__env *env, struct kb__jobs *jobs);

/* ---- thumb.c ----------------------------------------------------------- */

/* Decode one keyframe of codec c and fill in its size; when `jpeg_path` is set also
 * writes a JPEG `width` pixels wide there (temp + rename). 0 or a negative
 * error; what[] says which step failed. */
int kb__thumb(const struct kb__codec *c, const uint8_t *p, size_t n, const char *jpeg_path,
              int width, int *w, int *h, char *what, size_t what_n);

/* ---- export.c ---------------------------------------------------------- */

/* Remux the recording in absolute directory `dir` into dir/recording.mp4
 * with faststart (a kb__tmp_open temp file + rename). Gives up with
 * AVERROR_EXIT soon after *cancel (if given) becomes nonzero. 0 or a
 * negative error. */
int kb__export(const struct kb__env *env, const char *stream, const char *dir,
               const atomic_int *cancel);
/* kb__export for a finished recording, noted in its meta.json ("export",
 * export_pending cleared). A recording without an end in meta.json is
 * refused (-EBUSY); `rel` is "STREAM/RECORDING", for logs. */
int kb__export_recording(const struct kb__env *env, const char *dir, const char *rel,
                         const char *stream, const atomic_int *cancel);
/* Tests only: called for every packet an export copies (a slow disk). */
extern void (*kb__export_hook)(void);

/* ---- jobs.c ------------------------------------------------------------ */

/* Start the job thread. 0 or a negative errno. */
int kb__jobs_new(const struct kb__env *env, struct kb__jobs **out);
/* Export the finished recording `rel` ("STREAM/RECORDING"); `done` (or
 * NULL) is called on the job thread with 0 or a negative error, or with
 * -ECANCELED at shutdown. 0, -EAGAIN when the list is full, -ESHUTDOWN. */
int kb__jobs_export(struct kb__jobs *j, const char *rel, void (*done)(void *ud, int err), void *ud);
/* Delete the finished recording `rel` ("STREAM/RECORDING"); `done` (or
 * NULL) is called on the job thread with 0, -EBUSY (live, or not finished),
 * -ENOENT, another negative errno, or -ECANCELED at shutdown. 0,
 * -ESHUTDOWN or -ENOMEM. */
int kb__jobs_delete(struct kb__jobs *j, const char *rel, void (*done)(void *ud, int err), void *ud);
/* A retention pass over `stream` with these limits; one per stream is
 * queued at most (a newer request updates its limits). 0 or -errno. */
int kb__jobs_retention(struct kb__jobs *j, const char *stream, const struct kb_recorder_limits *lim);
/* An export left over from the last run (recovery at start), done after
 * everything else. 0 or -ENOMEM. */
int kb__jobs_backlog(struct kb__jobs *j, const char *rel);
/* Wait until nothing is queued or running (tests). */
void kb__jobs_wait(struct kb__jobs *j);
/* Wait until no export queued with kb__jobs_export waits or runs, or until
 * timeout_ms have passed (a shutdown). 1 when none is left, 0 on timeout. */
int kb__jobs_wait_exports(struct kb__jobs *j, uint32_t timeout_ms);
/* Start no more jobs, cancel the export in progress, fail what is queued
 * (-ECANCELED; the exports among them are logged as left for the next
 * start) and join the thread. Later requests get -ESHUTDOWN. */
void kb__jobs_stop(struct kb__jobs *j);
void kb__jobs_free(struct kb__jobs *j);

/* ---- retention.c ------------------------------------------------------- */

/* Delete the stream's oldest finished recordings over the limits; never a
 * live one (kb__env_live, or no end in meta.json). Stops early once *cancel
 * (if given) is set. */
void kb__retention(const struct kb__env *env, const char *stream,
                   const struct kb_recorder_limits *lim, const atomic_int *cancel);

/* ---- recording.c ------------------------------------------------------ */

struct kb__recording;

/* What the job thread is to do once a recording ended. */
struct kb__recording_done {
    char rel[KB__REL_MAX]; ///< "STREAM/RECORDING", or "" when nothing was written
    int export;            ///< an export is due (export_mp4 on and segments written)
};

/* The worker-side state of one stream's recordings. */
int kb__recording_new(const struct kb__env *env, const char *stream, struct kb__recording **out);
/* A broadcast begins; drops_total is the stream's drop counter then. */
void kb__recording_begin(struct kb__recording *rec, int64_t wall_ms, uint64_t drops_total);
void kb__recording_msg(struct kb__recording *rec, struct kb_msg *m);
/* The publisher left: what is written becomes visible; the timeline goes on
 * from where it ends. */
void kb__recording_gap(struct kb__recording *rec);
/* The queue skipped media up to here (drops_total: the counter now): as a
 * gap, so no segment spans the hole. */
void kb__recording_skip(struct kb__recording *rec, uint64_t drops_total);
/* The broadcast is over: ENDLIST, meta.json "complete" (or "failed") with
 * its end, and export_pending when an export is due; *done says what. */
void kb__recording_end(struct kb__recording *rec, uint64_t drops_total,
                       struct kb__recording_done *done);
/* The status snapshot's fields (dropped excepted: the queue counts that). */
void kb__recording_status(const struct kb__recording *rec, struct kb_recorder_status *out);
void kb__recording_free(struct kb__recording *rec);

#endif
