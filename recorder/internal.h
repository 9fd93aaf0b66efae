/* kebun: the recorder's internal interfaces, shared by its files and by its
 * tests; nothing outside recorder/ and tests/recorder/ includes this.
 *
 * recorder.c   public API, per-stream queues, the worker thread, jobs
 * rec.c        one stream's recording on the worker: state machine,
 *              timeline, parts, failure and resume
 * media.c      FLV / E-RTMP tag bodies to codec configs and frames
 * segmenter.c  one part's muxer: init.mp4 + segments, temp + rename
 * playlist.c   index.m3u8: write atomically, parse back
 * meta.c       meta.json and the recovery pass after a crash
 * thumb.c      decode a keyframe, scale, encode JPEG
 * export.c     segments to one faststart MP4
 * jobs.c       the job thread: exports and retention, off the worker
 * retention.c  delete a stream's oldest finished recordings
 * fsutil.c     names, paths, atomic writes, time strings
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
#define KB__QUEUE_ITEMS_MAX (1u << 20) ///< items per stream queue, whatever their size

/* ---- fsutil.c ---------------------------------------------------------- */

/* 1 when `name` is a stream name that cannot escape the recordings root. */
int kb__name_ok(const char *name);
/* 1 when `rel` is "STREAM/RECORDING" with both parts safe names. */
int kb__recording_path_ok(const char *rel);
/* mkdir -p with mode 0755. 0 or a negative errno. */
int kb__mkdir_p(const char *path);
/* Write `len` bytes to a new temp file (kb__tmp_open), then rename it over
 * `path`. 0 or -errno. */
int kb__write_atomic(const char *path, const void *data, size_t len);
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

/* ---- recorder.c -------------------------------------------------------- */

void kb__log(const struct kb_recorder *r, int level, const char *stream, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The recordings root and the configuration, for the worker-side files. */
const struct kb_recorder_conf *kb__conf(const struct kb_recorder *r);
/* Tests only: while `hold` is set the worker consumes no stream queue, so a
 * test can fill one deterministically. */
void kb__recorder_hold(struct kb_recorder *r, int hold);
/* Tests only: the payload bytes now queued for `s`. */
uint64_t kb__queued_bytes(struct kb_rec_stream *s);
/* The recorder's job thread (jobs.c). */
struct kb__jobs *kb__jobs(const struct kb_recorder *r);
/* 1 when `rel` ("STREAM/RECORDING") is a stream's current recording. Any
 * thread. */
int kb__live(struct kb_recorder *r, const char *rel);

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
};

/* 0, or -EINVAL for a message that is not audio or video or too short. */
int kb__media_parse(const struct kb_msg *m, struct kb__frame *f);

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
    enum kb_rec_format format;
    const char *dir;                       ///< absolute path of the recording directory
    const char *init_name;                 ///< "init.mp4", "init-2.mp4" (fMP4 only)
    uint32_t first_index;                  ///< number of this part's first segment
    uint32_t target_ms;                    ///< cut at the first keyframe after this
    uint32_t max_ms;                       ///< cut earlier rather than exceed this (0: no limit)
    const struct kb__codec *video, *audio; ///< NULL: the part has no such track
    int width, height;
    int inband; ///< repeat the parameter sets in the first keyframe
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
    enum kb_rec_format format;
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
/* Write DIR/index.m3u8 atomically. */
int kb__pl_write(const struct kb__playlist *pl, const char *dir);
/* Read DIR/index.m3u8 (as kebun writes it). 0, -ENOENT, -EINVAL, -ENOMEM. */
int kb__pl_read(struct kb__playlist *pl, const char *dir);
int64_t kb__pl_duration_ms(const struct kb__playlist *pl);
void kb__pl_free(struct kb__playlist *pl);

/* ---- meta.c ------------------------------------------------------------ */

