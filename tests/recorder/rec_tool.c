/* kebun recorder test driver: feeds FLV files (made by ffmpeg) through the
 * recorder's public API the way the relay does, and runs the checks that
 * need the library from the inside. test_recorder.py drives it and judges
 * the files it writes with ffprobe/ffmpeg.
 *
 *   rec_tool record DIR STREAM [options] FLV [FLV...]
 *       one broadcast; between two FLVs the publisher "leaves"
 *       (kb_recorder_stream_gap) and returns with the next file, its
 *       timestamps continuing 1 ms after the last, as the relay's
 *       timeline does.
 *       --format fmp4|mpegts  --segment MS  --thumb MS  --export 0|1
 *       --queue BYTES  --ts-offset N (added to every timestamp, mod 2^32)
 *       --pace X (X times real time; 0 = as fast as possible)
 *       --limit-ms MS (only the first MS of each file)  --no-end
 *       --first-ms MS (only the first MS of the first file)
 *       --fsize BYTES (RLIMIT_FSIZE for the disk-full test without root)
 *       --slow-export MS (every packet an export copies takes MS longer)
 *       --uid N (run as this user: permission tests when started as root)
 *       --snap 1 (after each publisher gap print the playlist's
 *                 EXT-X-TARGETDURATION as snap=N)
 *       --fsync 0|1 (fsync = segment)  --shutdown-timeout MS
 *       --trace-sync 1 (print "sync PATH" / "rename FROM TO" lines)
 *       --stop open|ended (no waiting for the jobs: kb_recorder_free right
 *                 away, with the recording still open or its end queued;
 *                 prints free.ms)
 *       prints record.ms: from the first message until the end is written
 *   rec_tool recover DIR [export]         the start-up recovery pass (and the
 *                                         exports it finds due), then exit
 *   rec_tool export DIR STREAM/RECORDING  kb_recorder_export, waits for it
 *   rec_tool cliexport RECDIR [SLOW_MS]   kb_recorder_export_dir (kebun --export)
 *   rec_tool retention DIR STREAM MAX_AGE_MS MAX_BYTES [LIVE_FLV]
 *   rec_tool unit DIR FLV                 names, queue bound, control items
 *                                         through a full queue, status
 *   rec_tool garbage DIR SEED             random tag bodies: no crash, no leak
 *   rec_tool slowexport DIR FLV           a long export on the job thread does
 *                                         not hold up another stream; shutdown
 *                                         does not wait for it
 *   rec_tool nolock DIR FLV               kb_recorder_stream_msg takes no lock
 *   rec_tool nomem DIR FLV                malloc fails on the loop thread: a
 *                                         counted skip, no lost end
 *
 * Log lines go to stderr as "LEVEL stream=NAME text"; `record` prints the
 * final status on stdout as key=value lines.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "recorder/internal.h"
#include "recorder/recorder.h"
#include "relay/rtmp/flv.h"
#include "relay/rtmp/msg.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed\n  left:  %lld\n  right: %lld\n",      \
                    __FILE__, __LINE__, #a, #b, a_, b_);                                           \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* The exit status of a command whose CHECKs ran: 1 (and how many failed)
 * or 0. */
static int verdict(void)
{
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}

__attribute__((format(printf, 3, 0))) static void log_cb(int level, const char *stream,
                                                         const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s", names[level & 3]);
    if (stream)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " stream=%s", stream);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " ");
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

/* ---- FLV ---------------------------------------------------------------- */

/* An FLV file, or any file libavformat reads (mp4 with HEVC or AV1) turned
 * into the Enhanced RTMP messages a newer publisher (OBS, FFmpeg >= 6.1)
 * would send: hvc1/av01 SequenceStart + CodedFrames, AAC as legacy tags. */
struct flv {
    uint8_t *buf;
    size_t len, pos;
    AVFormatContext *ic;
    AVPacket *pkt;
    int vi, ai;
    int hdrs;      ///< sequence headers sent
    int64_t first; ///< ms subtracted from every timestamp
};

static struct kb_msg *av_msg(uint8_t type, uint32_t ts, const uint8_t *hdr, size_t hn,
                             const uint8_t *p, size_t n)
{
    struct kb_msg *m = kb_msg_new(type, ts, 1, (uint32_t)(hn + n));
    if (!m)
        return NULL;
    memcpy(m->data, hdr, hn);
    if (n)
        memcpy(m->data + hn, p, n);
    m->len = (uint32_t)(hn + n);
    kb_flv_classify(m);
    return m;
}

static const char *fourcc(enum AVCodecID id)
{
    return id == AV_CODEC_ID_HEVC ? "hvc1" : id == AV_CODEC_ID_AV1 ? "av01" : "avc1";
}

