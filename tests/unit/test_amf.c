/* kebun: unit tests for AMF0 (relay/rtmp/amf.c).
 *
 * Decoder input is written by hand with bytes.h following the AMF0
 * specification (Adobe, "Action Message Format -- AMF 0", 2007); writer
 * output is compared against bytes computed by hand from the same spec.
 * Every input is decoded from a buffer of exactly its size, so under ASan a
 * read past the end fails the test.
 */
#include "relay/rtmp/amf.h"

#include <errno.h>
#include <math.h>
#include <time.h>

#include "relay/rtmp/error.h"
#include "bytes.h"
#include "test.h"

/* ---- writing AMF0 by hand ----------------------------------------------- */

static void a_num(struct kb_buf *b, double v)
{
    put8(b, 0x00);
    putdbl(b, v);
}

static void a_bool(struct kb_buf *b, int v)
{
    put8(b, 0x01);
    put8(b, (uint32_t)v);
}

static void a_strn(struct kb_buf *b, const char *s, size_t n)
{
    put8(b, 0x02);
    put16(b, (uint32_t)n);
    putmem(b, s, n);
}

static void a_str(struct kb_buf *b, const char *s)
{
    a_strn(b, s, strlen(s));
}

static void a_name(struct kb_buf *b, const char *s)
{
    put16(b, (uint32_t)strlen(s));
    putmem(b, s, strlen(s));
}

static void a_end(struct kb_buf *b)
{
    putmem(b, "\x00\x00\x09", 3);
}

/* Decode a copy of exactly n bytes, so ASan sees any over-read. */
static int decode(struct kb_amf_doc *doc, const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    if (n)
        memcpy(copy, p, n);
    int rc = kb_amf_decode(doc, copy, n);
    /* The nodes point into the input: keep the copy alive only when the
     * caller does not look at strings (they use decode_keep for that). */
    free(copy);
    return rc;
}

/* Decode p in place (strings are then readable). */
static int decode_keep(struct kb_amf_doc *doc, const struct kb_buf *b)
{
    return kb_amf_decode(doc, b->data, b->len);
}

static struct kb_amf_doc doc; ///< big (256 nodes): not on the stack

/* ---- values ------------------------------------------------------------- */

static int test_numbers(void)
{
    static const struct {
        uint8_t bytes[9];
        double v;
    } cases[] = {
        {{0x00, 0, 0, 0, 0, 0, 0, 0, 0}, 0.0},
        {{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}, 1.0},
        {{0x00, 0xC0, 0x04, 0, 0, 0, 0, 0, 0}, -2.5},
        {{0x00, 0x40, 0x9E, 0x3C, 0, 0, 0, 0, 0}, 1935.0},
        {{0x00, 0x3F, 0xB9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A}, 0.1},
        {{0x00, 0x7E, 0x37, 0xE4, 0x3C, 0x88, 0x00, 0x75, 0x9C}, 1e300},
        {{0x00, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0}, INFINITY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ASSERT_EQ(decode(&doc, cases[i].bytes, 9), 0);
        ASSERT_EQ(doc.roots, 1);
        ASSERT_EQ(doc.n, 2);
        const struct kb_amf_node *v = kb_amf_root(&doc, 0);
        ASSERT_NOT_NULL(v);
        ASSERT_EQ(v->type, KB_AMF_NUMBER);
        ASSERT_DBL_EQ(v->num, cases[i].v);
        ASSERT_EQ(v->name_len, 0);
    }
    /* Negative zero keeps its sign; NaN stays NaN. */
    const uint8_t negzero[9] = {0x00, 0x80};
    ASSERT_EQ(decode(&doc, negzero, 9), 0);
    ASSERT_TRUE(signbit(kb_amf_root(&doc, 0)->num));
    const uint8_t nan[9] = {0x00, 0x7F, 0xF8};
    ASSERT_EQ(decode(&doc, nan, 9), 0);
    ASSERT_TRUE(isnan(kb_amf_root(&doc, 0)->num));
    /* Several roots in a row. */
    struct kb_buf b = {0};
    a_num(&b, 1);
    a_num(&b, 2);
    a_num(&b, 3);
    ASSERT_EQ(decode(&doc, b.data, b.len), 0);
    ASSERT_EQ(doc.roots, 3);
    for (unsigned i = 0; i < 3; i++)
        ASSERT_DBL_EQ(kb_amf_root(&doc, i)->num, i + 1.0);
    ASSERT_NULL(kb_amf_root(&doc, 3));
    kb_buf_free(&b);
    return 0;
}

static int test_booleans(void)
{
    const uint8_t in[] = {0x01, 0x00, 0x01, 0x01, 0x01, 0xFF};
    ASSERT_EQ(decode(&doc, in, sizeof(in)), 0);
    ASSERT_EQ(doc.roots, 3);
    ASSERT_EQ(kb_amf_root(&doc, 0)->type, KB_AMF_BOOLEAN);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 0)->num, 0);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 1)->num, 1);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 2)->num, 1); /* any nonzero byte is true */
    return 0;
}

