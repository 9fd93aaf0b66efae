/* kebun: AMF0, the encoding of RTMP commands and metadata.
 *
 * Decoding is our own: librtmp's AMF_Decode() recurses once per nesting
 * level with no bound, so a single 1 MB command made of nested objects
 * overflows the stack (checked against Debian's librtmp 2.4: SIGSEGV at a
 * depth of a million). This decoder is iterative over a fixed node pool,
 * bounds depth and node count, allocates nothing and points into the
 * message's bytes (strings are not NUL-terminated).
 *
 * Encoding goes through librtmp's AMF_Encode* helpers, which are
 * bounds-checked against the end of the output buffer.
 */
#ifndef KB_AMF_H
#define KB_AMF_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum kb_amf_type {
    KB_AMF_NUMBER = 0x00,
    KB_AMF_BOOLEAN = 0x01,
    KB_AMF_STRING = 0x02,
    KB_AMF_OBJECT = 0x03,
    KB_AMF_NULL = 0x05,
    KB_AMF_UNDEFINED = 0x06,
    KB_AMF_REFERENCE = 0x07,
    KB_AMF_ECMA_ARRAY = 0x08,
    KB_AMF_OBJECT_END = 0x09,
    KB_AMF_STRICT_ARRAY = 0x0a,
    KB_AMF_DATE = 0x0b,
    KB_AMF_LONG_STRING = 0x0c,
    KB_AMF_UNSUPPORTED = 0x0d,
    KB_AMF_XML = 0x0f,
    KB_AMF_TYPED_OBJECT = 0x10,
};

#define KB_AMF_MAX_NODES 256 ///< values per decoded message
#define KB_AMF_MAX_DEPTH 16  ///< nesting of objects and arrays

/* One decoded value. Containers (object, ECMA array, strict array, typed
 * object) list their members through first_child/next. */
struct kb_amf_node {
    uint8_t type;        ///< enum kb_amf_type (long strings and XML read as strings)
    uint16_t name_len;   ///< property name length (members of objects)
    uint16_t next;       ///< next sibling's index, 0 = none
    uint16_t first_child; ///< first member's index, 0 = none
    uint16_t count;      ///< members
    uint32_t str_len;    ///< string length
    const char *name;    ///< property name, points into the message
    const char *str;     ///< string value, points into the message
    double num;          ///< number, boolean (0/1), date, reference index
};

struct kb_amf_doc {
    uint16_t n;     ///< nodes used; node 0 is the root list
    uint16_t roots; ///< top-level values
    struct kb_amf_node nodes[KB_AMF_MAX_NODES];
};

/* Decode every top-level value of p[0..n). 0, or KB_EAMF when the bytes are
 * malformed, nested deeper than KB_AMF_MAX_DEPTH or need more than
 * KB_AMF_MAX_NODES values. */
int kb_amf_decode(struct kb_amf_doc *doc, const uint8_t *p, size_t n);

/* The i-th top-level value, or NULL. */
const struct kb_amf_node *kb_amf_root(const struct kb_amf_doc *doc, unsigned i);
/* A member of an object by name, or NULL. */
const struct kb_amf_node *kb_amf_prop(const struct kb_amf_doc *doc,
                                      const struct kb_amf_node *obj, const char *name);
/* 1 when node is a string equal to s. */
int kb_amf_str_eq(const struct kb_amf_node *node, const char *s);
/* A number node as uint32 (stream ids). 0, or -1 when it is not a number
 * in 0..2^32-1 (NaN and infinities included). */
int kb_amf_u32(const struct kb_amf_node *node, uint32_t *out);
/* Copy a string node into dst as a C string (truncating to cap-1 bytes).
 * Returns the string's full length, or -1 when node is not a string. */
int kb_amf_str_copy(const struct kb_amf_node *node, char *dst, size_t cap);

/* Read one AMF0 string (type 0x02) at p[*off]; advance *off. 0 or KB_EAMF. */
int kb_amf_read_string(const uint8_t *p, size_t n, size_t *off, const char **s, size_t *len);

/* Writer into a growable buffer. Any failure sticks in `err` and later
 * calls do nothing, so a message is built with a run of calls and one
 * check at the end. */
struct kb_amf_w {
    struct kb_buf *out;
    int err;
};

void kb_amf_w_number(struct kb_amf_w *w, double v);
void kb_amf_w_bool(struct kb_amf_w *w, int v);
void kb_amf_w_string(struct kb_amf_w *w, const char *s);
void kb_amf_w_stringn(struct kb_amf_w *w, const char *s, size_t n);
void kb_amf_w_null(struct kb_amf_w *w);
void kb_amf_w_object_begin(struct kb_amf_w *w);
void kb_amf_w_ecma_begin(struct kb_amf_w *w, uint32_t count);
void kb_amf_w_object_end(struct kb_amf_w *w);
/* A strict array of `count` values; the values follow, with no end marker. */
void kb_amf_w_strict_begin(struct kb_amf_w *w, uint32_t count);
void kb_amf_w_prop_number(struct kb_amf_w *w, const char *name, double v);
void kb_amf_w_prop_bool(struct kb_amf_w *w, const char *name, int v);
void kb_amf_w_prop_string(struct kb_amf_w *w, const char *name, const char *v);
/* A property name alone; the value follows with another call. */
void kb_amf_w_name(struct kb_amf_w *w, const char *name);
/* Raw bytes (an already-encoded value). */
void kb_amf_w_raw(struct kb_amf_w *w, const uint8_t *p, size_t n);

#endif
