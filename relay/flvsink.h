/* kebun: HTTP-FLV viewers, served by the relay's loop (loop thread only).
 *
 * The web side answers GET /live/NAME.flv with its response head, then
 * gives the socket up (relay/http/live.c) and hands its descriptor here.
 * From then on a viewer is a sink of its stream like an RTMP player: it
 * starts from the GOP cache, counts as a player, is bounded by player_queue
 * through the same keyframe gate (video skipped first, audio kept), and its
 * writes follow the video through the same flusher. Only the framing
 * differs: each message leaves as one HTTP chunk holding one FLV tag (our
 * tag header, the shared message's payload, the tag's size), so nothing is
 * copied and nothing crosses between threads per message.
 */
#ifndef KB_FLVSINK_H
#define KB_FLVSINK_H

#include <stdint.h>

#include "stream.h"

struct kb_server;

/* May a viewer of st be let in now? 0, or a negative errno with `why`
 * filled (-EMFILE: max_connections reached). */
int kb__flvsink_admit(struct kb_server *srv, char *why, size_t n);
/* A viewer of the stream named `stream` on socket fd, its response head
 * already sent: the fd is taken in every case (closed when the stream is
 * gone or kebun is stopping). */
void kb__flvsink_adopt(struct kb_server *srv, const char *stream, int fd);
/* The relay lets go of the viewers of st (every viewer when st is NULL):
 * what fits in their sockets is written, their responses end. */
void kb__flvsink_end_stream(struct kb_server *srv, struct kb_stream *st);
/* Bytes the viewers of st were sent so far. */
uint64_t kb__flvsink_bytes(struct kb_server *srv, const struct kb_stream *st);

#endif
