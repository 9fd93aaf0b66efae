/* kebun test tool: media files (mp4 with HEVC, AV1 or H.264, and AAC, as
 * ffmpeg encodes them in a test) to the Enhanced RTMP tags an E-RTMP
 * publisher (OBS >= 29.1, FFmpeg >= 6.1) sends, written as an FLV file.
 * Debian's ffmpeg 5.1 can neither write nor publish these; the integration
 * tests (tests/integration/test_ertmp.py) read the file and publish its
 * tags with their own RTMP client, so they know every byte they sent.
 *
 *   ertmp_flv [--audio aac|mp4a] [--track1 SECOND.mp4] IN.mp4 OUT.flv
 *
 * Video: SequenceStart with the file's configuration record (hvcC, av1C,
 * avcC), then CodedFrames (with the composition time for hvc1 and avc1;
 * CodedFramesX where it is 0). Audio: legacy AAC tags (aac, the default)
 * or E-RTMP mp4a tags. With --track1, SECOND's video is track 1 and IN's
 * track 0 of an E-RTMP v2 multitrack stream (OneTrack messages), in
 * timestamp order, track 0 first at equal times.
 *
 * Prints what it wrote: "video0 N", "video1 N", "audio N" (frames).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>

struct item {
    int64_t dts;      ///< ms
    int input, video; ///< which file, which kind
    int32_t cts;      ///< ms
    int key;
    size_t seq;       ///< read order, for a stable sort
    AVPacket *pkt;
};

struct input {
    AVFormatContext *ic;
    int vi, ai;
};

static struct item *items;
static size_t n_items, cap_items;

static int add(struct item it)
{
    if (n_items == cap_items) {
        size_t cap = cap_items ? cap_items * 2 : 1024;
        struct item *p = realloc(items, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        items = p;
        cap_items = cap;
    }
    it.seq = n_items;
    items[n_items++] = it;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->dts != y->dts)
        return x->dts < y->dts ? -1 : 1;
    if (x->input != y->input)
        return x->input - y->input;
    return x->seq < y->seq ? -1 : 1;
}

static int open_input(struct input *in, const char *path, int want_audio)
{
    if (avformat_open_input(&in->ic, path, NULL, NULL) < 0 ||
        avformat_find_stream_info(in->ic, NULL) < 0) {
        fprintf(stderr, "%s: cannot read\n", path);
        return -1;
    }
    in->vi = av_find_best_stream(in->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    in->ai = want_audio ? av_find_best_stream(in->ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0) : -1;
    if (in->vi < 0) {
        fprintf(stderr, "%s: no video\n", path);
        return -1;
    }
    return 0;
}

/* Every packet of the file's video (and audio) stream, timed in ms. */
static int read_all(struct input *in, int idx)
{
    const AVRational ms = {1, 1000};
    for (;;) {
        AVPacket *pkt = av_packet_alloc();
        if (!pkt)
            return -ENOMEM;
        if (av_read_frame(in->ic, pkt) < 0) {
            av_packet_free(&pkt);
            return 0;
        }
        int si = pkt->stream_index;
        if (si != in->vi && si != in->ai) {
            av_packet_free(&pkt);
            continue;
        }
        AVStream *st = in->ic->streams[si];
        int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
        int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : dts;
        struct item it = {
            .dts = av_rescale_q(dts, st->time_base, ms),
            .input = idx,
            .video = si == in->vi,
            .key = (pkt->flags & AV_PKT_FLAG_KEY) != 0,
            .pkt = pkt,
        };
        it.cts = (int32_t)(av_rescale_q(pts, st->time_base, ms) - it.dts);
        if (add(it) < 0)
            return -ENOMEM;
    }
}

static const char *fourcc(enum AVCodecID id)
{
    switch (id) {
    case AV_CODEC_ID_HEVC:
        return "hvc1";
    case AV_CODEC_ID_AV1:
        return "av01";
    case AV_CODEC_ID_H264:
        return "avc1";
    default:
        return NULL;
    }
}

static FILE *out;

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* One FLV tag: header, the tag header bytes h, the payload p. */
static int tag(int type, uint32_t ts, const uint8_t *h, size_t hn, const uint8_t *p, size_t n)
{
    uint8_t th[11] = {(uint8_t)type};
    size_t size = hn + n;
    put_be(th + 1, size, 3);
    put_be(th + 4, ts & 0xFFFFFF, 3);
    th[7] = (uint8_t)(ts >> 24);
    uint8_t prev[4];
    put_be(prev, 11 + size, 4);
    if (fwrite(th, 1, 11, out) != 11 || fwrite(h, 1, hn, out) != hn ||
        (n && fwrite(p, 1, n, out) != n) || fwrite(prev, 1, 4, out) != 4)
        return -EIO;
    return 0;
}

/* A video tag header: extended, plain or OneTrack multitrack (track >= 0). */
static size_t video_head(uint8_t *h, int frame_type, int pkt_type, const char *cc, int track)
{
    size_t o = 0;
    if (track < 0) {
        h[o++] = (uint8_t)(0x80 | frame_type << 4 | pkt_type);
    } else {
        h[o++] = (uint8_t)(0x80 | frame_type << 4 | 6); /* Multitrack */
        h[o++] = (uint8_t)(0 << 4 | pkt_type);          /* OneTrack */
    }
    memcpy(h + o, cc, 4);
    o += 4;
    if (track >= 0)
        h[o++] = (uint8_t)track;
    return o;
}

