/* kebun-load: RTMP publishers and players in one process, on one libuv
 * loop, sharing one clock.
 *
 * Publishers pace an FLV file (or generated frames) in real time, each tag
 * at its own timestamp, and tag every audio and video frame with a sequence
 * number whose send time they remember (bench.h). Players play the stream
 * and look each frame's tag up on arrival, so the relay's added latency is
 * measured per message without trusting anybody's timestamps. Players parse
 * chunk headers only (skim.c); one 256 KiB read buffer serves every socket.
 *
 * The run has phases: publishers connect and go live; a warm-up lets the
 * server cache a GOP; players ramp up; after a settle time a measurement
 * window of --duration seconds starts (churn players come and go during
 * it); then everything closes. Server CPU and RSS are sampled from /proc at
 * the window's edges for every --server-pid, so the figures and the window
 * line up exactly. The tool reports its own CPU too: when it nears one core
 * the tool, not the server, is the limit.
 *
 * This file runs the phases and the command line; load-conn.c holds the
 * connections, load-report.c the /proc sampling and the report.
 *
 * Usage: kebun-load --help
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "load.h"

struct kl_state kl;

/* ---- small helpers ---- */

static double now_s(void)
{
    return (double)(uv_hrtime() - kl.t0) / 1e9;
}

void kl_note(const char *fmt, ...)
{
    if (kl.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%7.2f] ", now_s());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void kl_count_error(const char *what)
{
    for (int i = 0; i < kl.n_errors; i++)
        if (strcmp(kl.errors[i].what, what) == 0) {
            kl.errors[i].n++;
            return;
        }
    if (kl.n_errors < MAX_ERRORS) {
        snprintf(kl.errors[kl.n_errors].what, sizeof(kl.errors[0].what), "%s", what);
        kl.errors[kl.n_errors++].n = 1;
    }
}

/* "HOST[:PORT]/..." after the scheme: host, port and address into u;
 * returns the first slash, or NULL. */
static const char *host_port(struct url *u, const char *s, uint16_t default_port)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return NULL;
    char hostport[96];
    snprintf(hostport, sizeof(hostport), "%.*s", (int)(slash - s), s);
    char *colon = strrchr(hostport, ':');
    u->port = default_port;
    if (colon) {
        *colon = '\0';
        u->port = (uint16_t)atoi(colon + 1);
    }
    snprintf(u->host, sizeof(u->host), "%s", hostport);
    const char *ip = strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
    /* loopback benchmarks: literal IPv4 addresses only */
    return uv_ip4_addr(ip, u->port, &u->addr) < 0 ? NULL : slash;
}

static int parse_url(struct url *u, const char *s)
{
    memset(u, 0, sizeof(*u));
    if (strncmp(s, "http://", 7) == 0) {
        /* HTTP-FLV players: http://HOST:PORT/PATH (PATH may hold %d). */
        u->http = 1;
        const char *slash = host_port(u, s + 7, 80);
        if (!slash)
            return -1;
        snprintf(u->name, sizeof(u->name), "%s", slash);
        return 0;
    }
    if (strncmp(s, "rtmp://", 7) != 0)
        return -1;
    const char *slash = host_port(u, s + 7, 1935);
    if (!slash)
        return -1;
    const char *rest = slash + 1;
    const char *slash2 = strchr(rest, '/');
    if (!slash2)
        return -1;
    snprintf(u->app, sizeof(u->app), "%.*s", (int)(slash2 - rest), rest);
    snprintf(u->name, sizeof(u->name), "%s", slash2 + 1);
    return u->name[0] && u->app[0] ? 0 : -1;
}

/* ---- phases ---- */

