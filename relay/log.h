/* kebun: log lines.
 *
 * One line per event: `TIME LEVEL stream=NAME peer=ADDR what happened (why)`
 * on stderr. The stream and peer fields are omitted when unknown. Stream
 * keys and platform keys never reach this function in clear: callers pass
 * public names and masked URLs only.
 */
#ifndef KB_LOG_H
#define KB_LOG_H

#include <stdarg.h>

enum kb_log_level {
    KB_LOG_ERROR,
    KB_LOG_WARN,
    KB_LOG_INFO,
    KB_LOG_DEBUG,
};

void kb_log_set_level(enum kb_log_level level);
int kb_log_enabled(enum kb_log_level level);

/* stream and peer may be NULL. */
void kb_log(enum kb_log_level level, const char *stream, const char *peer, const char *fmt,
            ...) __attribute__((format(printf, 4, 5)));
/* Each line of `text` (NULL is fine) as its own log line. */
void kb_log_lines(enum kb_log_level level, const char *text);
void kb_vlog(enum kb_log_level level, const char *stream, const char *peer, const char *fmt,
             va_list ap) __attribute__((format(printf, 4, 0)));

#endif
