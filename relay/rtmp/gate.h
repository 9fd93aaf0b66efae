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
    uint8_t state;       ///< enum kb_gate_state
    uint8_t saw_video;   ///< video went through here: only a video keyframe starts
    uint64_t drops;      ///< messages skipped because the queue was full, ever
    uint64_t drop_bytes; ///< their payload bytes
    uint64_t run;        ///< messages skipped in the current (or last) skip
};

/* Events kb_gate_admit reports, for the caller's log lines. */
enum {
    KB_GATE_EV_SKIP = 1 << 0,   ///< a skip began with this message (it was dropped)
    KB_GATE_EV_RESUME = 1 << 1, ///< a skip ended at this message; `run` says how long it was
};

/* A gate that is open (start_waiting 0) or waits for a place to start. */
void kb_gate_init(struct kb_gate *g, int start_waiting);
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
