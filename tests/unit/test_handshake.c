/* kebun: unit test for the RTMP handshake.
 *
 * The digest checks here do not reuse handshake.c: HMAC-SHA256 is built from
 * plain SHA-256 (ipad/opad), and the server's answer is verified the way
 * ffmpeg's rtmpproto.c does it when it plays, so a bug shared by the
 * builder and the checker cannot hide.
 */
#include "relay/rtmp/handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "relay/rtmp/error.h"

#define HS KB_HS_SIZE

static int failures;

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    a_, b_);                                                                       \
            failures++;                                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_MEM(a, b, n)                                                                        \
    do {                                                                                           \
        if (!mem_eq(a, b, n, #a, #b, __FILE__, __LINE__)) {                                        \
            failures++;                                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static const uint8_t tail[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};
static uint8_t player_key[30 + 32]; ///< "Genuine Adobe Flash Player 001" + tail
static uint8_t fms_key[36 + 32];    ///< "Genuine Adobe Flash Media Server 001" + tail

static void dump(const char *name, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s:", name);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* On mismatch, print both sides around the first differing byte. */
static int mem_eq(const uint8_t *a, const uint8_t *b, size_t n, const char *an, const char *bn,
                  const char *file, int line)
{
    size_t i = 0;

    while (i < n && a[i] == b[i])
        i++;
    if (i == n)
        return 1;
    size_t from = i > 8 ? i - 8 : 0;
    size_t len = n - from < 24 ? n - from : 24;
    fprintf(stderr, "%s:%d: %s and %s differ at byte %zu of %zu (showing from %zu)\n", file, line,
            an, bn, i, n, from);
    dump(an, a + from, len);
    dump(bn, b + from, len);
    return 0;
}

static void sha256(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, const uint8_t *c,
                   size_t cn, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 32;

    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !EVP_DigestUpdate(ctx, a, an) ||
        !EVP_DigestUpdate(ctx, b, bn) || !EVP_DigestUpdate(ctx, c, cn) ||
        !EVP_DigestFinal_ex(ctx, out, &len)) {
        fprintf(stderr, "sha256 failed\n");
        exit(2);
    }
    EVP_MD_CTX_free(ctx);
}

/* HMAC-SHA256 (RFC 2104) over the concatenation of two parts. */
static void hmac2(const uint8_t *key, size_t klen, const uint8_t *a, size_t an, const uint8_t *b,
                  size_t bn, uint8_t *out)
{
    uint8_t k[64] = {0}, pad[64], inner[32];

    if (klen > 64)
        sha256(key, klen, NULL, 0, NULL, 0, k);
    else
        memcpy(k, key, klen);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    sha256(pad, 64, a, an, b, bn, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256(pad, 64, inner, 32, NULL, 0, out);
}

/* ffmpeg's ff_rtmp_calc_digest_pos(). */
static size_t calc_pos(const uint8_t *buf, size_t off, size_t mod, size_t add)
{
    size_t sum = 0;

    for (int i = 0; i < 4; i++)
        sum += buf[off + i];
    return sum % mod + add;
}

/* The digest of a 1536-byte packet with the 32 bytes at `pos` left out. */
static void packet_digest(const uint8_t *pkt, size_t pos, const uint8_t *key, size_t klen,
                          uint8_t *out)
{
    hmac2(key, klen, pkt, pos, pkt + pos + 32, HS - pos - 32, out);
}

static int digest_ok(const uint8_t *pkt, size_t pos, const uint8_t *key, size_t klen)
{
    uint8_t d[32];

    packet_digest(pkt, pos, key, klen, d);
    return memcmp(d, pkt + pos, 32) == 0;
}

static uint8_t rnd(void)
{
    static uint32_t x = 12345;

    x = x * 1103515245u + 12345u;
    return (uint8_t)(x >> 16);
}

/* Build C0+C1 as ffmpeg would, with the digest in scheme A (0) or B (1).
 * Returns the digest position inside C1. */
static size_t make_c0c1(uint8_t *c0c1, int scheme)
{
    uint8_t *c1 = c0c1 + 1;

    c0c1[0] = 3;
    for (size_t i = 0; i < HS; i++)
        c1[i] = rnd();
    memcpy(c1, "\0\0\0\0\x09\x00\x7c\x02", 8);
    size_t pos = scheme ? calc_pos(c1, 772, 728, 776) : calc_pos(c1, 8, 728, 12);
    packet_digest(c1, pos, player_key, 30, c1 + pos);
    return pos;
}

/* What ffmpeg's rtmp_handshake() does with S0+S1+S2 when it plays: find
 * the server digest (scheme B first, then A), then check S2's signature
 * with a key derived from our C1 digest. Returns 1 if ffmpeg would go on. */
static int ffmpeg_accepts(const uint8_t *serverdata, const uint8_t *client_digest)
{
    const uint8_t *s1 = serverdata + 1, *s2 = serverdata + 1 + HS;
    uint8_t digest[32], signature[32];

    if (serverdata[5] < 3)
        return 1;
    size_t pos = calc_pos(s1, 772, 728, 776);
    if (!digest_ok(s1, pos, fms_key, 36)) {
        pos = calc_pos(s1, 8, 728, 12);
        if (!digest_ok(s1, pos, fms_key, 36)) {
            fprintf(stderr, "  ffmpeg: Server response validating failed\n");
            return 0;
        }
    }
    hmac2(fms_key, sizeof(fms_key), client_digest, 32, NULL, 0, digest);
    hmac2(digest, 32, s2, HS - 32, NULL, 0, signature);
    if (memcmp(signature, s2 + HS - 32, 32) != 0) {
        fprintf(stderr, "  ffmpeg: Signature mismatch\n");
        dump("computed", signature, 32);
        dump("in S2   ", s2 + HS - 32, 32);
        return 0;
    }
    return 1;
}

/* Feed `n` bytes in pieces of `step`, stopping at the first nonzero return.
 * Returns that value; *total is the sum of *used over the calls. */
static int feed(struct kb_handshake *hs, const uint8_t *p, size_t n, size_t step, size_t *total,
                struct kb_buf *out)
{
    int rc = 0;

    *total = 0;
    for (size_t off = 0; off < n && rc == 0; off += step) {
        size_t len = n - off < step ? n - off : step, used = 0;
        rc = kb_handshake_feed(hs, p + off, len, &used, out);
        *total += used;
        if (rc == 0 && used != len) {
            fprintf(stderr, "  feed: used %zu of %zu while still waiting\n", used, len);
            return -1000;
        }
    }
    return rc;
}

static void test_simple_server(size_t step)
{
    uint8_t in[1 + 2 * HS + 5];
    struct kb_handshake hs;
    struct kb_buf out = {0};
    size_t used;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = rnd();
    in[0] = 3;
    memset(in + 5, 0, 4);
    kb_handshake_init(&hs, KB_HS_SERVER, 0x01020304, 7);

    /* Nothing goes out before C1 is complete. */
    ASSERT_EQ(feed(&hs, in, HS, step, &used, &out), 0);
    ASSERT_EQ(used, HS);
    ASSERT_EQ(out.len, 0);
    ASSERT_EQ(feed(&hs, in + HS, 1, step, &used, &out), 0);
    ASSERT_EQ(out.len, 1 + 2 * HS);
    ASSERT_EQ(out.data[0], 3);
    ASSERT_MEM(out.data + 1, (const uint8_t *)"\x01\x02\x03\x04\0\0\0\0", 8);
    ASSERT_MEM(out.data + 1 + HS, in + 1, HS);
    ASSERT_EQ(hs.digest, 0);

    /* C2 plus five bytes of chunk stream: only the C2 is taken. */
    ASSERT_EQ(feed(&hs, in + 1 + HS, HS + 5, step, &used, &out), 1);
    ASSERT_EQ(used, HS);
    ASSERT_EQ(out.len, 1 + 2 * HS);
    ASSERT_EQ(kb_handshake_feed(&hs, in, 5, &used, &out), 1);
    ASSERT_EQ(used, 0);
    kb_buf_free(&out);
}

static void test_digest_server(int scheme, uint64_t seed)
{
    uint8_t in[1 + 2 * HS];
    struct kb_handshake hs;
    struct kb_buf out = {0};
    size_t used;
    size_t cpos = make_c0c1(in, scheme);

    for (size_t i = 1 + HS; i < sizeof(in); i++)
        in[i] = rnd();
    kb_handshake_init(&hs, KB_HS_SERVER, 1000, seed);
    ASSERT_EQ(kb_handshake_find_digest(in + 1, player_key, 30), (int)cpos);

    ASSERT_EQ(feed(&hs, in, 1 + HS, 1 + HS, &used, &out), 0);
    ASSERT_EQ(out.len, 1 + 2 * HS);
    ASSERT_EQ(hs.digest, 1);
    const uint8_t *s1 = out.data + 1;
    ASSERT_MEM(s1, (const uint8_t *)"\0\0\x03\xe8\x04\x05\x00\x01", 8);
    ASSERT_EQ(ffmpeg_accepts(out.data, in + 1 + cpos), 1);

    /* The server digest must sit where the client's scheme puts it. */
    size_t spos = scheme ? calc_pos(s1, 772, 728, 776) : calc_pos(s1, 8, 728, 12);
    ASSERT_EQ(digest_ok(s1, spos, fms_key, 36), 1);
    ASSERT_EQ(kb_handshake_find_digest(s1, fms_key, 36), (int)spos);

    ASSERT_EQ(feed(&hs, in + 1 + HS, HS, 100, &used, &out), 1);
    ASSERT_EQ(used, HS);
    kb_buf_free(&out);
}

/* Non-zero version bytes but no valid digest: answer simply. */
static void test_bad_digest_falls_back(void)
{
    uint8_t in[1 + HS];
    struct kb_handshake hs;
    struct kb_buf out = {0};
    size_t used;
    size_t pos = make_c0c1(in, 0);

    in[1 + pos] ^= 1;
    kb_handshake_init(&hs, KB_HS_SERVER, 0, 0);
    ASSERT_EQ(feed(&hs, in, sizeof(in), 1, &used, &out), 0);
    ASSERT_EQ(out.len, 1 + 2 * HS);
    ASSERT_EQ(hs.digest, 0);
    ASSERT_MEM(out.data + 5, (const uint8_t *)"\0\0\0\0", 4);
    ASSERT_MEM(out.data + 1 + HS, in + 1, HS);
    kb_buf_free(&out);
}

static void test_round_trip(uint64_t cseed, uint64_t sseed, size_t step)
{
    struct kb_handshake c, s;
    struct kb_buf cout = {0}, sout = {0};
    size_t used;

    kb_handshake_init(&c, KB_HS_CLIENT, 42, cseed);
    kb_handshake_init(&s, KB_HS_SERVER, 43, sseed);
    ASSERT_EQ(kb_handshake_start(&c, &cout), 0);
    ASSERT_EQ(cout.len, 1 + HS);
    ASSERT_EQ(cout.data[0], 3);
    ASSERT_MEM(cout.data + 1, (const uint8_t *)"\0\0\0\x2a\x09\x00\x7c\x02", 8);
    size_t cpos = calc_pos(cout.data + 1, 8, 728, 12);
    ASSERT_EQ(digest_ok(cout.data + 1, cpos, player_key, 30), 1);

    ASSERT_EQ(feed(&s, cout.data, cout.len, step, &used, &sout), 0);
    ASSERT_EQ(sout.len, 1 + 2 * HS);
    ASSERT_EQ(s.digest, 1);
    ASSERT_EQ(ffmpeg_accepts(sout.data, cout.data + 1 + cpos), 1);
    kb_buf_consume(&cout, cout.len);

    ASSERT_EQ(feed(&c, sout.data, sout.len, step, &used, &cout), 1);
    ASSERT_EQ(used, 1 + 2 * HS);
    ASSERT_EQ(c.digest, 1);
    ASSERT_EQ(cout.len, HS);

    /* C2 is signed with HMAC(full player key, S1's digest). */
    uint8_t key[32], sig[32];
    int spos = kb_handshake_find_digest(sout.data + 1, fms_key, 36);
    ASSERT_EQ(spos >= 0, 1);
    hmac2(player_key, sizeof(player_key), sout.data + 1 + spos, 32, NULL, 0, key);
    hmac2(key, 32, cout.data, HS - 32, NULL, 0, sig);
    ASSERT_MEM(cout.data + HS - 32, sig, 32);

    ASSERT_EQ(feed(&s, cout.data, cout.len, step, &used, &sout), 1);
    ASSERT_EQ(used, HS);
    kb_buf_free(&cout);
    kb_buf_free(&sout);
}

/* A client talking to a simple server echoes S1 as C2. */
static void test_client_simple(void)
{
    uint8_t in[1 + 2 * HS];
    struct kb_handshake c;
    struct kb_buf out = {0};
    size_t used;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = rnd();
    in[0] = 3;
    memset(in + 5, 0, 4);
    kb_handshake_init(&c, KB_HS_CLIENT, 0, 0);
    ASSERT_EQ(kb_handshake_feed(&c, in, 1, &used, &out), -EINVAL);
    ASSERT_EQ(kb_handshake_start(&c, &out), 0);
    kb_buf_consume(&out, out.len);
    ASSERT_EQ(feed(&c, in, sizeof(in), 1, &used, &out), 1);
    ASSERT_EQ(c.digest, 0);
    ASSERT_EQ(out.len, HS);
    ASSERT_MEM(out.data, in + 1, HS);
    kb_buf_free(&out);
}

static void test_version_refused(enum kb_hs_role role, uint8_t v)
{
    uint8_t in[16] = {v};
    struct kb_handshake hs;
    struct kb_buf out = {0};
    size_t used;

    kb_handshake_init(&hs, role, 0, 0);
    if (role == KB_HS_CLIENT) {
        ASSERT_EQ(kb_handshake_start(&hs, &out), 0);
        kb_buf_consume(&out, out.len);
    }
    ASSERT_EQ(kb_handshake_feed(&hs, in, sizeof(in), &used, &out), KB_EVERSION);
    ASSERT_EQ(out.len, 0);
    kb_buf_free(&out);
}

int main(void)
{
    memcpy(player_key, "Genuine Adobe Flash Player 001", 30);
    memcpy(player_key + 30, tail, 32);
    memcpy(fms_key, "Genuine Adobe Flash Media Server 001", 36);
    memcpy(fms_key + 36, tail, 32);

    test_simple_server(1);
    test_simple_server(7);
    test_simple_server(4096);
    for (int i = 0; i < 20; i++) {
        test_digest_server(0, (uint64_t)i);
        test_digest_server(1, (uint64_t)i);
    }
    test_bad_digest_falls_back();
    test_round_trip(0, 0, 1);
    test_round_trip(1, 2, 13);
    test_round_trip(UINT64_MAX, 0x9E3779B97F4A7C15ull, 4096);
    test_client_simple();
    test_version_refused(KB_HS_SERVER, 6);
    test_version_refused(KB_HS_SERVER, 0);
    test_version_refused(KB_HS_SERVER, 4);
    test_version_refused(KB_HS_CLIENT, 6);
    test_version_refused(KB_HS_CLIENT, 'G');

    if (failures)
        fprintf(stderr, "test_handshake: %d failure(s)\n", failures);
    else
        printf("test_handshake: ok\n");
    return failures != 0;
}
