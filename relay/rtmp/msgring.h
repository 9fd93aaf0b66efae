/* kebun: a bounded queue of message references from one thread to another.
 *
 * One producer (the relay's loop thread, which fans a stream out) and one
 * consumer (another thread that writes the messages somewhere: the HTTP
 * thread for an HTTP-FLV viewer) share a chain of blocks of slots and two
 * counters. The producer stores a reference in a slot, then publishes it by
 * advancing `tail` with release order; the consumer reads `tail` with
 * acquire order, so it sees the slot whole, and gives the slot back by
 * advancing `head`. Neither side ever waits for the other.
 *
 * Memory follows what is queued: a viewer that keeps up holds one block
 * (64 slots, about half a KiB), not room for the whole bound. The producer
 * links the next block before it fills the last slot of one, so the
 * consumer always finds where to go; the consumer frees a block once it has
 * taken every slot of it (the producer never looks back at a full block).
 * At most KB_MSGRING_SLOTS messages are queued at once.
 *
 * Bytes are counted the same way: what was pushed is the producer's, what
 * was released is the consumer's, and their difference is what the
 * consumer still holds or has not taken (the bound a keyframe gate checks).
 * The two sides' fields live on separate cache lines (padding, not
 * alignas: the ring sits inside malloc'd structs), so one thread's writes
 * do not keep evicting what the other reads.
 */
#ifndef KB_MSGRING_H
#define KB_MSGRING_H

#include <stdatomic.h>
#include <stdint.h>

#include "msg.h"

#define KB_MSGRING_SLOTS 1024 ///< messages at most: about 14 s of a 30 fps stream with audio
#define KB_MSGRING_BLOCK 64   ///< slots per block (a power of two)

struct kb_msgring_block {
    struct kb_msgring_block *next; ///< written by the producer before it is needed
    struct kb_msg *slot[KB_MSGRING_BLOCK];
};

struct kb_msgring {
    /* The producer's. */
    _Atomic uint32_t tail;                  ///< messages pushed
    uint64_t bytes_in;                      ///< payload bytes pushed
    struct kb_msgring_block *tail_block;    ///< the block slot `tail` goes in
    char apart[64];                         ///< keeps the two sides' fields off one cache line
    /* The consumer's. */
    _Atomic uint32_t head;                  ///< messages released
    atomic_uint_least64_t bytes_out;        ///< payload bytes released
    struct kb_msgring_block *head_block;    ///< the block slot `head` is in
};

/* 0, or -ENOMEM. */
int kb_msgring_init(struct kb_msgring *r);
/* Producer: queue a reference to m (taken here). 0; -ENOBUFS when
 * KB_MSGRING_SLOTS are queued, -ENOMEM when the next block cannot be had
 * (nothing is taken then). */
int kb_msgring_push(struct kb_msgring *r, struct kb_msg *m);
/* Producer: payload bytes queued and not yet released by the consumer. */
uint64_t kb_msgring_queued(const struct kb_msgring *r);
/* Consumer: the message `skip` places after the next one, or NULL. The
 * reference stays the ring's until kb_msgring_release, so the bytes may be
 * written in between. */
struct kb_msg *kb_msgring_peek(struct kb_msgring *r, uint32_t skip);
/* Consumer: give back the first n messages taken (drops their references). */
void kb_msgring_release(struct kb_msgring *r, uint32_t n);
/* Once both sides are done: drop what is left and free the blocks. */
void kb_msgring_fini(struct kb_msgring *r);

#endif
