/* kebun: the end of the loop.
 *
 * Every handle kebun opens must be closed by the time the loop runs dry:
 * one that is not is a leak (a timer nobody stops, a connection nobody
 * closes) that would keep a reload or a test from ever finishing. At exit
 * the loop is closed with kb_loop_close, which names each handle still
 * open and fails, so the tests (which check kebun's exit status) fail too.
 */
#ifndef KB_LOOP_H
#define KB_LOOP_H

#include <uv.h>

/* Run the close callbacks still due, then close the loop. Returns 0, or
 * -EBUSY after logging every handle left open (type, and whether it is
 * active or closing). */
int kb_loop_close(uv_loop_t *loop);

#endif