static struct kb_msg *av_next(struct flv *f)
{
    AVStream *vs = f->vi >= 0 ? f->ic->streams[f->vi] : NULL;
    AVStream *as = f->ai >= 0 ? f->ic->streams[f->ai] : NULL;
    if (f->hdrs == 0 && vs) {
        f->hdrs = 1;
        uint8_t h[5] = {0x80 | (1 << 4) | 0};
        memcpy(h + 1, fourcc(vs->codecpar->codec_id), 4);
        return av_msg(9, 0, h, 5, vs->codecpar->extradata, (size_t)vs->codecpar->extradata_size);
    }
    if (f->hdrs <= 1 && as) {
        f->hdrs = 2;
        uint8_t h[2] = {0xaf, 0};
        return av_msg(8, 0, h, 2, as->codecpar->extradata, (size_t)as->codecpar->extradata_size);
    }
    f->hdrs = 2;
    for (;;) {
        av_packet_unref(f->pkt);
        if (av_read_frame(f->ic, f->pkt) < 0)
            return NULL;
        AVStream *st = f->ic->streams[f->pkt->stream_index];
        const AVRational ms = {1, 1000};
        int64_t dts = av_rescale_q(f->pkt->dts, st->time_base, ms) - f->first;
        if (st == vs) {
            int32_t cts = (int32_t)(av_rescale_q(f->pkt->pts, st->time_base, ms) -
                                    av_rescale_q(f->pkt->dts, st->time_base, ms));
            int key = (f->pkt->flags & AV_PKT_FLAG_KEY) != 0;
            enum AVCodecID id = vs->codecpar->codec_id;
            uint8_t h[8] = {(uint8_t)(0x80 | ((key ? 1 : 2) << 4) | 1)};
            memcpy(h + 1, fourcc(id), 4);
            size_t hn = 5;
            if (id != AV_CODEC_ID_AV1) {
                h[5] = (uint8_t)(cts >> 16), h[6] = (uint8_t)(cts >> 8), h[7] = (uint8_t)cts;
                hn = 8;
            }
            return av_msg(9, (uint32_t)dts, h, hn, f->pkt->data, (size_t)f->pkt->size);
        }
        if (st == as) {
            uint8_t h[2] = {0xaf, 1};
            return av_msg(8, (uint32_t)dts, h, 2, f->pkt->data, (size_t)f->pkt->size);
        }
    }
}

static int av_open(struct flv *f, const char *path)
{
    if (avformat_open_input(&f->ic, path, NULL, NULL) < 0 ||
        avformat_find_stream_info(f->ic, NULL) < 0) {
        fprintf(stderr, "%s: cannot read\n", path);
        return -1;
    }
    f->vi = av_find_best_stream(f->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    f->ai = av_find_best_stream(f->ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    f->pkt = av_packet_alloc();
    /* mp4 with B-frames starts its dts below 0; the RTMP timeline at 0. */
    f->first = INT64_MAX;
    for (unsigned i = 0; i < f->ic->nb_streams; i++) {
        AVStream *st = f->ic->streams[i];
        int64_t s = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && st->codecpar->video_delay)
            s -= av_rescale_q(st->codecpar->video_delay, av_inv_q(st->avg_frame_rate),
                              st->time_base);
        int64_t ms = av_rescale_q(s, st->time_base, (AVRational){1, 1000});
        if (ms < f->first)
            f->first = ms;
    }
    if (f->first == INT64_MAX)
        f->first = 0;
    return f->pkt ? 0 : -1;
}

static void flv_close(struct flv *f)
{
    free(f->buf);
    av_packet_free(&f->pkt);
    avformat_close_input(&f->ic);
}

static int flv_open(struct flv *f, const char *path)
{
    memset(f, 0, sizeof(*f));
    f->vi = f->ai = -1;
    size_t plen = strlen(path);
    if (plen < 4 || strcmp(path + plen - 4, ".flv") != 0)
        return av_open(f, path);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->buf = malloc((size_t)n);
    if (!f->buf || fread(f->buf, 1, (size_t)n, fp) != (size_t)n || n < 13 ||
        memcmp(f->buf, "FLV", 3) != 0) {
        fprintf(stderr, "%s: not an FLV file\n", path);
        fclose(fp);
        free(f->buf);
        return -1;
    }
    fclose(fp);
    f->len = (size_t)n;
    uint32_t hdr = (uint32_t)f->buf[5] << 24 | f->buf[6] << 16 | f->buf[7] << 8 | f->buf[8];
    f->pos = hdr + 4;
    return 0;
}

/* The next tag as a classified message, NULL at the end. */
static struct kb_msg *flv_next(struct flv *f, uint32_t offset)
{
    if (f->ic)
        return av_next(f);
    while (f->pos + 11 <= f->len) {
        const uint8_t *p = f->buf + f->pos;
        uint8_t type = p[0] & 0x1f;
        uint32_t size = (uint32_t)p[1] << 16 | p[2] << 8 | p[3];
        uint32_t ts = (uint32_t)p[7] << 24 | (uint32_t)p[4] << 16 | p[5] << 8 | p[6];
        if (f->pos + 11 + size > f->len)
            return NULL;
        f->pos += 11 + size + 4;
        if (type != 8 && type != 9 && type != 18)
            continue;
        struct kb_msg *m = kb_msg_new_copy(type, ts + offset, 1, p + 11, size);
        if (!m)
            return NULL;
        kb_flv_classify(m);
        return m;
    }
    return NULL;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void print_status(struct kb_recorder_stream *s, const char *when)
{
    struct kb_recorder_status st;
    kb_recorder_stream_status(s, &st);
    printf("%s.state=%d\n%s.dir=%s\n%s.file=%s\n%s.bytes=%llu\n%s.segments=%u\n%s.parts=%u\n"
           "%s.dropped=%llu\n%s.last_error=%s\n",
           when, st.state, when, st.dir, when, st.file, when, (unsigned long long)st.bytes, when,
           st.segments, when, st.parts, when, (unsigned long long)st.dropped, when, st.last_error);
}

/* Until the worker has dealt with everything the stream was told (its
 * status snapshot included). */
static void wait_idle(struct kb_recorder_stream *s)
{
    while (!kb__recorder_stream_idle(s))
        usleep(1000);
}

/* Exports and retention run on the job thread; kb_recorder_free would
 * cancel what has not finished. */
static void wait_jobs(struct kb_recorder *r)
{
    kb__recorder_wait_jobs(r);
}

/* The stream's handle, with retention limits when `lim` is given (as the
 * relay's sync sets them); returns once the worker has queued the
 * retention pass they ask for. */
static struct kb_recorder_stream *stream_get(struct kb_recorder *r, const char *name,
                                             const struct kb_recorder_limits *lim)
{
    struct kb_recorder_stream *s = kb_recorder_stream_get(r, name);
    if (s && lim) {
        kb_recorder_stream_limits(s, lim);
        wait_idle(s);
    }
    return s;
}

static unsigned slow_export_us;
static atomic_uint export_packets;

static void slow_export(void)
{
    atomic_fetch_add(&export_packets, 1);
    if (slow_export_us)
        usleep(slow_export_us);
}

/* The EXT-X-TARGETDURATION of the stream's current playlist, or -1. */
static int target_duration(const char *root, struct kb_recorder_stream *s)
{
    struct kb_recorder_status st;
    kb_recorder_stream_status(s, &st);
    char path[4096], line[256];
    snprintf(path, sizeof(path), "%s/%s/index.m3u8", root, st.dir);
    FILE *f = fopen(path, "r");
    int t = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "#EXT-X-TARGETDURATION:", 22) == 0)
            t = atoi(line + 22);
    if (f)
        fclose(f);
    return t;
}

