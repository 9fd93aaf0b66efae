/* kebun: what passes between the relay's loop thread and the HTTP thread.
 *
 * The relay loop owns all relay state; the HTTP thread (h2o on a loop of
 * its own) never touches it. Two things cross, and nothing else:
 *
 *   status     the loop posts an immutable snapshot (relay/status.h); the
 *              HTTP thread takes a reference to the current one. A short
 *              lock guards the pointer swap only.
 *   requests   changes the API asks for (add or remove a destination, kick
 *              a publisher, delete a recording) and HTTP-FLV viewers
 *              travel to the loop as kb_req messages (a list under the
 *              lock, and a uv_async_t that wakes the loop); each comes back
 *              answered the same way, to the HTTP thread's uv_async_t. A
 *              viewer crosses twice: asked for (may it start?), then handed
 *              over as its socket's descriptor once the HTTP side sent the
 *              response head; the loop writes its media from then on
 *              (relay/flvsink.h), so no media crosses between the threads.
 *
 * Either side may be gone first at shutdown: a request to a relay that
 * stopped is refused at once (-ESHUTDOWN), an answer to an HTTP side that
 * stopped is dropped.
 */
#ifndef KB_BRIDGE_H
#define KB_BRIDGE_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "relay/status.h"

enum kb_req_op {
    KB_REQ_ADD_DEST, ///< stream, arg = push value
    KB_REQ_DEL_DEST, ///< stream, arg = destination id
    KB_REQ_KICK,     ///< stream
    KB_REQ_DEL_REC,  ///< stream, arg = recording id
    KB_REQ_FLV_OPEN, ///< stream: may a viewer start? (200, 404, 503)
    KB_REQ_FLV_ADOPT,///< stream, fd: the viewer's socket, head sent (not answered)
};

struct kb_req {
    enum kb_req_op op;
    char stream[KB_CONF_NAME_MAX + 1];
    char arg[1024];             ///< push value (secret: wiped on free), id
    int fd;                     ///< KB_REQ_FLV_ADOPT: the socket (closed on free unless taken), else -1
    /* The answer, filled on the loop. */
    int status;                 ///< HTTP status
    char error[256];            ///< when status >= 400
    char info[256];             ///< what was done (kicked peer, removed id, ...)
    struct kb_status_dest dest; ///< KB_REQ_ADD_DEST: the new destination
    char *state_text;           ///< KB_REQ_ADD/DEL_DEST: the new state file (secret), or NULL
    char state_path[4096];      ///< where it goes
    /* The HTTP side's. */
    void *ud;
    struct kb_req *next;
};

struct kb_req *kb_req_new(enum kb_req_op op, const char *stream, const char *arg);
void kb_req_free(struct kb_req *r);

struct kb_bridge {
    pthread_mutex_t lock;
    struct kb_req *to_relay, **to_relay_tail;
    struct kb_req *to_http, **to_http_tail;
    uv_async_t *relay_wake;     ///< the loop's, NULL once it stopped taking requests
    uv_async_t *http_wake;      ///< the HTTP thread's, NULL once it stopped
    struct kb_status *status;   ///< the current snapshot
};

int kb_bridge_init(struct kb_bridge *b);
void kb_bridge_destroy(struct kb_bridge *b);

/* Loop: the wake-up for requests (NULL: stop taking them; later requests
 * are refused with -ESHUTDOWN). */
void kb_bridge_relay_attach(struct kb_bridge *b, uv_async_t *wake);
/* HTTP thread: the wake-up for answers (NULL: stopped). */
void kb_bridge_http_attach(struct kb_bridge *b, uv_async_t *wake);

/* Loop: replace the current snapshot (the bridge takes the reference). */
void kb_bridge_post_status(struct kb_bridge *b, struct kb_status *s);
/* HTTP thread: a reference to the current snapshot, or NULL before the first. */
struct kb_status *kb_bridge_status(struct kb_bridge *b);

/* HTTP thread: send a request. 0, or -ESHUTDOWN (the request stays the
 * caller's). */
int kb_bridge_request(struct kb_bridge *b, struct kb_req *r);
/* Loop: take every request waiting (a list through ->next). */
struct kb_req *kb_bridge_take_requests(struct kb_bridge *b);
/* Loop: send an answer back (the bridge takes it; dropped when the HTTP
 * side stopped). */
void kb_bridge_answer(struct kb_bridge *b, struct kb_req *r);
/* HTTP thread: take every answer waiting. */
struct kb_req *kb_bridge_take_answers(struct kb_bridge *b);

#endif
