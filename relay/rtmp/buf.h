/* kebun: a growable byte buffer owned by whoever embeds it. */
#ifndef KB_BUF_H
#define KB_BUF_H

#include <stddef.h>
#include <stdint.h>

struct kb_buf {
    uint8_t *data; ///< heap bytes, NULL while empty
    size_t len;    ///< bytes in use
    size_t cap;    ///< bytes allocated
};

/* Make room for at least `extra` more bytes. Returns 0 or -ENOMEM. */
int kb_buf_reserve(struct kb_buf *b, size_t extra);
/* Append bytes. Returns 0 or -ENOMEM. */
int kb_buf_append(struct kb_buf *b, const void *p, size_t n);
/* Drop the first n bytes (n <= len). */
void kb_buf_consume(struct kb_buf *b, size_t n);
/* Release the memory; the buffer can be reused afterwards. */
void kb_buf_free(struct kb_buf *b);

static inline void kb_put_be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void kb_put_be24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}
static inline void kb_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void kb_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t kb_get_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}
static inline uint32_t kb_get_be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t kb_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t kb_get_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

#endif