static int test_strings(void)
{
    struct kb_buf b = {0};
    a_str(&b, "");
    a_str(&b, "hello");
    a_strn(&b, "a\0b", 3);
    char *big = malloc(65535);
    ASSERT_NOT_NULL(big);
    memset(big, 'x', 65535);
    a_strn(&b, big, 65535);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 4);
    const struct kb_amf_node *s0 = kb_amf_root(&doc, 0), *s1 = kb_amf_root(&doc, 1),
                             *s2 = kb_amf_root(&doc, 2), *s3 = kb_amf_root(&doc, 3);
    ASSERT_EQ(s0->type, KB_AMF_STRING);
    ASSERT_EQ(s0->str_len, 0);
    ASSERT_EQ(s1->type, KB_AMF_STRING);
    ASSERT_MEM_EQ(s1->str, s1->str_len, "hello", 5);
    /* Strings point into the input. */
    ASSERT_TRUE((const uint8_t *)s1->str == b.data + 3 + 3);
    ASSERT_MEM_EQ(s2->str, s2->str_len, "a\0b", 3);
    ASSERT_EQ(s3->str_len, 65535);
    ASSERT_MEM_EQ(s3->str, s3->str_len, big, 65535);
    kb_buf_free(&b);

    /* Long strings and XML documents read as strings. */
    put8(&b, 0x0C);
    put32(&b, 5);
    putmem(&b, "hello", 5);
    put8(&b, 0x0C);
    put32(&b, 0);
    put8(&b, 0x0F);
    put32(&b, 7);
    putmem(&b, "<a>b</a", 7);
    put8(&b, 0x0C);
    put32(&b, 70000);
    char *big2 = malloc(70000);
    ASSERT_NOT_NULL(big2);
    memset(big2, 'y', 70000);
    putmem(&b, big2, 70000);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 4);
    ASSERT_EQ(kb_amf_root(&doc, 0)->type, KB_AMF_STRING);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_root(&doc, 0), "hello"));
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_root(&doc, 1), ""));
    ASSERT_EQ(kb_amf_root(&doc, 2)->type, KB_AMF_STRING);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_root(&doc, 2), "<a>b</a"));
    ASSERT_EQ(kb_amf_root(&doc, 3)->str_len, 70000);
    ASSERT_MEM_EQ(kb_amf_root(&doc, 3)->str, 70000, big2, 70000);
    kb_buf_free(&b);

    /* Lengths beyond the data. */
    const uint8_t shortstr[] = {0x02, 0x00, 0x06, 'h', 'e', 'l', 'l', 'o'};
    ASSERT_EQ(decode(&doc, shortstr, sizeof(shortstr)), KB_EAMF);
    const uint8_t shortlong[] = {0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 'h'};
    ASSERT_EQ(decode(&doc, shortlong, sizeof(shortlong)), KB_EAMF);
    free(big);
    free(big2);
    return 0;
}

static int test_object(void)
{
    struct kb_buf b = {0};
    put8(&b, 0x03);
    a_name(&b, "app");
    a_str(&b, "live");
    a_name(&b, "n");
    a_num(&b, 1);
    a_name(&b, "ok");
    a_bool(&b, 1);
    a_name(&b, ""); /* an empty name followed by a value, not the end */
    put8(&b, 0x05);
    a_end(&b);
    a_str(&b, "after");
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 2);
    const struct kb_amf_node *o = kb_amf_root(&doc, 0);
    ASSERT_EQ(o->type, KB_AMF_OBJECT);
    ASSERT_EQ(o->count, 4);
    const struct kb_amf_node *app = kb_amf_prop(&doc, o, "app");
    ASSERT_NOT_NULL(app);
    ASSERT_MEM_EQ(app->name, app->name_len, "app", 3);
    ASSERT_TRUE(kb_amf_str_eq(app, "live"));
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "n")->num, 1);
    ASSERT_EQ(kb_amf_prop(&doc, o, "ok")->type, KB_AMF_BOOLEAN);
    ASSERT_EQ(kb_amf_prop(&doc, o, "")->type, KB_AMF_NULL);
    ASSERT_NULL(kb_amf_prop(&doc, o, "ap"));
    ASSERT_NULL(kb_amf_prop(&doc, o, "appx"));
    ASSERT_NULL(kb_amf_prop(&doc, o, "missing"));
    /* Members in order through first_child / next. */
    const struct kb_amf_node *m = &doc.nodes[o->first_child];
    ASSERT_TRUE(m == app);
    m = &doc.nodes[m->next];
    ASSERT_MEM_EQ(m->name, m->name_len, "n", 1);
    m = &doc.nodes[m->next];
    m = &doc.nodes[m->next];
    ASSERT_EQ(m->next, 0);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_root(&doc, 1), "after"));
    kb_buf_free(&b);

    /* An empty object. */
    const uint8_t empty[] = {0x03, 0x00, 0x00, 0x09};
    ASSERT_EQ(decode(&doc, empty, sizeof(empty)), 0);
    ASSERT_EQ(doc.roots, 1);
    ASSERT_EQ(kb_amf_root(&doc, 0)->count, 0);
    ASSERT_EQ(kb_amf_root(&doc, 0)->first_child, 0);
    return 0;
}

static int test_nested_objects(void)
{
    struct kb_buf b = {0};
    /* {a: {b: {c: "x"}, e: 5}, d: 2} null */
    put8(&b, 0x03);
    a_name(&b, "a");
    put8(&b, 0x03);
    a_name(&b, "b");
    put8(&b, 0x03);
    a_name(&b, "c");
    a_str(&b, "x");
    a_end(&b);
    a_name(&b, "e");
    a_num(&b, 5);
    a_end(&b);
    a_name(&b, "d");
    a_num(&b, 2);
    a_end(&b);
    put8(&b, 0x05);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 2);
    const struct kb_amf_node *o = kb_amf_root(&doc, 0);
    ASSERT_EQ(o->count, 2);
    const struct kb_amf_node *a = kb_amf_prop(&doc, o, "a");
    ASSERT_EQ(a->type, KB_AMF_OBJECT);
    ASSERT_EQ(a->count, 2);
    const struct kb_amf_node *bb = kb_amf_prop(&doc, a, "b");
    ASSERT_EQ(bb->count, 1);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&doc, bb, "c"), "x"));
    ASSERT_DBL_EQ(kb_amf_prop(&doc, a, "e")->num, 5);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "d")->num, 2);
    /* Members of inner objects are not members of outer ones. */
    ASSERT_NULL(kb_amf_prop(&doc, o, "c"));
    ASSERT_NULL(kb_amf_prop(&doc, o, "e"));
    ASSERT_EQ(kb_amf_root(&doc, 1)->type, KB_AMF_NULL);
    ASSERT_EQ(doc.n, 1 + 7);
    kb_buf_free(&b);
    return 0;
}

