/* kebun-load's parts: the state they share and the functions that cross
 * files. kebun-load.c runs the phases and the command line, load-conn.c the
 * RTMP connections (publishers and players), load-report.c the /proc
 * sampling of the server and the report. */
#ifndef KB_LOAD_H
#define KB_LOAD_H

#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <uv.h>

#include "bench.h"
#include "relay/rtmp/handshake.h"
#include "relay/rtmp/proto.h"

#define READ_BUF (256 * 1024)         ///< one read buffer shared by every connection
#define RING 8192                     ///< send times remembered per publisher (~110 s)
#define PUB_CHUNK 4096                ///< chunk size publishers send with
#define PUB_BACKLOG_MAX (64u << 20)   ///< a publisher the server stops reading is failed
#define MAX_PIDS 8
#define MAX_STREAMS 4096
#define TICK_MS 10                    ///< ramp, churn and phase timer
#define CONNECT_TIMEOUT_NS (15ull * 1000000000) ///< connect to play/publish start
#define MAX_ERRORS 16

enum { R_PUB, R_PLAYER };
enum { CS_CONNECTING, CS_HANDSHAKE, CS_CONNECT, CS_CREATE, CS_WAIT, CS_LIVE, CS_CLOSING };
enum { P_PUBS, P_WARM, P_RAMP, P_SETTLE, P_WINDOW, P_DRAIN, P_DONE };

struct url {
    int http;        ///< http://HOST:PORT/PATH: players read HTTP-FLV
    char host[96];
    char app[128];
    char name[256]; ///< may hold one %d: the stream index
    uint16_t port;
    struct sockaddr_in addr;
};

struct sendrec {
    uint32_t seq;
    uint64_t t_ns; ///< uv_hrtime() when the publisher wrote it
};

struct conn;

struct pub {
    struct conn *c;
    uv_timer_t timer;
    int timer_open;
    uint64_t start_ns;   ///< pacing origin
    size_t next;         ///< next tag
    uint32_t pass;       ///< times the source looped
    uint32_t seq;        ///< last sequence number used
    struct sendrec *ring;
    uint64_t msgs, bytes;
    uint64_t late_max_ms; ///< worst lateness of a tag against its schedule
    uint8_t *scratch;
    size_t scratch_cap;
    int done;
};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uint8_t role, state, churn, writing, counted;
    int idx, stream;
    struct kb_handshake *hs;
    struct kb_proto proto; ///< commands out (both roles); media in (publishers)
    struct bt_skim *sk;    ///< players' input (RTMP)
    struct bt_flvskim *fk; ///< players' input (HTTP-FLV)
    struct kb_buf wbuf;    ///< bytes of the write in flight
    uint32_t msid;
    uint64_t t_connect, t_play_sent, t_live, t_last_media;
    uint64_t bytes_in, acked, ack_window;
    uint32_t last_seq;
    uint8_t have_seq, got_media, got_key;
    struct pub *pub;
    struct conn *prev, *next; ///< all connections
};

struct stats {
    struct bt_hist accept, ttfk, first_age;
};

struct pidstat {
    int pid;
    double cpu0, cpu1;       ///< utime+stime, seconds, at window start and end
    double other0, other1;   ///< the same for threads other than the main one
    uint64_t rss_before;     ///< KiB before players (after warm-up)
    uint64_t rss_start, rss_end, rss_after, rss_max;
    int gone;
};

struct kl_state {
    /* options */
    struct url play, publish;
    int have_play, have_publish;
    int n_pubs, n_players;
    double ramp, pub_ramp, duration, warmup, settle, churn, churn_hold, gap_ms, pace_ms;
    const char *source_path;
    uint32_t gen_kbps;
    int loop, json, quiet;
    const char *label;
    struct pidstat pids[MAX_PIDS];
    int n_pids;

    /* state */
    uv_loop_t *loop_;
    uv_timer_t tick;
    struct bt_source src;
    struct pub *pubs;
    struct conn *conns;
    int phase;
    uint64_t t0, phase_t, window_t0, window_t1, deadline;
    int pubs_started, pubs_live, pubs_failed;
    int players_started, players_live, players_failed, players_dropped;
    int pubs_live_win, players_live_win; ///< live at the end of the window
    uint64_t churn_started, churn_live, churn_done, churn_failed;
    uint64_t churn_spawn_t0;
    struct rusage ru0, ru1;
    int aborted;
    char abort_reason[128];

    /* player counters */
    uint64_t bytes_all, msgs_all, bytes_win, msgs_win;
    uint64_t media_win, tagged_win, untagged_win, cached_msgs;
    uint64_t gaps, missing, reordered, closed_by_server;
    uint64_t gap_max_us;
    struct bt_hist latency;
    struct stats steady, churners;
    struct {
        char what[96];
        uint64_t n;
    } errors[MAX_ERRORS];
    int n_errors;
};

extern struct kl_state kl;

/* kebun-load.c */
void kl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kl_count_error(const char *what);

/* load-conn.c */
struct conn *kl_conn_start(int role, int idx, int stream, int churn);
/* Close a connection; `why` NULL for a planned close, else the failure. */
void kl_conn_close(struct conn *c, const char *why);

/* load-report.c */
double kl_proc_cpu(int pid, int tid);
double kl_proc_other_threads(int pid);
uint64_t kl_proc_rss(int pid);
void kl_sample_rss_max(void);
void kl_report_json(FILE *f);
void kl_report_text(FILE *f);

#endif
