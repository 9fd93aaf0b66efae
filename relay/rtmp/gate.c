#include "gate.h"

#include <string.h>

void kb_gate_init(struct kb_gate *g, int start_waiting)
{
    memset(g, 0, sizeof(*g));
    g->state = start_waiting ? KB_GATE_START : KB_GATE_OPEN;
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
    g->state = KB_GATE_START;
    g->saw_video = 0;
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
}

int kb_gate_admit(struct kb_gate *g, const struct kb_msg *m, uint64_t queued, uint64_t limit,
                  unsigned *events)
{
    unsigned ev = 0;
    int pass = 1;
    if (events)
        *events = 0;
    /* A video sequence header says video follows, even before any frame. */
    if (m->flags & KB_MSGF_VIDEO)
        g->saw_video = 1;
    if (kb_msg_is_setup(m))
        return 1;
    int fits = queued <= limit && m->len <= limit - queued;
    if (g->state != KB_GATE_OPEN) {
        if (!fits || !starts_here(g, m)) {
            if (g->state == KB_GATE_SKIP)
                drop(g, m);
            return 0;
        }
        if (g->state == KB_GATE_SKIP)
            ev |= KB_GATE_EV_RESUME;
        g->state = KB_GATE_OPEN;
    } else if (!fits) {
        g->state = KB_GATE_SKIP;
        g->run = 0;
        drop(g, m);
        ev |= KB_GATE_EV_SKIP;
        pass = 0;
    }
    if (events)
        *events = ev;
    return pass;
}
