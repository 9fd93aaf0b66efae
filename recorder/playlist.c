/* index.m3u8: the recording's HLS playlist (RFC 8216), rewritten whole to a
 * temp file and renamed after every completed segment, so a reader (or a
 * crash) only ever sees a playlist whose segments all exist in full.
 *
 * An EVENT playlist: segments are only appended; EXT-X-ENDLIST closes it.
 * Each part after the first starts with EXT-X-DISCONTINUITY and, for fMP4,
 * its own EXT-X-MAP (init-N.mp4), because its codec parameters may differ.
 *
 * EXT-X-TARGETDURATION is decided when the recording starts and never
 * changes (RFC 8216 6.2.1): the segment target rounded up, plus GOP_ALLOW_S
 * for the keyframe a segment waits for. The segmenter cuts a segment early
 * at a keyframe rather than let it grow past it; only a keyframe interval
 * longer than the target duration itself makes a longer segment, which the
 * recorder logs.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keyframe interval that streaming platforms ask publishers for. */
#define GOP_ALLOW_S 2

int kb__pl_target_s(uint32_t segment_ms)
{
    return (int)((segment_ms + 999) / 1000) + GOP_ALLOW_S;
}

int64_t kb__pl_max_ms(int target_s)
{
    /* EXTINF rounded to the nearest second must not exceed the target. */
    return (int64_t)target_s * 1000 + 499;
}

int kb__pl_add(struct kb__playlist *pl, const struct kb__pl_entry *e)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        struct kb__pl_entry *n = realloc(pl->e, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        pl->e = n;
        pl->cap = cap;
    }
    pl->e[pl->n++] = *e;
    return 0;
}

void kb__pl_free(struct kb__playlist *pl)
{
    free(pl->e);
    pl->e = NULL;
    pl->n = pl->cap = 0;
    pl->ended = 0;
    pl->target_s = 0;
}

int64_t kb__pl_duration_ms(const struct kb__playlist *pl)
{
    int64_t d = 0;
    for (size_t i = 0; i < pl->n; i++)
        d += pl->e[i].dur_ms;
    return d;
}

int kb__pl_write(const struct kb__playlist *pl, const char *dir, int sync)
{
    /* A playlist kebun did not start (none of its own) gets a target that
     * fits every EXTINF rounded to the nearest second. */
    int64_t target = pl->target_s;
    if (target <= 0) {
        int64_t max_ms = 1000;
        for (size_t i = 0; i < pl->n; i++)
            if (pl->e[i].dur_ms > max_ms)
                max_ms = pl->e[i].dur_ms;
        target = (max_ms + 500) / 1000;
    }
    struct kb__str s = {0};
    int fmp4 = pl->format == KB_RECORDER_FMP4;
    int err = kb__str_addf(&s,
                           "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%lld\n"
                           "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
                           "#EXT-X-INDEPENDENT-SEGMENTS\n",
                           fmp4 ? 7 : 3, (long long)target);
    for (size_t i = 0; i < pl->n && !err; i++) {
        const struct kb__pl_entry *e = &pl->e[i];
        if (e->disc)
            err = kb__str_addf(&s, "#EXT-X-DISCONTINUITY\n");
        if (!err && e->map[0])
            err = kb__str_addf(&s, "#EXT-X-MAP:URI=\"%s\"\n", e->map);
        if (!err)
            err = kb__str_addf(&s, "#EXTINF:%lld.%03lld,\n%s\n", (long long)(e->dur_ms / 1000),
                               (long long)(e->dur_ms % 1000), e->name);
    }
    if (!err && pl->ended)
        err = kb__str_addf(&s, "#EXT-X-ENDLIST\n");
    char path[PATH_MAX];
    if (!err && snprintf(path, sizeof(path), "%s/index.m3u8", dir) >= (int)sizeof(path))
        err = -ENAMETOOLONG;
    if (!err)
        err = kb__write_atomic(path, s.p, s.len, sync);
    kb__str_free(&s);
    return err;
}

/* A URI we wrote ourselves: a plain file name, never a path. */
static int uri_ok(const char *u, size_t n)
{
    return n > 0 && n < 32 && memchr(u, '/', n) == NULL && !(n <= 2 && u[0] == '.');
}

int kb__pl_read(struct kb__playlist *pl, const char *dir)
{
    memset(pl, 0, sizeof(*pl));
    pl->format = KB_RECORDER_MPEGTS;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/index.m3u8", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    char *text;
    int err = kb__read_file(path, 64u << 20, &text, NULL);
    if (err < 0)
        return err;
    if (strncmp(text, "#EXTM3U", 7) != 0) {
        free(text);
        return -EINVAL;
    }
    struct kb__pl_entry cur = {.part = 1};
    int64_t dur = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\r\n", &save); line && !err;
         line = strtok_r(NULL, "\r\n", &save)) {
        if (strncmp(line, "#EXTINF:", 8) == 0) {
            dur = (int64_t)(strtod(line + 8, NULL) * 1000 + 0.5);
        } else if (strncmp(line, "#EXT-X-TARGETDURATION:", 22) == 0) {
            long t = strtol(line + 22, NULL, 10);
            pl->target_s = t > 0 && t < 86400 ? (int)t : 0;
        } else if (strcmp(line, "#EXT-X-DISCONTINUITY") == 0) {
            cur.disc = 1;
            if (pl->n)
                cur.part++;
        } else if (strncmp(line, "#EXT-X-MAP:URI=\"", 16) == 0) {
            const char *u = line + 16, *q = strchr(u, '"');
            if (!q || !uri_ok(u, (size_t)(q - u))) {
                err = -EINVAL;
                break;
            }
            snprintf(cur.map, sizeof(cur.map), "%.*s", (int)(q - u), u);
            pl->format = KB_RECORDER_FMP4;
        } else if (strcmp(line, "#EXT-X-ENDLIST") == 0) {
            pl->ended = 1;
        } else if (line[0] != '#' && line[0]) {
            if (dur < 0 || !uri_ok(line, strlen(line))) {
                err = -EINVAL;
                break;
            }
            snprintf(cur.name, sizeof(cur.name), "%s", line);
            cur.dur_ms = dur;
            err = kb__pl_add(pl, &cur);
            cur.disc = 0;
            cur.map[0] = 0;
            dur = -1;
        }
    }
    free(text);
    if (err < 0)
        kb__pl_free(pl);
    return err;
}
