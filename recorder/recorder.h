/* kebun: the recorder. Everything that touches disk for media.
 *
 * One recorder per process owns a worker thread and a job thread. The loop
 * thread hands the worker the same refcounted messages the relay fans out
 * (kb_recorder_stream_msg takes a reference and returns at once, without a
 * lock: each stream has a single-producer/single-consumer queue); the
 * worker remuxes them with libavformat into segments plus an HLS playlist
 * and writes meta.json and thumbnails. The job thread exports a faststart
 * MP4 when a recording finishes and applies retention, so neither ever
 * holds up a stream's queue. Nothing here ever blocks the caller on disk:
 * each stream's queue is bounded in bytes, and past the bound the recording
 * skips to the next keyframe (relay/rtmp/gate.h) and counts what it lost.
 *
 * Layout, servable by any HTTP server:
 *   DIR/<stream>/<UTC start, 2026-11-27T08-15-00Z>/
 *       index.m3u8, init.mp4 + 000001.m4s ... (or 000001.ts ...),
 *       meta.json, thumb.jpg, thumbs/, recording.mp4 (export)
 *
 * This module knows messages, never sessions or sockets; it includes no
 * relay header except relay/rtmp/ (messages, FLV tag headers, the gate).
 */
#ifndef KB_RECORDER_H
#define KB_RECORDER_H

#include <stdarg.h>
#include <stdint.h>

#include "relay/rtmp/msg.h"

enum kb_recorder_format {
    KB_RECORDER_FMP4,   ///< CMAF: init.mp4 + NNNNNN.m4s
    KB_RECORDER_MPEGTS, ///< NNNNNN.ts
};

enum kb_recorder_fsync {
    KB_RECORDER_FSYNC_OFF,     ///< the kernel writes back when it likes
    KB_RECORDER_FSYNC_SEGMENT, ///< each completed segment, the playlist and meta.json (and
                               ///< their directory) reach the disk before they are listed
};

/* Log levels match relay/log.h's enum (error 0 .. debug 3). */
typedef void (*kb_recorder_log_fn)(int level, const char *stream, const char *fmt, va_list ap);

struct kb_recorder_conf {
    const char *dir;              ///< recordings root; created when missing
    uint32_t segment_ms;          ///< target segment length; cut at the next keyframe
    enum kb_recorder_format format;
    uint64_t queue_bytes;         ///< per stream: payload bytes queued for the worker
    uint32_t thumb_interval_ms;   ///< extra thumbnails this often (0 = first only)
    int export_mp4;               ///< faststart MP4 when a recording finishes
    enum kb_recorder_fsync fsync;
    uint32_t shutdown_timeout_ms; ///< kb_recorder_free waits this long for exports (0: no wait)
    kb_recorder_log_fn log;       ///< called from the loop and the recorder threads; must be
                                  ///< thread-safe
};

/* Retention per stream (0 = no limit). Applied on the job thread after each
 * recording finishes and when the stream's limits are set: whole oldest
 * finished recordings are deleted, never a live one. */
struct kb_recorder_limits {
    uint64_t max_age_ms;
    uint64_t max_bytes;
};

enum kb_recorder_state {
    KB_RECORDER_IDLE,      ///< no broadcast
    KB_RECORDER_WAITING,   ///< broadcast began; waiting for sequence headers
    KB_RECORDER_RECORDING,
    KB_RECORDER_FAILED,    ///< writes fail (ENOSPC, EACCES, EROFS, EIO): retried as a new part
};

/* A snapshot for the API and tests. */
struct kb_recorder_status {
    enum kb_recorder_state state;
    char dir[256];          ///< current recording's directory (relative to the root), or ""
    char file[64];          ///< segment being written, or ""
    uint64_t bytes;         ///< written in the current recording
    uint32_t segments;      ///< complete segments in the current recording
    uint32_t parts;         ///< parts (a new part after a failure or codec change)
    uint64_t dropped;       ///< messages skipped in this broadcast because the queue was full
    char last_error[160];   ///< "" or what failed, e.g. "write 000004.m4s: No space left on device"
    int64_t last_error_at;  ///< UTC seconds of last_error, 0 = never
};

struct kb_recorder;
struct kb_recorder_stream;

/* Create the recorder and start its threads. Before returning it deletes
 * the temp files a crash left in the recordings, closes recordings a crash
 * left open (adds ENDLIST, marks meta.json "interrupted"), and queues the
 * exports a crash or a shutdown left undone (meta.json "export_pending";
 * with export_mp4 on). Returns 0 or a negative errno. */