static void window_edge(int start)
{
    for (int i = 0; i < kl.n_pids; i++) {
        struct pidstat *ps = &kl.pids[i];
        double cpu = kl_proc_cpu(ps->pid, 0);
        double other = kl_proc_other_threads(ps->pid);
        uint64_t rss = kl_proc_rss(ps->pid);
        if (start) {
            ps->cpu0 = cpu;
            ps->other0 = other;
            ps->rss_start = rss;
        } else {
            ps->cpu1 = cpu;
            ps->other1 = other;
            ps->rss_end = rss;
        }
        if (cpu < 0)
            ps->gone = 1;
    }
    getrusage(RUSAGE_SELF, start ? &kl.ru0 : &kl.ru1);
    if (start) {
        kl.window_t0 = uv_hrtime();
    } else {
        kl.window_t1 = uv_hrtime();
        kl.pubs_live_win = kl.pubs_live;
        kl.players_live_win = kl.players_live;
    }
}

static void set_phase(int phase)
{
    static const char *const names[] = {"publishers", "warm-up", "ramp",  "settle",
                                        "window",     "drain",   "done"};
    kl.phase = phase;
    kl.phase_t = uv_hrtime();
    kl_note("phase: %s (publishers live %d/%d, players live %d/%d)", names[phase], kl.pubs_live,
         kl.n_pubs, kl.players_live, kl.n_players);
}

static void finish_run(void)
{
    set_phase(P_DONE);
    uv_timer_stop(&kl.tick);
    uv_close((uv_handle_t *)&kl.tick, NULL);
    for (int i = 0; i < kl.n_pubs; i++)
        if (kl.pubs[i].timer_open) {
            uv_timer_stop(&kl.pubs[i].timer);
            uv_close((uv_handle_t *)&kl.pubs[i].timer, NULL);
            kl.pubs[i].timer_open = 0;
        }
    for (struct conn *c = kl.conns; c; c = c->next)
        kl_conn_close(c, NULL);
}

static void abort_run(const char *why)
{
    if (kl.aborted)
        return;
    kl.aborted = 1;
    snprintf(kl.abort_reason, sizeof(kl.abort_reason), "%s", why);
    kl_note("aborting: %s", why);
    if (kl.phase == P_WINDOW)
        window_edge(0);
    finish_run();
}

/* Connections that never reach publish/play start in time are failed. */
static void sweep_stuck(uint64_t now)
{
    for (struct conn *c = kl.conns, *next; c; c = next) {
        next = c->next;
        if (c->state < CS_LIVE && now - c->t_connect > CONNECT_TIMEOUT_NS)
            kl_conn_close(c, "no publish/play start within 15 s");
    }
}

static void spawn_churn(uint64_t now)
{
    if (kl.churn <= 0)
        return;
    uint64_t due = (uint64_t)((double)(now - kl.churn_spawn_t0) / 1e9 * kl.churn) + 1;
    int streams = kl.n_pubs > 0 ? kl.n_pubs : 1;
    while (kl.churn_started < due) {
        int idx = (int)kl.churn_started++;
        if (!kl_conn_start(R_PLAYER, 1000000 + idx, idx % streams, 1))
            kl_count_error("out of memory");
    }
}

static void leave_churn(uint64_t now, int all)
{
    uint64_t hold = (uint64_t)(kl.churn_hold * 1e9);
    for (struct conn *c = kl.conns, *next; c; c = next) {
        next = c->next;
        if (c->churn && c->state == CS_LIVE && (all || now - c->t_live >= hold))
            kl_conn_close(c, NULL);
    }
}

