#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static enum kb_log_level current = KB_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void kb_log_set_level(enum kb_log_level level)
{
    current = level;
}

int kb_log_enabled(enum kb_log_level level)
{
    return level <= current;
}

void kb_vlog(enum kb_log_level level, const char *stream, const char *peer, const char *fmt,
             va_list ap)
{
    if (level > current)
        return;
    /* Build the whole line first so concurrent writers (the recorder thread)
     * never interleave inside a line. */
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    if (stream && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " stream=%s", stream);
    if (peer && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " peer=%s", peer);
    if (n < (int)sizeof(line) - 1) {
        line[n++] = ' ';
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    }
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    /* Strip a trailing newline a caller (FFmpeg) may have included. */
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

void kb_log(enum kb_log_level level, const char *stream, const char *peer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kb_vlog(level, stream, peer, fmt, ap);
    va_end(ap);
}

void kb_log_lines(enum kb_log_level level, const char *text)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (n)
            kb_log(level, NULL, NULL, "%.*s", n, p);
        p += n + (nl != NULL);
    }
}