static int test_ecma_array(void)
{
    struct kb_buf b = {0};
    /* With the end marker, followed by another value. */
    put8(&b, 0x08);
    put32(&b, 2);
    a_name(&b, "duration");
    a_num(&b, 0);
    a_name(&b, "encoder");
    a_str(&b, "obs");
    a_end(&b);
    a_num(&b, 7);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 2);
    const struct kb_amf_node *e = kb_amf_root(&doc, 0);
    ASSERT_EQ(e->type, KB_AMF_ECMA_ARRAY);
    ASSERT_EQ(e->count, 2);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&doc, e, "encoder"), "obs"));
    ASSERT_DBL_EQ(kb_amf_root(&doc, 1)->num, 7);
    kb_buf_free(&b);

    /* The count is a hint: 0 announced, 2 present. */
    put8(&b, 0x08);
    put32(&b, 0);
    a_name(&b, "x");
    a_num(&b, 1);
    a_name(&b, "y");
    a_num(&b, 2);
    a_end(&b);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(kb_amf_root(&doc, 0)->count, 2);
    kb_buf_free(&b);

    /* Without the end marker at the end of the data (some encoders'
     * onMetaData), after @setDataFrame and onMetaData strings. */
    a_str(&b, "@setDataFrame");
    a_str(&b, "onMetaData");
    put8(&b, 0x08);
    put32(&b, 2);
    a_name(&b, "width");
    a_num(&b, 1920);
    a_name(&b, "height");
    a_num(&b, 1080);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 3);
    e = kb_amf_root(&doc, 2);
    ASSERT_EQ(e->count, 2);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, e, "height")->num, 1080);
    kb_buf_free(&b);

    /* An empty ECMA array right at the end, without marker. */
    const uint8_t bare[] = {0x08, 0, 0, 0, 0};
    ASSERT_EQ(decode(&doc, bare, sizeof(bare)), 0);
    ASSERT_EQ(doc.roots, 1);
    /* Objects get no such leniency. */
    const uint8_t obj[] = {0x03, 0x00, 0x01, 'a', 0x05};
    ASSERT_EQ(decode(&doc, obj, sizeof(obj)), KB_EAMF);
    /* Nor does an ECMA array cut inside its end marker. */
    const uint8_t cut[] = {0x08, 0, 0, 0, 0, 0x00, 0x00};
    ASSERT_EQ(decode(&doc, cut, sizeof(cut)), KB_EAMF);
    const uint8_t shortcount[] = {0x08, 0, 0, 0};
    ASSERT_EQ(decode(&doc, shortcount, sizeof(shortcount)), KB_EAMF);
    return 0;
}

static int test_strict_array(void)
{
    struct kb_buf b = {0};
    put8(&b, 0x0A);
    put32(&b, 3);
    a_num(&b, 1);
    a_str(&b, "hvc1");
    put8(&b, 0x05);
    put8(&b, 0x0A); /* empty */
    put32(&b, 0);
    a_num(&b, 9);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 3);
    const struct kb_amf_node *a = kb_amf_root(&doc, 0);
    ASSERT_EQ(a->type, KB_AMF_STRICT_ARRAY);
    ASSERT_EQ(a->count, 3);
    const struct kb_amf_node *m = &doc.nodes[a->first_child];
    ASSERT_DBL_EQ(m->num, 1);
    ASSERT_EQ(m->name_len, 0);
    m = &doc.nodes[m->next];
    ASSERT_TRUE(kb_amf_str_eq(m, "hvc1"));
    m = &doc.nodes[m->next];
    ASSERT_EQ(m->type, KB_AMF_NULL);
    ASSERT_EQ(m->next, 0);
    ASSERT_EQ(kb_amf_root(&doc, 1)->count, 0);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 2)->num, 9);
    /* Strict arrays have no named members. */
    ASSERT_NULL(kb_amf_prop(&doc, a, ""));
    kb_buf_free(&b);

    /* Inside an object, with an object inside. */
    put8(&b, 0x03);
    a_name(&b, "fourCcList");
    put8(&b, 0x0A);
    put32(&b, 2);
    a_str(&b, "av01");
    put8(&b, 0x03);
    a_name(&b, "k");
    a_bool(&b, 0);
    a_end(&b);
    a_name(&b, "z");
    a_num(&b, 3);
    a_end(&b);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    const struct kb_amf_node *o = kb_amf_root(&doc, 0);
    ASSERT_EQ(o->count, 2);
    a = kb_amf_prop(&doc, o, "fourCcList");
    ASSERT_EQ(a->count, 2);
    ASSERT_TRUE(kb_amf_str_eq(&doc.nodes[a->first_child], "av01"));
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "z")->num, 3);
    kb_buf_free(&b);

    /* Fewer members than announced. */
    const uint8_t few[] = {0x0A, 0, 0, 0, 2, 0x05};
    ASSERT_EQ(decode(&doc, few, sizeof(few)), KB_EAMF);
    return 0;
}

static int test_null_undefined_and_friends(void)
{
    const uint8_t in[] = {0x05, 0x06, 0x0D, 0x07, 0x00, 0x05};
    ASSERT_EQ(decode(&doc, in, sizeof(in)), 0);
    ASSERT_EQ(doc.roots, 4);
    ASSERT_EQ(kb_amf_root(&doc, 0)->type, KB_AMF_NULL);
    ASSERT_EQ(kb_amf_root(&doc, 1)->type, KB_AMF_UNDEFINED);
    ASSERT_EQ(kb_amf_root(&doc, 2)->type, KB_AMF_UNSUPPORTED);
    ASSERT_EQ(kb_amf_root(&doc, 3)->type, KB_AMF_REFERENCE);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 3)->num, 5);
    const uint8_t shortref[] = {0x07, 0x00};
    ASSERT_EQ(decode(&doc, shortref, sizeof(shortref)), KB_EAMF);
    return 0;
}

