/* Export: one progressive MP4 with the moov first (faststart), remuxed from
 * the recording's segments, for buyers to download and share.
 *
 * Each part of the playlist is read as one byte stream (init-N.mp4 then
 * its segments, or its .ts segments) through a custom AVIOContext, so the
 * demuxer sees exactly what an HLS player would. Parts continue the
 * recording's timeline, so their packets go to the same output tracks. When
 * a later part's H.264/HEVC parameters differ from the first part's, its
 * first keyframe carries the new parameter sets in-band so decoders follow.
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

struct out {
    AVFormatContext *oc;
    int idx[2];          ///< output stream per kind, -1 if none
    int64_t last_dts[2]; ///< output time base
    AVCodecParameters *first[2];
    int changed; ///< a later part's parameters differ
};

static int open_output(struct out *o, AVFormatContext *ic, const char *tmp)
{
    int err = avformat_alloc_output_context2(&o->oc, NULL, "mp4", tmp);
    if (err < 0)
        return err;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        AVCodecParameters *par = ic->streams[i]->codecpar;
        int k = par->codec_type == AVMEDIA_TYPE_VIDEO   ? KB__V
                : par->codec_type == AVMEDIA_TYPE_AUDIO ? KB__A
                                                        : -1;
        if (k < 0 || o->idx[k] >= 0)
            continue;
        AVStream *st = avformat_new_stream(o->oc, NULL);
        if (!st)
            return AVERROR(ENOMEM);
        if ((err = avcodec_parameters_copy(st->codecpar, par)) < 0)
            return err;
        st->codecpar->codec_tag = 0;
        if (par->codec_id == AV_CODEC_ID_AAC && !st->codecpar->frame_size)
            st->codecpar->frame_size = 1024;
        st->time_base = ic->streams[i]->time_base;
        o->idx[k] = st->index;
        o->first[k] = st->codecpar;
    }
    if (o->oc->nb_streams == 0)
        return AVERROR_STREAM_NOT_FOUND;
    if ((err = avio_open(&o->oc->pb, tmp, AVIO_FLAG_WRITE)) < 0)
        return err;
    AVDictionary *opts = NULL;
    if (av_dict_set(&opts, "movflags", "+faststart", 0) < 0)
        return AVERROR(ENOMEM);
    err = avformat_write_header(o->oc, &opts);
    av_dict_free(&opts);
    return err;
}

static int copy_part(struct out *o, struct cat *c, enum kb_rec_format format, const char *tmp)
{
    AVFormatContext *ic = avformat_alloc_context();
    uint8_t *buf = av_malloc(IO_BUF);
    AVPacket *pkt = av_packet_alloc();
    AVIOContext *pb = NULL;
    uint8_t *ps = NULL;
    size_t ps_n = 0;
    int err = AVERROR(ENOMEM);
    int map[16], inband[16] = {0};
    if (!ic || !buf || !pkt)
        goto out;
    /* Our AVIOContext stays ours: avformat_close_input does not free it. */
    pb = avio_alloc_context(buf, IO_BUF, 0, c, cat_read, NULL, NULL);
    if (!pb)
        goto out;
    buf = NULL;
    ic->pb = pb;
    ic->flags |= AVFMT_FLAG_CUSTOM_IO;
    const AVInputFormat *fmt = av_find_input_format(format == KB_REC_FMP4 ? "mov" : "mpegts");
    if ((err = avformat_open_input(&ic, NULL, fmt, NULL)) < 0)
        goto out;
    /* MPEG-TS carries no global headers: let the parsers find them. */
    if (format == KB_REC_MPEGTS && (err = avformat_find_stream_info(ic, NULL)) < 0)
        goto out;
    if (!o->oc && (err = open_output(o, ic, tmp)) < 0)
        goto out;
    for (unsigned i = 0; i < ic->nb_streams && i < 16; i++) {
        AVCodecParameters *par = ic->streams[i]->codecpar;
        int k = par->codec_type == AVMEDIA_TYPE_VIDEO   ? KB__V
                : par->codec_type == AVMEDIA_TYPE_AUDIO ? KB__A
                                                        : -1;
        map[i] = k >= 0 ? o->idx[k] : -1;
        if (k < 0 || map[i] < 0)
            continue;
        const AVCodecParameters *f = o->first[k];
        if (f->codec_id != par->codec_id || f->extradata_size != par->extradata_size ||
            (f->extradata_size &&
             memcmp(f->extradata, par->extradata, (size_t)f->extradata_size) != 0)) {
            o->changed = 1;
            if (f->codec_id != par->codec_id) {
                map[i] = -1; /* another codec cannot share the track */
            } else if (k == KB__V && !ps) {
                if ((err = kb__inband_ps(par->codec_id, par->extradata, (size_t)par->extradata_size,
                                         &ps, &ps_n)) < 0)
                    goto out;
                inband[i] = ps_n > 0;
            }
        }
    }
    while ((err = av_read_frame(ic, pkt)) >= 0) {
        int si = pkt->stream_index;
        int os = si < 16 ? map[si] : -1;
        if (os < 0 || pkt->dts == AV_NOPTS_VALUE) {
            av_packet_unref(pkt);
            continue;
        }
        av_packet_rescale_ts(pkt, ic->streams[si]->time_base, o->oc->streams[os]->time_base);
        int k = o->idx[KB__V] == os ? KB__V : KB__A;
        if (o->last_dts[k] != AV_NOPTS_VALUE && pkt->dts <= o->last_dts[k]) {
            av_packet_unref(pkt); /* parts never overlap; a stray one is dropped */
            continue;
        }
        o->last_dts[k] = pkt->dts;
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
        if ((err = av_interleaved_write_frame(o->oc, pkt)) < 0)
            goto out;
    }
    err = err == AVERROR_EOF ? 0 : err;
    if (c->err)
        err = c->err;
