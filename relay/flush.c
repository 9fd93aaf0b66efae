#include "flush.h"

#include <assert.h>

/* The tick runs this many times per interval while media waits: media
 * waits at most interval + interval / TICKS_PER_INTERVAL. */
#define TICKS_PER_INTERVAL 4

static void push(struct kb_flusher *f, struct kb_flush_item *it, int l)
{
    it->listed[l] = 1;
    it->next[l] = f->list[l];
    f->list[l] = it;
}

/* Flush everything listed on l, including what the flushes themselves list
 * again (a write callback that found more queued). An item may be on both
 * lists; each list has its own link and flag, and flushing twice is
 * harmless (the second finds less or nothing). */
static void flush_list(struct kb_flusher *f, int l)
{
    while (f->list[l]) {
        struct kb_flush_item *it = f->list[l];
        f->list[l] = NULL;
        while (it) {
            struct kb_flush_item *next = it->next[l];
            it->next[l] = NULL;
            it->listed[l] = 0;
            it->fn(it);
            it = next;
        }
    }
}

static void on_check(uv_check_t *h)
{
    flush_list(h->data, KB_FLUSH_NOW);
}

static void on_prepare(uv_prepare_t *h)
{
    flush_list(h->data, KB_FLUSH_NOW);
}

/* Media that did not leave with a video frame leaves once it has waited
 * the interval; an item whose media is younger stays listed for a later
 * tick (and is usually carried off by the next video frame first). */
static void on_tick(uv_timer_t *t)
{
    struct kb_flusher *f = t->data;
    if (!f->list[KB_FLUSH_LATER]) {
        uv_timer_stop(t); /* an idle server does not tick */
        return;
    }
    uint64_t now = uv_now(f->loop);
    struct kb_flush_item *it = f->list[KB_FLUSH_LATER], *keep = NULL;
    f->list[KB_FLUSH_LATER] = NULL;
    while (it) {
        struct kb_flush_item *next = it->next[KB_FLUSH_LATER];
        if (it->waiting && now - it->since + 1 < f->interval) {
            it->next[KB_FLUSH_LATER] = keep;
            keep = it;
        } else {
            it->next[KB_FLUSH_LATER] = NULL;
            it->listed[KB_FLUSH_LATER] = 0;
            /* Not waiting: a video frame took it all since. */
            if (it->waiting)
                it->fn(it);
        }
        it = next;
    }
    /* Items that queued media during the flushes joined the list head. */
    while (keep) {
        struct kb_flush_item *next = keep->next[KB_FLUSH_LATER];
        keep->next[KB_FLUSH_LATER] = f->list[KB_FLUSH_LATER];
        f->list[KB_FLUSH_LATER] = keep;
        keep = next;
    }
}

int kb_flusher_init(struct kb_flusher *f, uv_loop_t *loop, uint64_t interval)
{
    *f = (struct kb_flusher){.loop = loop, .interval = interval};
    int r = uv_check_init(loop, &f->check);
    if (r < 0)
        return r;
    f->check.data = f;
    uv_check_start(&f->check, on_check);
    uv_prepare_init(loop, &f->prepare);
    f->prepare.data = f;
    uv_prepare_start(&f->prepare, on_prepare);
    uv_timer_init(loop, &f->tick);
    f->tick.data = f;
    return 0;
}

void kb_flusher_close(struct kb_flusher *f)
{
    if (f->closing)
        return;
    flush_list(f, KB_FLUSH_NOW);
    flush_list(f, KB_FLUSH_LATER);
    f->closing = 1;
    uv_close((uv_handle_t *)&f->check, NULL);
    uv_close((uv_handle_t *)&f->prepare, NULL);
    uv_close((uv_handle_t *)&f->tick, NULL);
}

void kb_flush_now(struct kb_flusher *f, struct kb_flush_item *it)
{
    if (!it->listed[KB_FLUSH_NOW])
        push(f, it, KB_FLUSH_NOW);
}

void kb_flush_later(struct kb_flusher *f, struct kb_flush_item *it)
{
    if (f->interval == 0) {
        kb_flush_now(f, it);
        return;
    }
    /* The age that counts is that of the oldest media no write has taken:
     * an item still listed from before its last write starts over. */
    if (!it->waiting) {
        it->waiting = 1;
        it->since = uv_now(f->loop);
    }
    if (it->listed[KB_FLUSH_NOW] || it->listed[KB_FLUSH_LATER])
        return;
    push(f, it, KB_FLUSH_LATER);
    if (!uv_is_active((uv_handle_t *)&f->tick) && !f->closing) {
        uint64_t period = f->interval / TICKS_PER_INTERVAL;
        uv_timer_start(&f->tick, on_tick, period ? period : 1, period ? period : 1);
    }
}

void kb_flush_remove(struct kb_flusher *f, struct kb_flush_item *it)
{
    for (int l = 0; l < 2; l++) {
        if (!it->listed[l])
            continue;
        for (struct kb_flush_item **pp = &f->list[l]; *pp; pp = &(*pp)->next[l]) {
            if (*pp == it) {
                *pp = it->next[l];
                break;
            }
        }
        it->listed[l] = 0;
    }
    assert(!it->listed[0] && !it->listed[1]);
}
