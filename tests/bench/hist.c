/* kebun benchmark tools: a log-linear histogram (HdrHistogram's idea,
 * fixed precision): values below BT_HIST_SUB are exact, above that each
 * power of two is split into BT_HIST_SUB/2 buckets, so a reported quantile
 * (a bucket's midpoint) is within about 1.5 % of the true value. */
#include "bench.h"

_Static_assert(BT_HIST_SUB == 64, "bucket() keeps 6 significant bits");

static unsigned bucket(uint64_t v)
{
    if (v < BT_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    /* v in [2^msb, 2^(msb+1)): keep its top 6 bits, so v >> shift lies in
     * [32, 64) and row `shift` uses the upper half of its sub-buckets. */
    unsigned shift = msb - 5;
    if (shift >= BT_HIST_POW)
        return BT_HIST_POW * BT_HIST_SUB - 1;
    return shift * BT_HIST_SUB + (unsigned)(v >> shift);
}

/* Lowest value of a bucket and its width. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    unsigned pow = i / BT_HIST_SUB, sub = i % BT_HIST_SUB;
    if (pow == 0) {
        *lo = sub;
        *width = 1;
        return;
    }
    *lo = (uint64_t)sub << pow;
    *width = (uint64_t)1 << pow;
}

void bt_hist_add(struct bt_hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->b[bucket(v)]++;
}

void bt_hist_merge(struct bt_hist *dst, const struct bt_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < BT_HIST_POW * BT_HIST_SUB; i++)
        dst->b[i] += src->b[i];
}

uint64_t bt_hist_quantile(const struct bt_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BT_HIST_POW * BT_HIST_SUB; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t lo, width;
            bucket_range(i, &lo, &width);
            uint64_t mid = lo + width / 2;
            if (mid > h->max)
                mid = h->max;
            if (mid < h->min)
                mid = h->min;
            return mid;
        }
    }
    return h->max;
}
