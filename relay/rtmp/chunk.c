#include "chunk.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Reader states: which part of a chunk the next byte belongs to. */
enum {
    RS_BASIC,  ///< basic header (1-3 bytes)
    RS_HEADER, ///< message header (11/7/3/0 bytes) and mandatory extended timestamp
    RS_EXT3,   ///< 4 bytes that may or may not be a format-3 extended timestamp
    RS_PAYLOAD,
};

static const uint8_t msg_header_size[4] = {11, 7, 3, 0};

/* Payload buffers start this small and double as data arrives, so memory
 * follows what the peer actually sent, not what it announced. */
#define FIRST_ALLOC 4096

/* Record which chunk stream is at fault and why, and return err. */
static int fault(struct kb_chunk_reader *r, int err, uint32_t csid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fault(struct kb_chunk_reader *r, int err, uint32_t csid, const char *fmt, ...)
{
    r->bad_csid = csid;
    int n = snprintf(r->why, sizeof(r->why), "chunk stream %u: ", csid);
    if (n > 0 && (size_t)n < sizeof(r->why)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why + n, sizeof(r->why) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return err;
}

static size_t basic_size(uint32_t csid)
{
    return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

static uint8_t *put_basic(uint8_t *o, uint8_t fmt, uint32_t csid)
{
    if (csid < 64) {
        *o++ = (uint8_t)(fmt << 6 | csid);
    } else if (csid < 320) {
        *o++ = (uint8_t)(fmt << 6);
        *o++ = (uint8_t)(csid - 64);
    } else {
        *o++ = (uint8_t)(fmt << 6 | 1);
        *o++ = (uint8_t)((csid - 64) & 0xff);
        *o++ = (uint8_t)((csid - 64) >> 8);
    }
    return o;
}

size_t kb_chunk_encoded_size(const struct kb_chunk_hdr *h, uint32_t chunk)
{
    size_t ext = h->timestamp >= KB_CHUNK_EXT_TS ? 4 : 0;
    size_t extra = h->len ? (h->len - 1) / chunk : 0;
    size_t b = basic_size(h->csid);
    return b + 11 + ext + h->len + extra * (b + ext);
}

size_t kb_chunk_encode(const struct kb_chunk_hdr *h, const uint8_t *payload, uint32_t chunk,
                       uint8_t *out)
{
    uint8_t *o = out;
    int ext = h->timestamp >= KB_CHUNK_EXT_TS;

    o = put_basic(o, 0, h->csid);
    kb_put_be24(o, ext ? KB_CHUNK_EXT_TS : h->timestamp);
    kb_put_be24(o + 3, h->len);
    o[6] = h->type;
    kb_put_le32(o + 7, h->stream_id);
    o += 11;
    if (ext) {
        kb_put_be32(o, h->timestamp);
        o += 4;
    }
    uint32_t off = 0;
    for (;;) {
        uint32_t n = h->len - off < chunk ? h->len - off : chunk;
        memcpy(o, payload + off, n);
        o += n;
        off += n;
        if (off >= h->len)
            break;
        /* Continuation chunks repeat the extended timestamp: ffmpeg, nginx
         * and librtmp all write and expect it. */
        o = put_basic(o, 3, h->csid);
        if (ext) {
            kb_put_be32(o, h->timestamp);
            o += 4;
        }
    }
    return (size_t)(o - out);
}

int kb_chunk_append(struct kb_buf *out, const struct kb_chunk_hdr *h, const uint8_t *payload,
                    uint32_t chunk)
{
    size_t need = kb_chunk_encoded_size(h, chunk);
    int err = kb_buf_reserve(out, need);
    if (err)
        return err;
    out->len += kb_chunk_encode(h, payload, chunk, out->data + out->len);
    return 0;
}

void kb_chunk_reader_init(struct kb_chunk_reader *r, uint32_t max_message)
{
    memset(r, 0, sizeof(*r));
    r->chunk_size = KB_CHUNK_DEFAULT;
    r->max_message = max_message;
    r->state = RS_BASIC;
    r->hdr_need = 1;
}

void kb_chunk_reader_free(struct kb_chunk_reader *r)
{
    for (uint32_t i = 0; i < r->n_streams; i++)
        kb_msg_unref(r->streams[i].msg);
    free(r->streams);
    r->streams = NULL;
    r->n_streams = 0;
    r->cur = NULL;
}

int kb_chunk_reader_set_chunk_size(struct kb_chunk_reader *r, uint32_t size)
{
    /* The top bit must be zero (RTMP 1.0 5.4.1). */
    if (size < 1 || size > KB_CHUNK_MAX) {
        snprintf(r->why, sizeof(r->why), "Set Chunk Size %u is outside 1..%u", size,
                 KB_CHUNK_MAX);
        return KB_ECHUNKSIZE;
    }
    r->chunk_size = size;
    return 0;
}

void kb_chunk_reader_abort(struct kb_chunk_reader *r, uint32_t csid)
{
    for (uint32_t i = 0; i < r->n_streams; i++) {
        struct kb_chunk_stream *s = &r->streams[i];
        if (s->csid != csid || !s->msg)
            continue;
        kb_msg_unref(s->msg);
        /* An abort inside a chunk: the rest of that chunk's payload is
         * still on the wire and is skipped (RS_PAYLOAD with no message). */
        s->msg = NULL;
    }
}

static struct kb_chunk_stream *find_stream(struct kb_chunk_reader *r, uint32_t csid,
                                           int create)
{
    for (uint32_t i = 0; i < r->n_streams; i++)
        if (r->streams[i].csid == csid)
            return &r->streams[i];
    if (!create)
        return NULL;
    if (r->n_streams >= KB_CHUNK_MAX_STREAMS)
        return NULL;
    struct kb_chunk_stream *s = realloc(r->streams, (r->n_streams + 1) * sizeof(*s));
    if (!s)
        return NULL;
    r->streams = s;
    s = &r->streams[r->n_streams++];
    memset(s, 0, sizeof(*s));
    s->csid = csid;
    return s;
}

/* Called when a chunk's header is complete: start or continue a message. */
static int begin_chunk(struct kb_chunk_reader *r, uint32_t ext_ts, int has_ext)
{
    struct kb_chunk_stream *s = r->cur;
    const uint8_t *h = r->hdr;
    uint8_t fmt = r->fmt;

    if (fmt <= 2) {
        if (s->msg) {
            /* A new header in the middle of a message: the peer lost track
             * of its own chunking. */
            return fault(r, KB_ECHUNK, s->csid,
                         "format-%u header before the %u-byte message in progress was "
                         "complete (%u bytes received)",
                         fmt, s->len, s->msg->len);
        }
        uint32_t field = kb_get_be24(h);
        if (fmt <= 1) {
            s->len = kb_get_be24(h + 3);
            s->type = h[6];
            if (fmt == 0)
                s->stream_id = kb_get_le32(h + 7);
        }
        s->ext = field == KB_CHUNK_EXT_TS;
        if (s->ext)
            field = ext_ts;
        s->ts_field = field;
        s->timestamp = fmt == 0 ? field : s->timestamp + field;
    } else if (!s->msg) {
        /* Format 3 starting a new message repeats the previous delta (for a
         * stream whose last header was format 0, its timestamp). */
        if (has_ext)
            s->ts_field = ext_ts;
        s->timestamp += s->ts_field;
    }

    if (!s->msg) {
        if (s->len > r->max_message)
            return fault(r, KB_ETOOBIG, s->csid,
                         "a %u-byte message (type %u) is over max_message_size %u", s->len,
                         s->type, r->max_message);
        uint32_t cap = s->len < FIRST_ALLOC ? s->len : FIRST_ALLOC;
        s->msg = kb_msg_new(s->type, s->timestamp, s->stream_id, cap);
        if (!s->msg)
            return -ENOMEM;
    }
    uint32_t left = s->len - s->msg->len;
    r->chunk_left = left < r->chunk_size ? left : r->chunk_size;
    r->state = RS_PAYLOAD;
    return 0;
}

/* After the basic header: how many message header bytes follow. */
static int basic_done(struct kb_chunk_reader *r)
{
    uint32_t csid = r->hdr[0] & 0x3f;
    if (csid == 0)
        csid = 64 + r->hdr[1];
    else if (csid == 1)
        csid = 64 + r->hdr[1] + ((uint32_t)r->hdr[2] << 8);

    struct kb_chunk_stream *s = find_stream(r, csid, 1);
    if (!s && r->n_streams >= KB_CHUNK_MAX_STREAMS)
        return fault(r, KB_ETOOMANY, csid, "more than %d chunk streams on one connection",
                     KB_CHUNK_MAX_STREAMS);
    if (!s)
        return fault(r, -ENOMEM, csid, "no memory for another chunk stream");
    /* Formats 2 and 3 inherit the length from an earlier header; on a chunk
     * stream with no earlier header there is nothing to inherit. */
    if (r->fmt >= 2 && s->len == 0 && !s->type)
        return fault(r, KB_ECHUNK, csid,
                     "format-%u header on a chunk stream that never had a full header",
                     r->fmt);
    r->cur = s;
    r->hdr_have = 0;
    r->hdr_need = msg_header_size[r->fmt];
    r->state = RS_HEADER;
    return 0;
}

int kb_chunk_read(struct kb_chunk_reader *r, const uint8_t *p, size_t n, size_t *used,
                  struct kb_msg **out)
{
    size_t pos = 0;
    int err;

    *out = NULL;
    for (;;) {
        /* Bytes stashed by an absent format-3 extended timestamp come first. */
        const uint8_t *src;
        size_t avail;
        int from_stash = r->stash_pos < r->stash_len;
        if (from_stash) {
            src = r->stash + r->stash_pos;
            avail = (size_t)(r->stash_len - r->stash_pos);
        } else {
            src = p + pos;
            avail = n - pos;
        }

        if (r->state == RS_PAYLOAD) {
            struct kb_chunk_stream *s = r->cur;
            size_t take = avail < r->chunk_left ? avail : r->chunk_left;
            if (take) {
                if (!s->msg) {
                    /* Aborted mid-chunk: skip the bytes. */
                } else {
                    uint32_t need = s->msg->len + (uint32_t)take;
                    if (need > s->msg->cap) {
                        uint32_t cap = s->msg->cap ? s->msg->cap : FIRST_ALLOC;
                        while (cap < need)
                            cap = cap > s->len / 2 ? s->len : cap * 2;
                        if ((err = kb_msg_grow(&s->msg, cap)) < 0)
                            goto fail;
                    }
                    memcpy(s->msg->data + s->msg->len, src, take);
                    s->msg->len += (uint32_t)take;
                }
                r->chunk_left -= (uint32_t)take;
                if (from_stash)
                    r->stash_pos += (uint8_t)take;
                else
                    pos += take;
            }
            if (r->chunk_left) {
                if (from_stash)
                    continue; /* the rest of the chunk comes from the input */
                goto need_more;
            }
            r->state = RS_BASIC;
            r->hdr_have = 0;
            r->hdr_need = 1;
            if (s->msg && s->msg->len == s->len) {
                *out = s->msg;
                s->msg = NULL;
                *used = pos;
                return 1;
            }
            continue;
        }

        if (!avail)
            goto need_more;

        /* Collect header bytes for the current step. */
        size_t want = r->hdr_need - r->hdr_have;
        size_t take = avail < want ? avail : want;
        /* The basic header lives in hdr[0..3), everything after it from hdr[3]. */
        uint8_t *dst = r->hdr + (r->state == RS_BASIC ? 0 : 3) + r->hdr_have;
        memcpy(dst, src, take);
        r->hdr_have += (uint8_t)take;
        if (from_stash)
            r->stash_pos += (uint8_t)take;
        else
            pos += take;
        if (r->hdr_have < r->hdr_need)
            continue;

        switch (r->state) {
        case RS_BASIC:
            if (r->hdr_need == 1) {
                r->fmt = r->hdr[0] >> 6;
                uint8_t low = r->hdr[0] & 0x3f;
                if (low <= 1) {
                    r->hdr_need = low == 0 ? 2 : 3;
                    continue;
                }
            }
            if ((err = basic_done(r)) < 0)
                goto fail;
            if (r->hdr_need == 0)
                goto header_done;
            continue;
        case RS_HEADER:
            if (r->hdr_need == msg_header_size[r->fmt] && r->fmt <= 2 &&
                kb_get_be24(r->hdr + 3) == KB_CHUNK_EXT_TS) {
                /* A mandatory extended timestamp follows. */
                r->hdr_need += 4;
                continue;
            }
        header_done:
            /* Shift the message header to hdr[0] for begin_chunk(). */
            memmove(r->hdr, r->hdr + 3, r->hdr_have);
            if (r->fmt <= 2) {
                uint32_t ext = 0;
                if (r->hdr_have == msg_header_size[r->fmt] + 4)
                    ext = kb_get_be32(r->hdr + msg_header_size[r->fmt]);
                err = begin_chunk(r, ext, r->hdr_have > msg_header_size[r->fmt]);
            } else if (r->cur->ext) {
                /* Format 3 after an extended timestamp: 4 bytes that are
                 * either the repeated timestamp or already payload. */
                r->state = RS_EXT3;
                r->hdr_have = 0;
                r->hdr_need = 4;
                continue;
            } else {
                err = begin_chunk(r, 0, 0);
            }
            if (err < 0)
                goto fail;
            continue;
        case RS_EXT3: {
            uint32_t v = kb_get_be32(r->hdr + 3);
            struct kb_chunk_stream *s = r->cur;
            /* The repeated field equals the message's extended value; for a
             * new message it repeats the last delta. Anything else is the
             * first payload bytes of a writer that omits the repeat. */
            uint32_t expect = s->ts_field;
            if (v == expect) {
                err = begin_chunk(r, v, 1);
            } else {
                memcpy(r->stash, r->hdr + 3, 4);
                r->stash_len = 4;
                r->stash_pos = 0;
                err = begin_chunk(r, 0, 0);
            }
            if (err < 0)
                goto fail;
            continue;
        }
        }
    }

need_more:
    *used = pos;
    return 0;
fail:
    *used = pos;
    return err;
}
