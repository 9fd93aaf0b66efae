/* kebun: a bounded ring of message references from one thread to another.
 *
 * One producer (the relay's loop thread, which fans a stream out) and one
 * consumer (another thread that writes the messages somewhere: the HTTP
 * thread for an HTTP-FLV viewer) share a fixed array of slots and two
 * indices. The producer stores a reference in a slot, then publishes it by
 * advancing `tail` with release order; the consumer reads `tail` with
 * acquire order, so it sees the slot whole, and gives the slot back by
 * advancing `head`. Neither side ever waits for the other and nothing is
 * allocated after init.
 *
 * Bytes are counted the same way: what was pushed is the producer's, what
 * was released is the consumer's, and their difference is what the
 * consumer still holds or has not taken (the bound a keyframe gate checks).
 */
#ifndef KB_MSGRING_H
#define KB_MSGRING_H

#include <stdatomic.h>
#include <stdint.h>

#include "msg.h"

#define KB_MSGRING_SLOTS 1024 ///< a power of two: about 14 s of a 30 fps stream with audio

struct kb_msgring {
    _Atomic uint32_t tail;           ///< next slot to fill (producer writes)
    _Atomic uint32_t head;           ///< next slot to take (consumer writes)
    uint64_t bytes_in;               ///< payload bytes pushed (producer only)
    atomic_uint_least64_t bytes_out; ///< payload bytes released (consumer)
    struct kb_msg *slot[KB_MSGRING_SLOTS];
};

void kb_msgring_init(struct kb_msgring *r);
/* Producer: queue a reference to m (taken here). 0, or -ENOBUFS when every
 * slot is taken (nothing is taken then). */
int kb_msgring_push(struct kb_msgring *r, struct kb_msg *m);
/* Producer: payload bytes queued and not yet released by the consumer. */
uint64_t kb_msgring_queued(const struct kb_msgring *r);
/* Consumer: the next message, or NULL. The reference stays the ring's
 * until kb_msgring_release, so the bytes may be written in between. */
struct kb_msg *kb_msgring_peek(struct kb_msgring *r, uint32_t skip);
/* Consumer: give back the first n messages taken (drops their references). */
void kb_msgring_release(struct kb_msgring *r, uint32_t n);
/* Once both sides are done: drop what is left. */
void kb_msgring_drain(struct kb_msgring *r);

#endif
