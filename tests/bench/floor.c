/* kebun-floor: what the kernel alone costs to deliver a stream.
 *
 * Writes the bytes a relay would write (each message's chunked size, from
 * the same FLV file or generated source kebun-load publishes) to N loopback
 * TCP sockets at the same times: one write per message per receiver, or,
 * with --interval-ms, one write per interval carrying whatever became due.
 * There is no RTMP, no parsing, no copy in user space: one buffer is
 * written again and again. A forked reader process drains the sockets.
 * The writer's CPU (getrusage) over the run, per delivered Gbit, is the
 * floor a relay's figures are read against ("x times the floor").
 *
 * Usage: kebun-floor --help
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CHUNK 4096 ///< chunk size the relay sends with (kebun's and nginx-rtmp's default)

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000ull),
                          .tv_nsec = (long)(t_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static double ru_cpu(const struct rusage *r)
{
    return (double)r->ru_utime.tv_sec + (double)r->ru_utime.tv_usec / 1e6 +
           (double)r->ru_stime.tv_sec + (double)r->ru_stime.tv_usec / 1e6;
}

/* The reader: connect n sockets, tell the parent, drain until every socket
 * reached EOF or the deadline passed, report CPU seconds on `report`. */
static int reader(int port, int n, int ready, int report, double max_s)
{
    int *fds = calloc((size_t)n, sizeof(int));
    int ep = epoll_create1(0);
    if (!fds || ep < 0)
        return 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0) {
            perror("kebun-floor: reader connect");
            return 1;
        }
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    char one = 1;
    if (write(ready, &one, 1) != 1)
        return 1;
    static char buf[256 * 1024];
    struct epoll_event evs[256];
    int open_fds = n;
    uint64_t end = mono_ns() + (uint64_t)(max_s * 1e9);
    while (open_fds > 0 && mono_ns() < end) {
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            for (int rounds = 0; rounds < 64; rounds++) {
                ssize_t r = read(fd, buf, sizeof(buf));
                if (r > 0)
                    continue;
                if (r == 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                    close(fd);
                    open_fds--;
                }
                break;
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru_cpu(&ru);
    if (write(report, &cpu, sizeof(cpu)) != sizeof(cpu))
        return 1;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: kebun-floor [--receivers N] [--interval-ms MS] [--duration S]\n"
               "                   [--source FILE.flv | --generate KBPS] [--label TEXT] [--json]\n"
               "\n"
               "Writes a stream's bytes to N loopback sockets, one write per message\n"
               "(--interval-ms 0, the default) or one per interval, and reports the writer's\n"
               "CPU per delivered Gbit: the kernel's floor for a relay.\n");
}

