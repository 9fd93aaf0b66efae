/* One part of a recording: a single libavformat muxer whose output bytes go
 * through our own AVIOContext into whichever file is current: init.mp4
 * while the header is written, then NNNNNN.m4s.tmp (or .ts.tmp) per
 * segment. A segment is renamed to its final name only once its last byte
 * is written, so a playlist never lists a partial file.
 *
 * Why not FFmpeg's hls muxer: it rewrites init.mp4 on append (breaking old
 * segments when the SPS changed), wants its own playlist, and cannot be
 * told to resume after a write error. The mp4 muxer with frag_custom does
 * exactly what a segmenter needs: we decide when a fragment ends.
 *
 * fMP4: movflags frag_custom+empty_moov+default_base_moof, no edit list,
 * frag_discont so each track's first tfdt is its real decode time (parts
 * after the first continue the recording's timeline). A fragment is flushed
 * at every keyframe, so a segment reaches the disk GOP by GOP.
 *
 * Cuts: at the first keyframe at or past the target; earlier, at a
 * keyframe, when waiting one more keyframe interval (as long as the last
 * one) would take the segment past max_ms, the playlist's fixed target
 * duration. Audio-only parts cut at the target exactly.
 *
 * Durability (fsync = segment): a segment file, and the init segment, is
 * fsync'd before it gets its final name and the directory after, so the
 * playlist that lists it next never points at bytes still in the page
 * cache.
 *
 * Timing: video keeps its millisecond dts and pts = dts + cts, made strictly
 * increasing; each frame is held until the next one gives its duration.
 * Audio time comes from the sample count (1024 per AAC frame), resynced to
 * the tag timestamps only when they move more than a frame away, because
 * millisecond timestamps jitter and muxers reject the durations they imply.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/opt.h>

#define IO_BUF 65536
#define AAC_FRAME 1024

struct kb__seg {
    enum kb_recorder_format format;
    char dir[PATH_MAX];
    uint32_t target_ms;
    uint32_t max_ms; ///< 0: no limit
    int (*done)(void *ud, const struct kb__seg_info *info);
    void *ud;
    const atomic_int *fsync; ///< nonzero: files reach the disk before they are named

    AVFormatContext *oc;
    AVIOContext *pb;
    int header_done;
    int fd;              ///< where muxer output goes now; -1 discards it
    int io_err;          ///< first write error on fd (AVERROR)
    uint64_t sink_bytes; ///< written to fd

    int vi, ai; ///< stream indexes, -1 when absent
    AVRational vtb, atb;
    int rate;

    AVPacket *held; ///< last video frame, waiting for its duration
    int held_valid;
    int64_t held_ms;   ///< its dts in ms
    int64_t vdur;      ///< last video frame duration (vtb)
    int64_t last_vdts; ///< vtb; INT64_MIN before the first
    uint8_t *ps;       ///< parameter sets for the first keyframe, or NULL
    size_t ps_n;
    AVPacket *apkt;
    int64_t a_next;    ///< next audio frame's time in samples; INT64_MIN before
    int64_t last_adts; ///< atb
    int64_t end_ms;
    int64_t last_key_ms; ///< INT64_MIN before the first keyframe
    int64_t gop_ms;      ///< the last keyframe interval, 0 before two

    int open;       ///< a segment file is being written
    int seg_video;  ///< it has video (which began with a keyframe)
    uint32_t index; ///< its number (next one's when !open)
    char name[32];
    char tmp[PATH_MAX];
    int64_t start_ms;
    char what[96];
};

#if LIBAVFORMAT_VERSION_MAJOR >= 61
static int sink_write(void *opaque, const uint8_t *buf, int size)
#else
static int sink_write(void *opaque, uint8_t *buf, int size)
#endif
{
    struct kb__seg *s = opaque;
    if (s->fd < 0)
        return size;
    if (s->io_err)
        return s->io_err;
    size_t off = 0;
    while (off < (size_t)size) {
        ssize_t n = write(s->fd, buf + off, (size_t)size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->io_err = n < 0 ? AVERROR(errno) : AVERROR(EIO);
            return s->io_err;
        }
        off += (size_t)n;
    }
    s->sink_bytes += (uint64_t)size;
    return size;
}

static int fail(struct kb__seg *s, const char *verb, const char *file, int err)
{
    /* An error the sink saw is the real cause of whatever the muxer says. */
    if (s->io_err) {
        err = s->io_err;
        verb = "write";
    }
    snprintf(s->what, sizeof(s->what), "%s %s", verb, file);
    return err;
}