static int test_date(void)
{
    /* 0x0B, a double of ms since the epoch, a 16-bit time zone (ignored). */
    struct kb_buf b = {0};
    put8(&b, 0x0B);
    putdbl(&b, 1700000000000.0);
    put16(&b, 0xFFC4); /* -60 minutes */
    a_num(&b, 1);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 2);
    ASSERT_EQ(kb_amf_root(&doc, 0)->type, KB_AMF_DATE);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 0)->num, 1700000000000.0);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 1)->num, 1);
    /* Without the time zone. */
    ASSERT_EQ(decode(&doc, b.data, 9), KB_EAMF);
    ASSERT_EQ(decode(&doc, b.data, 10), KB_EAMF);
    ASSERT_EQ(decode(&doc, b.data, 11), 0);
    kb_buf_free(&b);
    return 0;
}

static int test_typed_object(void)
{
    struct kb_buf b = {0};
    put8(&b, 0x10);
    put16(&b, 3);
    putmem(&b, "Foo", 3);
    a_name(&b, "x");
    a_num(&b, 1);
    a_name(&b, "y");
    a_str(&b, "z");
    a_end(&b);
    put8(&b, 0x05);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 2);
    const struct kb_amf_node *t = kb_amf_root(&doc, 0);
    ASSERT_EQ(t->type, KB_AMF_TYPED_OBJECT);
    ASSERT_MEM_EQ(t->str, t->str_len, "Foo", 3);
    ASSERT_EQ(t->count, 2);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, t, "x")->num, 1);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&doc, t, "y"), "z"));
    /* The class name is not a string value. */
    ASSERT_EQ(kb_amf_str_eq(t, "Foo"), 0);
    ASSERT_EQ(kb_amf_root(&doc, 1)->type, KB_AMF_NULL);
    kb_buf_free(&b);
    const uint8_t cut[] = {0x10, 0x00, 0x05, 'F', 'o'};
    ASSERT_EQ(decode(&doc, cut, sizeof(cut)), KB_EAMF);
    return 0;
}

static int test_empty_input(void)
{
    static const uint8_t nothing[1];
    ASSERT_EQ(kb_amf_decode(&doc, nothing, 0), 0);
    ASSERT_EQ(doc.roots, 0);
    ASSERT_NULL(kb_amf_root(&doc, 0));
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static int test_prop_and_root(void)
{
    struct kb_buf b = {0};
    put8(&b, 0x03);
    a_name(&b, "k");
    a_num(&b, 1);
    a_name(&b, "k"); /* duplicate: the first wins */
    a_num(&b, 2);
    a_end(&b);
    a_str(&b, "s");
    put8(&b, 0x08);
    put32(&b, 1);
    a_name(&b, "e");
    a_num(&b, 3);
    a_end(&b);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    const struct kb_amf_node *o = kb_amf_root(&doc, 0);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "k")->num, 1);
    ASSERT_NULL(kb_amf_prop(&doc, NULL, "k"));
    ASSERT_NULL(kb_amf_prop(&doc, kb_amf_root(&doc, 1), "k")); /* a string */
    ASSERT_DBL_EQ(kb_amf_prop(&doc, kb_amf_root(&doc, 2), "e")->num, 3);
    ASSERT_NULL(kb_amf_root(&doc, 3));
    ASSERT_NULL(kb_amf_root(&doc, 1000));
    kb_buf_free(&b);
    return 0;
}

static int test_str_eq_and_copy(void)
{
    struct kb_buf b = {0};
    a_str(&b, "hello");
    a_num(&b, 1);
    a_strn(&b, "a\0b", 3);
    a_str(&b, "");
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    const struct kb_amf_node *s = kb_amf_root(&doc, 0), *n = kb_amf_root(&doc, 1),
                             *z = kb_amf_root(&doc, 2), *e = kb_amf_root(&doc, 3);
    ASSERT_EQ(kb_amf_str_eq(s, "hello"), 1);
    ASSERT_EQ(kb_amf_str_eq(s, "hell"), 0);
    ASSERT_EQ(kb_amf_str_eq(s, "hello!"), 0);
    ASSERT_EQ(kb_amf_str_eq(s, "Hello"), 0);
    ASSERT_EQ(kb_amf_str_eq(n, "1"), 0);
    ASSERT_EQ(kb_amf_str_eq(NULL, "x"), 0);
    ASSERT_EQ(kb_amf_str_eq(z, "a"), 0); /* embedded NUL: not equal to "a" */
    ASSERT_EQ(kb_amf_str_eq(e, ""), 1);

    char buf[16];
    memset(buf, 'Z', sizeof(buf));
    ASSERT_EQ(kb_amf_str_copy(s, buf, sizeof(buf)), 5);
    ASSERT_STR_EQ(buf, "hello");
    memset(buf, 'Z', sizeof(buf));
    ASSERT_EQ(kb_amf_str_copy(s, buf, 6), 5); /* exactly fits */
    ASSERT_STR_EQ(buf, "hello");
    memset(buf, 'Z', sizeof(buf));
    ASSERT_EQ(kb_amf_str_copy(s, buf, 4), 5); /* truncated, full length returned */
    ASSERT_STR_EQ(buf, "hel");
    ASSERT_EQ(buf[4], 'Z'); /* nothing written past cap */
    memset(buf, 'Z', sizeof(buf));
    ASSERT_EQ(kb_amf_str_copy(s, buf, 1), 5);
    ASSERT_EQ(buf[0], '\0');
    ASSERT_EQ(buf[1], 'Z');
    memset(buf, 'Z', sizeof(buf));
    ASSERT_EQ(kb_amf_str_copy(s, buf, 0), -1);
    ASSERT_EQ(buf[0], 'Z');
    ASSERT_EQ(kb_amf_str_copy(n, buf, sizeof(buf)), -1);
    ASSERT_EQ(kb_amf_str_copy(NULL, buf, sizeof(buf)), -1);
    ASSERT_EQ(kb_amf_str_copy(e, buf, sizeof(buf)), 0);
    ASSERT_STR_EQ(buf, "");
    kb_buf_free(&b);
    return 0;
}