/* A recorder, the handle of one stream and the file to feed it; NULL (and
 * nothing left open) when any of them fails. */
static struct kb_recorder *open_one(const struct kb_recorder_conf *conf, const char *name,
                                    const char *path, struct kb_recorder_stream **s,
                                    struct flv *flv)
{
    struct kb_recorder *r;
    if (kb_recorder_new(conf, &r) < 0)
        return NULL;
    *s = kb_recorder_stream_get(r, name);
    if (!*s || flv_open(flv, path) < 0) {
        kb_recorder_free(r);
        return NULL;
    }
    return r;
}

/* ---- no lock on the loop thread ----------------------------------------- */

/* rec_tool is linked with --wrap=pthread_mutex_lock,--wrap=sem_post
 * (tests/recorder/meson.build): every call the recorder's code makes goes
 * through these, and they count the ones made while `counting` is set on
 * the calling thread. */
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __real_sem_post(sem_t *sem);
int __wrap_sem_post(sem_t *sem);

static _Thread_local int counting;
static _Thread_local unsigned long counted_locks, counted_posts;
static _Thread_local int malloc_fails; ///< rec_tool nomem: malloc returns NULL here

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

void *__wrap_malloc(size_t n)
{
    return malloc_fails ? NULL : __real_malloc(n);
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
    counted_locks += counting;
    return __real_pthread_mutex_lock(m);
}

int __wrap_sem_post(sem_t *sem)
{
    counted_posts += counting;
    return __real_sem_post(sem);
}

/* --trace-sync 1: every fsync (with the path of its descriptor) and every
 * rename, in the order the recorder makes them, as "sync PATH" and
 * "rename FROM TO" lines on stderr; test_recorder.py checks that a file is
 * on the disk before anything lists it. */
int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);

static atomic_int trace_sync;

