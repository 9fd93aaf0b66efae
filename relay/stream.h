/* kebun: the stream hub and the streams in it.
 *
 * A stream is a configured public name with a secret key. It has at most one
 * publisher; it keeps what a late joiner needs first (onMetaData, the video
 * and audio sequence headers, and the GOP since the last keyframe) and a
 * list of sinks (players, push outputs, the recorder, HTTP viewers) that it
 * hands every message to. A message is stamped once with the stream's
 * timeline timestamp and classification, and its chunked form is built once
 * for every RTMP sink, then it is shared read-only: fan-out copies
 * pointers, never payloads.
 *
 * Timestamps are rebased per publish session so that the timeline the sinks
 * see is monotonic across publisher reconnects and takeovers.
 *
 * A broadcast outlives its publisher by the grace period: a phone that
 * drops and returns within it (or a new publisher with the key) continues
 * the same broadcast, so push outputs stay connected and the recording
 * stays one recording. Sinks see on_publish (resumed or new), on_unpublish
 * when the publisher leaves, and on_end when the broadcast is over.
 *
 * The hub has no clock and no sockets: times come in as arguments, and the
 * grace deadline goes out through a callback that asks the owner to call
 * kb_hub_expire() at a given time (the relay arms a uv timer; the unit
 * tests call it directly).
 */
#ifndef KB_STREAM_H
#define KB_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "relay/rtmp/caps.h"
#include "relay/rtmp/msg.h"
#include "silence.h"

struct kb_stream;
struct kb_session;
struct kb_config;
struct kb_stream_conf;

/* Something that receives a stream's messages. */
struct kb_sink;
struct kb_sink_ops {
    /* A shared message; take a reference to keep it. It may detach any
     * sink, itself included (detaching waits for the fan-out to end). */
    void (*on_msg)(struct kb_sink *sink, struct kb_msg *msg);
    /* A publisher started; resumed = it continues the current broadcast
     * (returned within the grace period, or took over). */
    void (*on_publish)(struct kb_sink *sink, int resumed);
    /* The publisher left; the broadcast may resume within the grace period. */
    void (*on_unpublish)(struct kb_sink *sink);
    /* The broadcast is over (grace expired, or shutdown). */
    void (*on_end)(struct kb_sink *sink);
};

enum kb_sink_kind {
    KB_SINK_OTHER,    ///< anything not counted below
    KB_SINK_PLAYER,   ///< an RTMP player or an HTTP-FLV viewer
    KB_SINK_PUSH,     ///< a push destination
    KB_SINK_RECORDER, ///< the recording
    KB_SINK_KINDS,
};

struct kb_sink {
    const struct kb_sink_ops *ops;
    struct kb_stream *stream; ///< attached to, or NULL
    struct kb_list link;      ///< on the stream's sinks while attached (and while gone)
    uint8_t kind;             ///< enum kb_sink_kind, for counts
    uint8_t wire;             ///< gets each message with its players' chunked form built
    uint8_t gone;             ///< detached during a fan-out; unlinked when it ends
};

#define KB_GOP_MAX_MSGS 4096 ///< messages in one cached GOP (with its audio)
#define KB_TRACK_HDRS 8      ///< sequence headers kept for a multitrack stream's other tracks

enum kb_broadcast {
    KB_BC_IDLE,  ///< nobody publishing, no broadcast
    KB_BC_LIVE,  ///< a publisher is sending
    KB_BC_GRACE, ///< the publisher left; waiting for its return
};

struct kb_hub;

/* What the stream's recordings wrote over kebun's run, for /metrics
 * (relay/status.c keeps it up to date from the recorder's status). */
struct kb_rec_totals {
    char dir[256];                ///< the recording the current values belong to
    uint64_t bytes, segments, dropped;          ///< in that recording
    uint64_t bytes_done, segments_done, dropped_done; ///< in the ones before
    uint64_t failures;            ///< times a recording went from working to failed
    int failed;
};

struct kb_stream {
    struct kb_hub *hub;
    char *name;                   ///< public name (config)
    char *key;                    ///< secret key (config); never logged
    int gop_cache;                ///< cache the GOP for instant start
    uint64_t gop_cache_max;       ///< bytes a cached GOP may hold
    struct kb_session *publisher; ///< current publisher or NULL (never looked into here)
    enum kb_broadcast bcast;
    uint64_t grace_ms;            ///< how long GRACE lasts
    uint64_t grace_until;         ///< loop time GRACE ends (while in GRACE)
    uint64_t bcast_start_ms;      ///< loop time the broadcast began
    struct kb_list sinks;         ///< attached sinks (kb_sink.link)
    int n_sinks[KB_SINK_KINDS];   ///< attached sinks by kind
    int n_wire;                   ///< attached sinks that want the chunked form
    int fanning;                  ///< inside a fan-out: detaching only marks sinks gone
    int sinks_gone;               ///< a fan-out left gone sinks to unlink