int main(int argc, char **argv)
{
    int n = 100, json = 0;
    double interval_ms = 0, duration = 10;
    const char *source = NULL, *label = "";
    uint32_t kbps = 3000;
    static const struct option opts[] = {
        {"receivers", required_argument, NULL, 'n'}, {"interval-ms", required_argument, NULL, 'i'},
        {"duration", required_argument, NULL, 'd'},  {"source", required_argument, NULL, 's'},
        {"generate", required_argument, NULL, 'g'},  {"label", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},            {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n': n = atoi(optarg); break;
        case 'i': interval_ms = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 's': source = optarg; break;
        case 'g': kbps = (uint32_t)atoi(optarg); break;
        case 'l': label = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (n < 1 || n > 15000 || duration <= 0 || duration > 3600 || interval_ms < 0) {
        fprintf(stderr, "kebun-floor: receivers 1..15000, duration 0..3600 s\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    struct bt_source src;
    char err[256];
    if (source) {
        if (bt_source_load_flv(&src, source, err, sizeof(err)) < 0) {
            fprintf(stderr, "kebun-floor: %s\n", err);
            return 1;
        }
    } else if (bt_source_generate(&src, kbps, 2000, 10) < 0) {
        fprintf(stderr, "kebun-floor: out of memory\n");
        return 1;
    }

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4096) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
        perror("kebun-floor: listen");
        return 1;
    }
    int ready[2], report[2];
    if (pipe(ready) < 0 || pipe(report) < 0)
        return 1;
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        close(ls);
        _exit(reader(ntohs(a.sin_port), n, ready[1], report[1], duration + 60));
    }
    int *fds = calloc((size_t)n, sizeof(int));
    if (!fds)
        return 1;
    for (int i = 0; i < n; i++) {
        fds[i] = accept(ls, NULL, NULL);
        if (fds[i] < 0) {
            perror("kebun-floor: accept");
            kill(child, SIGKILL);
            return 1;
        }
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    char c;
    if (read(ready[0], &c, 1) != 1) {
        kill(child, SIGKILL);
        return 1;
    }

    size_t cap = 1 << 20;
    uint8_t *buf = calloc(1, cap);
    if (!buf)
        return 1;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(duration * 1e9);
    uint64_t writes = 0, bytes = 0, behind_max = 0, interval_ns = (uint64_t)(interval_ms * 1e6);
    uint64_t next_flush = t0 + interval_ns, pending = 0;
    size_t ti = 0;
    uint32_t pass = 0;
    int failed = 0;
    for (;;) {
        if (ti == src.n) {
            ti = 0;
            pass++;
        }
        const struct bt_tag *t = &src.tags[ti++];
        if (pass > 0 && (t->flags & BT_CONFIG))
            continue;
        uint64_t due = t0 + ((uint64_t)t->ts + (uint64_t)pass * src.period_ms) * 1000000ull;
        if (interval_ns == 0) {
            if (due >= end)
                break;
            sleep_until(due);
        } else {
            /* Everything due up to a flush leaves in one write at the flush. */
            while (due > next_flush && next_flush < end) {
                if (pending) {
                    sleep_until(next_flush);
                    uint64_t late = mono_ns() - next_flush;
                    if (late > behind_max)
                        behind_max = late;
                    for (int i = 0; i < n && !failed; i++)
                        failed = write_all(fds[i], buf, pending) < 0;
                    writes += (uint64_t)n;
                    bytes += pending * (uint64_t)n;
                    pending = 0;
                }
                next_flush += interval_ns;
            }
            if (next_flush >= end || failed)
                break;
            pending += bt_wire_size(t, CHUNK);
            if (pending > cap) {
                uint8_t *nb = realloc(buf, pending);
                if (!nb)
                    return 1;
                memset(nb + cap, 0, pending - cap);
                buf = nb;
                cap = pending;
            }
            continue;
        }
        uint64_t late = mono_ns() - due;
        if (late > behind_max)
            behind_max = late;
        size_t len = bt_wire_size(t, CHUNK);
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb)
                return 1;
            memset(nb + cap, 0, len - cap);
            buf = nb;
            cap = len;
        }
        for (int i = 0; i < n && !failed; i++)
            failed = write_all(fds[i], buf, len) < 0;
        if (failed)
            break;
        writes += (uint64_t)n;
        bytes += len * (uint64_t)n;
    }
    uint64_t t1 = mono_ns();
    getrusage(RUSAGE_SELF, &ru1);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    double reader_cpu = -1;
    if (read(report[0], &reader_cpu, sizeof(reader_cpu)) != sizeof(reader_cpu))
        reader_cpu = -1;
    int status = 0;
    waitpid(child, &status, 0);

    double win = (double)(t1 - t0) / 1e9;
    double cpu = ru_cpu(&ru1) - ru_cpu(&ru0);
    double gbit = (double)bytes * 8 / 1e9;
    if (json) {
        printf("{\"tool\": \"kebun-floor\", \"label\": \"%s\", \"ok\": %s, \"receivers\": %d, "
               "\"interval_ms\": %.1f, \"duration_s\": %.3f, \"writes\": %llu, \"bytes\": %llu, "
               "\"gbit\": %.4f, \"writer_cpu_s\": %.3f, \"writer_cores\": %.3f, "
               "\"cpu_s_per_gbit\": %.4f, \"writes_per_s_per_receiver\": %.1f, "
               "\"us_per_write\": %.2f, \"reader_cpu_s\": %.3f, \"behind_max_ms\": %.2f}\n",
               label, failed ? "false" : "true", n, interval_ms, win, (unsigned long long)writes,
               (unsigned long long)bytes, gbit, cpu, cpu / win, gbit > 0 ? cpu / gbit : 0,
               (double)writes / n / win, writes ? cpu * 1e6 / (double)writes : 0, reader_cpu,
               (double)behind_max / 1e6);
    } else {
        printf("kebun-floor: %d receivers, %s, %.1f s: %llu writes (%.1f/s per receiver), "
               "%.3f Gbit\n  writer %.3f CPU-s = %.3f cores, %.4f CPU-s/Gbit, %.2f us/write; "
               "reader %.3f CPU-s; worst lateness %.2f ms%s\n",
               n, interval_ms > 0 ? "one write per interval" : "one write per message", win,
               (unsigned long long)writes, (double)writes / n / win, gbit, cpu, cpu / win,
               gbit > 0 ? cpu / gbit : 0, writes ? cpu * 1e6 / (double)writes : 0, reader_cpu,
               (double)behind_max / 1e6, failed ? " (a write FAILED)" : "");
    }
    free(buf);
    free(fds);
    bt_source_free(&src);
    return failed ? 1 : 0;
}