int main(int argc, char **argv)
{
    const char *second = NULL, *audio = "aac";
    int a = 1;
    for (; a + 1 < argc && argv[a][0] == '-' && argv[a][1] == '-'; a += 2) {
        if (strcmp(argv[a], "--track1") == 0)
            second = argv[a + 1];
        else if (strcmp(argv[a], "--audio") == 0)
            audio = argv[a + 1];
        else
            break;
    }
    if (argc - a != 2 || (strcmp(audio, "aac") != 0 && strcmp(audio, "mp4a") != 0)) {
        fprintf(stderr, "usage: ertmp_flv [--audio aac|mp4a] [--track1 SECOND.mp4] IN.mp4 "
                        "OUT.flv\n");
        return 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    struct input in[2] = {{.vi = -1, .ai = -1}, {.vi = -1, .ai = -1}};
    int n_in = second ? 2 : 1;
    if (open_input(&in[0], argv[a], 1) < 0 || (second && open_input(&in[1], second, 0) < 0))
        return 1;
    for (int i = 0; i < n_in; i++)
        if (read_all(&in[i], i) < 0)
            return 1;
    qsort(items, n_items, sizeof(*items), by_time);
    /* B-frames start the dts below 0; the RTMP timeline starts at 0. */
    int64_t first = n_items ? items[0].dts : 0;

    out = fopen(argv[a + 1], "wb");
    if (!out) {
        perror(argv[a + 1]);
        return 1;
    }
    static const uint8_t flv[13] = {'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0};
    int err = fwrite(flv, 1, sizeof(flv), out) == sizeof(flv) ? 0 : -EIO;
    int mp4a = strcmp(audio, "mp4a") == 0;
    uint8_t h[16];

    /* Sequence headers first, at time 0: each video track's, then audio's. */
    for (int i = 0; i < n_in && !err; i++) {
        AVCodecParameters *cp = in[i].ic->streams[in[i].vi]->codecpar;
        const char *cc = fourcc(cp->codec_id);
        if (!cc || !cp->extradata_size) {
            fprintf(stderr, "input %d: no HEVC, AV1 or H.264 with its configuration record\n", i);
            return 1;
        }
        size_t hn = video_head(h, 1, 0, cc, second ? i : -1);
        err = tag(9, 0, h, hn, cp->extradata, (size_t)cp->extradata_size);
    }
    AVCodecParameters *acp = in[0].ai >= 0 ? in[0].ic->streams[in[0].ai]->codecpar : NULL;
    if (acp && !err) {
        if (mp4a) {
            h[0] = 0x90; /* SoundFormat 9 (ExHeader), SequenceStart */
            memcpy(h + 1, "mp4a", 4);
        } else {
            h[0] = 0xAF;
            h[1] = 0;
        }
        err = tag(8, 0, h, mp4a ? 5 : 2, acp->extradata, (size_t)acp->extradata_size);
    }

    long frames[3] = {0, 0, 0};
    for (size_t k = 0; k < n_items && !err; k++) {
        struct item *it = &items[k];
        uint32_t ts = (uint32_t)(it->dts - first);
        if (!it->video) {
            if (mp4a) {
                h[0] = 0x91; /* CodedFrames */
                memcpy(h + 1, "mp4a", 4);
            } else {
                h[0] = 0xAF;
                h[1] = 1;
            }
            err = tag(8, ts, h, mp4a ? 5 : 2, it->pkt->data, (size_t)it->pkt->size);
            frames[2]++;
            continue;
        }
        struct input *src = &in[it->input];
        enum AVCodecID id = src->ic->streams[src->vi]->codecpar->codec_id;
        int with_cts = id != AV_CODEC_ID_AV1;
        int pkt_type = with_cts && it->cts == 0 ? 3 : 1; /* CodedFramesX : CodedFrames */
        size_t hn = video_head(h, it->key ? 1 : 2, pkt_type, fourcc(id), second ? it->input : -1);
        if (pkt_type == 1 && with_cts) {
            put_be(h + hn, (uint32_t)it->cts & 0xFFFFFF, 3);
            hn += 3;
        }
        err = tag(9, ts, h, hn, it->pkt->data, (size_t)it->pkt->size);
        frames[it->input]++;
    }
    if (fclose(out) != 0)
        err = -EIO;
    if (err) {
        fprintf(stderr, "%s: write failed\n", argv[a + 1]);
        return 1;
    }
    printf("video0 %ld\n", frames[0]);
    if (second)
        printf("video1 %ld\n", frames[1]);
    printf("audio %ld\n", frames[2]);
    for (size_t k = 0; k < n_items; k++)
        av_packet_free(&items[k].pkt);
    free(items);
    for (int i = 0; i < n_in; i++)
        avformat_close_input(&in[i].ic);
    return 0;
}
