/* kebun: the RTMP handshake (simple and digest variants), sans-IO.
 *
 * The digest scheme is Adobe's undocumented one, as implemented by ffmpeg's
 * rtmpproto.c and librtmp: a 32-byte HMAC-SHA256 sits inside one of the two
 * 764-byte blocks after the first 8 bytes of C1/S1, at an offset derived
 * from the four bytes that open the block. Which block the peer used is its
 * "scheme"; we answer with the same one.
 */
#include "handshake.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "error.h"

#define DIGEST_LEN 32
#define CLIENT_KEY_OPEN 30 ///< "Genuine Adobe Flash Player 001"
#define SERVER_KEY_OPEN 36 ///< "Genuine Adobe Flash Media Server 001"

/* The open parts are what C1/S1 digests are signed with; the full keys
 * (open part + the shared tail) derive the keys that sign C2/S2. */
static const uint8_t client_key[CLIENT_KEY_OPEN + DIGEST_LEN] = {
    'G',  'e',  'n',  'u',  'i',  'n',  'e',  ' ',  'A',  'd',  'o',  'b',  'e',  ' ',  'F',  'l',
    'a',  's',  'h',  ' ',  'P',  'l',  'a',  'y',  'e',  'r',  ' ',  '0',  '0',  '1',  0xF0, 0xEE,
    0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC,
    0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

static const uint8_t server_key[SERVER_KEY_OPEN + DIGEST_LEN] = {
    'G',  'e',  'n',  'u',  'i',  'n',  'e',  ' ',  'A',  'd',  'o',  'b',  'e',  ' ',
    'F',  'l',  'a',  's',  'h',  ' ',  'M',  'e',  'd',  'i',  'a',  ' ',  'S',  'e',
    'r',  'v',  'e',  'r',  ' ',  '0',  '0',  '1',  0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68,
    0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D,
    0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

/* Version bytes we put in C1/S1. ffmpeg checks the server digest only when
 * S1's byte 4 is >= 3, so a digest S1 must carry a version at least that
 * high; these are the values ffmpeg and Flash Media Server send. */
static const uint8_t client_version[4] = {9, 0, 124, 2};
static const uint8_t server_version[4] = {4, 5, 0, 1};

enum scheme {
    SCHEME_A, ///< digest in the block at bytes 8..771
    SCHEME_B, ///< digest in the block at bytes 772..1535
};

enum {
    ST_WAIT_HELLO, ///< server: collecting C0+C1; client: collecting S0+S1+S2
    ST_WAIT_C2,    ///< server: S0+S1+S2 sent, collecting C2
    ST_DONE,
    ST_NOT_STARTED, ///< client before kb_handshake_start
};

static size_t digest_pos(const uint8_t *pkt, enum scheme s)
{
    size_t base = s == SCHEME_A ? 8 : 772;
    unsigned sum = (unsigned)pkt[base] + pkt[base + 1] + pkt[base + 2] + pkt[base + 3];
    return sum % 728 + base + 4;
}

/* HMAC-SHA256 of the packet with its 32 digest bytes left out. HMAC() is
 * one-shot, so the two halves are joined in a scratch copy first. */
static int packet_hmac(const uint8_t *pkt, size_t pos, const uint8_t *key, size_t keylen,
                       uint8_t *out)
{
    uint8_t data[KB_HS_SIZE - DIGEST_LEN];
    unsigned outlen = DIGEST_LEN;

    memcpy(data, pkt, pos);
    memcpy(data + pos, pkt + pos + DIGEST_LEN, KB_HS_SIZE - DIGEST_LEN - pos);
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, sizeof(data), out, &outlen))
        return -1;
    return 0;
}

