/* kebun: a server-side RTMP session: a connection accepted on a listener
 * and the role its peer takes there, publisher of a stream or player.
 *
 * The transport (relay/conn.h) is the first member: it is allocated with
 * the session and released with it, after the connection's close callback.
 * The session hears the connection through its callbacks (commands and
 * media in, closing) and writes through it; the connection knows nothing
 * of sessions.
 *
 *   commands.c  connect, createStream, publish, play, pause, ... and replies
 *   session.c   accept, media into the stream, timeouts, the end of a role
 *   player.c    the player's side of its stream (a sink with a bounded queue)
 */
#ifndef KB_SESSION_H
#define KB_SESSION_H

#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "player.h"
#include "relay/rtmp/proto.h"

struct kb_server;
struct kb_stream;

enum kb_session_state {
    KB_SS_HANDSHAKE, ///< exchanging C0..C2
    KB_SS_RTMP,      ///< chunk stream running, waiting for connect
    KB_SS_CONNECTED, ///< connect accepted
    KB_SS_PUBLISHING,
    KB_SS_PLAYING,
};

struct kb_session {
    struct kb_conn conn;          ///< first: the transport, allocated and released with it
    struct kb_server *srv;
    enum kb_session_state state;
    uint32_t next_msid;           ///< createStream hands out 1, 2, ...
    struct kb_stream *stream;     ///< published or played stream, or NULL
    uint32_t msid;                ///< its message stream id
    uint64_t role_ms;             ///< loop time publish or play started
    struct kb_player player;      ///< while playing
    struct kb_list link;          ///< on the server's list of open sessions
};

/* Accept one pending connection on `listener`. */
void kb__session_accept(struct kb_server *srv, uv_stream_t *listener);
/* Begin closing (idempotent); `why` goes into the log line. */
void kb__session_close(struct kb_session *s, const char *why);
/* Answer, then close once the answer left (a refusal). */
void kb__session_close_after_reply(struct kb_session *s, const char *why);
/* Timeouts, once a second. */
void kb__session_sweep(struct kb_session *s, uint64_t now);
/* The publisher or player part of a session ends (the connection may go
 * on: a peer may unpublish and publish again). */
void kb__session_end_role(struct kb_session *s, const char *why);

/* commands.c: handle one command message. */
int kb__session_command(struct kb_session *s, const struct kb_msg *m);

#endif