    struct kb_msg *metadata;      ///< last onMetaData (already stripped of @setDataFrame)
    struct kb_msg *video_hdr;     ///< last video sequence header
    struct kb_msg *audio_hdr;     ///< last audio sequence header
    struct kb_msg *audio_layout;  ///< last E-RTMP audio MultichannelConfig
    struct kb_msg *track_hdr[KB_TRACK_HDRS]; ///< E-RTMP multitrack: the other tracks' sequence
                                  ///< headers (video_hdr / audio_hdr hold the first track's)
    int first_track[2];           ///< multitrack: 1 + the first track id seen (video, audio)
    struct kb_msg **gop;          ///< messages since the last keyframe, keyframe first
    uint32_t gop_len, gop_cap;
    uint64_t gop_bytes;
    int gop_valid;                ///< gop starts at a keyframe and fit the bounds
    int has_video;                ///< this publish session sent video
    struct kb_silence silence;    ///< silent audio for a stream without (silence.h)

    /* Timeline: out = in + ts_offset (mod 2^32), clamped to stay >= ts_floor. */
    int ts_started;               ///< the session's first message has been seen
    uint32_t ts_offset;
    uint32_t ts_floor;            ///< the timeline never goes below this
    uint32_t ts_last;             ///< last timestamp handed to sinks
    int ts_any;                   ///< something was ever handed to sinks

    uint64_t msgs_in, bytes_in;   ///< this publish session
    uint64_t publish_start_ms;    ///< loop time the session started
    uint64_t state_ms;            ///< loop time bcast last changed (0: never)
    uint64_t total_in;            ///< payload bytes received over the stream's life
    uint64_t bytes_out_done;      ///< bytes sent to players that have left
    uint64_t rate_in;             ///< bits/s received, sampled by the server's sweep
    uint64_t rate_bytes, rate_at; ///< total_in and loop time at the last sample
    struct kb_rec_totals rec_totals;
    struct kb_stream *next;
};

struct kb_hub {
    struct kb_stream *streams;
    uint32_t chunk_size;          ///< chunk size of the players' shared wire form
    int closing;                  ///< shutting down: broadcasts end without grace
    const struct kb_silent_aac *silent_aac; ///< the silence's bytes, or NULL (none added)
    /* Asks the owner to call kb_hub_expire() at loop time `at` (or earlier). */
    void (*arm)(void *ud, uint64_t at);
    void *arm_ud;
};

/* Build the hub from the config's [stream] sections. 0 or -ENOMEM. */
int kb_hub_init(struct kb_hub *hub, const struct kb_config *conf,
                void (*arm)(void *ud, uint64_t at), void *arm_ud);
/* Silent audio's bytes (made once by the owner; NULL: silent_audio does
 * nothing). For the streams there are and those added later. */
void kb_hub_set_silence(struct kb_hub *hub, const struct kb_silent_aac *aac);
/* Add a stream for a [stream] section (at start or on reload). */
struct kb_stream *kb_hub_add(struct kb_hub *hub, const struct kb_config *conf,
                             const struct kb_stream_conf *sc);
/* Take the settings of a [stream] section (key, GOP cache, grace). */
int kb_stream_apply(struct kb_stream *st, const struct kb_config *conf,
                    const struct kb_stream_conf *sc);
/* Remove and free an idle stream with no sinks. */
void kb_hub_remove(struct kb_hub *hub, struct kb_stream *st);
/* End the broadcasts whose grace period is over at `now` (sinks get
 * on_end). Returns the next deadline, or 0 when none is pending. */
uint64_t kb_hub_expire(struct kb_hub *hub, uint64_t now);
/* Shutdown: end every broadcast at once (sinks get on_end). */
void kb_hub_close(struct kb_hub *hub);
/* Free the streams. */
void kb_hub_free(struct kb_hub *hub);

struct kb_stream *kb_hub_find_name(struct kb_hub *hub, const char *name);
struct kb_stream *kb_hub_find_key(struct kb_hub *hub, const char *key);

/* Make `publisher` the publisher (a previous publisher must have been
 * detached by the caller first) and tell the sinks. */
void kb_stream_publish(struct kb_stream *st, struct kb_session *publisher, uint64_t now_ms);
/* The publisher left: tell the sinks, drop the caches, start the grace
 * period (or end the broadcast at once when it is 0). */
void kb_stream_unpublish(struct kb_stream *st, uint64_t now_ms);
/* A message from the publisher (the stream takes ownership of the
 * reference). Returns 0, or -ENOMEM when the players' wire form could not
 * be built (the message is then not handed out). What silent audio did is
 * in st->silence.events for the caller to log (and clear). */
int kb_stream_push(struct kb_stream *st, struct kb_msg *m);

void kb_stream_attach(struct kb_stream *st, struct kb_sink *sink);
void kb_stream_detach(struct kb_sink *sink);
/* Whether a receiver that declared `caps` can take what the stream sends
 * now (its sequence headers and channel layout): KB_CAPS_OK, or the
 * refusal, with what it names in `what`. */
enum kb_caps_verdict kb_stream_admits(const struct kb_stream *st, const struct kb_caps *caps,
                                      char *what, size_t n);
/* Hand a sink what it needs to start: metadata, sequence headers and
 * (when cached) the current GOP. Returns 1 when it got a keyframe to start
 * from, 0 when it must wait for the next one. */
int kb_stream_catch_up(struct kb_stream *st, struct kb_sink *sink);

#endif