static int open_sink(struct kb__seg *s, const char *name)
{
    if (snprintf(s->tmp, sizeof(s->tmp), "%s/%s.tmp", s->dir, name) >= (int)sizeof(s->tmp))
        return fail(s, "write", name, AVERROR(ENAMETOOLONG));
    s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0)
        return fail(s, "write", name, AVERROR(errno));
    s->sink_bytes = 0;
    return 0;
}

/* Flush the AVIO buffer, close the file and give it its final name. */
static int close_sink(struct kb__seg *s, const char *name)
{
    avio_flush(s->pb);
    int err = s->io_err;
    int sync = s->fsync && atomic_load_explicit(s->fsync, memory_order_relaxed);
    if (!err && sync && fsync(s->fd) < 0)
        err = AVERROR(errno);
    if (close(s->fd) < 0 && !err)
        err = AVERROR(errno);
    s->fd = -1;
    char path[PATH_MAX];
    if (!err)
        err = kb__pathf(path, sizeof(path), "%s/%s", s->dir, name);
    if (!err && rename(s->tmp, path) < 0)
        err = AVERROR(errno);
    if (!err && sync)
        err = kb__sync_dir_of(path);
    if (err) {
        unlink(s->tmp);
        return fail(s, "write", name, err);
    }
    s->tmp[0] = 0;
    return 0;
}

static int add_streams(struct kb__seg *s, const struct kb__seg_conf *c)
{
    s->vi = s->ai = -1;
    const struct kb__codec *cc[2] = {c->video, c->audio};
    for (int k = 0; k < 2; k++) {
        if (!cc[k])
            continue;
        AVStream *st = avformat_new_stream(s->oc, NULL);
        if (!st)
            return AVERROR(ENOMEM);
        AVCodecParameters *par = st->codecpar;
        par->extradata = av_mallocz((size_t)cc[k]->size + AV_INPUT_BUFFER_PADDING_SIZE);
        if (!par->extradata)
            return AVERROR(ENOMEM);
        memcpy(par->extradata, cc[k]->extradata, (size_t)cc[k]->size);
        par->extradata_size = cc[k]->size;
        par->codec_id = cc[k]->id;
        if (k == KB__V) {
            par->codec_type = AVMEDIA_TYPE_VIDEO;
            par->width = c->width;
            par->height = c->height;
            /* Apple players want hvc1 (parameter sets only in hvcC). */
            if (c->format == KB_RECORDER_FMP4 && cc[k]->id == AV_CODEC_ID_HEVC)
                par->codec_tag = MKTAG('h', 'v', 'c', '1');
            st->time_base = (AVRational){1, 1000};
            s->vi = st->index;
        } else {
            par->codec_type = AVMEDIA_TYPE_AUDIO;
            par->sample_rate = cc[k]->sample_rate;
            av_channel_layout_default(&par->ch_layout, cc[k]->channels);
            par->frame_size = AAC_FRAME;
            st->time_base = (AVRational){1, cc[k]->sample_rate};
            s->rate = cc[k]->sample_rate;
            s->ai = st->index;
        }
    }
    return 0;
}

