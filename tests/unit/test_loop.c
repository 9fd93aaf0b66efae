/* kebun: unit test of the exit check (relay/loop.c): a handle left open
 * makes kb_loop_close fail and name it; closed handles pass. */
#include "relay/loop.h"

#include <errno.h>

#include "test.h"

static void never(uv_timer_t *t)
{
    (void)t;
}

static int test_clean_loop_closes(void)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    ASSERT_EQ(uv_timer_start(&t, never, 1000, 0), 0);
    uv_close((uv_handle_t *)&t, NULL); /* its close callback is still due */
    ASSERT_EQ(kb_loop_close(&loop), 0);
    return 0;
}

static int test_leaked_handle_fails(void)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    uv_timer_t t;
    uv_idle_t idle;
    uv_timer_init(&loop, &t); /* never closed: the leak */
    ASSERT_EQ(uv_timer_start(&t, never, 1000, 0), 0);
    uv_idle_init(&loop, &idle);
    ASSERT_EQ(kb_loop_close(&loop), -EBUSY);
    /* Clean up so the test itself leaks nothing. */
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&idle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    return 0;
}

int main(void)
{
    RUN(test_clean_loop_closes);
    RUN(test_leaked_handle_fails);
    return test_summary();
}
