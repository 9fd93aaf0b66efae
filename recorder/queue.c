/* One stream's queue from the loop thread to the worker, without a lock.
 *
 * A single producer (the relay's loop thread) and a single consumer (the
 * worker) share a linked list of fixed-size blocks. The producer writes
 * items into the tail block and publishes each one by storing the block's
 * item count with release order; when the block is full it links a new one
 * (a recycled block, or malloc) with another release store. The consumer
 * reads the count with acquire order, so it sees every item up to it
 * whole, follows `next` once it has taken the last item of a block, and
 * hands the finished block back through a one-slot exchange (`spare`) for
 * the producer to reuse: in the steady state neither side allocates, and
 * neither ever waits for the other. The block is freed by the consumer
 * only after it moved past it, and the producer never looks back at a
 * block it has linked a successor to, so a block is never used after it is
 * freed.
 *
 * Byte and item counts are split the same way: what was pushed is the
 * producer's, what was taken and finished is the consumer's (atomics), and
 * their difference is what is queued.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_ITEMS 255 ///< a block is about 6 KiB

struct kb__qblock {
    atomic_uint count;                ///< items written and published
    _Atomic(struct kb__qblock *) next; ///< the following block, once this one is full
    struct kb__item items[BLOCK_ITEMS];
};

static struct kb__qblock *block_new(void)
{
    struct kb__qblock *b = malloc(sizeof(*b));
    if (b) {
        atomic_init(&b->count, 0);
        atomic_init(&b->next, NULL);
    }
    return b;
}

int kb__queue_init(struct kb__queue *q)
{
    memset(q, 0, sizeof(*q));
    struct kb__qblock *b = block_new();
    if (!b)
        return -ENOMEM;
    q->head = q->tail = b;
    q->reserve = block_new(); /* none is fine: it is only a cushion */
    atomic_init(&q->spare, NULL);
    atomic_init(&q->bytes_out, 0);
    atomic_init(&q->items_out, 0);
    atomic_init(&q->items_done, 0);
    atomic_init(&q->items_in, 0);
    return 0;
}

void kb__queue_destroy(struct kb__queue *q)
{
    struct kb__item it;
    while (kb__queue_take(q, &it))
        if (it.kind == KB__IT_MSG)
            kb_msg_unref(it.m);
    free(q->head);
    free(q->reserve);
    free(atomic_load(&q->spare));
    memset(q, 0, sizeof(*q));
}

/* A fresh block for the producer: the one the consumer handed back, a new
 * one, or (for a control item) the reserve. */
static struct kb__qblock *next_block(struct kb__queue *q, int control)
{
    struct kb__qblock *b = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
    if (!b)
        b = malloc(sizeof(*b));
    if (!b && control) {
        b = q->reserve;
        q->reserve = NULL;
    }
    if (b) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
    }
    if (!q->reserve)
        q->reserve = block_new();
    return b;
}

int kb__queue_push(struct kb__queue *q, const struct kb__item *it, int control)
{
    struct kb__qblock *t = q->tail;
    unsigned i = atomic_load_explicit(&t->count, memory_order_relaxed);
    if (i == BLOCK_ITEMS) {
        struct kb__qblock *b = next_block(q, control);
        if (!b)
            return -ENOMEM;
        /* Published before the link: the consumer reads the new block's
         * count only after it acquired the link. */
        atomic_store_explicit(&t->next, b, memory_order_release);
        q->tail = t = b;
        i = 0;
    }
    t->items[i] = *it;
    atomic_store_explicit(&t->count, i + 1, memory_order_release);
    if (it->kind == KB__IT_MSG)
        q->bytes_in += it->m->len;
    atomic_fetch_add_explicit(&q->items_in, 1, memory_order_release);
    return 0;
}

uint64_t kb__queue_bytes(const struct kb__queue *q)
{
    return q->bytes_in - atomic_load_explicit(&q->bytes_out, memory_order_acquire);
}

uint64_t kb__queue_items(const struct kb__queue *q)
{
    return atomic_load_explicit(&q->items_in, memory_order_relaxed) -
           atomic_load_explicit(&q->items_out, memory_order_acquire);
}

int kb__queue_take(struct kb__queue *q, struct kb__item *out)
{
    struct kb__qblock *h = q->head;
    if (q->head_i == BLOCK_ITEMS) {
        struct kb__qblock *n = atomic_load_explicit(&h->next, memory_order_acquire);
        if (!n)
            return 0;
        q->head = n;
        q->head_i = 0;
        /* Hand the finished block back; free the one it displaces. */
        free(atomic_exchange_explicit(&q->spare, h, memory_order_acq_rel));
        h = n;
    }
    if (q->head_i == atomic_load_explicit(&h->count, memory_order_acquire))
        return 0;
    *out = h->items[q->head_i++];
    if (out->kind == KB__IT_MSG)
        atomic_fetch_add_explicit(&q->bytes_out, out->m->len, memory_order_release);
    atomic_fetch_add_explicit(&q->items_out, 1, memory_order_release);
    return 1;
}

void kb__queue_done(struct kb__queue *q, uint32_t n)
{
    atomic_fetch_add_explicit(&q->items_done, n, memory_order_release);
}

int kb__queue_idle(struct kb__queue *q)
{
    return atomic_load_explicit(&q->items_done, memory_order_acquire) ==
           atomic_load_explicit(&q->items_in, memory_order_acquire);
}