int kb_handshake_find_digest(const uint8_t *pkt, const uint8_t *key, size_t keylen)
{
    static const enum scheme order[] = {SCHEME_A, SCHEME_B};
    uint8_t mac[DIGEST_LEN];

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        size_t pos = digest_pos(pkt, order[i]);
        if (packet_hmac(pkt, pos, key, keylen, mac) == 0 &&
            CRYPTO_memcmp(mac, pkt + pos, DIGEST_LEN) == 0)
            return (int)pos;
    }
    return -1;
}

/* Filler need not be cryptographically random: peers only hash it. */
static void fill(struct kb_handshake *hs, uint8_t *p, size_t n)
{
    uint64_t x = hs->rng;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 56);
    }
    hs->rng = x;
}

/* Write a C1/S1 at `p`: time, version, filler, and (when `version` is
 * given) a digest signed with the open part of `key` in scheme `s`. */
static int build_hello(struct kb_handshake *hs, uint8_t *p, const uint8_t *version,
                       const uint8_t *key, size_t keylen, enum scheme s)
{
    kb_put_be32(p, hs->epoch);
    fill(hs, p + 8, KB_HS_SIZE - 8);
    if (!version) {
        memset(p + 4, 0, 4);
        return 0;
    }
    memcpy(p + 4, version, 4);
    size_t pos = digest_pos(p, s);
    return packet_hmac(p, pos, key, keylen, p + pos);
}

/* Write a digest C2/S2 at `p`: filler, then in the last 32 bytes an HMAC
 * keyed by HMAC(full key, peer's digest). */
static int build_signed_reply(struct kb_handshake *hs, uint8_t *p, const uint8_t *peer_digest,
                              const uint8_t *key, size_t keylen)
{
    uint8_t derived[DIGEST_LEN];
    unsigned len = DIGEST_LEN;
    size_t body = KB_HS_SIZE - DIGEST_LEN;

    fill(hs, p, body);
    if (!HMAC(EVP_sha256(), key, (int)keylen, peer_digest, DIGEST_LEN, derived, &len))
        return -1;
    len = DIGEST_LEN;
    if (!HMAC(EVP_sha256(), derived, DIGEST_LEN, p, body, p + body, &len))
        return -1;
    return 0;
}

void kb_handshake_init(struct kb_handshake *hs, enum kb_hs_role role, uint32_t epoch, uint64_t seed)
{
    memset(hs, 0, sizeof(*hs));
    hs->role = role;
    hs->state = role == KB_HS_CLIENT ? ST_NOT_STARTED : ST_WAIT_HELLO;
    hs->epoch = epoch;
    /* xorshift never leaves a zero state, so the seed is mixed with a
     * constant and a zero result replaced. */
    hs->rng = seed ^ 0x9E3779B97F4A7C15ull;
    if (hs->rng == 0)
        hs->rng = 0x9E3779B97F4A7C15ull;
}

int kb_handshake_start(struct kb_handshake *hs, struct kb_buf *out)
{
    if (hs->role != KB_HS_CLIENT || hs->state != ST_NOT_STARTED)
        return -EINVAL;
    int err = kb_buf_reserve(out, 1 + KB_HS_SIZE);
    if (err)
        return err;
    /* ffmpeg signs its C1 in scheme A unless it encrypts; do the same. */
    if (build_hello(hs, hs->c1, client_version, client_key, CLIENT_KEY_OPEN, SCHEME_A))
        return -ENOMEM;
    out->data[out->len] = 3;
    memcpy(out->data + out->len + 1, hs->c1, KB_HS_SIZE);
    out->len += 1 + KB_HS_SIZE;
    hs->state = ST_WAIT_HELLO;
    return 0;
}

/* Append S0+S1+S2 for the C1 in hs->in + 1. Output is reserved up front so
 * that a failure leaves `out` untouched. */
