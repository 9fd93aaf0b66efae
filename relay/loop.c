#include "loop.h"

#include <errno.h>

#include "log.h"

static void name_handle(uv_handle_t *h, void *arg)
{
    int *n = arg;
    (*n)++;
    kb_log(KB_LOG_ERROR, NULL, NULL, "handle left open at exit: %s (%s%s)",
           uv_handle_type_name(uv_handle_get_type(h)), uv_is_active(h) ? "active" : "inactive",
           uv_is_closing(h) ? ", closing" : "");
}

int kb_loop_close(uv_loop_t *loop)
{
    /* Close callbacks requested by the last callbacks of the run. */
    uv_run(loop, UV_RUN_NOWAIT);
    if (uv_loop_close(loop) == 0)
        return 0;
    int n = 0;
    uv_walk(loop, name_handle, &n);
    kb_log(KB_LOG_ERROR, NULL, NULL, "%d handle(s) left open at exit: a leak in kebun", n);
    return -EBUSY;
}
