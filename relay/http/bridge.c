#include "bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct kb_flv *kb_flv_new(const char *stream)
{
    struct kb_flv *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    atomic_init(&f->refs, 1);
    atomic_init(&f->ended, 0);
    atomic_init(&f->gone, 0);
    if (kb_msgring_init(&f->ring) < 0) {
        free(f);
        return NULL;
    }
    snprintf(f->stream, sizeof(f->stream), "%s", stream);
    return f;
}

struct kb_flv *kb_flv_ref(struct kb_flv *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void kb_flv_unref(struct kb_flv *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Both threads are done with it: what is still queued goes. */
    kb_msgring_fini(&f->ring);
    free(f);
}

struct kb_req *kb_req_new(enum kb_req_op op, const char *stream, const char *arg)
{
    struct kb_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->op = op;
    snprintf(r->stream, sizeof(r->stream), "%s", stream ? stream : "");
    snprintf(r->arg, sizeof(r->arg), "%s", arg ? arg : "");
    return r;
}

void kb_req_free(struct kb_req *r)
{
    if (!r)
        return;
    /* A push value holds a platform's key. */
    memset(r->arg, 0, sizeof(r->arg));
    if (r->state_text) {
        memset(r->state_text, 0, strlen(r->state_text));
        free(r->state_text);
    }
    kb_flv_unref(r->flv);
    free(r);
}

int kb_bridge_init(struct kb_bridge *b)
{
    memset(b, 0, sizeof(*b));
    b->to_relay_tail = &b->to_relay;
    b->to_http_tail = &b->to_http;
    atomic_init(&b->media, 0);
    return -pthread_mutex_init(&b->lock, NULL);
}

static void free_list(struct kb_req *r)
{
    while (r) {
        struct kb_req *next = r->next;
        kb_req_free(r);
        r = next;
    }
}

void kb_bridge_destroy(struct kb_bridge *b)
{
    free_list(b->to_relay);
    free_list(b->to_http);
    if (b->status)
        kb_status_unref(b->status);
    pthread_mutex_destroy(&b->lock);
    memset(b, 0, sizeof(*b));
}

void kb_bridge_relay_attach(struct kb_bridge *b, uv_async_t *wake)
{
    pthread_mutex_lock(&b->lock);
    b->relay_wake = wake;
    pthread_mutex_unlock(&b->lock);
}

void kb_bridge_http_attach(struct kb_bridge *b, uv_async_t *wake)
{
    pthread_mutex_lock(&b->lock);
    b->http_wake = wake;
    pthread_mutex_unlock(&b->lock);
}

void kb_bridge_post_status(struct kb_bridge *b, struct kb_status *s)
{
    pthread_mutex_lock(&b->lock);
    struct kb_status *old = b->status;
    b->status = s;
    pthread_mutex_unlock(&b->lock);
    if (old)
        kb_status_unref(old); /* outside the lock: the last reference frees */
}

struct kb_status *kb_bridge_status(struct kb_bridge *b)
{
    pthread_mutex_lock(&b->lock);
    struct kb_status *s = b->status ? kb_status_ref(b->status) : NULL;
    pthread_mutex_unlock(&b->lock);
    return s;
}

int kb_bridge_request(struct kb_bridge *b, struct kb_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&b->lock);
    if (!b->relay_wake) {
        pthread_mutex_unlock(&b->lock);
        return -ESHUTDOWN;
    }
    *b->to_relay_tail = r;
    b->to_relay_tail = &r->next;
    uv_async_send(b->relay_wake);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

struct kb_req *kb_bridge_take_requests(struct kb_bridge *b)
{
    pthread_mutex_lock(&b->lock);
    struct kb_req *list = b->to_relay;
    b->to_relay = NULL;
    b->to_relay_tail = &b->to_relay;
    pthread_mutex_unlock(&b->lock);
    return list;
}

void kb_bridge_answer(struct kb_bridge *b, struct kb_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&b->lock);
    if (!b->http_wake) {
        pthread_mutex_unlock(&b->lock);
        kb_req_free(r);
        return;
    }
    *b->to_http_tail = r;
    b->to_http_tail = &r->next;
    uv_async_send(b->http_wake);
    pthread_mutex_unlock(&b->lock);
}

struct kb_req *kb_bridge_take_answers(struct kb_bridge *b)
{
    pthread_mutex_lock(&b->lock);
    struct kb_req *list = b->to_http;
    b->to_http = NULL;
    b->to_http_tail = &b->to_http;
    pthread_mutex_unlock(&b->lock);
    return list;
}

void kb_bridge_media(struct kb_bridge *b)
{
    /* One wake-up per HTTP round, not one per message: the flag stays set
     * until the HTTP thread takes it, and only its setter wakes. */
    if (atomic_exchange_explicit(&b->media, 1, memory_order_acq_rel))
        return;
    pthread_mutex_lock(&b->lock);
    if (b->http_wake)
        uv_async_send(b->http_wake);
    pthread_mutex_unlock(&b->lock);
}

int kb_bridge_take_media(struct kb_bridge *b)
{
    return atomic_exchange_explicit(&b->media, 0, memory_order_acq_rel);
}
