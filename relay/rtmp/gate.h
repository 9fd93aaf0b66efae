/* kebun: the keyframe gate in front of every bounded media queue.
 *
 * A player, a push destination and the recorder each queue the stream's
 * shared messages for something slower than the publisher (a socket, a
 * platform, a disk). Each queue has a bound. When a message would take a
 * queue past it, the gate closes: from then on media is dropped, and
 * counted, until a place a decoder can start from (a video keyframe, or any
 * audio frame of a stream without video) arrives while the queue has room
 * again. Setup messages (metadata and sequence headers) always pass: a
 * decoder that missed one could not use anything after it.
 *
 * A sink that starts (a new player, a platform that went live, a publisher
 * that returned) waits the same way for its first place to start, but that
 * wait drops nothing it was owed, so it is not counted.
 *
 * A gate that keeps audio (players and platforms, where a listener on a
 * weak link would rather lose the picture than the sound; nginx-rtmp does
 * much the same) drops video first: video may fill only 3/4 of the queue
 * (the rest is kept for audio), and
 * past that it skips to a keyframe that fits, while audio goes on as long
 * as it fits the whole queue; only audio that does not fit is dropped too.
 * The recorder's gate keeps the plain rule: one skip for both, so that a
 * recording's hole is one hole.
 *
 * Pure logic over message flags: no queue, no clock, no logging. The caller
 * owns the queue and says how full it is; the events tell it what to log.
 */
#ifndef KB_GATE_H
#define KB_GATE_H

#include <stdint.h>

#include "msg.h"

enum kb_gate_state {
    KB_GATE_OPEN,  ///< messages pass while they fit
    KB_GATE_START, ///< waiting for a place to start; drops are not counted
    KB_GATE_SKIP,  ///< the queue was full: dropping (counted) up to a place to start
};

struct kb_gate {
    uint8_t state;       ///< enum kb_gate_state (the video's, when audio is kept apart)
    uint8_t saw_video;   ///< video went through here: only a video keyframe starts
    uint8_t keep_audio;  ///< drop video first (players, platforms); see above
    uint8_t audio_skip;  ///< keep_audio: audio too is dropping (it does not fit either)
    uint64_t drops;      ///< messages skipped because the queue was full, ever
    uint64_t drop_bytes; ///< their payload bytes
    uint64_t drops_video, drops_audio; ///< the same by kind (drops counts both and the rest)
    uint64_t run;        ///< messages skipped in the current (or last) skip
    uint64_t pinned;     ///< queued bytes a catch-up put there, not counted (see kb_gate_pin)
    uint32_t skips;      ///< skips begun (KB_GATE_EV_SKIP), ever
    uint32_t audio_skips; ///< keep_audio: times even audio began to drop
};

/* Events kb_gate_admit reports, for the caller's log lines. */
enum {
    KB_GATE_EV_SKIP = 1 << 0,   ///< a skip began with this message (it was dropped)
    KB_GATE_EV_RESUME = 1 << 1, ///< a skip ended at this message; `run` says how long it was
    KB_GATE_EV_AUDIO_SKIP = 1 << 2, ///< keep_audio: even audio is dropped from this message on
    KB_GATE_EV_AUDIO_RESUME = 1 << 3, ///< keep_audio: audio fits again
};

/* The sink was just handed the stream's cache (a new player's or platform's
 * GOP): the `queued` bytes now in its queue are pinned by the cache anyway,
 * so they do not count against the limit until they have left the queue
 * (the count only shrinks, as the queue drains below it). Without this, a
 * big cached GOP would push a slow sink past its limit at once and cost it
 * the sound that follows. */
void kb_gate_pin(struct kb_gate *g, uint64_t queued);

/* What a skip event means, for a log line: "skipping to the next keyframe",
 * or with audio kept apart "dropping video until a keyframe fits (audio goes
 * on)" / "dropping audio too". */
const char *kb_gate_skip_what(const struct kb_gate *g, unsigned events);
/* The events begin the first skip of their kind: worth a log line for a
 * sink that logs once rather than at every skip. */
int kb_gate_first_skip(const struct kb_gate *g, unsigned events);

/* A gate that is open (start_waiting 0) or waits for a place to start. */
void kb_gate_init(struct kb_gate *g, int start_waiting);
/* The same, for a sink that keeps audio when it is slow (see above). */
void kb_gate_init_keep_audio(struct kb_gate *g, int start_waiting);
/* Wait for the next place to start without counting what is dropped until
 * then: a new publisher's first keyframe, a player's unpause. A skip in
 * progress stays a skip. */
void kb_gate_restart(struct kb_gate *g);
/* A new broadcast: open at once and forget which tracks went through (the
 * counters stay). */
void kb_gate_forget(struct kb_gate *g);
/* A new connection: wait for a place to start, uncounted, whatever the
 * state; forget the tracks (the counters stay). */
void kb_gate_start(struct kb_gate *g);

/* Whether message m may join a queue that holds `queued` bytes and may hold
 * `limit`: 1 to queue it, 0 to drop it. *events (may be NULL) gets the
 * KB_GATE_EV_* that happened. */
int kb_gate_admit(struct kb_gate *g, const struct kb_msg *m, uint64_t queued, uint64_t limit,
                  unsigned *events);

#endif
