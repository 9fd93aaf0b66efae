#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"

struct kb_msg *kb_msg_new(uint8_t type, uint32_t timestamp, uint32_t stream_id, uint32_t cap)
{
    struct kb_msg *m = malloc(sizeof(*m) + cap);
    if (!m)
        return NULL;
    atomic_init(&m->refcnt, 1);
    m->type = type;
    m->flags = 0;
    m->codec = 0;
    m->timestamp = timestamp;
    m->stream_id = stream_id;
    m->len = 0;
    m->cap = cap;
    m->wire = NULL;
    m->wire_len = 0;
    m->wire_chunk = 0;
    m->wire_msid = 0;
    return m;
}

struct kb_msg *kb_msg_new_copy(uint8_t type, uint32_t timestamp, uint32_t stream_id,
                               const void *p, uint32_t n)
{
    struct kb_msg *m = kb_msg_new(type, timestamp, stream_id, n);
    if (!m)
        return NULL;
    if (n)
        memcpy(m->data, p, n);
    m->len = n;
    return m;
}

int kb_msg_grow(struct kb_msg **mp, uint32_t cap)
{
    struct kb_msg *m = *mp;
    if (cap <= m->cap)
        return 0;
    struct kb_msg *n = realloc(m, sizeof(*m) + cap);
    if (!n)
        return -ENOMEM;
    n->cap = cap;
    *mp = n;
    return 0;
}

void kb_msg_unref(struct kb_msg *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    free(m->wire);
    free(m);
}

static uint32_t csid_for(uint8_t type)
{
    switch (type) {
    case KB_MSG_AUDIO:
        return KB_CSID_AUDIO;
    case KB_MSG_VIDEO:
        return KB_CSID_VIDEO;
    case KB_MSG_DATA_AMF0:
    case KB_MSG_DATA_AMF3:
        return KB_CSID_DATA;
    default:
        return KB_CSID_COMMAND;
    }
}

int kb_msg_wire(struct kb_msg *m, uint32_t chunk, uint32_t msid)
{
    if (m->wire)
        return m->wire_chunk == chunk && m->wire_msid == msid ? 0 : -EBUSY;
    struct kb_chunk_hdr h = {
        .csid = csid_for(m->type),
        .timestamp = m->timestamp,
        .len = m->len,
        .type = m->type,
        .stream_id = msid,
    };
    size_t need = kb_chunk_encoded_size(&h, chunk);
    uint8_t *w = malloc(need);
    if (!w)
        return -ENOMEM;
    size_t n = kb_chunk_encode(&h, m->data, chunk, w);
    m->wire = w;
    m->wire_len = (uint32_t)n;
    m->wire_chunk = chunk;
    m->wire_msid = msid;
    return 0;
}
