#include "bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kb_req *kb_req_new(enum kb_req_op op, const char *stream, const char *arg)
{
    struct kb_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->op = op;
    r->fd = -1;
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
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

int kb_bridge_init(struct kb_bridge *b)
{
    memset(b, 0, sizeof(*b));
    b->to_relay_tail = &b->to_relay;
    b->to_http_tail = &b->to_http;
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