static int test_read_string(void)
{
    struct kb_buf b = {0};
    a_str(&b, "onMetaData");
    a_num(&b, 1);
    const char *s = NULL;
    size_t len = 0, off = 0;
    ASSERT_EQ(kb_amf_read_string(b.data, b.len, &off, &s, &len), 0);
    ASSERT_EQ(off, 13);
    ASSERT_MEM_EQ(s, len, "onMetaData", 10);
    /* Not a string: nothing moves. */
    ASSERT_EQ(kb_amf_read_string(b.data, b.len, &off, &s, &len), KB_EAMF);
    ASSERT_EQ(off, 13);
    /* At the end, and truncated. */
    off = b.len;
    ASSERT_EQ(kb_amf_read_string(b.data, b.len, &off, &s, &len), KB_EAMF);
    for (size_t n = 0; n < 13; n++) {
        off = 0;
        uint8_t *cut = malloc(n ? n : 1);
        ASSERT_NOT_NULL(cut);
        memcpy(cut, b.data, n);
        ASSERT_EQ(kb_amf_read_string(cut, n, &off, &s, &len), KB_EAMF);
        ASSERT_EQ(off, 0);
        free(cut);
    }
    kb_buf_free(&b);
    return 0;
}

/* ---- errors and limits -------------------------------------------------- */

/* A connect command as OBS/ffmpeg send it, with one of each value type
 * appended. bounds[] gets every length at which a prefix is itself a
 * complete document. */
static void build_connect(struct kb_buf *b, size_t *bounds, size_t *nb)
{
    *nb = 0;
    bounds[(*nb)++] = 0;
    a_str(b, "connect");
    bounds[(*nb)++] = b->len;
    a_num(b, 1);
    bounds[(*nb)++] = b->len;
    put8(b, 0x03);
    a_name(b, "app");
    a_str(b, "live");
    a_name(b, "type");
    a_str(b, "nonprivate");
    a_name(b, "flashVer");
    a_str(b, "FMLE/3.0 (compatible; FMSc/1.0)");
    a_name(b, "swfUrl");
    a_str(b, "rtmp://localhost/live");
    a_name(b, "tcUrl");
    a_str(b, "rtmp://localhost/live");
    a_name(b, "fpad");
    a_bool(b, 0);
    a_name(b, "capabilities");
    a_num(b, 15);
    a_name(b, "audioCodecs");
    a_num(b, 3191);
    a_name(b, "videoCodecs");
    a_num(b, 252);
    a_name(b, "videoFunction");
    a_num(b, 1);
    a_name(b, "objectEncoding");
    a_num(b, 0);
    a_name(b, "fourCcList");
    put8(b, 0x0A);
    put32(b, 3);
    a_str(b, "av01");
    a_str(b, "vp09");
    a_str(b, "hvc1");
    a_name(b, "nested");
    put8(b, 0x03);
    a_name(b, "deep");
    put8(b, 0x10);
    put16(b, 2);
    putmem(b, "Cl", 2);
    a_name(b, "u");
    put8(b, 0x06);
    a_end(b);
    a_end(b);
    a_end(b);
    bounds[(*nb)++] = b->len;
    put8(b, 0x05);
    bounds[(*nb)++] = b->len;
    put8(b, 0x0B);
    putdbl(b, 1.5);
    put16(b, 0);
    bounds[(*nb)++] = b->len;
    put8(b, 0x0C);
    put32(b, 3);
    putmem(b, "abc", 3);
    bounds[(*nb)++] = b->len;
    put8(b, 0x07);
    put16(b, 1);
    bounds[(*nb)++] = b->len;
    /* Last: an ECMA array, which may end with the data. */
    put8(b, 0x08);
    put32(b, 2);
    bounds[(*nb)++] = b->len;
    a_name(b, "a");
    a_num(b, 1);
    bounds[(*nb)++] = b->len;
    a_name(b, "b");
    a_str(b, "x");
    bounds[(*nb)++] = b->len;
    a_end(b);
    bounds[(*nb)++] = b->len;
}

static int test_truncated_everywhere(void)
{
    struct kb_buf b = {0};
    size_t bounds[32], nb;
    build_connect(&b, bounds, &nb);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(doc.roots, 8);
    const struct kb_amf_node *o = kb_amf_root(&doc, 2);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&doc, o, "tcUrl"), "rtmp://localhost/live"));
    ASSERT_EQ(kb_amf_prop(&doc, o, "fourCcList")->count, 3);
    const struct kb_amf_node *deep = kb_amf_prop(&doc, kb_amf_prop(&doc, o, "nested"), "deep");
    ASSERT_EQ(deep->type, KB_AMF_TYPED_OBJECT);
    ASSERT_EQ(kb_amf_prop(&doc, deep, "u")->type, KB_AMF_UNDEFINED);

    for (size_t n = 0; n < b.len; n++) {
        int rc = decode(&doc, b.data, n);
        int complete = 0;
        for (size_t i = 0; i < nb; i++)
            complete |= bounds[i] == n;
        if (rc != (complete ? 0 : KB_EAMF)) {
            fprintf(stderr, "prefix of %zu of %zu bytes: rc %d, want %d\n", n, b.len, rc,
                    complete ? 0 : KB_EAMF);
            return 1;
        }
    }
    /* Every suffix too (starting inside values): never a crash, and either
     * an error or a clean document. */
    for (size_t n = 1; n < b.len; n++) {
        int rc = decode(&doc, b.data + n, b.len - n);
        ASSERT_TRUE(rc == 0 || rc == KB_EAMF);
    }
    kb_buf_free(&b);
    return 0;
}

