/* Small file-system and string helpers for the recorder. Every write that
 * a reader may see goes through a temp file and rename, so a crash leaves
 * either the old file or the new one, never half of it. With fsync =
 * segment the data is also flushed before the rename and the directory
 * after it, so a power cut cannot leave a listed name without its bytes. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>

int kb__name_ok(const char *name)
{
    if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++) {
        if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
            return 0;
    }
    return n <= KB__NAME_MAX;
}

int kb__recording_path_ok(const char *rel)
{
    if (!rel)
        return 0;
    const char *slash = strchr(rel, '/');
    if (!slash || slash == rel || (size_t)(slash - rel) > KB__NAME_MAX)
        return 0;
    char stream[KB__NAME_MAX + 1];
    memcpy(stream, rel, (size_t)(slash - rel));
    stream[slash - rel] = 0;
    return kb__name_ok(stream) && kb__name_ok(slash + 1);
}

int kb__mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* splitmix64: spreads a counter, the pid and the clock over the bits the
 * temp name uses. Uniqueness comes from O_EXCL; this only makes retries
 * rare, also across processes. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#define TMP_RAND 6 ///< random characters in a temp name

int kb__tmp_open(const char *path, char *tmp, size_t n)
{
    static atomic_uint seq;
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path + 1) : 0;
    const char *base = path + dlen;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t x = mix(((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
                         ((uint64_t)atomic_fetch_add(&seq, 1) << 40) ^ (uint64_t)attempt);
        char rnd[TMP_RAND + 1];
        for (int i = 0; i < TMP_RAND; i++, x /= 36)
            rnd[i] = alnum[x % 36];
        rnd[TMP_RAND] = 0;
        int err = kb__pathf(tmp, n, "%.*s.%s.%s.tmp", dlen, path, base, rnd);
        if (err < 0)
            return err;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -errno;
        /* The lock says "in use" to kb__remove_temps (another kebun's
         * start-up). Between open and flock a remover may have locked and
         * unlinked the new file: wait for its lock, then start over with
         * a new name if the file is gone. Without locks (some file
         * systems) the temp file is simply unprotected. */
        int locked;
        while ((locked = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
            ;
        struct stat st;
        if (locked == 0 && fstat(fd, &st) == 0 && st.st_nlink == 0) {
            close(fd);
            continue;
        }
        return fd;
    }
    return -EEXIST;
}

int kb__sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int err = slash ? kb__pathf(dir, sizeof(dir), "%.*s", (int)(slash - path), path)
                    : kb__pathf(dir, sizeof(dir), ".");
    if (err < 0)
        return err;
    int fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    err = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return err;
}

int kb__write_atomic(const char *path, const void *data, size_t len, int sync)
{
    char tmp[PATH_MAX];
    int fd = kb__tmp_open(path, tmp, sizeof(tmp));
    if (fd < 0)
        return fd;
    const char *p = data;
    int err = 0;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? -errno : -EIO;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    if (!err && sync && fsync(fd) < 0)
        err = -errno;
    /* Renamed while still locked: an unlocked temp file is fair game for
     * kb__remove_temps. */
    if (!err && rename(tmp, path) < 0)
        err = -errno;
    if (err)
        unlink(tmp);
    if (close(fd) < 0 && !err)
        err = -errno;
    if (!err && sync)
        err = kb__sync_dir_of(path);
    return err;
}

/* The files kebun writes in a recording directory (and thumbs/): the
 * segmenter's init*.mp4 and NNNNNN.m4s / .ts, the thumbnails, meta.json,
 * index.m3u8 and recording.mp4. */
static int own_name(const char *s, size_t n)
{
    static const char *const fixed[] = {"meta.json", "index.m3u8", "thumb.jpg", "recording.mp4",
                                        "init.mp4"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strlen(fixed[i]) == n && memcmp(s, fixed[i], n) == 0)
            return 1;
    size_t d = 0;
    if (n > 5 && memcmp(s, "init-", 5) == 0) {
        for (d = 5; d < n && s[d] >= '0' && s[d] <= '9'; d++)
            ;
        return d > 5 && n - d == 4 && memcmp(s + d, ".mp4", 4) == 0;
    }
    for (; d < n && s[d] >= '0' && s[d] <= '9'; d++)
        ;
    if (d == 0)
        return 0;
    return (n - d == 4 && (memcmp(s + d, ".m4s", 4) == 0 || memcmp(s + d, ".jpg", 4) == 0)) ||
           (n - d == 3 && memcmp(s + d, ".ts", 3) == 0);
}

