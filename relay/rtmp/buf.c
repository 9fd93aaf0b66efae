#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kb_buf_reserve(struct kb_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int kb_buf_append(struct kb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int err = kb_buf_reserve(b, n);
    if (err)
        return err;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void kb_buf_consume(struct kb_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void kb_buf_free(struct kb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
