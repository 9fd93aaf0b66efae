/* kebun: the relay's side of HTTP-FLV viewers (loop thread). */
#ifndef KB_FLVSINK_H
#define KB_FLVSINK_H

#include <stdint.h>

#include "relay/http/bridge.h"
#include "stream.h"

struct kb_server;

/* A viewer of st: attach, catch up. 0 or -ENOMEM. */
int kb__flvsink_open(struct kb_server *srv, struct kb_stream *st, struct kb_flv *flv);
/* The HTTP side let go (the client left). */
void kb__flvsink_close(struct kb_server *srv, struct kb_flv *flv);
/* The relay lets go of the viewers of st (every viewer when st is NULL):
 * their responses end. */
void kb__flvsink_end_stream(struct kb_server *srv, struct kb_stream *st);
/* Bytes the viewers of st were sent so far. */
uint64_t kb__flvsink_bytes(struct kb_server *srv, const struct kb_stream *st);

#endif