int kb__seg_new(const struct kb__seg_conf *c, struct kb__seg **out, char *what, size_t n)
{
    *out = NULL;
    struct kb__seg *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(what, n, "allocate muxer");
        return AVERROR(ENOMEM);
    }
    s->format = c->format;
    snprintf(s->dir, sizeof(s->dir), "%s", c->dir);
    s->target_ms = c->target_ms;
    s->max_ms = c->max_ms;
    s->last_key_ms = INT64_MIN;
    s->done = c->done;
    s->ud = c->ud;
    s->fsync = c->fsync;
    s->fd = -1;
    s->index = c->first_index;
    s->last_vdts = s->last_adts = INT64_MIN;
    s->a_next = INT64_MIN;
    snprintf(s->what, sizeof(s->what), "open muxer");

    const char *fmt = c->format == KB_RECORDER_FMP4 ? "mp4" : "mpegts";
    AVDictionary *opts = NULL;
    uint8_t *iobuf = NULL;
    int err = avformat_alloc_output_context2(&s->oc, NULL, fmt, NULL);
    if (err < 0)
        goto out;
    err = AVERROR(ENOMEM);
    s->held = av_packet_alloc();
    s->apkt = av_packet_alloc();
    iobuf = av_malloc(IO_BUF);
    if (!s->held || !s->apkt || !iobuf)
        goto out;
    s->pb = avio_alloc_context(iobuf, IO_BUF, 1, s, NULL, sink_write, NULL);
    if (!s->pb)
        goto out;
    iobuf = NULL;
    s->oc->pb = s->pb;
    s->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    /* Our timestamps start at or after 0 by construction; do not let
     * libavformat shift tracks (it would lose the A/V offset). */
    s->oc->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    if ((err = add_streams(s, c)) < 0)
        goto out;
    if (c->inband && c->video &&
        (err = kb__inband_ps(c->video->id, c->video->extradata, (size_t)c->video->size, &s->ps,
                             &s->ps_n)) < 0)
        goto out;

    if (c->format == KB_RECORDER_FMP4) {
        err = AVERROR(ENOMEM);
        if (av_dict_set(&opts, "movflags",
                        "+frag_custom+empty_moov+default_base_moof+frag_discont+skip_trailer",
                        0) < 0 ||
            av_dict_set(&opts, "use_editlist", "0", 0) < 0)
            goto out;
        if ((err = open_sink(s, c->init_name)) < 0)
            goto out_named;
    }
    err = avformat_write_header(s->oc, &opts);
    if (err < 0) {
        err = fail(s, "write header of", c->format == KB_RECORDER_FMP4 ? c->init_name : "segments", err);
        goto out_named;
    }
    s->header_done = 1;
    if (c->format == KB_RECORDER_FMP4 && (err = close_sink(s, c->init_name)) < 0)
        goto out_named;
    if (s->vi >= 0)
        s->vtb = s->oc->streams[s->vi]->time_base;
    if (s->ai >= 0)
        s->atb = s->oc->streams[s->ai]->time_base;
    s->vdur = s->vi >= 0 ? av_rescale_q(33, (AVRational){1, 1000}, s->vtb) : 0;
    av_dict_free(&opts);
    *out = s;
    return 0;
out:
    fail(s, "open", fmt, err);
out_named:
    snprintf(what, n, "%s", s->what);
    av_free(iobuf);
    av_dict_free(&opts);
    kb__seg_free(s);
    return err;
}

static int open_segment(struct kb__seg *s, int64_t start_ms)
{
    snprintf(s->name, sizeof(s->name), "%06u.%s", s->index,
             s->format == KB_RECORDER_FMP4 ? "m4s" : "ts");
    int err = open_sink(s, s->name);
    if (err < 0)
        return err;
    if (s->format == KB_RECORDER_MPEGTS)
        av_opt_set(s->oc->priv_data, "mpegts_flags", "+resend_headers", 0);
    s->open = 1;
    s->seg_video = 0;
    s->start_ms = start_ms;
    return 0;
}