int __wrap_fsync(int fd)
{
    int r = __real_fsync(fd);
    if (atomic_load(&trace_sync)) {
        char link[64], path[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        path[n > 0 ? n : 0] = 0;
        fprintf(stderr, "sync %s\n", path);
    }
    return r;
}

int __wrap_rename(const char *from, const char *to)
{
    int r = __real_rename(from, to);
    if (atomic_load(&trace_sync))
        fprintf(stderr, "rename %s %s\n", from, to);
    return r;
}

static int cmd_record(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rec_tool record DIR STREAM [options] FLV...\n");
        return 2;
    }
    struct kb_recorder_conf conf = {
        .dir = argv[1],
        .segment_ms = 4000,
        .format = KB_RECORDER_FMP4,
        .queue_bytes = 64u << 20,
        .thumb_interval_ms = 0,
        .export_mp4 = 1,
        .log = log_cb,
    };
    const char *stream = argv[2];
    double pace = 0;
    uint32_t offset = 0, limit_ms = 0, first_ms = 0;
    int end = 1, snap = 0, stop = 0;
    int i = 3;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(o, "--format") == 0)
            conf.format = strcmp(v, "mpegts") == 0 ? KB_RECORDER_MPEGTS : KB_RECORDER_FMP4;
        else if (strcmp(o, "--segment") == 0)
            conf.segment_ms = (uint32_t)atoi(v);
        else if (strcmp(o, "--thumb") == 0)
            conf.thumb_interval_ms = (uint32_t)atoi(v);
        else if (strcmp(o, "--export") == 0)
            conf.export_mp4 = atoi(v);
        else if (strcmp(o, "--queue") == 0)
            conf.queue_bytes = strtoull(v, NULL, 10);
        else if (strcmp(o, "--ts-offset") == 0)
            offset = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(o, "--pace") == 0)
            pace = atof(v);
        else if (strcmp(o, "--limit-ms") == 0)
            limit_ms = (uint32_t)atoi(v);
        else if (strcmp(o, "--first-ms") == 0)
            first_ms = (uint32_t)atoi(v);
        else if (strcmp(o, "--no-end") == 0)
            end = 0, i--;
        else if (strcmp(o, "--snap") == 0)
            snap = atoi(v);
        else if (strcmp(o, "--fsync") == 0)
            conf.fsync = atoi(v) ? KB_RECORDER_FSYNC_SEGMENT : KB_RECORDER_FSYNC_OFF;
        else if (strcmp(o, "--trace-sync") == 0)
            atomic_store(&trace_sync, atoi(v));
        else if (strcmp(o, "--shutdown-timeout") == 0)
            conf.shutdown_timeout_ms = (uint32_t)atoi(v);
        else if (strcmp(o, "--stop") == 0)
            stop = strcmp(v, "open") == 0 ? 1 : strcmp(v, "ended") == 0 ? 2 : -1;
        else if (strcmp(o, "--slow-export") == 0) {
            slow_export_us = (unsigned)atoi(v) * 1000;
            kb__export_hook = slow_export;
        } else if (strcmp(o, "--uid") == 0) {
            uid_t uid = (uid_t)atoi(v);
            if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0) {
                perror("setuid");
                return 1;
            }
        } else if (strcmp(o, "--fsize") == 0) {
            struct rlimit rl = {strtoull(v, NULL, 10), strtoull(v, NULL, 10)};
            signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG */
            setrlimit(RLIMIT_FSIZE, &rl);
        } else {
            fprintf(stderr, "unknown option %s\n", o);
            return 2;
        }
    }
    struct kb_recorder *r;
    int err = kb_recorder_new(&conf, &r);
    if (err < 0) {
        fprintf(stderr, "kb_recorder_new: %s\n", strerror(-err));
        return 1;
    }
    struct kb_recorder_stream *s = stream_get(r, stream, NULL);
    if (!s) {
        kb_recorder_free(r);
        return 1;
    }
    kb_recorder_stream_begin(s);
    uint32_t last = offset;
    int have_last = 0;
    int64_t t0 = now_us();
    uint32_t media0 = 0;
    for (int f = i; f < argc; f++) {
        struct flv flv;
        if (flv_open(&flv, argv[f]) < 0) {
            kb_recorder_free(r);
            return 1;
        }
        if (f > i) {
            kb_recorder_stream_gap(s);
            if (snap) {
                wait_idle(s);
                printf("snap=%d\n", target_duration(conf.dir, s));
            }
        }
        /* The next file continues the timeline 1 ms after the last message. */
        uint32_t shift = offset, first = 0;
        int started = 0;
        struct kb_msg *m;
        while ((m = flv_next(&flv, 0))) {
            uint32_t ts = m->timestamp;
            if (!started) {
                started = 1;
                first = ts;
                shift = have_last ? last + 1 - first : offset;
                if (!have_last)
                    media0 = ts;
            }
            uint32_t lim = f == i && first_ms ? first_ms : limit_ms;
            if (lim && ts - first > lim) {
                kb_msg_unref(m);
                break;
            }
            m->timestamp = ts + shift;
            if (pace > 0) {
                int64_t due =
                    t0 + (int64_t)((double)(m->timestamp - offset - media0) * 1000 / pace);
                int64_t wait = due - now_us();
                if (wait > 0)
                    usleep((useconds_t)wait);
            }
            last = m->timestamp;
            have_last = 1;
            kb_recorder_stream_msg(s, m);
            kb_msg_unref(m);
        }
        flv_close(&flv);
    }
    if (!end) {
        /* Simulate a crash at the end: the process dies with the recording open. */
        wait_idle(s);
        print_status(s, "live");
        fflush(stdout);
        _exit(0);
    }
    wait_idle(s);
    print_status(s, "live");
    if (snap)
        printf("snap=%d\n", target_duration(conf.dir, s));
    if (stop) {
        /* A shutdown: kb_recorder_free closes what is open (open), or
         * finds the end queued (ended), and waits for the exports up to
         * the shutdown timeout, without our waiting for the jobs first. */
        if (stop == 2)
            kb_recorder_stream_end(s);
        int64_t t0_free = now_us();
        kb_recorder_free(r);
        printf("free.ms=%lld\n", (long long)((now_us() - t0_free) / 1000));
        return stop < 0 ? 2 : 0;
    }
    kb_recorder_stream_end(s);
    wait_idle(s);
    printf("record.ms=%lld\n", (long long)((now_us() - t0) / 1000));
    print_status(s, "end");
    wait_jobs(r);
    kb_recorder_free(r);
    return 0;
}

static int cmd_recover(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    struct kb_recorder_conf conf = {
        .dir = argv[1], .log = log_cb, .export_mp4 = argc > 2 && strcmp(argv[2], "export") == 0};
    struct kb_recorder *r;
    int err = kb_recorder_new(&conf, &r);
    if (err < 0)
        return 1;
    wait_jobs(r);
    kb_recorder_free(r);
    return 0;
}

static int cmd_cliexport(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (argc > 2) {
        slow_export_us = (unsigned)atoi(argv[2]) * 1000;
        kb__export_hook = slow_export;
    }
    int err = kb_recorder_export_dir(argv[1], log_cb);
    printf("export=%d\n", err);
    return err == 0 ? 0 : 1;
}

struct done_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, err;
};

