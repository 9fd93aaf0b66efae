/* Export: one progressive MP4 with the moov first (faststart), remuxed from
 * the recording's segments, for buyers to download and share.
 *
 * Each part of the playlist is read as one byte stream (init-N.mp4 then
 * its segments, or its .ts segments) through a custom AVIOContext, so the
 * demuxer sees exactly what an HLS player would. Parts continue the
 * recording's timeline, so their packets go to the same output tracks.
 *
 * The output's tracks are the union over all parts, so every part is
 * probed before the output is opened: a recording that started audio-only
 * and got its video in part 2 exports both, the video track starting where
 * the video did. Each track takes the parameters of the first part that
 * has it. When a later part's H.264/HEVC parameters differ, its first
 * keyframe carries the new parameter sets in-band so decoders follow; a
 * later part with another codec of a kind cannot share that track and is
 * left out, with a warning.
 *
 * The output is written to a temp file of its own (kb__tmp_open), renamed
 * over recording.mp4 when complete: `kebun --export` beside a running
 * server never shares a temp file with it. The job thread can cancel an
 * export at shutdown, also in the middle of the faststart rewrite.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#define IO_BUF 65536
#define MAX_STREAMS 16 ///< streams read per part (kebun writes at most two)

void (*kb__export_hook)(void);

/* A list of files read back to back. */
struct cat {
    const char *dir;
    const char **names;
    size_t n, i;
    int fd;
    int err; ///< the first open/read error (AVERROR)
};

static int cat_read(void *opaque, uint8_t *buf, int size)
{
    struct cat *c = opaque;
    for (;;) {
        if (c->fd < 0) {
            if (c->i == c->n)
                return AVERROR_EOF;
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", c->dir, c->names[c->i++]);
            c->fd = open(path, O_RDONLY | O_CLOEXEC);
            if (c->fd < 0)
                return c->err = AVERROR(errno);
        }
        ssize_t r = read(c->fd, buf, (size_t)size);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return c->err = AVERROR(errno);
        if (r > 0)
            return (int)r;
        close(c->fd);
        c->fd = -1;
    }
}

/* One part opened for reading. */
struct part_in {
    AVFormatContext *ic;
    AVIOContext *pb;
};