static int finish_segment(struct kb__seg *s, int64_t end_ms)
{
    int err = av_write_frame(s->oc, NULL);
    if (err < 0)
        return fail(s, "write", s->name, err);
    struct kb__seg_info info;
    snprintf(info.name, sizeof(info.name), "%s", s->name);
    info.start_ms = s->start_ms;
    info.dur_ms = end_ms > s->start_ms ? end_ms - s->start_ms : 0;
    err = close_sink(s, s->name);
    info.bytes = s->sink_bytes;
    s->open = 0;
    if (err < 0)
        return err;
    s->index++;
    return s->done ? s->done(s->ud, &info) : 0;
}

/* Push what the current segment holds to its file: one fMP4 fragment per
 * GOP, so a segment reaches the disk as it arrives, not when it ends. */
static int flush_gop(struct kb__seg *s)
{
    int err = s->format == KB_RECORDER_FMP4 ? av_write_frame(s->oc, NULL) : 0;
    if (err < 0)
        return fail(s, "write", s->name, err);
    avio_flush(s->pb);
    return s->io_err ? fail(s, "write", s->name, s->io_err) : 0;
}

static int write_held(struct kb__seg *s)
{
    if (!s->held_valid)
        return 0;
    s->held_valid = 0;
    /* The part ends where its last frame stops being shown. */
    int64_t end = av_rescale_q(s->held->pts + s->held->duration, s->vtb, (AVRational){1, 1000});
    if (end > s->end_ms)
        s->end_ms = end;
    int err = av_write_frame(s->oc, s->held);
    av_packet_unref(s->held);
    return err < 0 ? fail(s, "write", s->name, err) : 0;
}

int kb__seg_video(struct kb__seg *s, int64_t dts_ms, int32_t cts, int key, const uint8_t *p,
                  size_t n)
{
    /* A segment's video starts with a keyframe, whatever came before. */
    if (s->vi < 0 || (!key && !(s->open && s->seg_video)) || n == 0 || n > INT32_MAX)
        return 0;
    const AVRational ms = {1, 1000};
    int64_t dts = av_rescale_q(dts_ms, ms, s->vtb);
    int64_t pts = av_rescale_q(dts_ms + cts, ms, s->vtb);
    int64_t floor = s->held_valid ? s->held->dts : s->last_vdts;
    if (floor != INT64_MIN && dts <= floor)
        dts = floor + 1;
    if (pts < dts)
        pts = dts;
    int err;
    if (s->held_valid) {
        s->held->duration = dts - s->held->dts;
        s->vdur = s->held->duration;
        if ((err = write_held(s)) < 0)
            return err;
    }
    if (key) {
        if (s->last_key_ms != INT64_MIN && dts_ms > s->last_key_ms)
            s->gop_ms = dts_ms - s->last_key_ms;
        s->last_key_ms = dts_ms;
    }
    if (key && s->open) {
        int64_t len = dts_ms - s->start_ms;
        int cut = len >= s->target_ms ||
                  (s->max_ms && len > 0 && s->gop_ms > 0 && len + s->gop_ms > s->max_ms);
        err = cut ? finish_segment(s, dts_ms) : flush_gop(s);
        if (err < 0)
            return err;
    }
    if (!s->open && (err = open_segment(s, dts_ms)) < 0)
        return err;
    s->seg_video = 1;
    /* A part after a codec change repeats its parameter sets in-band once:
     * players that keep their decoder across EXT-X-DISCONTINUITY (ffmpeg's
     * hls demuxer does) never read the new init segment's avcC/hvcC. */
    size_t pre = key && s->ps ? s->ps_n : 0;
    if ((err = av_new_packet(s->held, (int)(n + pre))) < 0)
        return fail(s, "write", s->name, err);
    if (pre) {
        memcpy(s->held->data, s->ps, pre);
        free(s->ps);
        s->ps = NULL;
    }
    memcpy(s->held->data + pre, p, n);
    s->held->stream_index = s->vi;
    s->held->dts = dts;
    s->held->pts = pts;
    s->held->flags = key ? AV_PKT_FLAG_KEY : 0;
    s->held_valid = 1;
    s->held_ms = dts_ms;
    s->last_vdts = dts;
    return 0;
}