/* Unlink a kb__tmp_open file unless another process holds it; the
 * unlink happens under our lock, so its writer (which checks st_nlink
 * once it has the lock) never writes into a file that is gone. Returns 1
 * when it was removed. */
static int remove_unless_held(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    int gone = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
        gone = unlink(path) == 0;
    close(fd);
    return gone;
}

void kb__remove_temps(const char *dir, int *export_tmp)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        size_t n = strlen(s);
        if (n < 5 || strcmp(s + n - 4, ".tmp") != 0)
            continue;
        n -= 4;
        /* .NAME.XXXXXX.tmp (kb__tmp_open) or NAME.tmp (the segmenter). */
        int unique = s[0] == '.' && n > TMP_RAND + 2 && s[n - TMP_RAND - 1] == '.';
        if (unique) {
            s++;
            n -= TMP_RAND + 2;
        }
        if (!own_name(s, n) || kb__pathf(path, sizeof(path), "%s/%s", dir, e->d_name) < 0)
            continue;
        /* A held one: kebun --export (or another writer) is at work. */
        int gone = unique ? remove_unless_held(path) : unlink(path) == 0;
        if (gone && export_tmp && n == 13 && memcmp(s, "recording.mp4", 13) == 0)
            *export_tmp = 1;
    }
    closedir(d);
}

int kb__read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0)
        err = -errno;
    else if (!S_ISREG(st.st_mode))
        err = -EINVAL;
    else if ((uint64_t)st.st_size > max)
        err = -EFBIG;
    if (err) {
        close(fd);
        return err;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = -errno;
            free(buf);
            close(fd);
            return err;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    if (len)
        *len = got;
    return 0;
}

/* nftw has no user pointer: its callbacks report through thread-locals,
 * which keeps the helpers safe on any thread. */
static _Thread_local int rm_err;
static _Thread_local int64_t du_sum;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    if (r < 0 && errno != ENOENT && !rm_err)
        rm_err = -errno;
    return 0;
}

int kb__rmtree(const char *path)
{
    rm_err = 0;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return -errno;
    return rm_err;
}

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode))
        du_sum += st->st_size;
    return 0;
}

int64_t kb__du(const char *path)
{
    du_sum = 0;
    if (nftw(path, du_one, 16, FTW_PHYS) < 0)
        return -errno;
    return du_sum;
}

int kb__pathf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

int64_t kb__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kb__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kb__iso_time(int64_t ms, int for_path, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, for_path ? "%Y-%m-%dT%H-%M-%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t kb__parse_iso(const char *s)
{
    struct tm tm = {0};
    char sep1, sep2, z;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d%c%2d%c%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &sep1, &tm.tm_min, &sep2, &tm.tm_sec, &z) != 9)
        return -1;
    if (sep1 != sep2 || (sep1 != ':' && sep1 != '-') || z != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000;
}

int kb__str_addf(struct kb__str *s, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = s->cap - s->len;
        int n = s->p ? vsnprintf(s->p + s->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            s->len += (size_t)n;
            return 0;
        }
        size_t want = s->cap ? s->cap * 2 : 4096;
        if (n >= 0 && want < s->len + (size_t)n + 1)
            want = s->len + (size_t)n + 1;
        char *p = realloc(s->p, want);
        if (!p)
            return -ENOMEM;
        s->p = p;
        s->cap = want;
        s->p[s->len] = 0;
    }
}

void kb__str_free(struct kb__str *s)
{
    free(s->p);
    s->p = NULL;
    s->len = s->cap = 0;
}

const char *kb__strerror(int err, char *buf, size_t n)
{
    if (av_strerror(err, buf, n) < 0)
        snprintf(buf, n, "error %d", err);
    return buf;
}
