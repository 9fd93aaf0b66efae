/* The environment the worker-side files run in: the recorder's settings,
 * its log, and one question only the front can answer ("is this recording
 * being written?"). Passed down instead of the recorder itself, so that
 * recording, export, retention, recovery and the job thread neither know
 * the recorder's handles nor call back into it; `kebun --export` runs the
 * export with an environment that has a log and nothing else.
 */
#include "internal.h"

#include <stdarg.h>

void kb__log(const struct kb__env *env, int level, const char *stream, const char *fmt, ...)
{
    if (!env->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    env->log(level, stream, fmt, ap);
    va_end(ap);
}

int kb__env_live(const struct kb__env *env, const char *rel)
{
    return env->live ? env->live(env->live_ud, rel) : 0;
}

int kb__env_sync(const struct kb__env *env)
{
    return atomic_load_explicit(&env->fsync, memory_order_relaxed) == KB_RECORDER_FSYNC_SEGMENT;
}
