#include "msgring.h"

#include <errno.h>
#include <stdlib.h>

#define MASK (KB_MSGRING_BLOCK - 1)

_Static_assert((KB_MSGRING_BLOCK & MASK) == 0, "KB_MSGRING_BLOCK must be a power of two");
_Static_assert(KB_MSGRING_SLOTS % KB_MSGRING_BLOCK == 0, "whole blocks");

static struct kb_msgring_block *block_new(void)
{
    return calloc(1, sizeof(struct kb_msgring_block));
}

int kb_msgring_init(struct kb_msgring *r)
{
    struct kb_msgring_block *b = block_new();
    if (!b)
        return -ENOMEM;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->bytes_out, 0);
    r->bytes_in = 0;
    r->tail_block = r->head_block = b;
    return 0;
}

int kb_msgring_push(struct kb_msgring *r, struct kb_msg *m)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head == KB_MSGRING_SLOTS)
        return -ENOBUFS;
    struct kb_msgring_block *b = r->tail_block;
    uint32_t i = tail & MASK;
    if (i == MASK) {
        /* The block's last slot: the consumer goes on to the next block
         * once it has taken this one, so the next exists before this slot
         * is published (the release below publishes the link too). */
        b->next = block_new();
        if (!b->next)
            return -ENOMEM;
        r->tail_block = b->next;
    }
    b->slot[i] = kb_msg_ref(m);
    r->bytes_in += m->len;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 0;
}

uint64_t kb_msgring_queued(const struct kb_msgring *r)
{
    uint64_t out = atomic_load_explicit(&r->bytes_out, memory_order_relaxed);
    return r->bytes_in - out;
}

struct kb_msg *kb_msgring_peek(struct kb_msgring *r, uint32_t skip)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (tail - head <= skip)
        return NULL;
    struct kb_msgring_block *b = r->head_block;
    uint32_t i = (head & MASK) + skip;
    for (; i >= KB_MSGRING_BLOCK; i -= KB_MSGRING_BLOCK)
        b = b->next;
    return b->slot[i];
}

void kb_msgring_release(struct kb_msgring *r, uint32_t n)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t bytes = 0;
    for (uint32_t k = 0; k < n; k++, head++) {
        struct kb_msgring_block *b = r->head_block;
        uint32_t i = head & MASK;
        bytes += b->slot[i]->len;
        kb_msg_unref(b->slot[i]);
        b->slot[i] = NULL;
        if (i == MASK) {
            /* Every slot of it taken: the producer has moved on. */
            r->head_block = b->next;
            free(b);
        }
    }
    atomic_fetch_add_explicit(&r->bytes_out, bytes, memory_order_relaxed);
    atomic_store_explicit(&r->head, head, memory_order_release);
}

void kb_msgring_fini(struct kb_msgring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    kb_msgring_release(r, tail - head);
    free(r->head_block);
    r->head_block = r->tail_block = NULL;
}