static void export_done(void *ud, int err)
{
    struct done_wait *w = ud;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->err = err;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int cmd_export(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct kb_recorder_conf conf = {.dir = argv[1], .log = log_cb};
    struct kb_recorder *r;
    if (kb_recorder_new(&conf, &r) < 0)
        return 1;
    struct done_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    int err = kb_recorder_export(r, argv[2], export_done, &w);
    if (err == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        err = w.err;
    }
    kb_recorder_free(r);
    printf("export=%d\n", err);
    return err == 0 ? 0 : 1;
}

static int cmd_retention(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    struct kb_recorder_conf conf = {.dir = argv[1], .log = log_cb, .export_mp4 = 0};
    struct kb_recorder_limits lim = {strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10)};
    struct kb_recorder *r;
    if (kb_recorder_new(&conf, &r) < 0)
        return 1;
    if (argc < 6) {
        /* Retention runs when the stream's handle is made. */
        stream_get(r, argv[2], &lim);
        wait_jobs(r);
        kb_recorder_free(r);
        return 0;
    }
    /* A live recording, then new limits (as a config reload would bring):
     * the older ones go, the live one stays. */
    struct kb_recorder_stream *s = stream_get(r, argv[2], NULL);
    struct flv flv;
    if (!s || flv_open(&flv, argv[5]) < 0) {
        kb_recorder_free(r);
        return 1;
    }
    kb_recorder_stream_begin(s);
    struct kb_msg *m;
    while ((m = flv_next(&flv, 0))) {
        int stop = m->timestamp > 5000;
        kb_recorder_stream_msg(s, m);
        kb_msg_unref(m);
        if (stop)
            break;
    }
    flv_close(&flv);
    wait_idle(s);
    stream_get(r, argv[2], &lim);
    wait_jobs(r);
    kb_recorder_free(r); /* shutdown: the live one completes, no retention */
    return 0;
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void unit_names(const char *dir)
{
    struct kb_recorder_conf conf = {.dir = dir, .log = log_cb};
    struct kb_recorder *r;
    CHECK_EQ(kb_recorder_new(&conf, &r), 0);
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = 0;
    const char *bad[] = {"",    ".",    "..",        "a/b",     "../x",
                         "x\n", "a\\b", "tab\tname", "del\x7f", longname};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kb_recorder_stream *s = stream_get(r, bad[i], NULL);
        CHECK(s == NULL);
        kb_recorder_stream_begin(s); /* NULL handles are ignored */
        kb_recorder_stream_end(s);
    }
    longname[64] = 0; /* 64 bytes is allowed */
    CHECK(stream_get(r, longname, NULL) != NULL);
    CHECK(stream_get(r, "..hidden-but-fine", NULL) != NULL);
    const char *bad_rec[] = {"../x", "a/../b", "a/b/c", "a", "/a/b", "a/", "a/..", "./b"};
    for (size_t i = 0; i < sizeof(bad_rec) / sizeof(bad_rec[0]); i++)
        CHECK_EQ(kb_recorder_export(r, bad_rec[i], NULL, NULL), -EINVAL);
    kb_recorder_free(r);
    /* Nothing was created for any of them: only the root exists, empty. */
    CHECK_EQ(dir_entries(dir), 0);
}

/* A held worker lets the queue fill: past the bound messages are skipped
 * and counted, sequence headers still pass, and after the worker drains
 * it, the stream resumes at a keyframe (the recording decodes cleanly). */
static void unit_queue(const char *dir, const char *flv_path)
{
    const uint64_t bound = 128 * 1024;
    struct kb_recorder_conf conf = {
        .dir = dir, .segment_ms = 4000, .queue_bytes = bound, .log = log_cb, .export_mp4 = 0};
    struct kb_recorder *r;
    CHECK_EQ(kb_recorder_new(&conf, &r), 0);
    struct kb_recorder_stream *s = stream_get(r, "queue", NULL);
    CHECK(s != NULL);
    struct flv flv;
    if (!s || flv_open(&flv, flv_path) < 0) {
        failures++;
        kb_recorder_free(r);
        return;
    }
    struct kb_recorder_status st;
    kb_recorder_stream_status(s, &st);
    CHECK_EQ(st.state, KB_RECORDER_IDLE);
    kb__recorder_hold(r, 1);
    kb_recorder_stream_begin(s);
    struct kb_msg *m, *vhdr = NULL;
    int held = 1;
    while ((m = flv_next(&flv, 0))) {
        if ((m->flags & KB_MSGF_SEQHDR) && (m->flags & KB_MSGF_VIDEO) && !vhdr)
            vhdr = kb_msg_ref(m);
        uint32_t ts = m->timestamp;
        int key = (m->flags & KB_MSGF_KEY) != 0;
        kb_recorder_stream_msg(s, m);
        kb_msg_unref(m);
        if (held && ts > 12000) {
            kb_recorder_stream_status(s, &st);
            CHECK(st.dropped > 0);
            CHECK(kb__recorder_stream_queued(s) <= bound);
            /* A sequence header is never skipped, even over the bound. */
            uint64_t before = kb__recorder_stream_queued(s);
            kb_recorder_stream_msg(s, vhdr);
            CHECK_EQ(kb__recorder_stream_queued(s), before + vhdr->len);
            kb__recorder_hold(r, 0);
            held = 0;
            wait_idle(s);
            kb_recorder_stream_status(s, &st);
            CHECK_EQ(st.state, KB_RECORDER_RECORDING);
            CHECK(st.dir[0] != 0);
        }
        /* Once released, the worker keeps up when fed at a sane pace. */
        if (!held && key)
            wait_idle(s);
    }
    kb_msg_unref(vhdr);
    flv_close(&flv);
    uint64_t dropped;
    kb_recorder_stream_status(s, &st);
    dropped = st.dropped;
    CHECK(dropped > 0);
    kb_recorder_stream_end(s);
    wait_idle(s);
    kb_recorder_stream_status(s, &st);
    CHECK_EQ(st.state, KB_RECORDER_IDLE);
    kb_recorder_free(r);
    printf("queue_dropped=%llu\n", (unsigned long long)dropped);
}

/* Feed `path` to s (worker held) until the keyframe gate has skipped
 * something: the queue is full. */