static int server_reply(struct kb_handshake *hs, struct kb_buf *out)
{
    const uint8_t *c1 = hs->in + 1;
    int err = kb_buf_reserve(out, 1 + 2 * KB_HS_SIZE);
    if (err)
        return err;
    uint8_t *s = out->data + out->len;
    int pos = -1;
    enum scheme scheme = SCHEME_A;

    /* Zero version bytes mean a simple-handshake client; looking for a
     * digest there could only produce a false positive. */
    if (kb_get_be32(c1 + 4) != 0) {
        pos = kb_handshake_find_digest(c1, client_key, CLIENT_KEY_OPEN);
        if (pos >= 0 && (size_t)pos != digest_pos(c1, SCHEME_A))
            scheme = SCHEME_B;
    }
    hs->digest = pos >= 0;

    s[0] = 3;
    if (!hs->digest) {
        build_hello(hs, s + 1, NULL, NULL, 0, SCHEME_A);
        memcpy(s + 1 + KB_HS_SIZE, c1, KB_HS_SIZE);
    } else if (build_hello(hs, s + 1, server_version, server_key, SERVER_KEY_OPEN, scheme) ||
               build_signed_reply(hs, s + 1 + KB_HS_SIZE, c1 + pos, server_key,
                                  sizeof(server_key))) {
        return -ENOMEM;
    }
    out->len += 1 + 2 * KB_HS_SIZE;
    return 0;
}

/* Append C2 for the S1 in hs->in + 1. S2 is not checked: servers in the
 * wild sign it inconsistently and nothing depends on it. */
static int client_reply(struct kb_handshake *hs, struct kb_buf *out)
{
    const uint8_t *s1 = hs->in + 1;
    int err = kb_buf_reserve(out, KB_HS_SIZE);
    if (err)
        return err;
    uint8_t *c2 = out->data + out->len;
    int pos = kb_handshake_find_digest(s1, server_key, SERVER_KEY_OPEN);

    hs->digest = pos >= 0;
    if (!hs->digest)
        memcpy(c2, s1, KB_HS_SIZE);
    else if (build_signed_reply(hs, c2, s1 + pos, client_key, sizeof(client_key)))
        return -ENOMEM;
    out->len += KB_HS_SIZE;
    return 0;
}

/* Copy up to `want - hs->have` bytes into hs->in (or just count them when
 * `keep` is 0) and report how many were taken. */
static size_t collect(struct kb_handshake *hs, const uint8_t *p, size_t n, size_t want, int keep)
{
    size_t take = want - hs->have;

    if (take > n)
        take = n;
    if (keep)
        memcpy(hs->in + hs->have, p, take);
    hs->have += take;
    return take;
}

int kb_handshake_feed(struct kb_handshake *hs, const uint8_t *p, size_t n, size_t *used,
                      struct kb_buf *out)
{
    size_t hello = hs->role == KB_HS_SERVER ? 1 + KB_HS_SIZE : 1 + 2 * KB_HS_SIZE;
    size_t off = 0;
    int err;

    *used = 0;
    if (hs->state == ST_NOT_STARTED)
        return -EINVAL;
    if (hs->state == ST_WAIT_HELLO) {
        off += collect(hs, p, n, hello, 1);
        *used = off;
        /* Version 6 is RTMPE (encrypted); it is refused like any other
         * version so that the caller closes the connection early. */
        if (hs->have > 0 && hs->in[0] != 3)
            return KB_EVERSION;
        if (hs->have < hello)
            return 0;
        err = hs->role == KB_HS_SERVER ? server_reply(hs, out) : client_reply(hs, out);
        if (err) {
            /* Leave the last byte unconsumed so a retry rebuilds the reply. */
            hs->have--;
            *used = off - 1;
            return err;
        }
        hs->have = 0;
        hs->state = hs->role == KB_HS_SERVER ? ST_WAIT_C2 : ST_DONE;
    }
    if (hs->state == ST_WAIT_C2) {
        off += collect(hs, p + off, n - off, KB_HS_SIZE, 0);
        *used = off;
        if (hs->have < KB_HS_SIZE)
            return 0;
        hs->state = ST_DONE;
    }
    return 1;
}
