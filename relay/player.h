/* kebun: an RTMP player's side of its stream.
 *
 * A playing session is a sink of its stream. Each message it is handed
 * goes through its keyframe gate (relay/rtmp/gate.h) with the connection's
 * queued bytes and `player_queue` as the bound, and joins the queue as a
 * reference to the message's shared chunked form: every player sends the
 * very same bytes. Past the bound the player skips to the next keyframe and
 * counts what it dropped; sequence headers and metadata always get through.
 */
#ifndef KB_PLAYER_H
#define KB_PLAYER_H

#include <stddef.h>
#include <stdint.h>

#include "relay/rtmp/caps.h"
#include "relay/rtmp/gate.h"
#include "stream.h"

#define KB_PLAY_MSID 1 ///< message stream id of every play stream (shared wire bytes use it)

struct kb_session;

struct kb_player {
    struct kb_sink sink; ///< attached to the played stream while playing
    struct kb_caps caps; ///< what the peer's connect declared (E-RTMP): what it may be sent
    struct kb_gate gate;
    int paused;
    int catching_up;     ///< being handed the cached GOP (pinned by the cache: not counted)
};

/* 1 when a player that declared `caps` in its connect cannot take what
 * `st` sends now (its sequence headers); `what` names it ("HEVC"). */
int kb__player_refuses(const struct kb_caps *caps, const struct kb_stream *st, char *what,
                       size_t n);
/* Log the refusal of a play of `stream` for `what`, and put the
 * NetStream.Play.Failed description in desc. */
void kb__player_refusal(struct kb_session *s, const char *stream, const char *what, char *desc,
                        size_t n);
/* Start playing `st` (after Play.Start was queued): attach, and catch up
 * from the cache when the stream is live. */
void kb__player_start(struct kb_session *s, struct kb_stream *st);
/* pause / unpause; an unpaused player resumes from the cached GOP. */
void kb__player_pause(struct kb_session *s, int pause);
/* Stop playing: detach from the stream. */
void kb__player_stop(struct kb_session *s);

#endif
