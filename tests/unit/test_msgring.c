/* kebun: unit tests for the message ring between two threads
 * (relay/rtmp/msgring.c): bounds, byte counts, block boundaries, and a
 * producer and a consumer thread passing 200000 messages in order (run it under TSan to check the
 * memory ordering: CC=clang meson setup -Db_sanitize=thread). */
#include "relay/rtmp/msgring.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "test.h"

static struct kb_msg *mk(uint32_t seq, uint32_t len)
{
    struct kb_msg *m = kb_msg_new(KB_MSG_AUDIO, seq, 1, len);
    if (!m)
        abort();
    m->len = len;
    return m;
}

static int test_bounds_and_bytes(void)
{
    static struct kb_msgring r;
    ASSERT_EQ(kb_msgring_init(&r), 0);
    ASSERT_NULL(kb_msgring_peek(&r, 0));
    for (uint32_t i = 0; i < KB_MSGRING_SLOTS; i++) {
        struct kb_msg *m = mk(i, 10);
        ASSERT_EQ(kb_msgring_push(&r, m), 0);
        kb_msg_unref(m); /* the ring holds its own reference */
    }
    struct kb_msg *extra = mk(9999, 10);
    ASSERT_EQ(kb_msgring_push(&r, extra), -ENOBUFS);
    ASSERT_EQ(kb_msgring_queued(&r), 10 * KB_MSGRING_SLOTS);
    ASSERT_EQ(kb_msgring_peek(&r, 0)->timestamp, 0);
    ASSERT_EQ(kb_msgring_peek(&r, 5)->timestamp, 5);
    ASSERT_NULL(kb_msgring_peek(&r, KB_MSGRING_SLOTS));
    kb_msgring_release(&r, 6);
    ASSERT_EQ(kb_msgring_queued(&r), 10 * (KB_MSGRING_SLOTS - 6));
    ASSERT_EQ(kb_msgring_peek(&r, 0)->timestamp, 6);
    ASSERT_EQ(kb_msgring_push(&r, extra), 0);
    kb_msg_unref(extra);
    /* A peek across several blocks finds the right message. */
    ASSERT_EQ(kb_msgring_peek(&r, 3 * KB_MSGRING_BLOCK + 1)->timestamp,
              6 + 3 * KB_MSGRING_BLOCK + 1);
    kb_msgring_release(&r, KB_MSGRING_SLOTS - 6);
    ASSERT_EQ(kb_msgring_queued(&r), 10);
    ASSERT_EQ(kb_msgring_peek(&r, 0)->timestamp, 9999);
    kb_msgring_release(&r, 1);
    ASSERT_EQ(kb_msgring_queued(&r), 0);
    ASSERT_NULL(kb_msgring_peek(&r, 0));
    /* What is left when both sides are done goes with the blocks (the
     * leak checker of the sanitizer build would name it otherwise). */
    for (uint32_t i = 0; i < 3 * KB_MSGRING_BLOCK / 2; i++) {
        struct kb_msg *m = mk(i, 7);
        ASSERT_EQ(kb_msgring_push(&r, m), 0);
        kb_msg_unref(m);
    }
    kb_msgring_fini(&r);
    return 0;
}

/* The consumer empties the ring exactly at a block's end, before the
 * producer has pushed into the next block: the next block is there, and
 * the producer's next push lands where the consumer looks. */
static int test_block_edges(void)
{
    static struct kb_msgring r;
    ASSERT_EQ(kb_msgring_init(&r), 0);
    uint32_t seq = 0;
    for (int round = 0; round < 5; round++) {
        for (uint32_t i = 0; i < KB_MSGRING_BLOCK; i++) {
            struct kb_msg *m = mk(seq++, 1);
            ASSERT_EQ(kb_msgring_push(&r, m), 0);
            kb_msg_unref(m);
        }
        ASSERT_EQ(kb_msgring_peek(&r, KB_MSGRING_BLOCK - 1)->timestamp, seq - 1);
        ASSERT_NULL(kb_msgring_peek(&r, KB_MSGRING_BLOCK));
        kb_msgring_release(&r, KB_MSGRING_BLOCK);
        ASSERT_NULL(kb_msgring_peek(&r, 0));
    }
    /* One at a time across an edge. */
    for (uint32_t i = 0; i < 2 * KB_MSGRING_BLOCK + 3; i++) {
        struct kb_msg *m = mk(seq, 1);
        ASSERT_EQ(kb_msgring_push(&r, m), 0);
        kb_msg_unref(m);
        ASSERT_EQ(kb_msgring_peek(&r, 0)->timestamp, seq);
        kb_msgring_release(&r, 1);
        seq++;
    }
    ASSERT_EQ(kb_msgring_queued(&r), 0);
    kb_msgring_fini(&r);
    return 0;
}

#define N 200000

static struct kb_msgring shared;

static void *consumer(void *arg)
{
    uint32_t *bad = arg;
    uint32_t want = 0;
    while (want < N) {
        uint32_t n = 0;
        struct kb_msg *m;
        while ((m = kb_msgring_peek(&shared, n)) != NULL && n < 7) {
            if (m->timestamp != want || m->len != 1 + want % 300)
                (*bad)++;
            want++;
            n++;
        }
        if (n)
            kb_msgring_release(&shared, n);
        else
            sched_yield();
    }
    return NULL;
}

static int test_two_threads(void)
{
    ASSERT_EQ(kb_msgring_init(&shared), 0);
    uint32_t bad = 0;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, consumer, &bad), 0);
    uint64_t max_queued = 0;
    for (uint32_t i = 0; i < N;) {
        struct kb_msg *m = mk(i, 1 + i % 300);
        if (kb_msgring_push(&shared, m) == 0)
            i++;
        else
            sched_yield();
        kb_msg_unref(m);
        uint64_t q = kb_msgring_queued(&shared);
        if (q > max_queued)
            max_queued = q;
    }
    pthread_join(t, NULL);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(kb_msgring_queued(&shared), 0);
    ASSERT_LE(max_queued, 300ull * KB_MSGRING_SLOTS);
    kb_msgring_fini(&shared);
    return 0;
}

int main(void)
{
    RUN(test_bounds_and_bytes);
    RUN(test_block_edges);
    RUN(test_two_threads);
    return test_summary();
}