static int fill(struct kb_recorder_stream *s, const char *path)
{
    struct flv flv;
    if (flv_open(&flv, path) < 0)
        return -1;
    struct kb_recorder_status st = {0};
    struct kb_msg *m;
    while (st.dropped == 0 && (m = flv_next(&flv, 0))) {
        kb_recorder_stream_msg(s, m);
        kb_msg_unref(m);
        kb_recorder_stream_status(s, &st);
    }
    flv_close(&flv);
    return st.dropped > 0 ? 0 : -1;
}

/* Control items go through a full queue, in order: an end sent while the
 * gate skips media closes the recording; new retention limits sent while
 * it skips apply at the next end (1 byte: both finished recordings go). */
static void unit_control(const char *dir, const char *flv_path)
{
    struct kb_recorder_conf conf = {
        .dir = dir, .segment_ms = 1000, .queue_bytes = 256 << 10, .log = log_cb, .export_mp4 = 0};
    struct kb_recorder *r;
    CHECK_EQ(kb_recorder_new(&conf, &r), 0);
    struct kb_recorder_stream *s = stream_get(r, "ctl", NULL);
    CHECK(s != NULL);
    if (!s) {
        kb_recorder_free(r);
        return;
    }
    kb__recorder_hold(r, 1);
    kb_recorder_stream_begin(s);
    CHECK_EQ(fill(s, flv_path), 0);
    kb_recorder_stream_end(s);
    kb__recorder_hold(r, 0);
    wait_idle(s);
    struct kb_recorder_status st;
    kb_recorder_stream_status(s, &st);
    CHECK_EQ(st.state, KB_RECORDER_IDLE);
    uint64_t dropped = st.dropped;
    char sdir[4200];
    snprintf(sdir, sizeof(sdir), "%s/ctl", dir);
    CHECK_EQ(dir_entries(sdir), 1);
    /* The second broadcast. */
    kb__recorder_hold(r, 1);
    kb_recorder_stream_begin(s);
    CHECK_EQ(fill(s, flv_path), 0);
    static const struct kb_recorder_limits one_byte = {.max_bytes = 1};
    kb_recorder_stream_limits(s, &one_byte);
    kb_recorder_stream_end(s);
    kb__recorder_hold(r, 0);
    wait_idle(s);
    wait_jobs(r);
    CHECK_EQ(dir_entries(sdir), 0);
    kb_recorder_free(r);
    printf("control_dropped=%llu\n", (unsigned long long)dropped);
}

/* Hostile input: random tag bodies behind plausible headers (sequence
 * headers with garbage records, frames that are noise, truncated tags,
 * timestamps that jump both ways). The recorder may refuse all of it; it
 * must not crash, leak or hang. */
static int cmd_garbage(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct kb_recorder_conf conf = {.dir = argv[1],
                                    .log = log_cb,
                                    .export_mp4 = 1,
                                    .segment_ms = 1000,
                                    .thumb_interval_ms = 500};
    unsigned seed = (unsigned)atoi(argv[2]);
    struct kb_recorder *r;
    if (kb_recorder_new(&conf, &r) < 0)
        return 1;
    struct kb_recorder_stream *s = stream_get(r, "garbage", NULL);
    static const uint8_t heads[][5] = {
        {0x17, 0, 0, 0, 0},         /* AVC sequence header */
        {0x17, 1, 0, 0, 0},         /* AVC keyframe */
        {0x27, 1, 0, 0, 0},         /* AVC inter frame */
        {0x90, 'h', 'v', 'c', '1'}, /* E-RTMP HEVC SequenceStart */
        {0x91, 'h', 'v', 'c', '1'}, /* E-RTMP HEVC CodedFrames, key */
        {0x90, 'a', 'v', '0', '1'}, /* E-RTMP AV1 SequenceStart */
        {0x93, 'a', 'v', '0', '1'}, /* E-RTMP AV1 CodedFramesX, key */
        {0xaf, 0, 0, 0, 0},         /* AAC sequence header */
        {0xaf, 1, 0, 0, 0},         /* AAC frame */
        {0x9f, 'm', 'p', '4', 'a'}, /* E-RTMP AAC, bad packet type */
        {0x2f, 1, 0, 0, 0},         /* MP3 */
    };
    /* Valid-looking records now and then, so parts really open. */
    static const uint8_t avcc[] = {1,    0x42, 0xc0, 0x1e, 0xff, 0xe1, 0,    4,   0x67,
                                   0x42, 0xc0, 0x1e, 1,    0,    2,    0x68, 0xce};
    static const uint8_t asc[] = {0x12, 0x10};
    uint32_t ts = 0;
    kb_recorder_stream_begin(s);
    for (int i = 0; i < 3000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned h = (seed >> 8) % (sizeof(heads) / sizeof(heads[0]));
        uint8_t body[600];
        size_t n = 1 + (seed >> 4) % sizeof(body);
        for (size_t j = 0; j < n; j++) {
            seed = seed * 1103515245u + 12345u;
            body[j] = (uint8_t)(seed >> 16);
        }
        memcpy(body, heads[h], n < 5 ? n : 5);
        if (h == 0 && (seed & 1) && n >= 5 + sizeof(avcc))
            memcpy(body + 5, avcc, sizeof(avcc)), n = 5 + sizeof(avcc);
        if (h == 7 && (seed & 1))
            memcpy(body + 2, asc, sizeof(asc)), n = 4;
        /* Mostly forward, sometimes backwards or far ahead. */
        ts += (seed & 0xf000) == 0xf000 ? 0x80000000u : (seed & 0x700) == 0x700 ? -500u : 20;
        struct kb_msg *m = kb_msg_new_copy(h < 7 ? 9 : 8, ts, 1, body, (uint32_t)n);
        if (!m)
            break;
        kb_flv_classify(m);
        kb_recorder_stream_msg(s, m);
        kb_msg_unref(m);
        if (i % 1000 == 999)
            kb_recorder_stream_gap(s);
    }
    kb_recorder_stream_end(s);
    wait_idle(s);
    wait_jobs(r);
    kb_recorder_free(r);
    return 0;
}