int kb_recorder_new(const struct kb_recorder_conf *conf, struct kb_recorder **out);

/* Settings a reload may change while recording: fsync applies to the next
 * file written, the shutdown timeout to kb_recorder_free. */
void kb_recorder_reload(struct kb_recorder *r, enum kb_recorder_fsync fsync,
                        uint32_t shutdown_timeout_ms);

/* Drain the queues, finish every open recording (ENDLIST, meta.json
 * "complete" with its end time), wait up to shutdown_timeout_ms for the
 * exports queued (those that finished now included), then cancel what is
 * left (meta.json keeps "export_pending": the next start makes them) and
 * join the threads. Call it once nothing calls kb_recorder_stream_* any
 * more. NULL is fine. */
void kb_recorder_free(struct kb_recorder *r);

/* The handle of one stream, made on first use. The name is checked: NULL
 * (and a log line) for a name that could escape the root: empty, "." or
 * "..", a '/', '\\' or control character, or longer than 64 bytes. The
 * handle lives until kb_recorder_free. Any thread. */
struct kb_recorder_stream *kb_recorder_stream_get(struct kb_recorder *r, const char *name);

/* The stream's calls below come from one thread at a time (the relay's
 * loop thread); none of them takes a lock or waits on disk, and what they
 * tell the worker arrives in order and is never dropped (only media is, by
 * the keyframe gate).
 *   _limits: new retention limits (a reload): a retention pass with them
 *            runs on the job thread, sparing the live recording.
 *   _begin:  a new broadcast. The recording's directory is created (named
 *            by the UTC time of this call) when the first media arrives; it
 *            starts once both sequence headers (or the only one, for
 *            audio-only or video-only streams after a short wait) are there.
 *   _msg:    a message of the stream's timeline (monotonic across publisher
 *            reconnects); takes its own reference. A sequence header that
 *            differs from the current one starts a new part after an
 *            EXT-X-DISCONTINUITY.
 *   _gap:    the publisher left; the broadcast may resume (grace), so the
 *            recording stays open.
 *   _end:    the broadcast is over: close the segment, write ENDLIST,
 *            meta.json "complete"; then the job thread makes the MP4 export
 *            and applies retention.
 * A NULL handle is ignored. */
void kb_recorder_stream_limits(struct kb_recorder_stream *s, const struct kb_recorder_limits *lim);
void kb_recorder_stream_begin(struct kb_recorder_stream *s);
void kb_recorder_stream_msg(struct kb_recorder_stream *s, struct kb_msg *m);
void kb_recorder_stream_gap(struct kb_recorder_stream *s);
void kb_recorder_stream_end(struct kb_recorder_stream *s);

/* A snapshot of the stream's recording (a short per-stream lock). Any
 * thread; all zero for a NULL handle. */
void kb_recorder_stream_status(struct kb_recorder_stream *s, struct kb_recorder_status *out);

/* Remux a finished recording (directory relative to the root, e.g.
 * "demo/2026-11-27T08-15-00Z") into recording.mp4 with faststart. Runs on
 * the job thread; `done` is called there with 0 or a negative error
 * (-ECANCELED when the recorder stops first). Returns 0, -EINVAL, -ENOMEM,
 * -EAGAIN (too many exports waiting) or -ESHUTDOWN; on error `done` is
 * never called. */
int kb_recorder_export(struct kb_recorder *r, const char *recording,
                       void (*done)(void *ud, int err), void *ud);

/* Delete a finished recording ("STREAM/RECORDING") on the job thread, in
 * turn with exports and retention. `done` is called there with 0, -EBUSY
 * (it is being recorded, or meta.json has no end), -ENOENT, another
 * negative errno, or -ECANCELED when the recorder stops first. Returns 0,
 * -EINVAL, -ENOMEM or -ESHUTDOWN; on error `done` is never called. */
int kb_recorder_delete(struct kb_recorder *r, const char *recording,
                       void (*done)(void *ud, int err), void *ud);

/* The same export, synchronously and without a running recorder (for
 * `kebun --export DIR`): DIR is a recording's directory. Refuses an open
 * recording (-EBUSY). Safe beside a running server: each export writes a
 * temp file of its own and renames it into place. 0 or a negative error;
 * `log` hears what happened. */
int kb_recorder_export_dir(const char *dir, kb_recorder_log_fn log);

#endif
