/* kebun: writing test input into a kb_buf, byte by byte, for the RTMP unit
 * tests. Deliberately independent of the code under test's writers. */
#ifndef KB_TEST_BYTES_H
#define KB_TEST_BYTES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/rtmp/buf.h"

static inline void must(int err)
{
    if (err) {
        fprintf(stderr, "out of memory in test\n");
        abort();
    }
}

static inline void put8(struct kb_buf *b, uint32_t v)
{
    uint8_t c = (uint8_t)v;
    must(kb_buf_append(b, &c, 1));
}

static inline void put16(struct kb_buf *b, uint32_t v)
{
    uint8_t c[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    must(kb_buf_append(b, c, 2));
}

static inline void put24(struct kb_buf *b, uint32_t v)
{
    uint8_t c[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    must(kb_buf_append(b, c, 3));
}

static inline void put32(struct kb_buf *b, uint32_t v)
{
    uint8_t c[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    must(kb_buf_append(b, c, 4));
}

static inline void putle32(struct kb_buf *b, uint32_t v)
{
    uint8_t c[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    must(kb_buf_append(b, c, 4));
}

static inline void putmem(struct kb_buf *b, const void *p, size_t n)
{
    must(kb_buf_append(b, p, n));
}

/* An IEEE 754 double, big-endian (AMF0's number encoding). */
static inline void putdbl(struct kb_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

/* A chunk header: basic header in its shortest form for csid, then the
 * message header of format fmt (0-2); ts (timestamp for format 0, delta for
 * 1 and 2) from 0xFFFFFF on goes into an extended timestamp. */
static inline void basic(struct kb_buf *b, unsigned fmt, uint32_t csid)
{
    if (csid < 64) {
        put8(b, fmt << 6 | csid);
    } else if (csid < 320) {
        put8(b, fmt << 6);
        put8(b, csid - 64);
    } else {
        put8(b, fmt << 6 | 1);
        put8(b, (csid - 64) & 0xff);
        put8(b, (csid - 64) >> 8);
    }
}

static inline void chdr(struct kb_buf *b, unsigned fmt, uint32_t csid, uint32_t ts, uint32_t len,
                        uint8_t type, uint32_t sid)
{
    int ext = ts >= 0xFFFFFF;
    basic(b, fmt, csid);
    if (fmt <= 2)
        put24(b, ext ? 0xFFFFFF : ts);
    if (fmt <= 1) {
        put24(b, len);
        put8(b, type);
    }
    if (fmt == 0)
        putle32(b, sid);
    if (fmt <= 2 && ext)
        put32(b, ts);
}

#endif
