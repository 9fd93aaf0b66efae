/* kebun: the RTMP handshake as a sans-IO state machine.
 *
 * Bytes in, bytes out; no sockets. The server answers both the simple
 * handshake (C1 version bytes zero, or no valid digest found) and the digest
 * ("complex") handshake that Flash-era clients and ffmpeg send: it looks for
 * the client's digest in both 764-byte blocks, and when it finds one it
 * answers with a digest-signed S1 and an S2 signed with a key derived from
 * C1's digest, which is what ffmpeg checks when it plays. C2 is read and
 * ignored (clients in the wild sign it inconsistently).
 *
 * The client sends a digest C1 (like ffmpeg) and answers S1 with a C2 that
 * is digest-signed when S1 carried a valid server digest, an echo of S1
 * otherwise.
 *
 * The state is heap-allocated by the caller's session only while the
 * handshake runs (about 3 KiB) and freed when it is done.
 */
#ifndef KB_HANDSHAKE_H
#define KB_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define KB_HS_SIZE 1536 ///< bytes in C1, S1, C2, S2

enum kb_hs_role {
    KB_HS_SERVER,
    KB_HS_CLIENT,
};

struct kb_handshake {
    enum kb_hs_role role;
    int state;                   ///< internal progress, starts at 0
    int digest;                  ///< 1 when the peer's packet carried a valid digest
    uint32_t epoch;              ///< our 4-byte time field
    uint64_t rng;                ///< xorshift state for filler bytes
    size_t have;                 ///< bytes collected in `in`
    uint8_t in[1 + 2 * KB_HS_SIZE]; ///< peer bytes being collected
    uint8_t c1[KB_HS_SIZE];      ///< client: the C1 we sent (its digest signs C2 checks)
};

/* Prepare a handshake. `seed` seeds the filler bytes (any value; tests pass
 * a constant to get repeatable output). */
void kb_handshake_init(struct kb_handshake *hs, enum kb_hs_role role, uint32_t epoch,
                       uint64_t seed);

/* Client only: append C0+C1 to `out`. Returns 0 or -ENOMEM. */
int kb_handshake_start(struct kb_handshake *hs, struct kb_buf *out);

/* Feed peer bytes. Consumes at most what the handshake needs and reports it
 * in *used; bytes after the handshake belong to the chunk stream. Appends
 * what must be sent to `out` (server: S0+S1+S2 once C0+C1 is in; client: C2
 * once S0+S1+S2 is in).
 * Returns 1 when the handshake is complete, 0 when more bytes are needed,
 * KB_EVERSION when C0/S0 is not 3 (or 6, the encrypted variant, which is
 * refused), -ENOMEM. */
int kb_handshake_feed(struct kb_handshake *hs, const uint8_t *p, size_t n, size_t *used,
                      struct kb_buf *out);

/* Exposed for tests: find a valid digest in a 1536-byte C1/S1 signed with
 * the first `keylen` bytes of `key`. Returns the digest offset or -1. */
int kb_handshake_find_digest(const uint8_t *pkt, const uint8_t *key, size_t keylen);

#endif
