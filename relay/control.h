/* kebun: the loop's side of the API's changes (relay/control.c). */
#ifndef KB_CONTROL_H
#define KB_CONTROL_H

struct kb_server;

/* A config destination removed through the API (until the state file that
 * says so is read back at the next reload). */
struct kb_removed {
    char stream[65];
    char id[160];
    struct kb_removed *next;
};

/* Handle every request the HTTP thread sent. */
void kb__control_run(struct kb_server *srv);
/* Forget the runtime removals (a reload read them back from the state
 * file; shutdown). */
void kb__control_forget(struct kb_server *srv);

#endif
