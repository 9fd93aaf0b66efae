/* kebun: recording glue between the stream hub and the recorder thread. */
#ifndef KB_RECORD_H
#define KB_RECORD_H

#include "recorder/recorder.h"

struct kb_server;
struct kb_stream;

/* Start the recorder and attach a sink to every stream with record = on. */
int kb_record_start(struct kb_server *srv);
/* After a reload: attach or detach sinks as `record` changed. */
int kb_record_sync(struct kb_server *srv);
/* The stream's recording state (all zero when it is not recorded). */
void kb_record_status(struct kb_server *srv, struct kb_stream *st, struct kb_rec_status *out);
struct kb_req;
/* Delete a finished recording (r->stream, r->arg) on the recorder's job
 * thread; the answer goes back through the bridge from there. 0 when it
 * will be answered so, else r holds the answer. */
int kb__record_delete(struct kb_server *srv, struct kb_req *r);
/* Shutdown, on the loop: detach the sinks (after the broadcasts ended). */
void kb_record_stop(struct kb_server *srv);
/* After the loop: finish recordings, join the thread, free. */
void kb_record_free(struct kb_server *srv);

#endif
