#include "gate.h"

#include <string.h>

void kb_gate_init(struct kb_gate *g, int start_waiting)
{
    memset(g, 0, sizeof(*g));
    g->state = start_waiting ? KB_GATE_START : KB_GATE_OPEN;
}

void kb_gate_init_keep_audio(struct kb_gate *g, int start_waiting)
{
    kb_gate_init(g, start_waiting);
    g->keep_audio = 1;
}

const char *kb_gate_skip_what(const struct kb_gate *g, unsigned events)
{
    if (events & KB_GATE_EV_AUDIO_SKIP)
        return "dropping audio too";
    if (g->keep_audio && g->saw_video)
        return "dropping video until a keyframe fits (audio goes on)";
    return "skipping to the next keyframe";
}

void kb_gate_pin(struct kb_gate *g, uint64_t queued)
{
    g->pinned = queued;
}

int kb_gate_first_skip(const struct kb_gate *g, unsigned events)
{
    return ((events & KB_GATE_EV_SKIP) && g->skips == 1) ||
           ((events & KB_GATE_EV_AUDIO_SKIP) && g->audio_skips == 1);
}

void kb_gate_restart(struct kb_gate *g)
{
    if (g->state != KB_GATE_SKIP)
        g->state = KB_GATE_START;
}

void kb_gate_forget(struct kb_gate *g)
{
    g->state = KB_GATE_OPEN;
    g->saw_video = 0;
}

void kb_gate_start(struct kb_gate *g)
{
    g->pinned = 0;
    g->state = KB_GATE_START;
    g->saw_video = 0;
    g->audio_skip = 0;
}

/* A place a decoder can start from: a video keyframe; in a stream without
 * video, any audio frame (the hub marks those as keyframes too, but a gate
 * fed by something else must not wait forever). */
static int starts_here(const struct kb_gate *g, const struct kb_msg *m)
{
    if (m->flags & KB_MSGF_VIDEO)
        return (m->flags & KB_MSGF_KEY) != 0;
    if (m->flags & KB_MSGF_AUDIO)
        return !g->saw_video || (m->flags & KB_MSGF_KEY);
    return 0;
}

static void drop(struct kb_gate *g, const struct kb_msg *m)
{
    g->drops++;
    g->drop_bytes += m->len;
    g->run++;
    if (m->flags & KB_MSGF_VIDEO)
        g->drops_video++;
    else if (m->flags & KB_MSGF_AUDIO)
        g->drops_audio++;
}

static int fits(uint64_t queued, uint32_t len, uint64_t limit)
{
    return queued <= limit && len <= limit - queued;
}

/* The keyframe rule, over whether the message fits: once a message does
 * not fit, skip until a place to start that fits. */
static int keyframe_rule(struct kb_gate *g, const struct kb_msg *m, int ok, unsigned *ev)
{
    if (g->state != KB_GATE_OPEN) {
        if (!ok || !starts_here(g, m)) {
            if (g->state == KB_GATE_SKIP)
                drop(g, m);
            return 0;
        }
        if (g->state == KB_GATE_SKIP)
            *ev |= KB_GATE_EV_RESUME;
        g->state = KB_GATE_OPEN;
        return 1;
    }
    if (!ok) {
        g->state = KB_GATE_SKIP;
        g->run = 0;
        g->skips++;
        drop(g, m);
        *ev |= KB_GATE_EV_SKIP;
    }
    return ok;
}

/* keep_audio, once the stream has video: audio within the whole queue,
 * dropped only while it does not fit (no keyframe to wait for). */
static int admit_audio(struct kb_gate *g, const struct kb_msg *m, uint64_t queued,
                       uint64_t limit, unsigned *ev)
{
    if (g->state == KB_GATE_START)
        return 0; /* a player starts at a keyframe, sound and picture together */
    int ok = fits(queued, m->len, limit);
    if (g->audio_skip && ok) {
        g->audio_skip = 0;
        *ev |= KB_GATE_EV_AUDIO_RESUME;
    } else if (!g->audio_skip && !ok) {
        g->audio_skip = 1;
        g->audio_skips++;
        *ev |= KB_GATE_EV_AUDIO_SKIP;
    }
    if (!ok)
        drop(g, m);
    return ok;
}

int kb_gate_admit(struct kb_gate *g, const struct kb_msg *m, uint64_t queued, uint64_t limit,
                  unsigned *events)
{
    unsigned ev = 0;
    int pass;
    if (events)
        *events = 0;
    /* A video sequence header says video follows, even before any frame. */
    if (m->flags & KB_MSGF_VIDEO)
        g->saw_video = 1;
    if (kb_msg_is_setup(m))
        return 1;
    if (queued < g->pinned)
        g->pinned = queued;
    queued -= g->pinned;
    if (!g->keep_audio || !g->saw_video) {
        pass = keyframe_rule(g, m, fits(queued, m->len, limit), &ev);
    } else if (m->flags & KB_MSGF_AUDIO) {
        pass = admit_audio(g, m, queued, limit, &ev);
    } else {
        /* Video (and data with it) within 3/4 of the queue; a frame larger
         * than that once the queue is down to its last quarter, so the
         * picture can always come back. */
        int ok = fits(queued, m->len, limit - limit / 4) ||
                 (queued <= limit / 4 && fits(queued, m->len, limit));
        pass = keyframe_rule(g, m, ok, &ev);
    }
    if (events)
        *events = ev;
    return pass;
}
