/* kebun: unit tests for the keyframe gate (relay/rtmp/gate.c), the one
 * rule every bounded media queue follows (players, push destinations, the
 * recorder). */
#include "relay/rtmp/gate.h"

#include "test.h"

enum { SETUP_V, SETUP_A, META, KEY, INTER, AUDIO };

/* A classified message of this kind with `len` payload bytes. */
static struct kb_msg *mk(int kind, uint32_t len)
{
    struct kb_msg *m = kb_msg_new(kind == META ? KB_MSG_DATA_AMF0
                                  : kind == SETUP_A || kind == AUDIO ? KB_MSG_AUDIO
                                                                     : KB_MSG_VIDEO,
                                  0, 1, len);
    if (!m)
        abort();
    m->len = len;
    static const uint8_t flags[] = {
        [SETUP_V] = KB_MSGF_VIDEO | KB_MSGF_SEQHDR,
        [SETUP_A] = KB_MSGF_AUDIO | KB_MSGF_SEQHDR,
        [META] = KB_MSGF_METADATA,
        [KEY] = KB_MSGF_VIDEO | KB_MSGF_KEY,
        [INTER] = KB_MSGF_VIDEO,
        [AUDIO] = KB_MSGF_AUDIO,
    };
    m->flags = flags[kind];
    return m;
}

static int admit(struct kb_gate *g, int kind, uint32_t len, uint64_t queued, uint64_t limit,
                 unsigned *ev)
{
    struct kb_msg *m = mk(kind, len);
    int r = kb_gate_admit(g, m, queued, limit, ev);
    kb_msg_unref(m);
    return r;
}

static int test_open_passes_what_fits(void)
{
    struct kb_gate g;
    unsigned ev = 99;
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, INTER, 100, 0, 1000, &ev), 1);
    ASSERT_EQ(ev, 0);
    ASSERT_EQ(admit(&g, AUDIO, 100, 900, 1000, &ev), 1); /* exactly full */
    ASSERT_EQ(g.state, KB_GATE_OPEN);
    ASSERT_EQ(g.drops, 0);
    return 0;
}

static int test_start_waits_for_keyframe_uncounted(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 1);
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 0); /* video seen: audio waits too */
    ASSERT_EQ(g.drops, 0);
    ASSERT_EQ(admit(&g, SETUP_V, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, META, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, KEY, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(ev, 0); /* a start is not a resume */
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(g.drops, 0);
    return 0;
}

static int test_full_queue_skips_to_keyframe_and_counts(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, KEY, 500, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, INTER, 600, 500, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(g.state, KB_GATE_SKIP);
    /* Room again, but not a keyframe: still skipping. */
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(ev, 0);
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 0);
    /* Sequence headers get through a skip. */
    ASSERT_EQ(admit(&g, SETUP_A, 10, 990, 1000, &ev), 1);
    /* A keyframe that does not fit either. */
    ASSERT_EQ(admit(&g, KEY, 700, 500, 1000, &ev), 0);
    ASSERT_EQ(g.drops, 4);
    ASSERT_EQ(g.drop_bytes, 600 + 10 + 10 + 700);
    ASSERT_EQ(g.run, 4);
    ASSERT_EQ(admit(&g, KEY, 700, 0, 1000, &ev), 1);
    ASSERT_EQ(ev, KB_GATE_EV_RESUME);
    ASSERT_EQ(g.run, 4); /* the finished skip's length, for the log */
    ASSERT_EQ(g.state, KB_GATE_OPEN);
    /* A second skip starts its own run; the totals go on. */
    ASSERT_EQ(admit(&g, INTER, 400, 700, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(g.run, 1);
    ASSERT_EQ(g.drops, 5);
    ASSERT_EQ(g.skips, 2);
    ASSERT_EQ(kb_gate_first_skip(&g, ev), 0);
    return 0;
}

static int test_audio_only_resumes_at_any_audio(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, AUDIO, 600, 500, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_STR_EQ(kb_gate_skip_what(&g, ev), "skipping to the next keyframe");
    ASSERT_EQ(admit(&g, AUDIO, 100, 0, 1000, &ev), 1);
    ASSERT_EQ(ev, KB_GATE_EV_RESUME);
    ASSERT_EQ(g.drops, 1);
    return 0;
}

static int test_restart_keeps_a_skip_counted(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, INTER, 600, 500, 1000, &ev), 0);
    kb_gate_restart(&g); /* a new publisher while skipping */
    ASSERT_EQ(g.state, KB_GATE_SKIP);
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(g.drops, 2);
    ASSERT_EQ(admit(&g, KEY, 10, 0, 1000, &ev), 1);
    kb_gate_restart(&g); /* an open gate waits, uncounted */
    ASSERT_EQ(g.state, KB_GATE_START);
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(g.drops, 2);
    return 0;
}

