#include "amf.h"

#include <errno.h>
#include <librtmp/amf.h>
#include <string.h>

#include "error.h"

/* What the decoder is filling at each nesting level. */
enum { K_ROOT, K_OBJECT, K_ECMA, K_STRICT };

struct level {
    uint16_t node;      ///< container node
    uint16_t last;      ///< last member added, 0 = none
    uint8_t kind;
    uint32_t remaining; ///< strict arrays: members still to read
};

static double get_double(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

int kb_amf_decode(struct kb_amf_doc *doc, const uint8_t *p, size_t n)
{
    struct level st[KB_AMF_MAX_DEPTH + 1];
    int depth = 0;
    size_t off = 0;

    memset(&doc->nodes[0], 0, sizeof(doc->nodes[0]));
    doc->nodes[0].type = KB_AMF_STRICT_ARRAY;
    doc->n = 1;
    doc->roots = 0;
    st[0] = (struct level){.node = 0, .last = 0, .kind = K_ROOT};

    for (;;) {
        struct level *lv = &st[depth];
        const char *name = NULL;
        uint16_t name_len = 0;

        if (lv->kind == K_ROOT) {
            if (off == n)
                break;
        } else if (lv->kind == K_STRICT) {
            if (lv->remaining == 0) {
                depth--;
                continue;
            }
            lv->remaining--;
        } else {
            if (n - off < 2) {
                /* Some writers end an ECMA array with the data instead of
                 * an end marker; accept that, nothing else. */
                if (lv->kind == K_ECMA && off == n) {
                    depth--;
                    continue;
                }
                return KB_EAMF;
            }
            name_len = (uint16_t)kb_get_be16(p + off);
            if (name_len == 0 && n - off >= 3 && p[off + 2] == KB_AMF_OBJECT_END) {
                off += 3;
                depth--;
                continue;
            }
            off += 2;
            if (n - off < name_len)
                return KB_EAMF;
            name = (const char *)p + off;
            off += name_len;
        }

        if (off >= n)
            return KB_EAMF;
        if (doc->n >= KB_AMF_MAX_NODES)
            return KB_EAMF;
        uint16_t idx = doc->n++;
        struct kb_amf_node *nd = &doc->nodes[idx];
        memset(nd, 0, sizeof(*nd));
        nd->name = name;
        nd->name_len = name_len;
        if (lv->last)
            doc->nodes[lv->last].next = idx;
        else
            doc->nodes[lv->node].first_child = idx;
        lv->last = idx;
        doc->nodes[lv->node].count++;
        if (lv->kind == K_ROOT)
            doc->roots++;

        uint8_t marker = p[off++];
        size_t left = n - off;
        uint32_t len = 0;
        int push = -1;
        nd->type = marker;
        switch (marker) {
        case KB_AMF_NUMBER:
            if (left < 8)
                return KB_EAMF;
            nd->num = get_double(p + off);
            off += 8;
            break;
        case KB_AMF_BOOLEAN:
            if (left < 1)
                return KB_EAMF;
            nd->num = p[off++] != 0;
            break;
        case KB_AMF_STRING:
        case KB_AMF_TYPED_OBJECT:
            if (left < 2)
                return KB_EAMF;
            len = kb_get_be16(p + off);
            if (left - 2 < len)
                return KB_EAMF;
            nd->str = (const char *)p + off + 2;
            nd->str_len = len;
            off += 2 + len;
            if (marker == KB_AMF_TYPED_OBJECT)
                push = K_OBJECT; /* the class name sits in str */
            break;
        case KB_AMF_LONG_STRING:
        case KB_AMF_XML:
            if (left < 4)
                return KB_EAMF;
            len = kb_get_be32(p + off);
            if (left - 4 < len)
                return KB_EAMF;
            nd->type = KB_AMF_STRING;
            nd->str = (const char *)p + off + 4;
            nd->str_len = len;
            off += 4 + len;
            break;
        case KB_AMF_OBJECT:
            push = K_OBJECT;
            break;
        case KB_AMF_ECMA_ARRAY:
            /* The count is only a hint; members run to the end marker. */
            if (left < 4)
                return KB_EAMF;
            off += 4;
            push = K_ECMA;
            break;
        case KB_AMF_STRICT_ARRAY:
            if (left < 4)
                return KB_EAMF;
            len = kb_get_be32(p + off);
            off += 4;
            /* Each member takes at least one byte: refuse impossible counts
             * before looping over them. */
            if (len > n - off)
                return KB_EAMF;
            push = K_STRICT;
            break;
        case KB_AMF_NULL:
        case KB_AMF_UNDEFINED:
        case KB_AMF_UNSUPPORTED:
            break;
        case KB_AMF_REFERENCE:
            if (left < 2)
                return KB_EAMF;
            nd->num = kb_get_be16(p + off);
            off += 2;
            break;
        case KB_AMF_DATE:
            if (left < 10)
                return KB_EAMF;
            nd->num = get_double(p + off);
            off += 10;
            break;
        default:
            return KB_EAMF;
        }
        if (push >= 0) {
            if (depth >= KB_AMF_MAX_DEPTH)
                return KB_EAMF;
            depth++;
            st[depth] = (struct level){.node = idx, .last = 0, .kind = (uint8_t)push,
                                       .remaining = push == K_STRICT ? len : 0};
        }
    }
    return 0;
}

const struct kb_amf_node *kb_amf_root(const struct kb_amf_doc *doc, unsigned i)
{
    uint16_t idx = doc->nodes[0].first_child;
    while (idx && i--)
        idx = doc->nodes[idx].next;
    return idx ? &doc->nodes[idx] : NULL;
}

const struct kb_amf_node *kb_amf_prop(const struct kb_amf_doc *doc,
                                      const struct kb_amf_node *obj, const char *name)
{
    if (!obj || (obj->type != KB_AMF_OBJECT && obj->type != KB_AMF_ECMA_ARRAY &&
                 obj->type != KB_AMF_TYPED_OBJECT))
        return NULL;
    size_t len = strlen(name);
    for (uint16_t idx = obj->first_child; idx; idx = doc->nodes[idx].next) {
        const struct kb_amf_node *c = &doc->nodes[idx];
        if (c->name_len == len && memcmp(c->name, name, len) == 0)
            return c;
    }
    return NULL;
}

int kb_amf_str_eq(const struct kb_amf_node *node, const char *s)
{
    if (!node || node->type != KB_AMF_STRING)
        return 0;
    size_t len = strlen(s);
    return node->str_len == len && memcmp(node->str, s, len) == 0;
}

int kb_amf_u32(const struct kb_amf_node *node, uint32_t *out)
{
    /* Converting NaN, a negative or a too large double is undefined in C,
     * and the double comes from the peer. */
    if (!node || node->type != KB_AMF_NUMBER || !(node->num >= 0) ||
        !(node->num <= 4294967295.0))
        return -1;
    *out = (uint32_t)node->num;
    return 0;
}

int kb_amf_str_copy(const struct kb_amf_node *node, char *dst, size_t cap)
{
    if (!node || node->type != KB_AMF_STRING || cap == 0)
        return -1;
    size_t n = node->str_len < cap - 1 ? node->str_len : cap - 1;
    memcpy(dst, node->str, n);
    dst[n] = '\0';
    return (int)node->str_len;
}

int kb_amf_read_string(const uint8_t *p, size_t n, size_t *off, const char **s, size_t *len)
{
    size_t o = *off;
    if (o >= n || p[o] != KB_AMF_STRING || n - o < 3)
        return KB_EAMF;
    size_t l = kb_get_be16(p + o + 1);
    if (n - o - 3 < l)
        return KB_EAMF;
    *s = (const char *)p + o + 3;
    *len = l;
    *off = o + 3 + l;
    return 0;
}

/* Writer. librtmp's encoders take the room left and return NULL when it
 * does not suffice; we reserve first so that never happens short of
 * -ENOMEM, and keep the NULL check anyway. */

static char *room(struct kb_amf_w *w, size_t need, char **end)
{
    if (w->err)
        return NULL;
    if ((w->err = kb_buf_reserve(w->out, need)) < 0)
        return NULL;
    *end = (char *)w->out->data + w->out->cap;
    return (char *)w->out->data + w->out->len;
}

static void advance(struct kb_amf_w *w, char *start, char *stop)
{
    if (!stop) {
        w->err = -ENOBUFS;
        return;
    }
    w->out->len += (size_t)(stop - start);
}

/* Property names carry a 16-bit length. */
static int name_fits(struct kb_amf_w *w, const char *name)
{
    if (strlen(name) <= UINT16_MAX)
        return 1;
    w->err = -EINVAL;
    return 0;
}

static AVal aval(const char *s, size_t n)
{
    /* librtmp's AVal is not const-correct; it only reads through it here. */
    return (AVal){.av_val = (char *)s, .av_len = (int)n};
}

void kb_amf_w_number(struct kb_amf_w *w, double v)
{
    char *end, *o = room(w, 9, &end);
    if (o)
        advance(w, o, AMF_EncodeNumber(o, end, v));
}

void kb_amf_w_bool(struct kb_amf_w *w, int v)
{
    char *end, *o = room(w, 2, &end);
    if (o)
        advance(w, o, AMF_EncodeBoolean(o, end, v));
}

void kb_amf_w_stringn(struct kb_amf_w *w, const char *s, size_t n)
{
    if (n > INT32_MAX) {
        w->err = -EINVAL;
        return;
    }
    char *end, *o = room(w, n + 5, &end);
    AVal v = aval(s, n);
    if (o)
        advance(w, o, AMF_EncodeString(o, end, &v));
}

void kb_amf_w_string(struct kb_amf_w *w, const char *s)
{
    kb_amf_w_stringn(w, s, strlen(s));
}

static void put_bytes(struct kb_amf_w *w, const uint8_t *p, size_t n)
{
    if (!w->err)
        w->err = kb_buf_append(w->out, p, n);
}

void kb_amf_w_null(struct kb_amf_w *w)
{
    put_bytes(w, (const uint8_t[]){KB_AMF_NULL}, 1);
}

void kb_amf_w_object_begin(struct kb_amf_w *w)
{
    put_bytes(w, (const uint8_t[]){KB_AMF_OBJECT}, 1);
}

void kb_amf_w_ecma_begin(struct kb_amf_w *w, uint32_t count)
{
    uint8_t b[5] = {KB_AMF_ECMA_ARRAY};
    kb_put_be32(b + 1, count);
    put_bytes(w, b, sizeof(b));
}

void kb_amf_w_strict_begin(struct kb_amf_w *w, uint32_t count)
{
    uint8_t b[5] = {KB_AMF_STRICT_ARRAY};
    kb_put_be32(b + 1, count);
    put_bytes(w, b, sizeof(b));
}

void kb_amf_w_object_end(struct kb_amf_w *w)
{
    put_bytes(w, (const uint8_t[]){0, 0, KB_AMF_OBJECT_END}, 3);
}

void kb_amf_w_name(struct kb_amf_w *w, const char *name)
{
    size_t n = strlen(name);
    if (n > UINT16_MAX) {
        w->err = -EINVAL;
        return;
    }
    uint8_t b[2];
    kb_put_be16(b, (uint32_t)n);
    put_bytes(w, b, 2);
    put_bytes(w, (const uint8_t *)name, n);
}

void kb_amf_w_prop_number(struct kb_amf_w *w, const char *name, double v)
{
    if (!name_fits(w, name))
        return;
    AVal k = aval(name, strlen(name));
    char *end, *o = room(w, (size_t)k.av_len + 11, &end);
    if (o)
        advance(w, o, AMF_EncodeNamedNumber(o, end, &k, v));
}

void kb_amf_w_prop_bool(struct kb_amf_w *w, const char *name, int v)
{
    if (!name_fits(w, name))
        return;
    AVal k = aval(name, strlen(name));
    char *end, *o = room(w, (size_t)k.av_len + 4, &end);
    if (o)
        advance(w, o, AMF_EncodeNamedBoolean(o, end, &k, v));
}

void kb_amf_w_prop_string(struct kb_amf_w *w, const char *name, const char *v)
{
    if (!name_fits(w, name))
        return;
    AVal k = aval(name, strlen(name)), s = aval(v, strlen(v));
    char *end, *o = room(w, (size_t)k.av_len + (size_t)s.av_len + 8, &end);
    if (o)
        advance(w, o, AMF_EncodeNamedString(o, end, &k, &s));
}

void kb_amf_w_raw(struct kb_amf_w *w, const uint8_t *p, size_t n)
{
    put_bytes(w, p, n);
}