/* Feed `path` to stream s as fast as the queue takes it (up to limit_ms of
 * media, 0 = all). */
static int feed(struct kb_recorder_stream *s, const char *path, uint32_t limit_ms)
{
    struct flv flv;
    if (flv_open(&flv, path) < 0)
        return -1;
    struct kb_msg *m;
    while ((m = flv_next(&flv, 0))) {
        int stop = limit_ms && m->timestamp > limit_ms;
        if (!stop)
            kb_recorder_stream_msg(s, m);
        kb_msg_unref(m);
        if (stop)
            break;
    }
    flv_close(&flv);
    return 0;
}

/* Stream "long" ends and its export crawls (20 ms a packet: some 15 s);
 * meanwhile stream "other" records a whole file. The worker must keep
 * writing "other" while the export runs, and kb_recorder_free must not
 * wait for the export (both exports are left for the next start). */
static int cmd_slowexport(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct kb_recorder_conf conf = {
        .dir = argv[1], .segment_ms = 4000, .export_mp4 = 1, .log = log_cb};
    slow_export_us = 20000;
    kb__export_hook = slow_export;
    struct kb_recorder *r;
    if (kb_recorder_new(&conf, &r) < 0)
        return 1;
    struct kb_recorder_stream *a = stream_get(r, "long", NULL);
    struct kb_recorder_stream *b = stream_get(r, "other", NULL);
    kb_recorder_stream_begin(a);
    if (!a || !b || feed(a, argv[2], 10000) < 0) {
        kb_recorder_free(r);
        return 1;
    }
    wait_idle(a);
    kb_recorder_stream_end(a);
    int64_t deadline = now_us() + 10 * 1000000;
    while (atomic_load(&export_packets) == 0 && now_us() < deadline)
        usleep(1000);
    CHECK(atomic_load(&export_packets) > 0); /* the export runs */
    int64_t t0 = now_us();
    kb_recorder_stream_begin(b);
    if (feed(b, argv[2], 0) < 0) {
        kb_recorder_free(r);
        return 1;
    }
    /* 30 s of media: 7 segments complete, the 8th open. The worker needs
     * well under a second for that; give it five. */
    struct kb_recorder_status st;
    deadline = now_us() + 5 * 1000000;
    do {
        usleep(10000);
        kb_recorder_stream_status(b, &st);
    } while ((kb__recorder_stream_queued(b) > 0 || st.segments < 7) && now_us() < deadline);
    printf("other.segments=%u\nother.ms=%lld\nexport.packets=%u\n", st.segments,
           (long long)((now_us() - t0) / 1000), atomic_load(&export_packets));
    CHECK_EQ(st.segments, 7);
    CHECK_EQ(kb__recorder_stream_queued(b), 0);
    t0 = now_us();
    kb_recorder_free(r);
    long long free_ms = (long long)((now_us() - t0) / 1000);
    printf("free.ms=%lld\n", free_ms);
    CHECK(free_ms < 2000);
    return verdict();
}

/* Stream "a" ends and its export crawls; stream "b" (keep nothing: 1 byte)
 * ends behind it, so b's export and retention pass wait in the job queue.
 * Then a reload switches b's retention off: the waiting pass must delete
 * nothing. Prints b's recording and whether it is still there. */
static int cmd_retoff(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct kb_recorder_conf conf = {
        .dir = argv[1], .segment_ms = 1000, .export_mp4 = 1, .log = log_cb};
    struct kb_recorder *r;
    if (kb_recorder_new(&conf, &r) < 0)
        return 1;
    static const struct kb_recorder_limits keep_nothing = {.max_bytes = 1}, off;
    struct kb_recorder_stream *a = stream_get(r, "a", NULL);
    struct kb_recorder_stream *b = stream_get(r, "b", &keep_nothing);
    if (!a || !b) {
        kb_recorder_free(r);
        return 1;
    }
    kb__recorder_wait_jobs(r);
    slow_export_us = 5000;
    kb__export_hook = slow_export;
    kb_recorder_stream_begin(a);
    if (feed(a, argv[2], 5000) < 0) {
        kb_recorder_free(r);
        return 1;
    }
    wait_idle(a);
    kb_recorder_stream_end(a);
    kb_recorder_stream_begin(b);
    if (feed(b, argv[2], 3000) < 0) {
        kb_recorder_free(r);
        return 1;
    }
    wait_idle(b);
    struct kb_recorder_status st;
    kb_recorder_stream_status(b, &st);
    char rel[512];
    snprintf(rel, sizeof(rel), "%s", st.dir);
    kb_recorder_stream_end(b);
    wait_idle(b);
    stream_get(r, "b", &off); /* the reload */
    kb__recorder_wait_jobs(r);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", argv[1], rel);
    struct stat sb;
    int kept = stat(path, &sb) == 0;
    printf("b.recording=%s\nb.kept=%d\n", rel, kept);
    CHECK(rel[0] != 0);
    CHECK(kept);
    kb_recorder_free(r);
    return verdict();
}