/* depth containers of the given opening, each the only member of the one
 * outside it, closed properly. */
static void nest(struct kb_buf *b, int depth, int kind)
{
    for (int i = 0; i < depth; i++) {
        if (i > 0 && kind != 0x0A) /* strict array members have no name */
            a_name(b, "a");
        switch (kind) {
        case 0x03:
            put8(b, 0x03);
            break;
        case 0x08:
            put8(b, 0x08);
            put32(b, 1);
            break;
        case 0x0A:
            put8(b, 0x0A);
            put32(b, i == depth - 1 ? 0 : 1);
            break;
        case 0x10:
            put8(b, 0x10);
            put16(b, 1);
            put8(b, 'T');
            break;
        }
    }
    if (kind != 0x0A)
        for (int i = 0; i < depth; i++)
            a_end(b);
}

static int test_depth_limit(void)
{
    static const int kinds[] = {0x03, 0x08, 0x0A, 0x10};
    for (size_t k = 0; k < 4; k++) {
        struct kb_buf b = {0};
        nest(&b, KB_AMF_MAX_DEPTH, kinds[k]);
        int rc = decode(&doc, b.data, b.len);
        if (rc != 0) {
            fprintf(stderr, "depth %d of 0x%02x: rc %d, want 0\n", KB_AMF_MAX_DEPTH, kinds[k], rc);
            return 1;
        }
        ASSERT_EQ(doc.n, 1 + KB_AMF_MAX_DEPTH);
        kb_buf_free(&b);
        nest(&b, KB_AMF_MAX_DEPTH + 1, kinds[k]);
        rc = decode(&doc, b.data, b.len);
        if (rc != KB_EAMF) {
            fprintf(stderr, "depth %d of 0x%02x: rc %d, want KB_EAMF\n", KB_AMF_MAX_DEPTH + 1,
                    kinds[k], rc);
            return 1;
        }
        kb_buf_free(&b);
    }
    /* Depth is per path, not total: many siblings at the limit are fine. */
    struct kb_buf b = {0};
    for (int i = 0; i < 5; i++)
        nest(&b, KB_AMF_MAX_DEPTH, 0x03);
    ASSERT_EQ(decode(&doc, b.data, b.len), 0);
    ASSERT_EQ(doc.roots, 5);
    kb_buf_free(&b);
    return 0;
}

static int test_node_limit(void)
{
    /* Node 0 is the root list: 255 values fit, the 256th does not. */
    uint8_t nulls[KB_AMF_MAX_NODES];
    memset(nulls, 0x05, sizeof(nulls));
    ASSERT_EQ(decode(&doc, nulls, KB_AMF_MAX_NODES - 1), 0);
    ASSERT_EQ(doc.roots, KB_AMF_MAX_NODES - 1);
    ASSERT_EQ(doc.n, KB_AMF_MAX_NODES);
    ASSERT_NOT_NULL(kb_amf_root(&doc, KB_AMF_MAX_NODES - 2));
    ASSERT_EQ(decode(&doc, nulls, KB_AMF_MAX_NODES), KB_EAMF);

    /* Inside an object too. */
    struct kb_buf b = {0};
    put8(&b, 0x03);
    for (int i = 0; i < KB_AMF_MAX_NODES - 2; i++) {
        a_name(&b, "k");
        put8(&b, 0x05);
    }
    a_end(&b);
    ASSERT_EQ(decode_keep(&doc, &b), 0);
    ASSERT_EQ(kb_amf_root(&doc, 0)->count, KB_AMF_MAX_NODES - 2);
    kb_buf_free(&b);
    put8(&b, 0x03);
    for (int i = 0; i < KB_AMF_MAX_NODES - 1; i++) {
        a_name(&b, "k");
        put8(&b, 0x05);
    }
    a_end(&b);
    ASSERT_EQ(decode_keep(&doc, &b), KB_EAMF);
    kb_buf_free(&b);
    /* A strict array announcing many small members. */
    put8(&b, 0x0A);
    put32(&b, 100000);
    for (int i = 0; i < 100000; i++)
        put8(&b, 0x05);
    ASSERT_EQ(decode_keep(&doc, &b), KB_EAMF);
    kb_buf_free(&b);
    return 0;
}

static int test_strict_array_absurd_count(void)
{
    const uint8_t huge[] = {0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05};
    ASSERT_EQ(decode(&doc, huge, sizeof(huge)), KB_EAMF);
    const uint8_t big[] = {0x0A, 0x7F, 0xFF, 0xFF, 0xFF};
    ASSERT_EQ(decode(&doc, big, sizeof(big)), KB_EAMF);
    const uint8_t nocount[] = {0x0A, 0x00, 0x00};
    ASSERT_EQ(decode(&doc, nocount, sizeof(nocount)), KB_EAMF);
    return 0;
}

