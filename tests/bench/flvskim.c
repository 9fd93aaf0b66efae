/* kebun-load's HTTP-FLV reader: an HTTP/1.1 response head, then a chunked
 * body carrying an FLV stream, parsed incrementally down to what a player
 * measures (each tag's type, length, first and last bytes), like the RTMP
 * skimmer (skim.c) and with no copy of the payload. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

enum { F_HEAD, F_SIZE, F_DATA, F_DATA_CRLF, F_END };             /* HTTP layer */
enum { T_FILE, T_HEADER, T_PAYLOAD, T_PREV };                   /* FLV layer */

void bt_flvskim_init(struct bt_flvskim *k)
{
    memset(k, 0, sizeof(*k));
    k->tstate = T_FILE;
    k->need = 13; /* "FLV", version, flags, header size, and the first previous size */
}

/* One byte of the response head: the status from the first line, the end
 * at the blank line. */
static void head_byte(struct bt_flvskim *k, uint8_t c)
{
    if (c == '\n') {
        k->line[k->line_len] = '\0';
        if (!k->status && strncmp(k->line, "HTTP/1.", 7) == 0 && k->line_len >= 12)
            k->status = atoi(k->line + 9);
        if (k->line_len == 0 || (k->line_len == 1 && k->line[0] == '\r'))
            k->hstate = F_SIZE;
        k->line_len = 0;
        return;
    }
    if (k->line_len + 1 < sizeof(k->line))
        k->line[k->line_len++] = (char)c;
}

/* FLV bytes p[0..n): returns how many were used; 1 in *got with *out
 * filled when a tag completed. */
static size_t flv(struct bt_flvskim *k, const uint8_t *p, size_t n, struct bt_skim_msg *out,
                  int *got)
{
    size_t used = 0;
    while (used < n && !*got) {
        if (k->tstate == T_PAYLOAD) {
            size_t take = n - used < k->len - k->have ? n - used : k->len - k->have;
            for (size_t i = 0; i < take; i++) {
                uint32_t at = k->have + (uint32_t)i;
                if (at < 2)
                    k->msg.head[at] = p[used + i];
                if (at + 8 >= k->len)
                    k->msg.tail[8 - (k->len - at)] = p[used + i];
            }
            k->have += (uint32_t)take;
            used += take;
            if (k->have == k->len) {
                k->tstate = T_PREV;
                k->need = 4;
                k->have_hdr = 0;
                *out = k->msg;
                *got = 1;
            }
            continue;
        }
        size_t take = n - used < k->need - k->have_hdr ? n - used : k->need - k->have_hdr;
        memcpy(k->hdr + k->have_hdr, p + used, take);
        k->have_hdr += (uint32_t)take;
        used += take;
        if (k->have_hdr < k->need)
            break;
        if (k->tstate == T_HEADER) {
            memset(&k->msg, 0, sizeof(k->msg));
            k->msg.type = k->hdr[0];
            k->len = (uint32_t)k->hdr[1] << 16 | (uint32_t)k->hdr[2] << 8 | k->hdr[3];
            k->msg.len = k->len;
            k->msg.ts = ((uint32_t)k->hdr[4] << 16 | (uint32_t)k->hdr[5] << 8 | k->hdr[6]) |
                        (uint32_t)k->hdr[7] << 24;
            k->have = 0;
            k->tstate = T_PAYLOAD;
            if (k->len == 0) {
                k->tstate = T_PREV;
                k->need = 4;
                k->have_hdr = 0;
                *out = k->msg;
                *got = 1;
            }
            continue;
        }
        /* The file header or a previous-tag size: a tag header follows. */
        k->tstate = T_HEADER;
        k->need = 11;
        k->have_hdr = 0;
    }
    return used;
}

int bt_flvskim_read(struct bt_flvskim *k, const uint8_t *p, size_t n, size_t *used,
                    struct bt_skim_msg *out)
{
    size_t pos = 0;
    int got = 0;
    while (pos < n && !got) {
        uint8_t c = p[pos];
        switch (k->hstate) {
        case F_HEAD:
            head_byte(k, c);
            pos++;
            if (k->hstate == F_SIZE && k->status != 200) {
                *used = pos;
                return -1;
            }
            break;
        case F_SIZE:
            pos++;
            if (c == '\n') {
                if (k->chunk_left == 0 && k->size_digits) {
                    k->hstate = F_END;
                    break;
                }
                k->hstate = k->size_digits ? F_DATA : F_SIZE;
                k->size_digits = 0;
            } else if (c != '\r' && k->size_digits < 16) {
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                                : -1;
                if (v < 0) {
                    *used = pos;
                    return -1;
                }
                k->chunk_left = k->chunk_left * 16 + (uint64_t)v;
                k->size_digits++;
            }
            break;
        case F_DATA: {
            size_t avail = n - pos < k->chunk_left ? n - pos : (size_t)k->chunk_left;
            size_t u = flv(k, p + pos, avail, out, &got);
            pos += u;
            k->chunk_left -= u;
            if (k->chunk_left == 0)
                k->hstate = F_DATA_CRLF;
            break;
        }
        case F_DATA_CRLF:
            pos++;
            if (c == '\n')
                k->hstate = F_SIZE;
            break;
        case F_END:
            pos = n;
            break;
        }
    }
    *used = pos;
    return got;
}
