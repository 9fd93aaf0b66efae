/* kebun: the stream hub and the streams in it.
 *
 * A stream is a configured public name with a secret key. It has at most one
 * publisher; it keeps what a late joiner needs first (onMetaData, the video
 * and audio sequence headers, and the GOP since the last keyframe) and a
 * list of sinks (players now; push outputs and the recorder later) that it
 * hands every message to. A message is stamped once with the stream's
 * timeline timestamp and classification, then shared read-only: fan-out
 * copies pointers, never payloads.
 *
 * Timestamps are rebased per publish session so that the timeline the sinks
 * see is monotonic across publisher reconnects and takeovers.
 *
 * A broadcast outlives its publisher by the grace period: a phone that
 * drops and returns within it (or a new publisher with the key) continues
 * the same broadcast, so push outputs stay connected and the recording
 * stays one recording. Sinks see on_publish (resumed or new), on_unpublish
 * when the publisher leaves, and on_end when the broadcast is over.
 */
#ifndef KB_STREAM_H
#define KB_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relay/rtmp/msg.h"

struct kb_stream;
struct kb_session;

/* Something that receives a stream's messages. */
struct kb_sink;
struct kb_sink_ops {
    /* A shared message; take a reference to keep it. May not detach other
     * sinks (it may detach itself). */
    void (*on_msg)(struct kb_sink *sink, struct kb_msg *msg);
    /* A publisher started; resumed = it continues the current broadcast
     * (returned within the grace period, or took over). */
    void (*on_publish)(struct kb_sink *sink, int resumed);
    /* The publisher left; the broadcast may resume within the grace period. */
    void (*on_unpublish)(struct kb_sink *sink);
    /* The broadcast is over (grace expired, or shutdown). */
    void (*on_end)(struct kb_sink *sink);
};

struct kb_sink {
    const struct kb_sink_ops *ops;
    struct kb_stream *stream; ///< attached to, or NULL
    struct kb_sink *prev, *next;
};

#define KB_GOP_MAX_MSGS 4096 ///< messages in one cached GOP (with its audio)

enum kb_broadcast {
    KB_BC_IDLE,  ///< nobody publishing, no broadcast
    KB_BC_LIVE,  ///< a publisher is sending
    KB_BC_GRACE, ///< the publisher left; waiting for its return
};

struct kb_hub;

struct kb_stream {
    struct kb_hub *hub;
    char *name;                   ///< public name (config)
    char *key;                    ///< secret key (config); never logged
    int gop_cache;                ///< cache the GOP for instant start
    uint64_t gop_cache_max;       ///< bytes a cached GOP may hold
    struct kb_session *publisher; ///< current publisher or NULL
    enum kb_broadcast bcast;
    uint64_t grace_ms;            ///< how long GRACE lasts
    uv_timer_t grace_timer;       ///< ends the broadcast after grace_ms
    uint64_t bcast_start_ms;      ///< loop time the broadcast began
    struct kb_sink *sinks;        ///< attached sinks
    int n_sinks;

    struct kb_msg *metadata;      ///< last onMetaData (already stripped of @setDataFrame)
    struct kb_msg *video_hdr;     ///< last video sequence header
    struct kb_msg *audio_hdr;     ///< last audio sequence header
    struct kb_msg **gop;          ///< messages since the last keyframe, keyframe first
    uint32_t gop_len, gop_cap;
    uint64_t gop_bytes;
    int gop_valid;                ///< gop starts at a keyframe and fit the bounds
    int has_video;                ///< this publish session sent video

    /* Timeline: out = in + ts_offset (mod 2^32), clamped to stay >= ts_floor. */
    int ts_started;               ///< the session's first message has been seen
    uint32_t ts_offset;
    uint32_t ts_floor;            ///< the timeline never goes below this
    uint32_t ts_last;             ///< last timestamp handed to sinks
    int ts_any;                   ///< something was ever handed to sinks

    uint64_t msgs_in, bytes_in;   ///< this publish session
    uint64_t publish_start_ms;    ///< loop time the session started
    struct kb_stream *next;
};

struct kb_hub {
    uv_loop_t *loop;
    struct kb_stream *streams;
    int closing; ///< shutting down: broadcasts end without grace
};

struct kb_config;

struct kb_stream_conf;

/* Add a stream for a [stream] section (at start or on reload). */
struct kb_stream *kb_hub_add(struct kb_hub *hub, const struct kb_config *conf,
                             const struct kb_stream_conf *sc);
/* Take the settings of a [stream] section (key, GOP cache, grace). */
int kb_stream_apply(struct kb_stream *st, const struct kb_config *conf,
                    const struct kb_stream_conf *sc);
/* Remove an idle stream with no sinks; freed once its timer has closed. */
void kb_hub_remove(struct kb_hub *hub, struct kb_stream *st);
/* Build the hub from the config's [stream] sections. 0 or -ENOMEM. */
int kb_hub_init(struct kb_hub *hub, uv_loop_t *loop, const struct kb_config *conf);
/* Shutdown: end every broadcast (sinks get on_end) and close the timers.
 * Sessions are closed before. */
void kb_hub_close(struct kb_hub *hub);
/* Free the streams once the loop has run the close callbacks. */
void kb_hub_free(struct kb_hub *hub);

struct kb_stream *kb_hub_find_name(struct kb_hub *hub, const char *name);
struct kb_stream *kb_hub_find_key(struct kb_hub *hub, const char *key);

/* Make `s` the publisher (a previous publisher must have been detached by
 * the caller first) and tell the sinks. */
void kb_stream_publish(struct kb_stream *st, struct kb_session *s, uint64_t now_ms);
/* The publisher left: tell the sinks, drop the caches, start the grace
 * period (or end the broadcast at once when it is 0). */
void kb_stream_unpublish(struct kb_stream *st);
/* A message from the publisher (the stream takes ownership of the
 * reference). Returns 0 or -ENOMEM. */
int kb_stream_push(struct kb_stream *st, struct kb_msg *m);

void kb_stream_attach(struct kb_stream *st, struct kb_sink *sink);
void kb_stream_detach(struct kb_sink *sink);
/* Hand a new sink what it needs to start: metadata, sequence headers and
 * (when cached) the current GOP. Returns 1 when it got a keyframe to start
 * from, 0 when it must wait for the next one. */
int kb_stream_catch_up(struct kb_stream *st, struct kb_sink *sink);

#endif
