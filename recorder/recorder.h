/* kebun: the recorder. Everything that touches disk for media.
 *
 * One recorder per process owns a worker thread and a job thread. The loop
 * thread hands the worker the same refcounted messages the relay fans out
 * (kb_rec_msg takes a reference and returns at once); the worker remuxes
 * them with libavformat into segments plus an HLS playlist and writes
 * meta.json and thumbnails. The job thread exports a faststart MP4 when a
 * recording finishes and applies retention, so neither ever holds up a
 * stream's queue. Nothing here ever blocks the caller on disk: each
 * stream's queue is bounded in bytes, and past the bound the recording
 * skips to the next keyframe and counts what it lost.
 *
 * Layout, servable by any HTTP server:
 *   DIR/<stream>/<UTC start, 2026-11-27T08-15-00Z>/
 *       index.m3u8, init.mp4 + 000001.m4s ... (or 000001.ts ...),
 *       meta.json, thumb.jpg, thumbs/, recording.mp4 (export)
 *
 * This module knows messages, never sessions or sockets; it includes no
 * relay header except relay/rtmp/ (messages and FLV tag helpers).
 */
#ifndef KB_RECORDER_H
#define KB_RECORDER_H

#include <stdarg.h>
#include <stdint.h>

#include "relay/rtmp/msg.h"

enum kb_rec_format {
    KB_REC_FMP4,   ///< CMAF: init.mp4 + NNNNNN.m4s
    KB_REC_MPEGTS, ///< NNNNNN.ts
};

/* Log levels match relay/log.h's enum (error 0 .. debug 3). */
typedef void (*kb_rec_log_fn)(int level, const char *stream, const char *fmt, va_list ap);

struct kb_recorder_conf {
    const char *dir;              ///< recordings root; created when missing
    uint32_t segment_ms;          ///< target segment length; cut at the next keyframe
    enum kb_rec_format format;
    uint64_t queue_bytes;         ///< per stream: payload bytes queued for the worker
    uint32_t thumb_interval_ms;   ///< extra thumbnails this often (0 = first only)
    int export_mp4;               ///< faststart MP4 when a recording finishes
    kb_rec_log_fn log;            ///< called from the loop and the recorder threads; must be thread-safe
};

/* Retention per stream (0 = no limit). Applied on the job thread after each
 * recording finishes, when the stream's handle is made and when its limits
 * change: whole oldest finished recordings are deleted, never a live one. */
struct kb_rec_limits {
    uint64_t max_age_ms;
    uint64_t max_bytes;
};

enum kb_rec_state {
    KB_REC_IDLE,      ///< no broadcast
    KB_REC_WAITING,   ///< broadcast began; waiting for sequence headers
    KB_REC_RECORDING,
    KB_REC_FAILED,    ///< writes fail (ENOSPC, EACCES, EROFS, EIO): retried as a new part
};

/* A snapshot for the API and tests; filled under the stream's lock. */
struct kb_rec_status {
    enum kb_rec_state state;
    char dir[256];          ///< current recording's directory (relative to the root), or ""
    char file[64];          ///< segment being written, or ""
    uint64_t bytes;         ///< written in the current recording
    uint32_t segments;      ///< complete segments in the current recording
    uint32_t parts;         ///< parts (a new part after a failure or codec change)
    uint64_t dropped;       ///< messages skipped because the queue was full
    char last_error[160];   ///< "" or what failed, e.g. "write 000004.m4s: No space left on device"
    int64_t last_error_at;  ///< UTC seconds of last_error, 0 = never
};

struct kb_recorder;
struct kb_rec_stream;

/* Create the recorder and start its threads. Before returning it deletes
 * the temp files a crash left in the recordings, closes recordings a crash
 * left open (adds ENDLIST, marks meta.json "interrupted"), and queues the
 * exports a crash or a shutdown left undone (meta.json "export_pending";
 * with export_mp4 on). Returns 0 or a negative errno. */
int kb_recorder_new(const struct kb_recorder_conf *conf, struct kb_recorder **out);

/* Finish every open recording (complete), drain the queues and join the
 * threads. It never waits for an export: the one in progress is cancelled
 * and those not started are left for the next start (export_pending).
 * NULL is fine. */
void kb_recorder_free(struct kb_recorder *r);

/* A handle for one stream (loop thread). The name is checked again here:
 * NULL (and a log line) for a name that could escape the root: empty, "."
 * or "..", a '/', '\\' or control character, or longer than 64 bytes. The
 * handle lives until kb_recorder_free. */
struct kb_rec_stream *kb_recorder_stream(struct kb_recorder *r, const char *name,
                                         const struct kb_rec_limits *limits);

/* Loop-thread calls; none of them blocks on disk.
 *   kb_rec_begin: a new broadcast. The recording's directory is created
 *                 (named by the UTC time of this call) when the first media
 *                 arrives; it starts once both sequence headers (or the
 *                 only one, for audio-only or video-only streams after a
 *                 short wait) are there.
 *   kb_rec_msg:   a message of the stream's timeline (monotonic across
 *                 publisher reconnects); takes its own reference. A
 *                 sequence header that differs from the current one starts
 *                 a new part after an EXT-X-DISCONTINUITY.
 *   kb_rec_gap:   the publisher left; the broadcast may resume (grace), so
 *                 the recording stays open.
 *   kb_rec_end:   the broadcast is over: close the segment, write ENDLIST,
 *                 meta.json "complete"; then the job thread makes the MP4
 *                 export and applies retention. */
void kb_rec_begin(struct kb_rec_stream *s);
void kb_rec_msg(struct kb_rec_stream *s, struct kb_msg *m);
void kb_rec_gap(struct kb_rec_stream *s);
void kb_rec_end(struct kb_rec_stream *s);

/* Thread-safe snapshot. */
void kb_rec_status(struct kb_rec_stream *s, struct kb_rec_status *out);

/* Remux a finished recording (directory relative to the root, e.g.
 * "demo/2026-11-27T08-15-00Z") into recording.mp4 with faststart. Runs on
 * the job thread; `done` is called there with 0 or a negative error
 * (-ECANCELED when the recorder stops first). Returns 0, -EINVAL, -ENOMEM,
 * -EAGAIN (too many exports waiting) or -ESHUTDOWN; on error `done` is
 * never called. */
int kb_recorder_export(struct kb_recorder *r, const char *recording,
                       void (*done)(void *ud, int err), void *ud);

/* The same export, synchronously and without a running recorder (for
 * `kebun --export DIR`): DIR is a recording's directory. Refuses an open
 * recording (-EBUSY). Safe beside a running server: each export writes a
 * temp file of its own and renames it into place. 0 or a negative error;
 * `log` hears what happened. */
int kb_recording_export(const char *dir, kb_rec_log_fn log);

#endif