static int test_bad_markers(void)
{
    /* 0x04 movieclip, 0x0E recordset (reserved), 0x11 AMF3 switch, and
     * values past the defined range. 0x09 is only valid after an empty
     * property name. */
    static const uint8_t bad[] = {0x04, 0x09, 0x0E, 0x11, 0x12, 0x20, 0x7F, 0xFF};
    for (size_t i = 0; i < sizeof(bad); i++) {
        uint8_t alone[1] = {bad[i]};
        ASSERT_EQ(decode(&doc, alone, 1), KB_EAMF);
        /* After a good value, inside an object, inside a strict array. */
        uint8_t after[2] = {0x05, bad[i]};
        ASSERT_EQ(decode(&doc, after, 2), KB_EAMF);
        uint8_t inobj[8] = {0x03, 0x00, 0x01, 'k', bad[i], 0x00, 0x00, 0x09};
        ASSERT_EQ(decode(&doc, inobj, 8), KB_EAMF);
        uint8_t inarr[6] = {0x0A, 0, 0, 0, 1, bad[i]};
        ASSERT_EQ(decode(&doc, inarr, 6), KB_EAMF);
    }
    /* An AMF3 value as a whole command (what a client with objectEncoding
     * 3 might send): 0x11 then AMF3 bytes. */
    const uint8_t amf3[] = {0x11, 0x06, 0x0F, 'c', 'o', 'n', 'n', 'e', 'c', 't'};
    ASSERT_EQ(decode(&doc, amf3, sizeof(amf3)), KB_EAMF);
    return 0;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The input that overflows librtmp's recursive AMF_Decode: a megabyte of
 * nested objects. Ours must refuse it at once. */
static int test_nested_bomb(void)
{
    const size_t size = 1 << 20;
    uint8_t *p = malloc(size);
    ASSERT_NOT_NULL(p);
    static const char *const patterns[] = {
        "\x03\x00\x01\x61",                 /* {a: {a: {a: ... */
        "\x03",                             /* 03 03 03 ...: names of length 0x0303 */
        "\x0A\x00\x00\x00\x01",             /* [[[[ ... */
        "\x08\x00\x00\x00\x01\x00\x01\x61", /* ECMA arrays */
        "\x05",                             /* a megabyte of nulls: too many nodes */
    };
    static const size_t plen[] = {4, 1, 5, 8, 1};
    for (size_t k = 0; k < 5; k++) {
        for (size_t i = 0; i < size; i++)
            p[i] = (uint8_t)patterns[k][i % plen[k]];
        double t0 = seconds();
        int rc = kb_amf_decode(&doc, p, size);
        double dt = seconds() - t0;
        if (rc != KB_EAMF || dt > 0.5) {
            fprintf(stderr, "pattern %zu: rc %d in %.3f s, want KB_EAMF at once\n", k, rc, dt);
            free(p);
            return 1;
        }
    }
    free(p);
    return 0;
}

/* ---- writer ------------------------------------------------------------- */

static int test_writer_bytes(void)
{
    struct kb_buf out = {0};
    struct kb_amf_w w = {.out = &out, .err = 0};
    kb_amf_w_number(&w, 1.0);
    kb_amf_w_number(&w, -2.5);
    kb_amf_w_bool(&w, 1);
    kb_amf_w_bool(&w, 0);
    kb_amf_w_bool(&w, 7);
    kb_amf_w_string(&w, "abc");
    kb_amf_w_string(&w, "");
    kb_amf_w_stringn(&w, "a\0b", 3);
    kb_amf_w_null(&w);
    kb_amf_w_object_begin(&w);
    kb_amf_w_prop_number(&w, "n", 2.0);
    kb_amf_w_prop_bool(&w, "ok", 1);
    kb_amf_w_prop_string(&w, "s", "xy");
    kb_amf_w_name(&w, "k");
    kb_amf_w_null(&w);
    kb_amf_w_object_end(&w);
    kb_amf_w_ecma_begin(&w, 3);
    kb_amf_w_prop_number(&w, "duration", 0);
    kb_amf_w_object_end(&w);
    kb_amf_w_raw(&w, (const uint8_t *)"\x06", 1);
    ASSERT_EQ(w.err, 0);
    const uint8_t want[] = {
        0x00, 0x3F, 0xF0, 0,    0,    0,    0,   0,    0,                   /* 1.0 */
        0x00, 0xC0, 0x04, 0,    0,    0,    0,   0,    0,                   /* -2.5 */
        0x01, 0x01, 0x01, 0x00, 0x01, 0x01,                                 /* true false true */
        0x02, 0x00, 0x03, 'a',  'b',  'c',                                  /* "abc" */
        0x02, 0x00, 0x00,                                                   /* "" */
        0x02, 0x00, 0x03, 'a',  0x00, 'b',                                  /* "a\0b" */
        0x05,                                                               /* null */
        0x03,                                                               /* { */
        0x00, 0x01, 'n',  0x00, 0x40, 0,    0,   0,    0,    0,    0,    0, /* n: 2.0 */
        0x00, 0x02, 'o',  'k',  0x01, 0x01,                                 /* ok: true */
        0x00, 0x01, 's',  0x02, 0x00, 0x02, 'x', 'y',                       /* s: "xy" */
        0x00, 0x01, 'k',  0x05,                                             /* k: null */
        0x00, 0x00, 0x09,                                                   /* } */
        0x08, 0x00, 0x00, 0x00, 0x03, /* ECMA array, count 3 */
        0x00, 0x08, 'd',  'u',  'r',  'a',  't', 'i',  'o',  'n',  0x00, 0,
        0,    0,    0,    0,    0,    0,    0,   0x00, 0x00, 0x09, 0x06, /* raw: undefined */
    };
    ASSERT_MEM_EQ(out.data, out.len, want, sizeof(want));

    /* And the decoder reads it back. */
    ASSERT_EQ(decode_keep(&doc, &out), 0);
    ASSERT_EQ(doc.roots, 12);
    ASSERT_DBL_EQ(kb_amf_root(&doc, 1)->num, -2.5);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_root(&doc, 5), "abc"));
    const struct kb_amf_node *o = kb_amf_root(&doc, 9);
    ASSERT_EQ(o->count, 4);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "n")->num, 2);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "ok")->num, 1);
    ASSERT_TRUE(kb_amf_str_eq(kb_amf_prop(&doc, o, "s"), "xy"));
    ASSERT_EQ(kb_amf_prop(&doc, o, "k")->type, KB_AMF_NULL);
    ASSERT_EQ(kb_amf_root(&doc, 10)->type, KB_AMF_ECMA_ARRAY);
    ASSERT_EQ(kb_amf_root(&doc, 11)->type, KB_AMF_UNDEFINED);
    kb_buf_free(&out);
    return 0;
}