int kb__seg_audio(struct kb__seg *s, int64_t dts_ms, const uint8_t *p, size_t n)
{
    if (s->ai < 0 || n == 0 || n > INT32_MAX)
        return 0;
    int err;
    if (!s->open) {
        if ((err = open_segment(s, dts_ms)) < 0)
            return err;
    } else if (s->vi < 0 && dts_ms - s->start_ms >= s->target_ms) {
        if ((err = finish_segment(s, dts_ms)) < 0 || (err = open_segment(s, dts_ms)) < 0)
            return err;
    }
    int64_t t = av_rescale(dts_ms, s->rate, 1000);
    if (s->a_next == INT64_MIN || t - s->a_next > AAC_FRAME)
        s->a_next = t; /* first frame, or frames are missing: follow the tags */
    else if (s->a_next - t > AAC_FRAME)
        return 0; /* the tags say this frame overlaps what we wrote: skip it */
    const AVRational sr = {1, s->rate};
    int64_t dts = av_rescale_q(s->a_next, sr, s->atb);
    int64_t next = av_rescale_q(s->a_next + AAC_FRAME, sr, s->atb);
    if (s->last_adts != INT64_MIN && dts <= s->last_adts)
        dts = s->last_adts + 1;
    if (next <= dts)
        next = dts + 1;
    if ((err = av_new_packet(s->apkt, (int)n)) < 0)
        return fail(s, "write", s->name, err);
    memcpy(s->apkt->data, p, n);
    s->apkt->stream_index = s->ai;
    s->apkt->dts = s->apkt->pts = dts;
    s->apkt->duration = next - dts;
    s->apkt->flags = AV_PKT_FLAG_KEY;
    err = av_write_frame(s->oc, s->apkt);
    av_packet_unref(s->apkt);
    if (err < 0)
        return fail(s, "write", s->name, err);
    s->last_adts = dts;
    s->a_next += AAC_FRAME;
    int64_t end = av_rescale(s->a_next, 1000, s->rate);
    if (end > s->end_ms)
        s->end_ms = end;
    return 0;
}

int kb__seg_cut(struct kb__seg *s)
{
    if (!s->open)
        return 0;
    if (s->held_valid) {
        s->held->duration = s->vdur;
        int err = write_held(s);
        if (err < 0)
            return err;
    }
    return finish_segment(s, s->end_ms);
}

int kb__seg_finish(struct kb__seg *s)
{
    int err = kb__seg_cut(s);
    if (err < 0)
        return err;
    /* Everything is on disk; the trailer (nothing, with skip_trailer) goes
     * nowhere, but it lets the muxer release what it holds. */
    s->fd = -1;
    err = av_write_trailer(s->oc);
    s->header_done = 0;
    return err < 0 ? fail(s, "finish", "part", err) : 0;
}

void kb__seg_free(struct kb__seg *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->tmp[0])
        unlink(s->tmp);
    if (s->oc)
        avformat_free_context(s->oc);
    if (s->pb)
        av_freep(&s->pb->buffer);
    avio_context_free(&s->pb);
    av_packet_free(&s->held);
    av_packet_free(&s->apkt);
    free(s->ps);
    free(s);
}

const char *kb__seg_what(const struct kb__seg *s)
{
    return s->what;
}

const char *kb__seg_file(const struct kb__seg *s)
{
    return s->open ? s->name : "";
}

uint32_t kb__seg_next_index(const struct kb__seg *s)
{
    return s->open ? s->index + 1 : s->index;
}

int64_t kb__seg_end_ms(const struct kb__seg *s)
{
    return s->end_ms;
}