out:
    free(ps);
    av_packet_free(&pkt);
    av_free(buf);
    avformat_close_input(&ic);
    if (pb)
        av_freep(&pb->buffer);
    avio_context_free(&pb);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return err;
}

int kb__export(struct kb_recorder *r, const char *stream, const char *dir)
{
    struct kb__playlist pl;
    char tmp[PATH_MAX], path[PATH_MAX], ebuf[128];
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    int64_t t0 = kb__mono_ms();
    int err = kb__pl_read(&pl, dir);
    if (err < 0) {
        kb__log(r, KB__ERROR, stream, "export of %s failed: read index.m3u8 (%s)", name,
                kb__strerror(err, ebuf, sizeof(ebuf)));
        return err;
    }
    snprintf(tmp, sizeof(tmp), "%s/recording.mp4.tmp", dir);
    snprintf(path, sizeof(path), "%s/recording.mp4", dir);
    struct out o = {.idx = {-1, -1}, .last_dts = {AV_NOPTS_VALUE, AV_NOPTS_VALUE}};
    const char **names = calloc(pl.n + 1, sizeof(*names));
    err = names ? 0 : AVERROR(ENOMEM);
    if (!err && pl.n == 0)
        err = AVERROR(ENODATA);
    for (size_t i = 0; i < pl.n && !err;) {
        /* One part: its init section, then its segments. */
        struct cat c = {.dir = dir, .names = names, .fd = -1};
        int part = pl.e[i].part;
        if (pl.format == KB_REC_FMP4)
            names[c.n++] = pl.e[i].map[0] ? pl.e[i].map : "init.mp4";
        for (; i < pl.n && pl.e[i].part == part; i++)
            names[c.n++] = pl.e[i].name;
        err = copy_part(&o, &c, pl.format, tmp);
    }
    if (!err && o.oc)
        err = av_write_trailer(o.oc);
    if (o.oc && o.oc->pb) {
        int cerr = avio_closep(&o.oc->pb);
        if (!err)
            err = cerr;
    }
    avformat_free_context(o.oc);
    free(names);
    if (!err && rename(tmp, path) < 0)
        err = AVERROR(errno);
    if (err < 0) {
        unlink(tmp);
        kb__log(r, KB__ERROR, stream, "export of %s failed (%s)", name,
                kb__strerror(err, ebuf, sizeof(ebuf)));
    } else {
        int64_t du = kb__du(path);
        kb__log(r, KB__INFO, stream, "exported %s/recording.mp4 (%.1f MB, %.1f s%s) in %lld ms",
                name, (double)du / 1e6, (double)kb__pl_duration_ms(&pl) / 1000.0,
                o.changed ? ", codec parameters change inside" : "",
                (long long)(kb__mono_ms() - t0));
    }
    kb__pl_free(&pl);
    return err;
}