static void on_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    double in_phase = (double)(now - kl.phase_t) / 1e9;
    kl_sample_rss_max();
    sweep_stuck(now);
    if (now > kl.deadline) {
        abort_run("run took longer than its deadline");
        return;
    }
    for (int i = 0; i < kl.n_pids; i++)
        if (kl.pids[i].gone) {
            abort_run("the server process is gone");
            return;
        }
    switch (kl.phase) {
    case P_PUBS: {
        int want = kl.n_pubs;
        if (kl.pub_ramp > 0) {
            int due = (int)(in_phase * kl.pub_ramp) + 1;
            if (due < want)
                want = due;
        }
        while (kl.pubs_started < want) {
            int i = kl.pubs_started++;
            struct conn *c = kl_conn_start(R_PUB, i, i, 0);
            if (!c) {
                abort_run("out of memory");
                return;
            }
            c->pub = &kl.pubs[i];
            kl.pubs[i].c = c;
        }
        if (kl.pubs_live + kl.pubs_failed >= kl.n_pubs) {
            if (kl.n_pubs > 0 && kl.pubs_live == 0) {
                abort_run("no publisher went live");
                return;
            }
            set_phase(P_WARM);
        }
        break;
    }
    case P_WARM:
        if (in_phase >= kl.warmup) {
            for (int i = 0; i < kl.n_pids; i++)
                kl.pids[i].rss_before = kl_proc_rss(kl.pids[i].pid);
            set_phase(P_RAMP);
        }
        break;
    case P_RAMP: {
        int want = kl.n_players;
        if (kl.ramp > 0) {
            int due = (int)(in_phase * kl.ramp) + 1;
            if (due < want)
                want = due;
        }
        int streams = kl.n_pubs > 0 ? kl.n_pubs : 1;
        while (kl.players_started < want) {
            int i = kl.players_started++;
            if (!kl_conn_start(R_PLAYER, i, i % streams, 0))
                kl_count_error("out of memory");
        }
        if (kl.players_started == kl.n_players &&
            kl.players_live + kl.players_failed + kl.players_dropped >= kl.n_players)
            set_phase(P_SETTLE);
        break;
    }
    case P_SETTLE:
        if (in_phase >= kl.settle) {
            window_edge(1);
            kl.churn_spawn_t0 = now;
            set_phase(P_WINDOW);
        }
        break;
    case P_WINDOW:
        spawn_churn(now);
        leave_churn(now, 0);
        if (in_phase >= kl.duration) {
            window_edge(0);
            set_phase(P_DRAIN);
        }
        break;
    case P_DRAIN:
        leave_churn(now, 0);
        if ((kl.churn_live == 0 && in_phase >= 1.0) || in_phase >= 5.0) {
            leave_churn(now, 1);
            for (int i = 0; i < kl.n_pids; i++)
                kl.pids[i].rss_after = kl_proc_rss(kl.pids[i].pid);
            finish_run();
        }
        break;
    }
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: kebun-load [options]\n"
            "\n"
            "RTMP publishers and players in one process, one loop, one clock; measures relay\n"
            "latency per message, time to first keyframe, accept latency, gaps, and the\n"
            "server's CPU and RSS over a measurement window.\n"
            "\n"
            "  --url rtmp://HOST:PORT/APP/NAME   players play this (a %%d in NAME is the\n"
            "                                    stream index, players spread round-robin)\n"
            "  --publish-url rtmp://HOST:PORT/APP/KEY   publishers publish this (%%d likewise)\n"
            "  --publishers N      publishers, one stream each (default 1 with --publish-url)\n"
            "  --players N         steady players (default 0)\n"
            "  --ramp RATE         players started per second (default 200; 0 = all at once)\n"
            "  --publisher-ramp RATE  publishers started per second (default 25)\n"
            "  --duration S        measurement window (default 10)\n"
            "  --warmup S          after the publishers are live, before players (default 3)\n"
            "  --settle S          after the last player started, before the window (default 1)\n"
            "  --source FILE.flv   media to publish, paced tag by tag, looping\n"
            "  --generate KBPS     generated frames instead (default 3000 when no --source)\n"
            "  --no-loop           stop publishing at the end of the source\n"
            "  --pace-ms MS        send due tags in bursts at most every MS ms (default 0: each\n"
            "                      tag at its own timestamp)\n"
            "  --churn RATE        during the window, players that connect and leave at RATE/s\n"
            "  --churn-hold S      how long a churn player stays after play start (default 1)\n"
            "  --gap-ms MS         a pause between media messages longer than this is a gap\n"
            "                      (default 500)\n"
            "  --server-pid PID    sample this process's CPU and RSS (repeat, up to 8)\n"
            "  --label TEXT        copied into the JSON\n"
            "  --json              print JSON on stdout (the text summary goes to stderr)\n"
            "  --quiet             no progress lines\n"
            "  --help\n");
}