static int test_writer_long_strings(void)
{
    char *s = malloc(70001);
    ASSERT_NOT_NULL(s);
    memset(s, 'q', 70000);
    s[70000] = '\0';
    struct kb_buf out = {0};
    struct kb_amf_w w = {.out = &out, .err = 0};
    /* 65535 bytes is the longest short string; one more becomes a long
     * string (0x0C, 32-bit length). */
    kb_amf_w_stringn(&w, s, 65535);
    kb_amf_w_stringn(&w, s, 65536);
    kb_amf_w_object_begin(&w);
    kb_amf_w_prop_string(&w, "p", s); /* 70000 as a property value */
    kb_amf_w_object_end(&w);
    ASSERT_EQ(w.err, 0);
    ASSERT_EQ(out.len, (3 + 65535) + (5 + 65536) + (1 + 3 + 5 + 70000 + 3));
    const uint8_t h1[] = {0x02, 0xFF, 0xFF};
    ASSERT_MEM_EQ(out.data, 3, h1, 3);
    const uint8_t h2[] = {0x0C, 0x00, 0x01, 0x00, 0x00};
    ASSERT_MEM_EQ(out.data + 3 + 65535, 5, h2, 5);
    const uint8_t h3[] = {0x00, 0x01, 'p', 0x0C, 0x00, 0x01, 0x11, 0x70};
    ASSERT_MEM_EQ(out.data + 3 + 65535 + 5 + 65536 + 1, 8, h3, 8);
    ASSERT_EQ(decode_keep(&doc, &out), 0);
    ASSERT_EQ(doc.roots, 3);
    ASSERT_EQ(kb_amf_root(&doc, 0)->str_len, 65535);
    ASSERT_EQ(kb_amf_root(&doc, 1)->str_len, 65536);
    ASSERT_EQ(kb_amf_prop(&doc, kb_amf_root(&doc, 2), "p")->str_len, 70000);
    kb_buf_free(&out);
    free(s);
    return 0;
}

static int test_writer_sticky_error(void)
{
    struct kb_buf out = {0};
    struct kb_amf_w w = {.out = &out, .err = -ENOMEM};
    kb_amf_w_number(&w, 1);
    kb_amf_w_bool(&w, 1);
    kb_amf_w_string(&w, "x");
    kb_amf_w_null(&w);
    kb_amf_w_object_begin(&w);
    kb_amf_w_prop_number(&w, "n", 1);
    kb_amf_w_prop_bool(&w, "b", 1);
    kb_amf_w_prop_string(&w, "s", "v");
    kb_amf_w_name(&w, "k");
    kb_amf_w_ecma_begin(&w, 1);
    kb_amf_w_object_end(&w);
    kb_amf_w_raw(&w, (const uint8_t *)"x", 1);
    ASSERT_EQ(w.err, -ENOMEM);
    ASSERT_EQ(out.len, 0);
    kb_buf_free(&out);
    return 0;
}

/* Many writes grow the buffer from empty; nothing is lost on the way. */
static int test_writer_growth(void)
{
    struct kb_buf out = {0};
    struct kb_amf_w w = {.out = &out, .err = 0};
    kb_amf_w_object_begin(&w);
    char name[16];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "key%d", i);
        kb_amf_w_prop_number(&w, name, i);
    }
    kb_amf_w_object_end(&w);
    ASSERT_EQ(w.err, 0);
    ASSERT_EQ(decode_keep(&doc, &out), 0);
    const struct kb_amf_node *o = kb_amf_root(&doc, 0);
    ASSERT_EQ(o->count, 200);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "key0")->num, 0);
    ASSERT_DBL_EQ(kb_amf_prop(&doc, o, "key199")->num, 199);
    kb_buf_free(&out);
    return 0;
}

/* Stream ids come from the peer as doubles; converting NaN or an out of
 * range double to an integer is undefined, so kb_amf_u32 refuses them. */
static int test_u32(void)
{
    struct kb_amf_node n = {.type = KB_AMF_NUMBER};
    uint32_t v = 7;
    const double bad[] = {-1.0, 4294967296.0, 1e300, -1e300};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n.num = bad[i];
        ASSERT_EQ(kb_amf_u32(&n, &v), -1);
    }
    n.num = 0.0 / 0.0; /* NaN */
    ASSERT_EQ(kb_amf_u32(&n, &v), -1);
    n.num = 1.0 / 0.0;
    ASSERT_EQ(kb_amf_u32(&n, &v), -1);
    ASSERT_EQ(v, 7);
    n.num = 4294967295.0;
    ASSERT_EQ(kb_amf_u32(&n, &v), 0);
    ASSERT_EQ(v, 4294967295u);
    n.num = 1.0;
    ASSERT_EQ(kb_amf_u32(&n, &v), 0);
    ASSERT_EQ(v, 1);
    n.type = KB_AMF_STRING;
    ASSERT_EQ(kb_amf_u32(&n, &v), -1);
    ASSERT_EQ(kb_amf_u32(NULL, &v), -1);
    return 0;
}

int main(void)
{
    RUN(test_numbers);
    RUN(test_booleans);
    RUN(test_strings);
    RUN(test_object);
    RUN(test_nested_objects);
    RUN(test_ecma_array);
    RUN(test_strict_array);
    RUN(test_null_undefined_and_friends);
    RUN(test_date);
    RUN(test_typed_object);
    RUN(test_empty_input);
    RUN(test_prop_and_root);
    RUN(test_str_eq_and_copy);
    RUN(test_read_string);
    RUN(test_truncated_everywhere);
    RUN(test_depth_limit);
    RUN(test_node_limit);
    RUN(test_strict_array_absurd_count);
    RUN(test_bad_markers);
    RUN(test_nested_bomb);
    RUN(test_writer_bytes);
    RUN(test_writer_long_strings);
    RUN(test_writer_sticky_error);
    RUN(test_writer_growth);
    RUN(test_u32);
    return test_summary();
}
