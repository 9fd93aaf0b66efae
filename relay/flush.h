/* kebun: when queued bytes are written.
 *
 * A connection that queued bytes asks to be flushed; the flusher calls it
 * back to write them, many messages in one write. Two lists:
 *
 *   now    bytes that leave in this loop iteration: replies, control,
 *          video frames (with the audio queued before them), and any large
 *          backlog. A uv_check (after poll) and a uv_prepare (before poll)
 *          flush it, so whatever the reads, timers and write callbacks of an
 *          iteration queued goes out in one write per connection.
 *   later  media that may wait up to `interval` (audio between video
 *          frames, an audio-only stream). A timer ticks a few times per
 *          interval while anything waits, so nothing waits much longer; a
 *          video frame usually carries it off first.
 *
 * The kernel's cost is per write, nearly whatever its size: a 30 fps stream
 * costs about 30 writes a second per player instead of one per message.
 *
 * The flusher knows nothing of what it flushes: items are embedded in their
 * owners (RTMP connections, HTTP-FLV viewers), and each item's callback
 * writes its owner's queue.
 */
#ifndef KB_FLUSH_H
#define KB_FLUSH_H

#include <stdint.h>
#include <uv.h>

enum { KB_FLUSH_NOW, KB_FLUSH_LATER };

/* Embedded in whatever has a write queue. */
struct kb_flush_item {
    void (*fn)(struct kb_flush_item *it); ///< write what the item's owner queued
    struct kb_flush_item *next[2]; ///< links in the flusher's two lists
    uint8_t listed[2];             ///< on list KB_FLUSH_NOW / KB_FLUSH_LATER
    uint8_t waiting;               ///< media waits for the tick since `since`
    uint64_t since;                ///< loop time the oldest media no write took was queued
};

struct kb_flusher {
    uv_loop_t *loop;
    uv_check_t check;     ///< flushes the now list after each poll
    uv_prepare_t prepare; ///< and before each poll (writes queued by timers)
    uv_timer_t tick;      ///< runs while media waits on the later list
    struct kb_flush_item *list[2];
    uint64_t interval;    ///< ms media may wait (flush_interval; 0 = never waits)
    int closing;
};

/* Start the flusher's handles. 0 or a negative libuv error. */
int kb_flusher_init(struct kb_flusher *f, uv_loop_t *loop, uint64_t interval);
/* Shutdown: flush both lists once more, then close the handles. */
void kb_flusher_close(struct kb_flusher *f);

/* Bytes that must leave in this loop iteration. */
void kb_flush_now(struct kb_flusher *f, struct kb_flush_item *it);
/* Media that may wait up to the interval (or, with interval 0, leaves now). */
void kb_flush_later(struct kb_flusher *f, struct kb_flush_item *it);
/* Everything the item queued was written: nothing waits any more. */
static inline void kb_flush_done(struct kb_flush_item *it)
{
    it->waiting = 0;
}
/* The item is going away: take it off both lists. */
void kb_flush_remove(struct kb_flusher *f, struct kb_flush_item *it);

#endif
