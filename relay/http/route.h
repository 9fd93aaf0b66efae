/* kebun: what an API request asks for, as pure functions over its bytes.
 *
 * The h2o glue (api.c) hands these the request's normalized path, query
 * string, method and body; they say which endpoint it is, with which
 * names, whether the method fits, and what a body means. No sockets, no
 * threads, no relay state: they are unit-tested and fuzzed
 * (tests/fuzz/fuzz_http.c).
 */
#ifndef KB_ROUTE_H
#define KB_ROUTE_H

#include <stddef.h>

#include "config/config.h"

enum kb_route {
    KB_R_NONE,       ///< no such endpoint
    KB_R_STREAMS,    ///< /api/v1/streams
    KB_R_STREAM,     ///< /api/v1/streams/{name}
    KB_R_DESTS,      ///< /api/v1/streams/{name}/destinations
    KB_R_DEST,       ///< /api/v1/streams/{name}/destinations/{id}
    KB_R_KICK,       ///< /api/v1/streams/{name}/kick
    KB_R_RECORDINGS, ///< /api/v1/recordings
    KB_R_RECORDING,  ///< /api/v1/recordings/{stream}/{id}
};

#define KB_ROUTE_ID_MAX 159 ///< longest destination or recording id

struct kb_route_match {
    enum kb_route route;
    char name[KB_CONF_NAME_MAX + 1]; ///< the stream
    char id[KB_ROUTE_ID_MAX + 1];    ///< destination or recording id
    const char *allow;               ///< methods the endpoint takes, for 405's Allow
};

enum kb_method { KB_M_GET, KB_M_HEAD, KB_M_POST, KB_M_DELETE, KB_M_OTHER };

enum kb_method kb_route_method(const char *m, size_t n);
/* Match a path (h2o's normalized form: decoded, dot segments resolved, no
 * query). Returns the route (KB_R_NONE for anything else, including names
 * kebun could not have made). */
enum kb_route kb_route_api(const char *path, size_t n, struct kb_route_match *out);
/* The same under /public/v1/, where only the reads are: streams, a
 * stream, recordings, a recording (allow is "GET, HEAD"). */
enum kb_route kb_route_public(const char *path, size_t n, struct kb_route_match *out);
/* 1 when the endpoint takes the method. */
int kb_route_allows(enum kb_route r, enum kb_method m);
/* 1 when the method changes something (and so needs the token). */
int kb_route_mutates(enum kb_method m);

/* A name kebun made (stream, recording or destination id): letters,
 * digits, '_', '-', '.', not starting with '.', 1..max bytes. */
int kb_route_name_ok(const char *s, size_t n, size_t max);

/* The value of `key` in a raw query string (a=1&b=x%20y), percent-decoded
 * into out. 1 found, 0 absent, -1 malformed or too long. */
int kb_query_param(const char *q, size_t qn, const char *key, char *out, size_t cap);

/* The push value in a destination's body: JSON {"push": "..."} or plain
 * text (the value alone, as on a push = line). 0, or -1 with a sentence in
 * err that never holds the value. */
int kb_body_push(const char *body, size_t n, char *out, size_t cap, char *err, size_t errlen);

/* 1 when `given` (an Authorization header's value) is "Bearer TOKEN" with
 * the right token; compares in constant time. */
int kb_token_ok(const char *given, size_t n, const char *token);

#endif
