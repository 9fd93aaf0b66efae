/* kebun-load: the server's CPU and RSS from /proc, and the report. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"

/* ---- /proc sampling of the server under test ---- */

double kl_proc_cpu(int pid, int tid)
{
    char path[64], buf[1024];
    if (tid)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* Fields after the name: state is field 3; utime 14, stime 15. */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU of the threads other than the main one (kebun's recorder). */
double kl_proc_other_threads(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    uv_fs_t req;
    double sum = 0;
    if (uv_fs_scandir(kl.loop_, &req, path, 0, NULL) < 0) {
        uv_fs_req_cleanup(&req);
        return 0;
    }
    uv_dirent_t ent;
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        int tid = atoi(ent.name);
        if (tid > 0 && tid != pid) {
            double c = kl_proc_cpu(pid, tid);
            if (c > 0)
                sum += c;
        }
    }
    uv_fs_req_cleanup(&req);
    return sum;
}

uint64_t kl_proc_rss(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    uint64_t kib = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtoull(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

void kl_sample_rss_max(void)
{
    for (int i = 0; i < kl.n_pids; i++) {
        uint64_t r = kl_proc_rss(kl.pids[i].pid);
        if (r > kl.pids[i].rss_max)
            kl.pids[i].rss_max = r;
        if (r == 0)
            kl.pids[i].gone = 1;
    }
}

/* ---- report ---- */

static void hist_json(FILE *f, const char *name, const struct bt_hist *h, int last)
{
    if (h->count == 0) {
        fprintf(f, "    \"%s\": {\"count\": 0}%s\n", name, last ? "" : ",");
        return;
    }
    fprintf(f,
            "    \"%s\": {\"count\": %" PRIu64 ", \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
            "\"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f}%s\n",
            name, h->count, bt_hist_quantile(h, 0.5) / 1e3, bt_hist_quantile(h, 0.9) / 1e3,
            bt_hist_quantile(h, 0.99) / 1e3, bt_hist_quantile(h, 0.999) / 1e3,
            (double)h->max / 1e3, (double)h->sum / (double)h->count / 1e3, last ? "" : ",");
}

static double tv_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

void kl_report_json(FILE *f)
{
    double win = kl.window_t1 > kl.window_t0 ? (double)(kl.window_t1 - kl.window_t0) / 1e9 : 0;
    double ut = tv_s(&kl.ru1.ru_utime) - tv_s(&kl.ru0.ru_utime);
    double st = tv_s(&kl.ru1.ru_stime) - tv_s(&kl.ru0.ru_stime);
    double gbit = (double)kl.bytes_win * 8 / 1e9;
    uint64_t pub_msgs = 0, pub_bytes = 0, late = 0;
    for (int i = 0; i < kl.n_pubs; i++) {
        pub_msgs += kl.pubs[i].msgs;
        pub_bytes += kl.pubs[i].bytes;
        if (kl.pubs[i].late_max_ms > late)
            late = kl.pubs[i].late_max_ms;
    }
    fprintf(f, "{\n  \"tool\": \"kebun-load\",\n");
    fprintf(f, "  \"label\": \"%s\",\n", kl.label ? kl.label : "");
    fprintf(f, "  \"ok\": %s,\n", kl.aborted ? "false" : "true");
    fprintf(f, "  \"abort_reason\": \"%s\",\n", kl.abort_reason);
    fprintf(f,
            "  \"config\": {\"publishers\": %d, \"players\": %d, \"ramp\": %.1f, "
            "\"duration_s\": %.1f, \"warmup_s\": %.1f, \"churn_rate\": %.1f, "
            "\"churn_hold_s\": %.2f, \"pace_ms\": %.1f, \"source\": \"%s\", "
            "\"source_kbps\": %.0f, \"source_msgs_per_s\": %.1f},\n",
            kl.n_pubs, kl.n_players, kl.ramp, kl.duration, kl.warmup, kl.churn, kl.churn_hold,
            kl.pace_ms, kl.source_path ? kl.source_path : "generated",
            kl.src.period_ms ? (double)kl.src.media_bytes * 8 / kl.src.period_ms : 0,
            kl.src.period_ms ? kl.src.media_msgs * 1000.0 / kl.src.period_ms : 0);
    fprintf(f, "  \"window_s\": %.3f,\n", win);
    fprintf(f,
            "  \"publishers\": {\"live\": %d, \"failed\": %d, \"msgs_sent\": %" PRIu64
            ", \"bytes_sent\": %" PRIu64 ", \"late_max_ms\": %" PRIu64 "},\n",
            kl.pubs_live_win, kl.pubs_failed, pub_msgs, pub_bytes, late);
    fprintf(f,
            "  \"players\": {\"started\": %d, \"live_at_end\": %d, \"failed\": %d, "
            "\"dropped\": %d, \"closed_by_server\": %" PRIu64 ", \"bytes\": %" PRIu64
            ", \"msgs\": %" PRIu64 ", \"bytes_window\": %" PRIu64 ", \"msgs_window\": %" PRIu64
            ", \"media_window\": %" PRIu64 ", \"latency_samples\": %" PRIu64
            ", \"cached_msgs\": %" PRIu64 ", \"untagged\": %" PRIu64
            ", \"gbit_window\": %.4f, \"mbit_s_per_player\": %.3f},\n",
            kl.players_started, kl.players_live_win, kl.players_failed, kl.players_dropped,
            kl.closed_by_server, kl.bytes_all, kl.msgs_all, kl.bytes_win, kl.msgs_win, kl.media_win,
            kl.tagged_win, kl.cached_msgs, kl.untagged_win, gbit,
            win > 0 && kl.players_live_win > 0 ? gbit * 1000 / win / kl.players_live_win : 0);
    fprintf(f, "  \"ms\": {\n");
    hist_json(f, "latency", &kl.latency, 0);
    hist_json(f, "accept", &kl.steady.accept, 0);
    hist_json(f, "ttfk", &kl.steady.ttfk, 0);
    hist_json(f, "first_frame_age", &kl.steady.first_age, 0);
    hist_json(f, "churn_accept", &kl.churners.accept, 0);
    hist_json(f, "churn_ttfk", &kl.churners.ttfk, 0);
    hist_json(f, "churn_first_frame_age", &kl.churners.first_age, 1);
    fprintf(f, "  },\n");
    fprintf(f,
            "  \"gaps\": {\"threshold_ms\": %.0f, \"count\": %" PRIu64 ", \"max_ms\": %.3f, "
            "\"missing_msgs\": %" PRIu64 ", \"reordered_msgs\": %" PRIu64 "},\n",
            kl.gap_ms, kl.gaps, (double)kl.gap_max_us / 1e3, kl.missing, kl.reordered);
    fprintf(f,
            "  \"churn\": {\"rate\": %.1f, \"started\": %" PRIu64 ", \"completed\": %" PRIu64
            ", \"failed\": %" PRIu64 "},\n",
            kl.churn, kl.churn_started, kl.churn_done, kl.churn_failed);
    fprintf(f, "  \"errors\": {");
    for (int i = 0; i < kl.n_errors; i++)
        fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", kl.errors[i].what, kl.errors[i].n);
    fprintf(f, "},\n");
    fprintf(f,
            "  \"tool_cpu\": {\"user_s\": %.3f, \"sys_s\": %.3f, \"cores\": %.3f, "
            "\"max_rss_kib\": %ld},\n",
            ut, st, win > 0 ? (ut + st) / win : 0, kl.ru1.ru_maxrss);
    double total = 0, other = 0;
    uint64_t rss_before = 0, rss_end = 0, rss_after = 0, rss_max = 0, rss_start = 0;
    fprintf(f, "  \"server\": [");
    for (int i = 0; i < kl.n_pids; i++) {
        const struct pidstat *ps = &kl.pids[i];
        double cpu = ps->cpu1 - ps->cpu0, oth = ps->other1 - ps->other0;
        total += cpu;
        other += oth;
        rss_before += ps->rss_before;
        rss_start += ps->rss_start;
        rss_end += ps->rss_end;
        rss_after += ps->rss_after;
        rss_max += ps->rss_max;
        fprintf(f,
                "%s{\"pid\": %d, \"cpu_s\": %.3f, \"other_threads_cpu_s\": %.3f, "
                "\"rss_kib_before_players\": %" PRIu64 ", \"rss_kib_window_start\": %" PRIu64
                ", \"rss_kib_window_end\": %" PRIu64 ", \"rss_kib_after\": %" PRIu64
                ", \"rss_kib_max\": %" PRIu64 "}",
                i ? ", " : "", ps->pid, cpu, oth, ps->rss_before, ps->rss_start, ps->rss_end,
                ps->rss_after, ps->rss_max);
    }
    fprintf(f, "],\n");
    fprintf(f,
            "  \"server_total\": {\"cpu_s\": %.3f, \"cores\": %.3f, \"other_threads_cpu_s\": "
            "%.3f, \"cpu_s_per_gbit\": %.4f, \"rss_kib_before_players\": %" PRIu64
            ", \"rss_kib_window_start\": %" PRIu64 ", \"rss_kib_window_end\": %" PRIu64
            ", \"rss_kib_after\": %" PRIu64 ", \"rss_kib_max\": %" PRIu64
            ", \"rss_kib_per_player\": %.2f}\n",
            total, win > 0 ? total / win : 0, other, gbit > 0 ? total / gbit : 0, rss_before,
            rss_start, rss_end, rss_after, rss_max,
            kl.players_live_win > 0 && rss_end > rss_before
                ? (double)(rss_end - rss_before) / kl.players_live_win
                : 0);
    fprintf(f, "}\n");
}

void kl_report_text(FILE *f)
{
    double win = kl.window_t1 > kl.window_t0 ? (double)(kl.window_t1 - kl.window_t0) / 1e9 : 0;
    double cpu = tv_s(&kl.ru1.ru_utime) - tv_s(&kl.ru0.ru_utime) + tv_s(&kl.ru1.ru_stime) -
                 tv_s(&kl.ru0.ru_stime);
    double gbit = (double)kl.bytes_win * 8 / 1e9;
    fprintf(f, "kebun-load: %d publisher(s), %d/%d players live, window %.1f s%s%s\n",
            kl.pubs_live_win, kl.players_live_win, kl.n_players, win, kl.aborted ? ", ABORTED: " : "",
            kl.abort_reason);
    fprintf(f, "  delivered %.3f Gbit (%.1f Mbit/s), %" PRIu64 " messages\n", gbit,
            win > 0 ? gbit * 1000 / win : 0, kl.msgs_win);
    fprintf(f, "  latency ms   p50 %.2f  p99 %.2f  max %.2f  (%" PRIu64 " samples)\n",
            bt_hist_quantile(&kl.latency, 0.5) / 1e3, bt_hist_quantile(&kl.latency, 0.99) / 1e3,
            (double)kl.latency.max / 1e3, kl.latency.count);
    fprintf(f, "  accept ms    p50 %.2f  p99 %.2f\n", bt_hist_quantile(&kl.steady.accept, .5) / 1e3,
            bt_hist_quantile(&kl.steady.accept, .99) / 1e3);
    fprintf(f, "  first key ms p50 %.2f  p99 %.2f   first frame age p50 %.2f\n",
            bt_hist_quantile(&kl.steady.ttfk, .5) / 1e3, bt_hist_quantile(&kl.steady.ttfk, .99) / 1e3,
            bt_hist_quantile(&kl.steady.first_age, .5) / 1e3);
    if (kl.churn > 0)
        fprintf(f, "  churn: %" PRIu64 " started, %" PRIu64 " failed, accept p99 %.2f ms\n",
                kl.churn_started, kl.churn_failed, bt_hist_quantile(&kl.churners.accept, .99) / 1e3);
    fprintf(f,
            "  gaps > %.0f ms: %" PRIu64 " (max %.1f ms), missing messages %" PRIu64
            ", reordered %" PRIu64 "\n",
            kl.gap_ms, kl.gaps, (double)kl.gap_max_us / 1e3, kl.missing, kl.reordered);
    fprintf(f, "  tool CPU %.2f cores\n", win > 0 ? cpu / win : 0);
    for (int i = 0; i < kl.n_pids; i++) {
        const struct pidstat *ps = &kl.pids[i];
        double c = ps->cpu1 - ps->cpu0;
        fprintf(f, "  server pid %d: %.2f cores, %.3f CPU-s/Gbit, RSS %" PRIu64 " -> %" PRIu64
                   " KiB\n",
                ps->pid, win > 0 ? c / win : 0, gbit > 0 ? c / gbit : 0, ps->rss_before,
                ps->rss_end);
    }
    for (int i = 0; i < kl.n_errors; i++)
        fprintf(f, "  error x%" PRIu64 ": %s\n", kl.errors[i].n, kl.errors[i].what);
}

