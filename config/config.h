/* kebun: the configuration file.
 *
 * An INI-style file: `[server]` holds the daemon's settings, each
 * `[stream NAME]` one stream. Every key is described once, in the table in
 * config.c (name, type, where it lands, default, range, doc line); parsing,
 * defaults, validation and docs/CONFIG.md all follow that table. Errors name
 * the file, the line and the key, and every error in the file is reported,
 * not just the first.
 *
 * This module knows nothing of the relay or the recorder.
 */
#ifndef KB_CONFIG_H
#define KB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "push.h"

#define KB_CONF_MAX_LISTEN 8
#define KB_CONF_NAME_MAX 64  ///< longest stream name
#define KB_CONF_KEY_MIN 8    ///< shortest stream key
#define KB_CONF_KEY_MAX 256  ///< longest stream key

/* Log levels, in the order the relay's logger uses them. */
enum {
    KB_CONF_LOG_ERROR,
    KB_CONF_LOG_WARN,
    KB_CONF_LOG_INFO,
    KB_CONF_LOG_DEBUG,
};

struct kb_listen_conf {
    char host[64];  ///< numeric IPv4 or IPv6 address
    uint16_t port;
};

/* A file the config names (the RTMPS certificate chain and its key): where
 * it is, where the config said so, and what it held when the config was
 * loaded, so that what was checked is what is used. */
struct kb_conf_file {
    char *path;     ///< "" = not set
    int line;       ///< line of the key (0: not set)
    char *text;     ///< contents, NULL unless needed (listen_tls set); wiped when freed
    size_t len;
};

/* Recording container formats. */
enum {
    KB_CONF_REC_FMP4,   ///< CMAF: init.mp4 + .m4s segments + HLS playlist
    KB_CONF_REC_MPEGTS, ///< .ts segments + HLS playlist
};

/* [http]: the web side. */
struct kb_http_conf {
    int enabled;                ///< listen was not `off`
    struct kb_listen_conf listen;
    int listen_line;            ///< where listen was set (0: the default), for messages
    char *token;                ///< "" = none: the API is read-only
    char *web_root;             ///< pages; "" = the installed ones
    uint64_t max_connections;
    uint64_t max_header;        ///< bytes of request head
    uint64_t max_body;          ///< bytes of request body
    uint64_t request_timeout;   ///< ms
};

/* Where a push destination came from. */
enum { KB_PUSH_CONFIG, KB_PUSH_API };

/* When recordings are flushed to the disk. */
enum {
    KB_CONF_FSYNC_OFF,     ///< when the kernel likes
    KB_CONF_FSYNC_SEGMENT, ///< each completed segment, playlist and meta.json, before listing
};

/* silent_audio (the same values as relay/silence.h's enum kb_silence_mode). */
enum {
    KB_CONF_SILENCE_OFF,
    KB_CONF_SILENCE_AUTO,
    KB_CONF_SILENCE_ON,
};

struct kb_stream_conf {
    char *name;     ///< public name: what viewers play
    char *key;      ///< secret key: what the publisher publishes with
    int gop_cache;  ///< keep the last GOP so new players start at once
    int record;     ///< record every broadcast
    int silent_audio; ///< KB_CONF_SILENCE_*: add silent audio to a stream without audio
    uint64_t retention_age;  ///< ms; delete recordings older than this (0 = keep)
    uint64_t retention_size; ///< bytes; keep the stream's recordings under this (0 = no limit)
    struct kb_push_conf *pushes; ///< destinations: the config's in file order, then the API's
    int n_pushes;
    char **removed;  ///< ids of the config's destinations removed through the API
    int n_removed;
    int line;       ///< line of its [stream] header, for messages
    struct kb_stream_conf *next;
};

