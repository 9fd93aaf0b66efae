/* kebun benchmark tools: the player's chunk skimmer.
 *
 * A thousand players each receiving 3 Mbit/s is 3 Gbit/s through one loop
 * thread; assembling every message (what relay/rtmp/chunk.c does for a
 * server, which needs the payloads) would spend the tool's CPU on memcpy
 * and malloc and make the tool, not the server, the limit. This parser
 * walks chunk headers and only counts media payload bytes, keeping the
 * first two (frame type) and last eight (the latency tag). Small non-media
 * messages (control, commands) are kept whole because the client must
 * answer them.
 *
 * Format-3 chunks after an extended timestamp are taken to repeat it: both
 * kebun and nginx-rtmp write it that way (see FACTS.md).
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relay/rtmp/chunk.h"
#include "relay/rtmp/error.h"

enum { SK_BASIC, SK_HEADER, SK_PAYLOAD };

static const uint8_t header_size[4] = {11, 7, 3, 0};

static int skimmed(uint8_t type)
{
    return type == KB_MSG_AUDIO || type == KB_MSG_VIDEO || type == KB_MSG_DATA_AMF0 ||
           type == KB_MSG_DATA_AMF3 || type == KB_MSG_AGGREGATE;
}

void bt_skim_init(struct bt_skim *k)
{
    memset(k, 0, sizeof(*k));
    k->chunk_size = KB_CHUNK_DEFAULT;
    k->state = SK_BASIC;
    k->hdr_need = 1;
}

void bt_skim_free(struct bt_skim *k)
{
    for (unsigned i = 0; i < k->n_cs; i++) {
        kb_msg_unref(k->cs[i].keep);
        k->cs[i].keep = NULL;
    }
}

static struct bt_skim_cs *find_cs(struct bt_skim *k, uint32_t csid)
{
    for (unsigned i = 0; i < k->n_cs; i++)
        if (k->cs[i].csid == csid)
            return &k->cs[i];
    if (k->n_cs >= BT_SKIM_STREAMS)
        return NULL;
    struct bt_skim_cs *c = &k->cs[k->n_cs++];
    memset(c, 0, sizeof(*c));
    c->csid = csid;
    return c;
}

/* The chunk header is complete (message header from hdr[3]). */
static int begin_chunk(struct bt_skim *k)
{
    struct bt_skim_cs *c = k->cur;
    const uint8_t *h = k->hdr + 3;
    uint8_t fmt = k->fmt;
    if (fmt <= 2) {
        if (c->active)
            return KB_ECHUNK; /* a new header inside a message */
        uint32_t field = kb_get_be24(h);
        if (fmt <= 1) {
            c->len = kb_get_be24(h + 3);
            c->type = h[6];
            if (fmt == 0)
                c->msid = kb_get_le32(h + 7);
        }
        c->ext = field == KB_CHUNK_EXT_TS;
        if (c->ext)
            field = kb_get_be32(h + header_size[fmt]);
        c->ts_field = field;
        c->ts = fmt == 0 ? field : c->ts + field;
    } else if (!c->active) {
        if (c->type == 0)
            return KB_ECHUNK; /* format 3 with nothing to inherit */
        c->ts += c->ts_field;
    }
    if (!c->active) {
        c->active = 1;
        c->have = 0;
        c->head[0] = c->head[1] = 0;
        memset(c->tail, 0, sizeof(c->tail));
        if (!skimmed(c->type) && c->len <= BT_SKIM_KEEP) {
            c->keep = kb_msg_new(c->type, c->ts, c->msid, c->len);
            if (!c->keep)
                return -ENOMEM;
        }
    }
    uint32_t left = c->len - c->have;
    k->chunk_left = left < k->chunk_size ? left : k->chunk_size;
    k->state = SK_PAYLOAD;
    return 0;
}

static void take_bytes(struct bt_skim_cs *c, const uint8_t *p, uint32_t n)
{
    if (c->keep) {
        memcpy(c->keep->data + c->have, p, n);
        c->keep->len += n;
        c->have += n;
        return;
    }
    uint32_t from = c->have, to = c->have + n;
    for (uint32_t i = from; i < 2 && i < to; i++)
        c->head[i] = p[i - from];
    uint32_t tstart = c->len > 8 ? c->len - 8 : 0;
    if (to > tstart) {
        uint32_t a = from > tstart ? from : tstart;
        memcpy(c->tail + (a - tstart), p + (a - from), to - a);
    }
    c->have = to;
}

int bt_skim_read(struct bt_skim *k, const uint8_t *p, size_t n, size_t *used,
                 struct bt_skim_msg *out)
{
    size_t pos = 0;
    int err;
    for (;;) {
        if (k->state == SK_PAYLOAD) {
            struct bt_skim_cs *c = k->cur;
            size_t avail = n - pos;
            uint32_t take = avail < k->chunk_left ? (uint32_t)avail : k->chunk_left;
            if (take) {
                take_bytes(c, p + pos, take);
                pos += take;
                k->chunk_left -= take;
            }
            if (k->chunk_left)
                break;
            k->state = SK_BASIC;
            k->hdr_have = 0;
            k->hdr_need = 1;
            if (c->have == c->len) {
                c->active = 0;
                out->type = c->type;
                out->ts = c->ts;
                out->len = c->len;
                out->msid = c->msid;
                memcpy(out->head, c->head, 2);
                memcpy(out->tail, c->tail, 8);
                out->keep = c->keep;
                c->keep = NULL;
                *used = pos;
                return 1;
            }
            continue;
        }
        if (pos == n)
            break;
        size_t want = (size_t)(k->hdr_need - k->hdr_have);
        size_t take = n - pos < want ? n - pos : want;
        memcpy(k->hdr + (k->state == SK_BASIC ? 0 : 3) + k->hdr_have, p + pos, take);
        k->hdr_have += (uint8_t)take;
        pos += take;
        if (k->hdr_have < k->hdr_need)
            break;
        if (k->state == SK_BASIC) {
            if (k->hdr_need == 1) {
                k->fmt = k->hdr[0] >> 6;
                uint8_t low = k->hdr[0] & 0x3f;
                if (low <= 1) {
                    k->hdr_need = low == 0 ? 2 : 3;
                    continue;
                }
            }
            uint32_t csid = k->hdr[0] & 0x3f;
            if (csid == 0)
                csid = 64 + k->hdr[1];
            else if (csid == 1)
                csid = 64 + k->hdr[1] + ((uint32_t)k->hdr[2] << 8);
            k->cur = find_cs(k, csid);
            if (!k->cur) {
                err = KB_ETOOMANY;
                goto fail;
            }
            k->state = SK_HEADER;
            k->hdr_have = 0;
            k->hdr_need = header_size[k->fmt];
            if (k->fmt == 3 && k->cur->ext)
                k->hdr_need = 4; /* the repeated extended timestamp */
            if (k->hdr_need)
                continue;
        } else if (k->fmt <= 2 && k->hdr_need == header_size[k->fmt] &&
                   kb_get_be24(k->hdr + 3) == KB_CHUNK_EXT_TS) {
            k->hdr_need += 4;
            continue;
        }
        if ((err = begin_chunk(k)) < 0)
            goto fail;
    }
    *used = pos;
    return 0;
fail:
    *used = pos;
    return err;
}

int bt_skim_set_chunk_size(struct bt_skim *k, uint32_t size)
{
    if (size < 1 || size > KB_CHUNK_MAX)
        return KB_ECHUNKSIZE;
    k->chunk_size = size;
    return 0;
}