static void part_close(struct part_in *p, struct cat *c)
{
    /* Our AVIOContext stays ours: avformat_close_input does not free it. */
    avformat_close_input(&p->ic);
    if (p->pb)
        av_freep(&p->pb->buffer);
    avio_context_free(&p->pb);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Open the part whose files `c` lists, from its first file. The caller
 * closes it (part_close) whatever this returns. */
static int part_open(struct part_in *p, struct cat *c, enum kb_recorder_format format)
{
    memset(p, 0, sizeof(*p));
    c->i = 0;
    c->fd = -1;
    c->err = 0;
    uint8_t *buf = av_malloc(IO_BUF);
    p->ic = avformat_alloc_context();
    if (buf && p->ic)
        p->pb = avio_alloc_context(buf, IO_BUF, 0, c, cat_read, NULL, NULL);
    if (!p->pb) {
        av_free(buf);
        return AVERROR(ENOMEM);
    }
    p->ic->pb = p->pb;
    p->ic->flags |= AVFMT_FLAG_CUSTOM_IO;
    const AVInputFormat *fmt = av_find_input_format(format == KB_RECORDER_FMP4 ? "mov" : "mpegts");
    int err = avformat_open_input(&p->ic, NULL, fmt, NULL);
    /* MPEG-TS carries no global headers: let the parsers find them. */
    if (err >= 0 && format == KB_RECORDER_MPEGTS)
        err = avformat_find_stream_info(p->ic, NULL);
    return err < 0 ? err : 0;
}

static int kind_of(const AVCodecParameters *par)
{
    return par->codec_type == AVMEDIA_TYPE_VIDEO   ? KB__V
           : par->codec_type == AVMEDIA_TYPE_AUDIO ? KB__A
                                                   : -1;
}

/* One export. */
struct ex {
    const struct kb__env *env;
    const char *stream, *name; ///< for logs
    enum kb_recorder_format format;
    const atomic_int *cancel;
    /* The output tracks, from the parts' union. */
    AVCodecParameters *par[2]; ///< NULL: no part has this kind
    AVRational tb[2];
    int from_part[2]; ///< the part that defines the track
    AVFormatContext *oc;
    int idx[2];          ///< output stream per kind, -1 if none
    int64_t last_dts[2]; ///< output time base
    int changed;         ///< a later part's parameters differ
};

static int cancelled(void *opaque)
{
    return opaque && atomic_load_explicit((const atomic_int *)opaque, memory_order_relaxed);
}

/* Note the kinds this part has that no earlier part had. */
static int probe_part(struct ex *x, struct cat *c, int part)
{
    struct part_in p;
    int err = part_open(&p, c, x->format);
    for (unsigned i = 0; err == 0 && i < p.ic->nb_streams; i++) {
        const AVStream *st = p.ic->streams[i];
        int k = kind_of(st->codecpar);
        if (k < 0 || x->par[k])
            continue;
        if (!(x->par[k] = avcodec_parameters_alloc()))
            err = AVERROR(ENOMEM);
        else
            err = avcodec_parameters_copy(x->par[k], st->codecpar);
        x->tb[k] = st->time_base;
        x->from_part[k] = part;
    }
    if (!err && c->err)
        err = c->err;
    part_close(&p, c);
    return err;
}

static int open_output(struct ex *x, const char *tmp)
{
    int err = avformat_alloc_output_context2(&x->oc, NULL, "mp4", tmp);
    if (err < 0)
        return err;
    /* Checked by every read and write libavformat does on the file, the
     * faststart rewrite included. */
    x->oc->interrupt_callback = (AVIOInterruptCB){cancelled, (void *)x->cancel};
    for (int k = 0; k < 2; k++) {
        if (!x->par[k])
            continue;
        AVStream *st = avformat_new_stream(x->oc, NULL);
        if (!st)
            return AVERROR(ENOMEM);
        if ((err = avcodec_parameters_copy(st->codecpar, x->par[k])) < 0)
            return err;
        st->codecpar->codec_tag = 0;
        if (x->par[k]->codec_id == AV_CODEC_ID_AAC && !st->codecpar->frame_size)
            st->codecpar->frame_size = 1024;
        st->time_base = x->tb[k];
        x->idx[k] = st->index;
    }
    if (x->oc->nb_streams == 0)
        return AVERROR_STREAM_NOT_FOUND;
    if ((err = avio_open2(&x->oc->pb, tmp, AVIO_FLAG_WRITE, &x->oc->interrupt_callback, NULL)) < 0)
        return err;
    AVDictionary *opts = NULL;
    if (av_dict_set(&opts, "movflags", "+faststart", 0) < 0)
        return AVERROR(ENOMEM);
    err = avformat_write_header(x->oc, &opts);
    av_dict_free(&opts);
    return err;
}

static const char *kind_name(int k)
{
    return k == KB__V ? "video" : "audio";
}

static int copy_part(struct ex *x, struct cat *c, int part)
{
    struct part_in p;
    AVPacket *pkt = av_packet_alloc();
    uint8_t *ps = NULL;
    size_t ps_n = 0;
    int map[MAX_STREAMS], inband[MAX_STREAMS] = {0};
    int err = pkt ? part_open(&p, c, x->format) : AVERROR(ENOMEM);
    if (!pkt)
        memset(&p, 0, sizeof(p));
    if (err < 0)
        goto out;
    for (unsigned i = 0; i < p.ic->nb_streams && i < MAX_STREAMS; i++) {
        AVCodecParameters *par = p.ic->streams[i]->codecpar;
        int k = kind_of(par);
        map[i] = k >= 0 ? x->idx[k] : -1;
        if (k < 0 || map[i] < 0)
            continue;
        const AVCodecParameters *f = x->par[k];
        if (f->codec_id == par->codec_id && f->extradata_size == par->extradata_size &&
            (!f->extradata_size ||
             memcmp(f->extradata, par->extradata, (size_t)f->extradata_size) == 0))
            continue;
        x->changed = 1;
        if (f->codec_id != par->codec_id) {
            /* Another codec cannot share the track. */
            map[i] = -1;
            kb__log(x->env, KB__WARN, x->stream,
                    "export of %s: part %d's %s (%s) cannot share the %s track of part %d "
                    "(%s): left out of recording.mp4",
                    x->name, part, kind_name(k), avcodec_get_name(par->codec_id), kind_name(k),
                    x->from_part[k], avcodec_get_name(f->codec_id));
        } else if (k == KB__V && !ps) {
            if ((err = kb__inband_ps(par->codec_id, par->extradata, (size_t)par->extradata_size,
                                     &ps, &ps_n)) < 0)
                goto out;
            inband[i] = ps_n > 0;
        }
    }
    while ((err = av_read_frame(p.ic, pkt)) >= 0) {
        if (kb__export_hook)
            kb__export_hook();
        if (cancelled((void *)x->cancel)) {
            err = AVERROR_EXIT;
            goto out;
        }
        int si = pkt->stream_index;
        int os = si < MAX_STREAMS ? map[si] : -1;
        if (os < 0 || pkt->dts == AV_NOPTS_VALUE) {
            av_packet_unref(pkt);
            continue;
        }
        av_packet_rescale_ts(pkt, p.ic->streams[si]->time_base, x->oc->streams[os]->time_base);
        int k = x->idx[KB__V] == os ? KB__V : KB__A;
        if (x->last_dts[k] != AV_NOPTS_VALUE && pkt->dts <= x->last_dts[k]) {
            av_packet_unref(pkt); /* parts never overlap; a stray one is dropped */
            continue;
        }
        x->last_dts[k] = pkt->dts;
        if (inband[si] && (pkt->flags & AV_PKT_FLAG_KEY)) {
            inband[si] = 0;
            int old = pkt->size;
            if ((err = av_grow_packet(pkt, (int)ps_n)) < 0)
                goto out;
            memmove(pkt->data + ps_n, pkt->data, (size_t)old);
            memcpy(pkt->data, ps, ps_n);
        }
        pkt->stream_index = os;
        pkt->pos = -1;
        if ((err = av_interleaved_write_frame(x->oc, pkt)) < 0)
            goto out;
    }
    err = err == AVERROR_EOF ? 0 : err;
    if (c->err)
        err = c->err;
out:
    free(ps);
    av_packet_free(&pkt);
    part_close(&p, c);
    return err;
}

/* Fill `c` with part `part`'s files, from playlist entry *i on; *i moves
 * past them. */
static void part_files(const struct kb__playlist *pl, size_t *i, struct cat *c)
{
    c->n = 0;
    if (pl->format == KB_RECORDER_FMP4)
        c->names[c->n++] = pl->e[*i].map[0] ? pl->e[*i].map : "init.mp4";
    int part = pl->e[*i].part;
    for (; *i < pl->n && pl->e[*i].part == part; (*i)++)
        c->names[c->n++] = pl->e[*i].name;
}

int kb__export(const struct kb__env *env, const char *stream, const char *dir,
               const atomic_int *cancel)
{
    struct kb__playlist pl;
    char tmp[PATH_MAX], path[PATH_MAX], ebuf[128];
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    int64_t t0 = kb__mono_ms();
    int err = kb__pl_read(&pl, dir);
    if (err < 0) {
        kb__log(env, KB__ERROR, stream, "export of %s failed: read index.m3u8 (%s)", name,
                kb__strerror(err, ebuf, sizeof(ebuf)));
        return err;
    }
    struct ex x = {.env = env,
                   .stream = stream,
                   .name = name,
                   .format = pl.format,
                   .cancel = cancel,
                   .idx = {-1, -1},
                   .last_dts = {AV_NOPTS_VALUE, AV_NOPTS_VALUE}};
    int fd = -1;
    const char **names = calloc(pl.n + 1, sizeof(*names));
    err = names ? 0 : AVERROR(ENOMEM);
    if (!err && pl.n == 0)
        err = AVERROR(ENODATA);
    if (!err)
        err = kb__pathf(path, sizeof(path), "%s/recording.mp4", dir);
    /* The temp file stays open (and locked) until it has its final name. */
    if (!err && (fd = kb__tmp_open(path, tmp, sizeof(tmp))) < 0)
        err = fd;
    struct cat c = {.dir = dir, .names = names, .fd = -1};
    int part = 0;
    for (size_t i = 0; i < pl.n && !err;) {
        part_files(&pl, &i, &c);
        err = probe_part(&x, &c, ++part);
    }
    if (!err)
        err = open_output(&x, tmp);
    part = 0;
    for (size_t i = 0; i < pl.n && !err;) {
        part_files(&pl, &i, &c);
        err = copy_part(&x, &c, ++part);
    }
    if (!err)
        err = av_write_trailer(x.oc);
    if (x.oc && x.oc->pb) {
        int cerr = avio_closep(&x.oc->pb);
        if (!err)
            err = cerr;
    }
    avformat_free_context(x.oc);
    for (int k = 0; k < 2; k++)
        avcodec_parameters_free(&x.par[k]);
    free(names);
    if (!err && rename(tmp, path) < 0)
        err = AVERROR(errno);
    if (fd >= 0) {
        if (err < 0)
            unlink(tmp);
        close(fd);
    }
    if (err < 0 && cancelled((void *)cancel)) {
        err = AVERROR(ECANCELED);
        kb__log(env, KB__INFO, stream,
                "export of %s stopped (shutdown); it resumes at the next start", name);
    } else if (err < 0) {
        kb__log(env, KB__ERROR, stream, "export of %s failed (%s)", name,
                kb__strerror(err, ebuf, sizeof(ebuf)));
    } else {
        int64_t du = kb__du(path);
        kb__log(env, KB__INFO, stream, "exported %s/recording.mp4 (%.1f MB, %.1f s%s) in %lld ms",
                name, (double)du / 1e6, (double)kb__pl_duration_ms(&pl) / 1000.0,
                x.changed ? ", codec parameters change inside" : "",
                (long long)(kb__mono_ms() - t0));
    }
    kb__pl_free(&pl);
    return err;
}

int kb__export_recording(const struct kb__env *env, const char *dir, const char *rel,
                         const char *stream, const atomic_int *cancel)
{
    struct kb__meta m;
    char ebuf[96];
    int err = kb__meta_read(&m, dir);
    if (err < 0) {
        kb__log(env, KB__WARN, stream, "export of %s refused: no readable meta.json (%s)", rel,
                kb__strerror(err, ebuf, sizeof(ebuf)));
        return err;
    }
    if (!m.end_ms) {
        kb__log(env, KB__WARN, stream, "export of %s refused: the recording is still open", rel);
        return -EBUSY;
    }
    err = kb__export(env, stream, dir, cancel);
    if (err == AVERROR(ECANCELED))
        return err; /* still due: meta.json keeps saying so */
    /* Read again: another writer (the server, or kebun --export) may have
     * noted its own export meanwhile. */
    if (kb__meta_read(&m, dir) < 0 || !m.end_ms)
        return err;
    if (err == 0 ? (m.exported && !m.export_pending) : !m.export_pending)
        return err;
    /* A failed export is not retried by itself (the log says why); kebun
     * --export DIR tries again. */
    m.exported |= err == 0;
    m.export_pending = 0;
    int werr = kb__meta_write(&m, dir, kb__env_sync(env));
    if (werr < 0)
        kb__log(env, KB__WARN, stream, "export of %s: cannot update meta.json (%s)", rel,
                kb__strerror(werr, ebuf, sizeof(ebuf)));
    return err;
}