struct kb_config {
    char *path;                 ///< file it was read from
    struct kb_listen_conf listen[KB_CONF_MAX_LISTEN];
    int n_listen;
    struct kb_listen_conf listen_tls[KB_CONF_MAX_LISTEN]; ///< RTMPS (TLS first, then RTMP)
    int n_listen_tls;
    int listen_tls_line;        ///< first listen_tls line (0: none), for messages
    struct kb_conf_file tls_cert; ///< PEM: the server's certificate, then its chain
    struct kb_conf_file tls_key;  ///< PEM: its private key (unencrypted)
    char *app;                  ///< RTMP application name publishers and players use
    int log_level;              ///< KB_CONF_LOG_*
    uint64_t chunk_size;        ///< chunk size kebun sends with
    uint64_t max_message_size;  ///< largest message accepted from a peer
    uint64_t window_ack_size;   ///< window kebun asks peers to acknowledge
    uint64_t max_connections;   ///< connections beyond this are closed at accept
    uint64_t handshake_timeout; ///< ms to finish handshake and connect
    uint64_t publish_timeout;   ///< ms without data before a publisher is dropped
    uint64_t player_queue;      ///< bytes queued per player before it skips to a keyframe
    uint64_t flush_interval;    ///< ms media waits to be written together (0 = at once)
    uint64_t gop_cache_max;     ///< bytes a GOP cache may hold
    char *recordings;           ///< directory for recordings
    uint64_t grace;             ///< ms a broadcast survives its publisher's absence
    uint64_t segment_duration;  ///< ms: target recording segment length
    int record_format;          ///< KB_CONF_REC_*
    uint64_t record_queue;      ///< bytes queued for the recorder thread per stream
    uint64_t thumbnail_interval; ///< ms between extra thumbnails (0 = first only)
    int export_mp4;             ///< make a faststart MP4 of each finished recording
    int fsync;                  ///< KB_CONF_FSYNC_*
    uint64_t shutdown_timeout;  ///< ms a stop waits for recordings' exports
    uint64_t push_retry_min;    ///< ms: first retry delay of a failed push
    uint64_t push_retry_max;    ///< ms: the delay doubles up to this
    uint64_t push_queue;        ///< bytes queued per push destination before it skips
    uint64_t push_timeout;      ///< ms to connect, handshake and publish, or of silence
    struct kb_http_conf http;
    char *state_path;           ///< runtime destinations: RECORDINGS/.kebun-destinations.conf
    char *notes;                ///< things worth a log line that are not errors, or NULL
    struct kb_stream_conf *streams; ///< in file order
    int n_streams;
};

/* Read and validate a config file. On success returns 0 and *out. On
 * failure returns a negative errno (-ENOENT, -EINVAL, ...) and writes every
 * problem found into err as "FILE:LINE: message" lines. */
int kb_config_load(const char *path, struct kb_config **out, char *err, size_t errlen);
/* Same, from a string (path is only used in messages). */
int kb_config_parse(const char *path, const char *text, struct kb_config **out, char *err,
                    size_t errlen);
void kb_config_free(struct kb_config *c);

/* Find a stream by public name or by key; NULL when none. */
const struct kb_stream_conf *kb_config_stream_by_name(const struct kb_config *c,
                                                      const char *name);
const struct kb_stream_conf *kb_config_stream_by_key(const struct kb_config *c,
                                                     const char *key);

/* Every key, for docs and tests: iterate until name is NULL. */
struct kb_conf_doc {
    const char *section; ///< "server" or "stream"
    const char *name;
    const char *type;    ///< "string", "size", "duration", ...
    const char *def;     ///< default as written in the file, or NULL
    int required;        ///< the key must be given (def is NULL)
    int repeat;          ///< may be given several times (a list; none is fine)
    const char *doc;
};
const struct kb_conf_doc *kb_config_doc(size_t i);

/* Parse "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (as the listen key
 * does). 0 or -EINVAL. */
int kb_config_parse_listen(const char *text, struct kb_listen_conf *out);

/* The text of a log level ("info"). */
const char *kb_config_log_level_name(int level);

#endif
