/* kebun: every configuration key, its default, range and documentation. */
#include "keys.h"

#include <assert.h>

#include "config.h"

const char *const kb__conf_type_names[] = {
    [T_STRING] = "string",     [T_UINT] = "integer",  [T_SIZE] = "size",
    [T_DURATION] = "duration", [T_BOOL] = "on/off",   [T_ENUM] = "word",
    [T_LISTEN] = "address",    [T_KEY] = "secret",     [T_PUSH] = "URL",
    [T_ADDR] = "address",      [T_FILE] = "file",
};

const char *const kb__conf_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const format_names[] = {"fmp4", "mpegts", NULL};
static const char *const fsync_names[] = {"off", "segment", NULL};
static const char *const silence_names[] = {"off", "auto", "on", NULL};

#define SRV(f) offsetof(struct kb_config, f)
#define HTTP(f) offsetof(struct kb_config, http.f)
#define STR(f) offsetof(struct kb_stream_conf, f)

const struct kb__conf_key kb__conf_keys[] = {
    {"listen", SEC_SERVER, T_LISTEN, 1, SRV(listen), "0.0.0.0:1935", 0, 0,
     "Address and port to accept RTMP on (`HOST:PORT`, `[V6]:PORT` or `:PORT`). Repeat the key "
     "to listen on several addresses. `kebun --listen` replaces them all."},
    {"listen_tls", SEC_SERVER, T_LISTEN, 1, SRV(listen_tls), NULL, 0, 0,
     "Address and port to accept RTMPS on: RTMP inside TLS 1.2 or 1.3, so the stream key "
     "crosses the mobile network encrypted (`rtmps://HOST:PORT/APP`; 1936 is the usual port "
     "beside 1935, 443 passes most firewalls). Same forms as `listen`; repeat the key for "
     "several addresses. Needs `tls_cert` and `tls_key`. A plain RTMP client on this port "
     "(or an `rtmps://` one on a `listen` port) is closed with a log line saying so. A change "
     "needs a restart."},
    {"tls_cert", SEC_SERVER, T_FILE, 0, SRV(tls_cert), "", 0, 4096,
     "PEM file with the certificate `listen_tls` serves, followed by its intermediate "
     "certificates (a `fullchain.pem`). Read at start and at every reload (SIGHUP): a renewed "
     "certificate is served to new connections while live ones carry on; a file that cannot "
     "be used refuses the reload and the running certificate stays. Relative paths are taken "
     "from the directory kebun starts in."},
    {"tls_key", SEC_SERVER, T_FILE, 0, SRV(tls_key), "", 0, 4096,
     "PEM file with the private key of `tls_cert`, without a passphrase; a key that is not "
     "the certificate's is an error. Keep it readable by kebun alone. Its contents never "
     "appear in a log or an error."},
    {"app", SEC_SERVER, T_STRING, 0, SRV(app), "live", 1, 128,
     "RTMP application name: publishers push to `rtmp://HOST/APP` with their stream key, "
     "players play `rtmp://HOST/APP/NAME`. Connects to any other application are refused."},
    {"log_level", SEC_SERVER, T_ENUM, 0, SRV(log_level), "info", 0, 0,
     "Least severe messages logged: `error`, `warn`, `info` or `debug`.", kb__conf_level_names},
    {"chunk_size", SEC_SERVER, T_UINT, 0, SRV(chunk_size), "4096", 128, 65536,
     "Chunk size kebun sends with (announced to every peer with Set Chunk Size). Larger "
     "means fewer chunk headers per video frame. A change needs a restart (players share each "
     "message's chunked bytes)."},
    {"max_message_size", SEC_SERVER, T_SIZE, 0, SRV(max_message_size), "8M", 64 * KiB,
     256 * MiB,
     "Largest single RTMP message accepted from a peer (a keyframe of a high-bitrate 4K "
     "stream can pass 1 MiB). A larger message ends that connection with an error."},
    {"window_ack_size", SEC_SERVER, T_UINT, 0, SRV(window_ack_size), "2500000", 4096,
     0x7fffffff,
     "Acknowledgement window kebun announces to peers (bytes between their "
     "acknowledgements), and the Set Peer Bandwidth it asks for."},
    {"max_connections", SEC_SERVER, T_UINT, 0, SRV(max_connections), "10000", 1, 1000000,
     "Connections (publishers, players and HTTP-FLV viewers together) beyond this are "
     "closed at accept with a log line (a viewer past it gets 503). Keep it below the "
     "process's open-files limit."},
    {"handshake_timeout", SEC_SERVER, T_DURATION, 0, SRV(handshake_timeout), "10s", 100,
     600000,
     "Time a new connection has to finish the RTMP handshake and its publish or play "
     "command before it is closed."},
    {"publish_timeout", SEC_SERVER, T_DURATION, 0, SRV(publish_timeout), "20s", 1000,
     3600000,
     "A publisher that sends nothing for this long is disconnected, so a phone that lost "
     "its network does not hold the stream half-open."},
    {"player_queue", SEC_SERVER, T_SIZE, 0, SRV(player_queue), "2M", 64 * KiB, 1 * GiB,
     "Bytes of media queued for one player (not yet taken by its socket) before it drops "
     "media. A slow player loses the picture before the sound: video may fill 3/4 of this, "
     "then skips to the next keyframe that fits, while audio goes on as long as it fits the "
     "whole queue (the stop line counts drops by kind). Bounds the memory a stalled player can pin: at most about "
     "twice this, since each message it holds keeps its payload and its chunked form (both "
     "shared with every other player)."},
    {"flush_interval", SEC_SERVER, T_DURATION, 0, SRV(flush_interval), "40ms", 0, 500,
     "Writes to players and push destinations follow the video: each video frame leaves at "
     "once with the audio queued before it. Audio alone (between frames, or an audio-only "
     "stream) waits at most this long. The kernel's cost is per write, so fewer, fuller "
     "writes are the main lever on CPU per viewer. `0` writes every message as it "
     "arrives."},
    {"gop_cache_max", SEC_SERVER, T_SIZE, 0, SRV(gop_cache_max), "16M", 0, 1 * GiB,
     "Largest GOP (keyframe to keyframe) kept per stream for instant start. A longer GOP "
     "is not cached; players then wait for the next keyframe."},
    {"recordings", SEC_SERVER, T_STRING, 0, SRV(recordings), "./recordings", 1, 4096,
     "Directory recordings are written under, one folder per stream (created when "
     "missing). Relative paths are taken from the directory kebun starts in."},
    {"grace", SEC_SERVER, T_DURATION, 0, SRV(grace), "30s", 0, 3600000,
     "How long a broadcast outlives its publisher: a phone that reconnects within this "
     "time continues the same recording (and, with push outputs, the same platform "
     "broadcasts). Players are told at once that the publisher left."},
    {"segment_duration", SEC_SERVER, T_DURATION, 0, SRV(segment_duration), "4s", 1000, 60000,
     "Target length of a recording segment; segments are cut at the first keyframe after "
     "it. The playlist's EXT-X-TARGETDURATION is this rounded up plus 2 s and never changes; "
     "a segment is cut at an earlier keyframe rather than pass it (a keyframe interval longer "
     "than that makes longer segments, with one warning per recording)."},
    {"record_format", SEC_SERVER, T_ENUM, 0, SRV(record_format), "fmp4", 0, 0,
     "Recording segments: `fmp4` (CMAF: `init.mp4` and `.m4s` segments) or `mpegts` "
     "(`.ts` segments); both with an HLS playlist `index.m3u8`.", format_names},
    {"record_queue", SEC_SERVER, T_SIZE, 0, SRV(record_queue), "64M", 1 * MiB, 4 * GiB,
     "Media bytes queued for the recorder thread per stream. When a slow disk lets it "
     "fill, the recording skips to the next keyframe and counts the loss; the relay never "
     "waits for the disk."},
    {"thumbnail_interval", SEC_SERVER, T_DURATION, 0, SRV(thumbnail_interval), "5m", 0,
     24 * 3600000ull,
     "Besides `thumb.jpg` from the first keyframe, write a thumbnail this often "
     "(`thumbs/`); `0` writes only the first."},
    {"export_mp4", SEC_SERVER, T_BOOL, 0, SRV(export_mp4), "on", 0, 0,
     "When a recording finishes, remux it into one progressive MP4 with `faststart` "
     "(`recording.mp4`) for download and sharing. Exports run on their own thread; one cut "
     "off by a shutdown or a crash is made at the next start."},
    {"fsync", SEC_SERVER, T_ENUM, 0, SRV(fsync), "off", 0, 0,
     "`segment` flushes each completed recording segment, the playlist and `meta.json` (and "
     "their directory) to the disk before the playlist lists them, so a power cut loses at "
     "most the segment being written. `off` leaves it to the kernel, which may keep written "
     "data in memory for some 30 s (Linux's default), so a power cut can lose more; a crash "
     "of kebun alone loses only the segment being written either way. A reload applies it "
     "to the next file written. See BENCHMARKS.md for its cost.",
     fsync_names},
    {"shutdown_timeout", SEC_SERVER, T_DURATION, 0, SRV(shutdown_timeout), "10s", 0, 3600000,
     "On SIGTERM or SIGINT every open recording is closed (`EXT-X-ENDLIST`, `meta.json` "
     "complete); with `export_mp4` kebun then waits up to this long for the exports still "
     "running or queued before it exits. Exports it cuts off stay due (`export_pending`) and "
     "are made at the next start. `0` does not wait."},
    {"push_retry_min", SEC_SERVER, T_DURATION, 0, SRV(push_retry_min), "1s", 100, 600000,
     "A push destination that fails is retried after this long, then after twice as long "
     "each time (with random jitter), up to `push_retry_max`."},
    {"push_retry_max", SEC_SERVER, T_DURATION, 0, SRV(push_retry_max), "30s", 1000, 3600000,
     "Longest wait between two attempts of a failing push destination. It keeps trying "
     "for as long as the stream is live."},
    {"push_queue", SEC_SERVER, T_SIZE, 0, SRV(push_queue), "8M", 64 * KiB, 1 * GiB,
     "Bytes queued per push destination before it drops media, video first as for "
     "player_queue (a slow or stalled platform never holds more than this, nor slows anything else)."},
    {"push_timeout", SEC_SERVER, T_DURATION, 0, SRV(push_timeout), "10s", 1000, 600000,
     "Time a push destination has to connect, finish TLS and the RTMP handshake and "
     "accept the publish; also how long it may stop taking bytes before it is "
     "reconnected."},
    {"listen", SEC_HTTP, T_ADDR, 0, HTTP(listen), "127.0.0.1:8080", 0, 0,
     "Address and port of the web side: the staff dashboard `/`, the JSON API `/api/v1/`, "
     "`/metrics`, live pages `/watch/NAME` and HTTP-FLV `/live/NAME.flv`, replay pages "
     "`/replay` and recordings' files `/rec/`. `off` turns it off. On any address but a "
     "loopback one, `token` is required and every `/api/` request needs it; the buyers' "
     "pages read `/public/v1/` (streams without their publisher address and destinations, "
     "and recordings), which needs none."},
    {"token", SEC_HTTP, T_KEY, 0, HTTP(token), "", 16, KB_CONF_KEY_MAX,
     "Secret the API's changes need (`Authorization: Bearer TOKEN`): adding or removing a "
     "destination, kicking a publisher, deleting a recording. 16 to 256 characters, no spaces "
     "and none of `/ ? # & % \"`. Without it the API is read-only. Never logged."},
    {"web_root", SEC_HTTP, T_STRING, 0, HTTP(web_root), "", 0, 4096,
     "Directory of the pages kebun serves; empty for the pages installed with kebun "
     "(`scripts/run` uses the source tree's `relay/http/www`)."},
    {"max_connections", SEC_HTTP, T_UINT, 0, HTTP(max_connections), "1000", 1, 100000,
     "HTTP connections beyond this are closed at accept. An HTTP-FLV viewer counts here "
     "only until its response head is sent; then it is served by the relay and counts "
     "against `[server] max_connections`."},
    {"max_header", SEC_HTTP, T_SIZE, 0, HTTP(max_header), "16K", 1 * KiB, 256 * KiB,
     "Largest request head (request line and headers) answered; a larger one gets 431."},
    {"max_body", SEC_HTTP, T_SIZE, 0, HTTP(max_body), "64K", 1 * KiB, 16 * MiB,
     "Largest request body the API reads; a larger one gets 413 before it is read."},
    {"request_timeout", SEC_HTTP, T_DURATION, 0, HTTP(request_timeout), "10s", 1000, 600000,
     "Time a client has to send a whole request (and how long an idle keep-alive connection "
     "stays open); also how long a download may stop taking bytes before it is closed."},
    {"key", SEC_STREAM, T_KEY, 0, STR(key), NULL, KB_CONF_KEY_MIN, KB_CONF_KEY_MAX,
     "Secret stream key the publisher pushes with: `rtmp://HOST/APP/KEY` (or `NAME?key=KEY`). "
     "8 to 256 characters, no spaces and none of `/ ? # & % \"`. Never logged."},
    {"gop_cache", SEC_STREAM, T_BOOL, 0, STR(gop_cache), "on", 0, 0,
     "Keep the latest GOP so a new player starts at once from the last keyframe. `off` "
     "gives the lowest latency: players wait for the next keyframe."},
    {"push", SEC_STREAM, T_PUSH, 1, 0, NULL, 0, 0,
     "A destination this stream is pushed to while it is live: an `rtmp://` or `rtmps://` "
     "URL whose last path segment (with its query string) is the platform's stream key, or "
     "a preset `youtube:KEY`, `youtube-rtmps:KEY`, `facebook:KEY`, `twitch:KEY` (a preset's "
     "key holds no `/`). The host may be a name, an IPv4 address or an IPv6 address in "
     "brackets (`rtmp://[2001:db8::5]:1935/live/KEY`). Options "
     "may follow the URL: `name=LABEL`, `ca=FILE` (trust this CA for rtmps), `verify=off`, "
     "`ertmp=auto|on|off` (Enhanced RTMP: HEVC, AV1, VP9, Opus... and multitrack are sent "
     "only to a platform that declares them in its connect reply (`auto`); `on` sends them "
     "to a platform known to take them unannounced, such as YouTube; `off` never). A "
     "destination that cannot take the stream's codec is not published to: its state is "
     "`refused`. Repeat the key for several destinations. Optional."},
    {"silent_audio", SEC_STREAM, T_ENUM, 0, STR(silent_audio), "auto", 0, 0,
     "Add a silent AAC-LC track (48 kHz stereo) to a stream that has video but no audio "
     "(a phone app with its microphone off), for platforms that refuse a stream without "
     "audio (Facebook), the recording and players. `auto`: when the first 2 s of video "
     "come without audio; kebun holds the stream those 2 s, once at its start, so the "
     "silence covers the video from its first frame (a stream with audio is not held: its "
     "first audio frame releases it). `on`: at once, from the first video frame, unless "
     "audio came before it. `off`: never. When real audio starts later, kebun switches to it "
     "at the next keyframe with one new sequence header, and logs it.", silence_names},
    {"record", SEC_STREAM, T_BOOL, 0, STR(record), "off", 0, 0,
     "Record every broadcast of this stream under `recordings/NAME/`."},
    {"retention_age", SEC_STREAM, T_DURATION, 0, STR(retention_age), "0", 0,
     3650ull * 24 * 3600000,
     "Delete this stream's finished recordings older than this (e.g. `30d`); `0` keeps "
     "them."},
    {"retention_size", SEC_STREAM, T_SIZE, 0, STR(retention_size), "0", 0, UINT64_MAX,
     "Keep this stream's recordings under this total size (e.g. `20G`) by deleting the "
     "oldest finished ones; `0` means no limit. The live recording is never deleted."},
};
const size_t kb__conf_nkeys = sizeof(kb__conf_keys) / sizeof(kb__conf_keys[0]);
static_assert(sizeof(kb__conf_keys) / sizeof(kb__conf_keys[0]) <= KB__CONF_MAX_KEYS,
              "raise KB__CONF_MAX_KEYS");