struct kb__meta {
    char stream[KB__NAME_MAX + 1];
    enum kb_rec_format format;
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

/* Write DIR/meta.json atomically. */
int kb__meta_write(const struct kb__meta *m, const char *dir);
int kb__meta_read(struct kb__meta *m, const char *dir);
/* The start-up pass over every recording below root: delete the temp files
 * a crash or kill left, close recordings a crash left open ("interrupted"),
 * and hand the job thread the finished recordings whose export is still
 * due (export_pending, or an export's temp file was left). */
void kb__recover(struct kb_recorder *r);

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
int kb__export(struct kb_recorder *r, const char *stream, const char *dir,
               const atomic_int *cancel);
/* kb__export for a finished recording, noted in its meta.json ("export",
 * export_pending cleared). A recording without an end in meta.json is
 * refused (-EBUSY); `rel` is "STREAM/RECORDING", for logs. */
int kb__export_recording(struct kb_recorder *r, const char *dir, const char *rel,
                         const char *stream, const atomic_int *cancel);
/* Tests only: called for every packet an export copies (a slow disk). */
extern void (*kb__export_hook)(void);

/* ---- jobs.c ------------------------------------------------------------ */

struct kb__jobs;

/* Start the job thread. 0 or a negative errno. */
int kb__jobs_new(struct kb_recorder *r, struct kb__jobs **out);
/* Export the finished recording `rel` ("STREAM/RECORDING"); `done` (or
 * NULL) is called on the job thread with 0 or a negative error, or with
 * -ECANCELED at shutdown. 0, -EAGAIN when the list is full, -ESHUTDOWN. */
int kb__jobs_export(struct kb__jobs *j, const char *rel, void (*done)(void *ud, int err), void *ud);
/* A retention pass over `stream` with these limits; one per stream is
 * queued at most (a newer request updates its limits). 0 or -errno. */
int kb__jobs_retention(struct kb__jobs *j, const char *stream, const struct kb_rec_limits *lim);
/* An export left over from the last run (recovery at start), done after
 * everything else. 0 or -ENOMEM. */
int kb__jobs_backlog(struct kb__jobs *j, const char *rel);
/* Tests only: wait until nothing is queued or running. */
void kb__jobs_wait(struct kb__jobs *j);
/* Start no more jobs, cancel the export in progress, fail what is queued
 * (-ECANCELED) and join the thread. Later requests get -ESHUTDOWN. */
void kb__jobs_stop(struct kb__jobs *j);
void kb__jobs_free(struct kb__jobs *j);

/* ---- retention.c ------------------------------------------------------- */

/* Delete the stream's oldest finished recordings over the limits; never a
 * live one (kb__live, or no end in meta.json). Stops early once *cancel
 * (if given) is set. */
void kb__retention(struct kb_recorder *r, const char *stream, const struct kb_rec_limits *lim,
                   const atomic_int *cancel);

/* ---- rec.c ------------------------------------------------------------- */

struct kb__rec;

/* Worker-side state of one stream. */
int kb__rec_new(struct kb_recorder *r, struct kb_rec_stream *s, const char *name,
                struct kb__rec **out);
void kb__rec_begin(struct kb__rec *rec, int64_t wall_ms, uint64_t drops_total);
void kb__rec_msg(struct kb__rec *rec, struct kb_msg *m);
void kb__rec_gap(struct kb__rec *rec);
/* The broadcast is over. `shutdown` is set when the recorder itself stops
 * (the export is left for the next start then); drops_total is the
 * stream's drop counter at the end. */
void kb__rec_end(struct kb__rec *rec, int shutdown, uint64_t drops_total);
void kb__rec_free(struct kb__rec *rec);

/* recorder.c: the worker publishes its state into the stream's snapshot. */
struct kb__pub {
    enum kb_rec_state state;
    const char *dir;
    const char *file;
    uint64_t bytes;
    uint32_t segments, parts;
    const char *last_error; ///< NULL: unchanged
    int64_t last_error_at;
};
void kb__publish(struct kb_rec_stream *s, const struct kb__pub *p);
/* Messages the loop thread has dropped for this stream so far. */
uint64_t kb__dropped(struct kb_rec_stream *s);
/* The stream's retention limits (they may change on reload). */
void kb__limits(struct kb_rec_stream *s, struct kb_rec_limits *out);

#endif