/* A starting kebun's clean-up (kb__remove_temps, in a child, in a loop)
 * beside a writer of meta.json (kb__write_atomic, as kebun --export does):
 * not one write may lose its temp file. */
static int cmd_tmprace(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *dir = argv[1];
    int n = atoi(argv[2]);
    mkdir(dir, 0755);
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.json", dir);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        for (;;)
            kb__remove_temps(dir, NULL);
    }
    int fails = 0;
    for (int i = 0; i < n; i++)
        fails += kb__write_atomic(path, "{}", 2, 0) < 0;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    printf("writes=%d\nfailed=%d\n", n, fails);
    CHECK_EQ(fails, 0);
    return verdict();
}

/* The loop thread's per-message call takes no lock: a whole file is fed
 * (the worker writing it meanwhile) and not one pthread_mutex_lock is
 * counted inside kb_recorder_stream_msg; the worker is woken (sem_post)
 * only when a megabyte waits. Then the same with the worker held, so the
 * queue is full and the gate skips: still no lock. Prints the counts and
 * the slowest call. */
static int cmd_nolock(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct kb_recorder_conf conf = {.dir = argv[1], .log = log_cb, .queue_bytes = 256 << 10};
    struct kb_recorder_stream *s;
    struct flv flv;
    struct kb_recorder *r = open_one(&conf, "nolock", argv[2], &s, &flv);
    if (!r)
        return 1;
    kb_recorder_stream_begin(s);
    unsigned long msgs = 0;
    uint64_t bytes = 0;
    int64_t slowest = 0;
    struct kb_msg *m;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            wait_idle(s);
            kb__recorder_hold(r, 1);
            flv_close(&flv);
            if (flv_open(&flv, argv[2]) < 0)
                break;
        }
        while ((m = flv_next(&flv, 30000 * (uint32_t)pass + 1))) {
            int64_t t = now_us();
            counting = 1;
            kb_recorder_stream_msg(s, m);
            counting = 0;
            t = now_us() - t;
            slowest = t > slowest ? t : slowest;
            msgs++;
            bytes += m->len;
            kb_msg_unref(m);
        }
    }
    flv_close(&flv);
    struct kb_recorder_status st;
    kb_recorder_stream_status(s, &st);
    kb__recorder_hold(r, 0);
    kb_recorder_stream_end(s);
    wait_idle(s);
    kb_recorder_free(r);
    printf("msgs=%lu\nbytes=%llu\nlocks=%lu\nposts=%lu\nslowest_us=%lld\ndropped=%llu\n", msgs,
           (unsigned long long)bytes, counted_locks, counted_posts, (long long)slowest,
           (unsigned long long)st.dropped);
    CHECK(msgs > 1000);
    CHECK_EQ(counted_locks, 0);
    CHECK(counted_posts <= bytes / (1024 * 1024) + 1);
    CHECK(st.dropped > 0);
    return verdict();
}

/* Memory runs out on the loop thread (malloc fails inside
 * kb_recorder_stream_msg and the control calls, worker held so the queue
 * needs new blocks): messages that find no room start a skip to the next
 * keyframe, counted; begin... gap and end still arrive (the reserve block);
 * the recording is whole and decodes (test_recorder.py checks it). */
static int cmd_nomem(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct kb_recorder_conf conf = {.dir = argv[1], .log = log_cb, .export_mp4 = 0};
    struct kb_recorder_stream *s;
    struct flv flv;
    struct kb_recorder *r = open_one(&conf, "nomem", argv[2], &s, &flv);
    if (!r)
        return 1;
    kb__recorder_hold(r, 1);
    kb_recorder_stream_begin(s);
    struct kb_msg *m;
    while ((m = flv_next(&flv, 0))) {
        uint32_t ts = m->timestamp;
        malloc_fails = ts >= 5000 && ts < 9000;
        kb_recorder_stream_msg(s, m);
        malloc_fails = 0;
        kb_msg_unref(m);
        if (ts > 12000)
            break;
    }
    flv_close(&flv);
    malloc_fails = 1;
    kb_recorder_stream_gap(s);
    kb_recorder_stream_end(s);
    malloc_fails = 0;
    struct kb_recorder_status st;
    kb_recorder_stream_status(s, &st);
    kb__recorder_hold(r, 0);
    wait_idle(s);
    struct kb_recorder_status end;
    kb_recorder_stream_status(s, &end);
    kb_recorder_free(r);
    printf("dropped=%llu\nend.state=%d\n", (unsigned long long)st.dropped, end.state);
    CHECK(st.dropped > 0);
    CHECK_EQ(end.state, KB_RECORDER_IDLE);
    return verdict();
}

static int cmd_unit(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    char path[4096];
    snprintf(path, sizeof(path), "%s/names", argv[1]);
    mkdir(argv[1], 0755);
    unit_names(path);
    snprintf(path, sizeof(path), "%s/queue", argv[1]);
    unit_queue(path, argv[2]);
    snprintf(path, sizeof(path), "%s/control", argv[1]);
    unit_control(path, argv[2]);
    return verdict();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: rec_tool record|recover|export|cliexport|retention|unit|garbage|"
                        "slowexport|nolock ...\n");
        return 2;
    }
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {
        {"record", cmd_record},         {"recover", cmd_recover},   {"export", cmd_export},
        {"retention", cmd_retention},   {"unit", cmd_unit},         {"garbage", cmd_garbage},
        {"slowexport", cmd_slowexport}, {"tmprace", cmd_tmprace},   {"retoff", cmd_retoff},
        {"cliexport", cmd_cliexport},   {"nolock", cmd_nolock},     {"nomem", cmd_nomem},
    };
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
