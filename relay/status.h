/* kebun: the relay's state as an immutable snapshot.
 *
 * The loop thread owns every stream, destination and recording; the HTTP
 * thread must not look at them. A few times a second (and right after a
 * change made through the API) the loop builds a snapshot: plain values,
 * strings copied, one allocation, refcounted. The HTTP thread renders the
 * API, the dashboard's data and /metrics from whichever snapshot is current
 * (relay/http/bridge.h hands it over under a short lock), and never waits
 * for the loop.
 *
 * Nothing secret is in a snapshot: destinations carry their masked URL.
 */
#ifndef KB_STATUS_H
#define KB_STATUS_H

#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"

struct kb_status_dest {
    char id[160];
    char name[128];
    char url[512];          ///< masked
    int source;             ///< KB_PUSH_CONFIG or KB_PUSH_API
    const char *state;      ///< "idle", "connecting", "live", "retrying", "failed"
    int64_t since;          ///< UTC ms the state began
    uint64_t bitrate;       ///< bits/s
    uint64_t bytes, drops, reconnects;
    uint64_t drops_video, drops_audio; ///< drops by kind (drops counts them and the rest)
    char last_error[192];   ///< "" = never failed
    int64_t last_error_at;  ///< UTC ms
};

struct kb_status_rec {
    int on;                 ///< the stream is recorded
    const char *state;      ///< "idle", "waiting", "recording", "failed"
    char path[256];         ///< "STREAM/RECORDING" of the current recording, or ""
    char file[64];          ///< segment being written, or ""
    uint64_t bytes, dropped;
    uint32_t segments, parts;
    char last_error[160];
    int64_t last_error_at;  ///< UTC ms, 0 = never
    /* Counters over kebun's run, for /metrics. */
    uint64_t bytes_total, segments_total, failures_total, dropped_total;
};

struct kb_status_stream {
    char name[KB_CONF_NAME_MAX + 1];
    const char *state;      ///< "idle", "live", "grace"
    int64_t since;          ///< UTC ms the state began (0: never, since start)
    char publisher[48];     ///< "ADDR:PORT" while live, else ""
    int64_t publisher_since;
    char vcodec[16], acodec[16]; ///< "" when there is no such track
    int width, height;      ///< from the video sequence header (0: unknown)
    double fps;             ///< from the sequence header or the metadata (0: unknown)
    int sample_rate, channels;
    int silent;             ///< the audio is kebun's silence (silent_audio)
    uint64_t bitrate_in;    ///< bits/s over the last seconds
    uint64_t bytes_in;      ///< received over kebun's run
    uint32_t players;       ///< RTMP players and HTTP-FLV viewers
    uint64_t bytes_out;     ///< sent to them over kebun's run
    struct kb_status_dest *dests;
    uint32_t n_dests;
    struct kb_status_rec rec;
};

struct kb_status {
    atomic_uint refcnt;
    int64_t at;             ///< UTC ms it was built
    uint64_t connections;   ///< open RTMP connections
    uint32_t n_streams;
    struct kb_status_stream *streams;
};

static inline struct kb_status *kb_status_ref(struct kb_status *s)
{
    atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
    return s;
}
void kb_status_unref(struct kb_status *s);

/* Find a stream (NULL when none) or one of its destinations by id. */
const struct kb_status_stream *kb_status_stream(const struct kb_status *s, const char *name);

struct kb_server;
struct kb_output;
/* Loop thread: build a snapshot of the server's state now. NULL on ENOMEM. */
struct kb_status *kb_status_build(struct kb_server *srv);
/* Loop thread: one destination as the snapshot has it. */
void kb__status_dest(struct kb_status_dest *d, const struct kb_output *out);

#endif
