/* kebun: error codes.
 *
 * Every function that can fail returns 0 (or a count) on success and a
 * negative value on failure: a negative errno (libuv's and FFmpeg's
 * convention) or one of the KB_E* protocol faults below. kb_strerror() turns
 * any of them into a sentence.
 */
#ifndef KB_ERROR_H
#define KB_ERROR_H

#include <errno.h>

/* Protocol faults. They sit far below any errno value so they never collide
 * with -errno, and above FFmpeg's FFERRTAG range so AVERROR values stay
 * distinguishable too. */
enum {
    KB_EHANDSHAKE = -20001, ///< peer's handshake bytes are not RTMP
    KB_ECHUNK = -20002,     ///< malformed chunk stream
    KB_ETOOBIG = -20003,    ///< message larger than the configured bound
    KB_EAMF = -20004,       ///< malformed or too deeply nested AMF0
    KB_ECMD = -20005,       ///< command message of the wrong shape
    KB_ECHUNKSIZE = -20006, ///< Set Chunk Size outside the accepted range
    KB_ETOOMANY = -20007,   ///< too many chunk streams in flight
    KB_EVERSION = -20008,   ///< unsupported RTMP version byte
    KB_ERANGE_LAST = -20008,
};

/* A sentence for any error this project returns: KB_E* or -errno. */
const char *kb_strerror(int err);

#endif