static int test_forget_tracks_for_a_new_broadcast(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, INTER, 600, 500, 1000, &ev), 0);
    ASSERT_EQ(g.saw_video, 1);
    kb_gate_forget(&g);
    ASSERT_EQ(g.state, KB_GATE_OPEN);
    /* The new broadcast has no video: audio passes at once. */
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(g.drops, 1); /* totals survive */
    return 0;
}

static int test_start_for_a_new_connection(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, INTER, 600, 500, 1000, &ev), 0); /* skipping */
    kb_gate_start(&g);
    ASSERT_EQ(g.state, KB_GATE_START);
    ASSERT_EQ(g.saw_video, 0);
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(g.drops, 1); /* the wait is not counted, the earlier skip still is */
    ASSERT_EQ(admit(&g, KEY, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(ev, 0); /* a start, not a resume */
    return 0;
}

static int test_video_header_means_wait_for_video(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 1);
    /* A late joiner gets the headers first, then the live audio before the
     * next keyframe: that audio must not start the player. */
    ASSERT_EQ(admit(&g, META, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, SETUP_V, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, SETUP_A, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0);
    ASSERT_EQ(admit(&g, KEY, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 1);
    return 0;
}

/* A slow player keeps its sound: video goes first (3/4 of the queue), audio
 * goes on while it fits the whole queue; each kind is counted. */
static int test_keep_audio(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init_keep_audio(&g, 1);
    ASSERT_EQ(admit(&g, SETUP_V, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 0); /* starts at a keyframe */
    ASSERT_EQ(g.drops, 0);
    ASSERT_EQ(admit(&g, KEY, 100, 0, 1000, &ev), 1);
    /* Past 3/4 of the queue video skips; audio does not. */
    ASSERT_EQ(admit(&g, INTER, 100, 650, 1000, &ev), 1); /* exactly 3/4 */
    ASSERT_EQ(admit(&g, INTER, 100, 700, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(kb_gate_first_skip(&g, ev), 1);
    ASSERT_STR_EQ(kb_gate_skip_what(&g, ev), "dropping video until a keyframe fits (audio goes on)");
    ASSERT_EQ(admit(&g, AUDIO, 100, 800, 1000, &ev), 1);
    ASSERT_EQ(ev, 0);
    ASSERT_EQ(admit(&g, INTER, 10, 0, 1000, &ev), 0); /* room again, but not a keyframe */
    ASSERT_EQ(admit(&g, AUDIO, 100, 900, 1000, &ev), 1); /* exactly full */
    /* Audio that does not fit the whole queue is dropped too. */
    ASSERT_EQ(admit(&g, AUDIO, 100, 950, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_AUDIO_SKIP);
    ASSERT_EQ(kb_gate_first_skip(&g, ev), 1);
    ASSERT_STR_EQ(kb_gate_skip_what(&g, ev), "dropping audio too");
    ASSERT_EQ(admit(&g, AUDIO, 100, 950, 1000, &ev), 0);
    ASSERT_EQ(ev, 0);
    ASSERT_EQ(admit(&g, AUDIO, 100, 100, 1000, &ev), 1);
    ASSERT_EQ(ev, KB_GATE_EV_AUDIO_RESUME);
    /* Video resumes at a keyframe within 3/4 of the queue. */
    ASSERT_EQ(admit(&g, KEY, 100, 700, 1000, &ev), 0);
    ASSERT_EQ(admit(&g, KEY, 100, 100, 1000, &ev), 1);
    ASSERT_EQ(ev, KB_GATE_EV_RESUME);
    ASSERT_EQ(g.drops_video, 3);
    ASSERT_EQ(g.drops_audio, 2);
    ASSERT_EQ(g.drops, 5);
    ASSERT_EQ(g.skips, 1);
    ASSERT_EQ(g.audio_skips, 1);
    /* A second video skip is not the first. */
    ASSERT_EQ(admit(&g, INTER, 100, 700, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(kb_gate_first_skip(&g, ev), 0);
    /* Audio-only streams: the plain rule (every frame is a place to start). */
    kb_gate_init_keep_audio(&g, 0);
    ASSERT_EQ(admit(&g, AUDIO, 600, 500, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(admit(&g, AUDIO, 100, 0, 1000, &ev), 1);
    ASSERT_EQ(g.drops_audio, 1);
    return 0;
}

/* A keyframe larger than 3/4 of the queue (but within it) goes once the
 * queue is down to its last quarter, so that the picture always comes back
 * (a heavy stream's keyframes can be that large). */
static int test_keep_audio_large_keyframe(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init_keep_audio(&g, 0);
    ASSERT_EQ(admit(&g, KEY, 100, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, KEY, 900, 300, 1000, &ev), 0);
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(admit(&g, KEY, 900, 250, 1000, &ev), 0); /* 1150 > 1000 */
    ASSERT_EQ(admit(&g, KEY, 900, 100, 1000, &ev), 1);
    ASSERT_EQ(ev, KB_GATE_EV_RESUME);
    ASSERT_EQ(admit(&g, KEY, 1100, 0, 1000, &ev), 0); /* larger than the queue: never */
    ASSERT_EQ(g.drops_video, 3);
    return 0;
}

/* What a catch-up queued (the cached GOP) is not counted until it has
 * left: the sound that follows it fits. */
static int test_pinned_catch_up(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init_keep_audio(&g, 1);
    ASSERT_EQ(admit(&g, SETUP_V, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, KEY, 3000, 0, 1000, &ev), 0); /* larger than the queue: never */
    kb_gate_pin(&g, 3000); /* as after a catch-up that queued 3000 bytes */
    ASSERT_EQ(admit(&g, KEY, 100, 3000, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, AUDIO, 100, 3100, 1000, &ev), 1);
    /* The queue drains below the pinned count: it shrinks with it. */
    ASSERT_EQ(admit(&g, AUDIO, 100, 1200, 1000, &ev), 1);
    ASSERT_EQ(g.pinned, 1200);
    ASSERT_EQ(admit(&g, INTER, 100, 1200 + 700, 1000, &ev), 0); /* 700 + 100 > 750 */
    ASSERT_EQ(ev, KB_GATE_EV_SKIP);
    ASSERT_EQ(admit(&g, AUDIO, 100, 1200 + 900, 1000, &ev), 1);
    ASSERT_EQ(admit(&g, AUDIO, 10, 0, 1000, &ev), 1);
    ASSERT_EQ(g.pinned, 0);
    /* A new start forgets it. */
    kb_gate_pin(&g, 500);
    kb_gate_start(&g);
    ASSERT_EQ(g.pinned, 0);
    return 0;
}

static int test_limit_arithmetic_does_not_wrap(void)
{
    struct kb_gate g;
    unsigned ev;
    kb_gate_init(&g, 0);
    /* Already past the limit (a catch-up that was exempt): nothing fits. */
    ASSERT_EQ(admit(&g, INTER, 1, 2000, 1000, &ev), 0);
    kb_gate_init(&g, 0);
    /* An unbounded caller. */
    ASSERT_EQ(admit(&g, INTER, 4000, UINT64_MAX - 10, UINT64_MAX, &ev), 0);
    kb_gate_init(&g, 0);
    ASSERT_EQ(admit(&g, INTER, 4000, 0, UINT64_MAX, &ev), 1);
    return 0;
}

int main(void)
{
    RUN(test_open_passes_what_fits);
    RUN(test_start_waits_for_keyframe_uncounted);
    RUN(test_full_queue_skips_to_keyframe_and_counts);
    RUN(test_audio_only_resumes_at_any_audio);
    RUN(test_restart_keeps_a_skip_counted);
    RUN(test_forget_tracks_for_a_new_broadcast);
    RUN(test_start_for_a_new_connection);
    RUN(test_video_header_means_wait_for_video);
    RUN(test_keep_audio);
    RUN(test_keep_audio_large_keyframe);
    RUN(test_pinned_catch_up);
    RUN(test_limit_arithmetic_does_not_wrap);
    return test_summary();
}
