#include "msgring.h"

#include <errno.h>
#include <string.h>

#define MASK (KB_MSGRING_SLOTS - 1)

_Static_assert((KB_MSGRING_SLOTS & MASK) == 0, "KB_MSGRING_SLOTS must be a power of two");

void kb_msgring_init(struct kb_msgring *r)
{
    memset(r->slot, 0, sizeof(r->slot));
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->bytes_out, 0);
    r->bytes_in = 0;
}

int kb_msgring_push(struct kb_msgring *r, struct kb_msg *m)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head == KB_MSGRING_SLOTS)
        return -ENOBUFS;
    r->slot[tail & MASK] = kb_msg_ref(m);
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
    return r->slot[(head + skip) & MASK];
}

void kb_msgring_release(struct kb_msgring *r, uint32_t n)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct kb_msg *m = r->slot[(head + i) & MASK];
        r->slot[(head + i) & MASK] = NULL;
        bytes += m->len;
        kb_msg_unref(m);
    }
    atomic_fetch_add_explicit(&r->bytes_out, bytes, memory_order_relaxed);
    atomic_store_explicit(&r->head, head + n, memory_order_release);
}

void kb_msgring_drain(struct kb_msgring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    kb_msgring_release(r, tail - head);
}
