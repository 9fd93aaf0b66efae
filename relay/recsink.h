/* kebun: the relay's recording sinks (relay/recsink.c): the glue between
 * the stream hub and the recorder's threads. */
#ifndef KB_RECSINK_H
#define KB_RECSINK_H

#include "recorder/recorder.h"

struct kb_server;
struct kb_stream;

/* Start the recorder and attach a sink to every stream with record = on. */
int kb__recsink_start(struct kb_server *srv);
/* After a reload: attach or detach sinks as `record` changed, and pass on
 * new retention limits, fsync and shutdown_timeout. */
int kb__recsink_sync(struct kb_server *srv);
/* The stream's recording state (all zero when it is not recorded). */
void kb__recsink_status(struct kb_server *srv, struct kb_stream *st,
                        struct kb_recorder_status *out);
struct kb_req;
/* Delete a finished recording (r->stream, r->arg) on the recorder's job
 * thread; the answer goes back through the bridge from there. 0 when it
 * will be answered so, else a negative errno and r holds the answer. */
int kb__recsink_delete(struct kb_server *srv, struct kb_req *r);
/* Shutdown, on the loop: detach the sinks (after the broadcasts ended). */
void kb__recsink_stop(struct kb_server *srv);
/* After the loop: finish the recordings, wait up to shutdown_timeout for
 * their exports, join the recorder's threads, free. */
void kb__recsink_free(struct kb_server *srv);

#endif