int main(int argc, char **argv)
{
    enum {
        O_URL = 1000, O_PUBURL, O_PUBS, O_PLAYERS, O_RAMP, O_PUBRAMP, O_DURATION, O_WARMUP,
        O_SETTLE, O_SOURCE, O_GENERATE, O_NOLOOP, O_PACE, O_CHURN, O_HOLD, O_GAP, O_PID,
        O_LABEL, O_JSON, O_QUIET, O_HELP
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"publish-url", required_argument, NULL, O_PUBURL},
        {"publishers", required_argument, NULL, O_PUBS},
        {"players", required_argument, NULL, O_PLAYERS},
        {"ramp", required_argument, NULL, O_RAMP},
        {"publisher-ramp", required_argument, NULL, O_PUBRAMP},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"settle", required_argument, NULL, O_SETTLE},
        {"source", required_argument, NULL, O_SOURCE},
        {"generate", required_argument, NULL, O_GENERATE},
        {"no-loop", no_argument, NULL, O_NOLOOP},
        {"pace-ms", required_argument, NULL, O_PACE},
        {"churn", required_argument, NULL, O_CHURN},
        {"churn-hold", required_argument, NULL, O_HOLD},
        {"gap-ms", required_argument, NULL, O_GAP},
        {"server-pid", required_argument, NULL, O_PID},
        {"label", required_argument, NULL, O_LABEL},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    kl.n_pubs = -1;
    kl.ramp = 200;
    kl.pub_ramp = 25;
    kl.duration = 10;
    kl.warmup = 3;
    kl.settle = 1;
    kl.churn_hold = 1;
    kl.gap_ms = 500;
    kl.loop = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_URL:
            if (parse_url(&kl.play, optarg) < 0) {
                fprintf(stderr, "kebun-load: --url: expected rtmp://IPV4:PORT/APP/NAME\n");
                return 2;
            }
            kl.have_play = 1;
            break;
        case O_PUBURL:
            if (parse_url(&kl.publish, optarg) < 0) {
                fprintf(stderr, "kebun-load: --publish-url: expected rtmp://IPV4:PORT/APP/KEY\n");
                return 2;
            }
            kl.have_publish = 1;
            break;
        case O_PUBS: kl.n_pubs = atoi(optarg); break;
        case O_PLAYERS: kl.n_players = atoi(optarg); break;
        case O_RAMP: kl.ramp = atof(optarg); break;
        case O_PUBRAMP: kl.pub_ramp = atof(optarg); break;
        case O_DURATION: kl.duration = atof(optarg); break;
        case O_WARMUP: kl.warmup = atof(optarg); break;
        case O_SETTLE: kl.settle = atof(optarg); break;
        case O_SOURCE: kl.source_path = optarg; break;
        case O_GENERATE: kl.gen_kbps = (uint32_t)atoi(optarg); break;
        case O_NOLOOP: kl.loop = 0; break;
        case O_PACE: kl.pace_ms = atof(optarg); break;
        case O_CHURN: kl.churn = atof(optarg); break;
        case O_HOLD: kl.churn_hold = atof(optarg); break;
        case O_GAP: kl.gap_ms = atof(optarg); break;
        case O_PID:
            if (kl.n_pids < MAX_PIDS)
                kl.pids[kl.n_pids++].pid = atoi(optarg);
            break;
        case O_LABEL: kl.label = optarg; break;
        case O_JSON: kl.json = 1; break;
        case O_QUIET: kl.quiet = 1; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (kl.n_pubs < 0)
        kl.n_pubs = kl.have_publish ? 1 : 0;
    if (kl.n_pubs > 0 && !kl.have_publish) {
        fprintf(stderr, "kebun-load: publishers need --publish-url\n");
        return 2;
    }
    if ((kl.n_players > 0 || kl.churn > 0) && !kl.have_play) {
        fprintf(stderr, "kebun-load: players need --url\n");
        return 2;
    }
    if (kl.n_pubs > MAX_STREAMS || kl.n_players < 0 || kl.duration <= 0 || kl.duration > 3600) {
        fprintf(stderr, "kebun-load: publishers 0..%d, players >= 0, duration 0..3600 s\n",
                MAX_STREAMS);
        return 2;
    }

    /* A thousand players are a thousand descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < (rlim_t)(kl.n_players + kl.n_pubs + kl.churn * kl.churn_hold * 2 + 64))
        fprintf(stderr, "kebun-load: warning: open files limit %llu is low for this load\n",
                (unsigned long long)rl.rlim_cur);
    signal(SIGPIPE, SIG_IGN);

    char err[256];
    if (kl.source_path) {
        if (bt_source_load_flv(&kl.src, kl.source_path, err, sizeof(err)) < 0) {
            fprintf(stderr, "kebun-load: %s\n", err);
            return 1;
        }
    } else if (bt_source_generate(&kl.src, kl.gen_kbps ? kl.gen_kbps : 3000, 2000, 10) < 0) {
        fprintf(stderr, "kebun-load: out of memory\n");
        return 1;
    }
    if (kl.n_pubs > 0) {
        kl.pubs = calloc((size_t)kl.n_pubs, sizeof(*kl.pubs));
        if (!kl.pubs)
            return 1;
    }

    kl.loop_ = uv_default_loop();
    kl.t0 = uv_hrtime();
    for (int i = 0; i < kl.n_pubs; i++) {
        kl.pubs[i].ring = calloc(RING, sizeof(struct sendrec));
        if (!kl.pubs[i].ring)
            return 1;
        uv_timer_init(kl.loop_, &kl.pubs[i].timer);
        kl.pubs[i].timer.data = &kl.pubs[i];
        kl.pubs[i].timer_open = 1;
    }
    double pub_time = kl.pub_ramp > 0 ? kl.n_pubs / kl.pub_ramp : 0;
    double ramp_time = kl.ramp > 0 ? kl.n_players / kl.ramp : 0;
    kl.deadline = kl.t0 + (uint64_t)((pub_time + 20 + kl.warmup + ramp_time + 20 + kl.settle +
                                    kl.duration + 10) * 1e9);
    kl_note("source: %zu tags, %.0f kbit/s, %.1f msgs/s, pass %.1f s", kl.src.n,
         kl.src.period_ms ? (double)kl.src.media_bytes * 8 / kl.src.period_ms : 0,
         kl.src.period_ms ? kl.src.media_msgs * 1000.0 / kl.src.period_ms : 0,
         kl.src.period_ms / 1000.0);
    uv_timer_init(kl.loop_, &kl.tick);
    set_phase(P_PUBS);
    uv_timer_start(&kl.tick, on_tick, 0, TICK_MS);
    uv_run(kl.loop_, UV_RUN_DEFAULT);
    if (!kl.window_t1)
        getrusage(RUSAGE_SELF, &kl.ru1);

    if (kl.json) {
        kl_report_json(stdout);
        if (!kl.quiet)
            kl_report_text(stderr);
    } else {
        kl_report_text(stdout);
    }
    for (int i = 0; i < kl.n_pubs; i++) {
        free(kl.pubs[i].ring);
        free(kl.pubs[i].scratch);
    }
    free(kl.pubs);
    bt_source_free(&kl.src);
    uv_loop_close(kl.loop_);
    return kl.aborted ? 1 : 0;
}

