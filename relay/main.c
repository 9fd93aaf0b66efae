/* kebun: command line, config, and the loop. */
#include <errno.h>
#include <getopt.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <openssl/opensslv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config/config.h"
#include "recorder/recorder.h"
#include "kb_version.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "tls.h"

#define DEFAULT_CONFIG KB_DEFAULT_CONFIG ///< SYSCONFDIR/kebun/kebun.conf (meson)

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: kebun [-c FILE] [--listen ADDR:PORT]... [--version] [--help]\n"
            "       kebun --check-config [FILE]\n"
            "\n"
            "RTMP livestream relay and recorder.\n"
            "\n"
            "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
            "  -l, --listen ADDR:PORT\n"
            "                        accept RTMP here instead of the config's listen\n"
            "                        addresses; repeat for several ([::]:1935 for IPv6)\n"
            "      --check-config [FILE]\n"
            "                        validate the configuration file (-c FILE or FILE)\n"
            "                        and exit\n"
            "      --export DIR      remux the finished recording in DIR into DIR/recording.mp4\n"
            "                        (faststart) and exit\n"
            "      --config-reference\n"
            "                        print every configuration key as Markdown and exit\n"
            "  -V, --version         print the version and exit\n"
            "  -h, --help            print this help and exit\n"
            "\n"
            "Every configuration key is described in docs/CONFIG.md.\n");
}

/* The key reference in docs/CONFIG.md is this output, so the docs follow
 * the key table in config/config.c (a test compares them). */
static void config_reference(void)
{
    const char *section = "";
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        if (!d->name)
            break;
        if (strcmp(section, d->section) != 0) {
            section = d->section;
            printf("\n### [%s%s]\n\n", section, strcmp(section, "stream") == 0 ? " NAME" : "");
            printf("| key | type | default | meaning |\n|---|---|---|---|\n");
        }
        if (d->def)
            printf("| `%s` | %s | `%s`%s | %s |\n", d->name, d->type, d->def,
                   d->repeat ? ", repeatable" : "", d->doc);
        else
            printf("| `%s` | %s | %s | %s |\n", d->name, d->type,
                   d->required ? "required" : "none, repeatable", d->doc);
    }
}

/* FFmpeg's own messages (from the recorder thread) go through kb_log, one
 * whole line at a time: errors as warnings, warnings only at debug level
 * (the recorder reports what matters in its own words). */
static void ffmpeg_log(void *avcl, int level, const char *fmt, va_list vl)
{
    enum kb_log_level ours = level <= AV_LOG_ERROR     ? KB_LOG_WARN
                             : level <= AV_LOG_WARNING ? KB_LOG_DEBUG
                                                       : (enum kb_log_level)-1;
    if ((int)ours < 0 || !kb_log_enabled(ours))
        return;
    char line[512];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &prefix);
    kb_log(ours, NULL, NULL, "ffmpeg: %s", line);
}

static void export_log(int level, const char *stream, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void export_log(int level, const char *stream, const char *fmt, va_list ap)
{
    kb_vlog((enum kb_log_level)level, stream, NULL, fmt, ap);
}

static void version(void)
{
    printf("kebun %s\n", KB_VERSION);
    printf("  libuv %s, libavformat %s, %s\n", uv_version_string(), AV_STRINGIFY(LIBAVFORMAT_VERSION),
           OPENSSL_VERSION_TEXT);
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    int check_only = 0;
    struct kb_listen_conf listen[KB_CONF_MAX_LISTEN];
    int n_listen = 0;
    enum { OPT_CHECK = 1000, OPT_REFERENCE, OPT_EXPORT };
    const char *export_dir = NULL;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"config-reference", no_argument, NULL, OPT_REFERENCE},
        {"export", required_argument, NULL, OPT_EXPORT},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'l':
            if (n_listen == KB_CONF_MAX_LISTEN) {
                fprintf(stderr, "kebun: at most %d --listen addresses\n", KB_CONF_MAX_LISTEN);
                return 2;
            }
            if (kb_config_parse_listen(optarg, &listen[n_listen]) < 0) {
                fprintf(stderr, "kebun: --listen '%s' is not HOST:PORT with a numeric address\n",
                        optarg);
                return 2;
            }
            n_listen++;
            break;
        case OPT_CHECK:
            check_only = 1;
            break;
        case OPT_REFERENCE:
            config_reference();
            return 0;
        case OPT_EXPORT:
            export_dir = optarg;
            break;
        case 'V':
            version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (export_dir) {
        /* Runs beside a live server safely: it touches one finished
         * recording's directory and nothing else. */
        av_log_set_callback(ffmpeg_log);
        int r = kb_recorder_export_dir(export_dir, export_log);
        if (r < 0) {
            fprintf(stderr, "kebun: cannot export %s: %s\n", export_dir,
                    r == -EBUSY ? "the recording is still open" : av_err2str(r));
            return 1;
        }
        return 0;
    }
    /* `kebun --check-config FILE` reads as naturally as `-c FILE --check-config`. */
    if (check_only && optind == argc - 1) {
        path = argv[optind++];
    }
    if (optind < argc) {
        fprintf(stderr, "kebun: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct kb_config *conf;
    char err[4096];
    int r = kb_config_load(path, &conf, err, sizeof(err));
    if (r < 0) {
        fputs(err, stderr);
        fprintf(stderr, "kebun: configuration not valid\n");
        return 1;
    }
    /* An RTMPS certificate that does not load, or a key that is not the
     * certificate's, is a configuration error like any other (and
     * --check-config catches it). */
    if (conf->n_listen_tls) {
        struct kb_tls_server *tls;
        if (kb_tls_server_new(&tls, conf, err, sizeof(err)) < 0) {
            fputs(err, stderr);
            fprintf(stderr, "kebun: configuration not valid\n");
            kb_config_free(conf);
            return 1;
        }
        kb_tls_server_free(tls);
    }
    if (check_only) {
        printf("%s: ok (%d stream%s)\n", path, conf->n_streams, conf->n_streams == 1 ? "" : "s");
        kb_config_free(conf);
        return 0;
    }
    if (n_listen) {
        memcpy(conf->listen, listen, sizeof(listen[0]) * (size_t)n_listen);
        conf->n_listen = n_listen;
    }

    kb_log_set_level((enum kb_log_level)conf->log_level);
    kb_log_lines(KB_LOG_WARN, conf->notes);
    av_log_set_callback(ffmpeg_log);
    signal(SIGPIPE, SIG_IGN);
    /* Past a file size limit a write fails with EFBIG, which the recorder
     * reports; the default action would kill the whole relay. */
    signal(SIGXFSZ, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct kb_server srv;
    kb_log(KB_LOG_INFO, NULL, NULL, "kebun %s starting with %s (%d stream%s)", KB_VERSION, path,
           conf->n_streams, conf->n_streams == 1 ? "" : "s");
    r = kb_server_start(&srv, &loop, conf);
    srv.listen_overridden = n_listen > 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    kb_server_free(&srv);
    /* A handle left open is a bug: the exit status says so. */
    int lr = kb_loop_close(&loop);
    if (r < 0)
        return 3;
    if (lr < 0)
        return 4;
    kb_log(KB_LOG_INFO, NULL, NULL, "stopped");
    return 0;
}
