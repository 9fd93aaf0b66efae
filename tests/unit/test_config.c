/* kebun: unit tests for the configuration file parser (config/config.c).
 *
 *   test_config CONF        every parser test; CONF is config/kebun.conf
 *   test_config --docs MD   docs/CONFIG.md documents every key of the table
 *
 * Errors are checked for the "PATH:LINE: " prefix with the right line, for
 * naming the key, and, for stream keys, for never echoing the secret.
 */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static const char *example_path; ///< config/kebun.conf in the source tree
static const char *docs_path;    ///< docs/CONFIG.md in the source tree

static struct kb_config *cfg;
static char err[16384];

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * 1024 * 1024)

/* Parse text as "t.conf". */
static int parse(const char *text)
{
    kb_config_free(cfg);
    cfg = NULL;
    memset(err, 'X', sizeof(err));
    int rc = kb_config_parse("t.conf", text, &cfg, err, sizeof(err));
    if (rc == 0 && !cfg)
        return -1000;
    if (rc != 0 && cfg)
        return -1001;
    return rc;
}

/* The text parses; on failure print why. */
static int parse_ok(const char *text)
{
    int rc = parse(text);
    if (rc != 0) {
        fprintf(stderr, "parse failed (%d) for:\n%s\n--- errors:\n%s", rc, text, err);
        return 1;
    }
    if (err[0] != '\0') {
        fprintf(stderr, "parse succeeded but wrote errors:\n%s", err);
        return 1;
    }
    return 0;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The text fails with exactly n_errors errors, one of which starts a line
 * with "t.conf:LINE: " and contains every one of the NULL-terminated
 * strings that follow. */
static int expect_error(const char *text, int line, size_t n_errors, ...)
{
    int rc = parse(text);
    if (rc != -EINVAL) {
        fprintf(stderr, "want -EINVAL, got %d for:\n%s\n", rc, text);
        return 1;
    }
    if (count_lines(err) != n_errors) {
        fprintf(stderr, "want %zu error(s), got:\n%sfor:\n%s\n", n_errors, err, text);
        return 1;
    }
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "t.conf:%d: ", line);
    /* Find the error line with this prefix. */
    const char *at = err;
    while (at && strncmp(at, prefix, strlen(prefix)) != 0) {
        at = strchr(at, '\n');
        if (at)
            at++;
        if (at && !*at)
            at = NULL;
    }
    if (!at) {
        fprintf(stderr, "no error starting with \"%s\" in:\n%sfor:\n%s\n", prefix, err, text);
        return 1;
    }
    size_t len = (size_t)(strchr(at, '\n') - at);
    char one[1024];
    snprintf(one, sizeof(one), "%.*s", (int)len, at);
    va_list ap;
    va_start(ap, n_errors);
    for (const char *want; (want = va_arg(ap, const char *));) {
        if (!strstr(one, want)) {
            fprintf(stderr, "error \"%s\" lacks \"%s\" (text:\n%s)\n", one, want, text);
            va_end(ap);
            return 1;
        }
    }
    va_end(ap);
    return 0;
}

/* A stream that makes a file otherwise valid. */
#define STREAM_A "[stream a]\nkey = abcdefgh12\n"

/* ---- loading ------------------------------------------------------------ */

static int test_example_config(void)
{
    struct kb_config *c = NULL;
    char e[4096];
    int rc = kb_config_load(example_path, &c, e, sizeof(e));
    if (rc != 0) {
        fprintf(stderr, "%s: rc %d:\n%s", example_path, rc, e);
        return 1;
    }
    ASSERT_STR_EQ(c->path, example_path);
    ASSERT_LE(1, c->n_listen);
    ASSERT_LE(1, c->n_streams);
    int n = 0;
    for (const struct kb_stream_conf *s = c->streams; s; s = s->next, n++) {
        ASSERT_NOT_NULL(s->name);
        ASSERT_NOT_NULL(s->key);
        ASSERT_LE(KB_CONF_KEY_MIN, strlen(s->key));
        ASSERT_LE(1, s->line);
        ASSERT_TRUE(kb_config_stream_by_name(c, s->name) == s);
        ASSERT_TRUE(kb_config_stream_by_key(c, s->key) == s);
    }
    ASSERT_EQ(n, c->n_streams);
    kb_config_free(c);
    return 0;
}

static int test_defaults(void)
{
    static const char *const texts[] = {"", "[server]\n", "\n\n# nothing\n",
                                        "[stream a]\nkey = abcdefgh12\n"};
    for (size_t i = 0; i < 4; i++) {
        ASSERT_OK(parse_ok(texts[i]));
        const struct kb_config *c = cfg;
        ASSERT_STR_EQ(c->path, "t.conf");
        ASSERT_EQ(c->n_listen, 1);
        ASSERT_STR_EQ(c->listen[0].host, "0.0.0.0");
        ASSERT_EQ(c->listen[0].port, 1935);
        ASSERT_STR_EQ(c->app, "live");
        ASSERT_EQ(c->log_level, KB_CONF_LOG_INFO);
        ASSERT_EQ(c->chunk_size, 4096);
        ASSERT_EQ(c->max_message_size, 8 * MiB);
        ASSERT_EQ(c->window_ack_size, 2500000);
        ASSERT_EQ(c->max_connections, 10000);
        ASSERT_EQ(c->handshake_timeout, 10000);
        ASSERT_EQ(c->publish_timeout, 20000);
        ASSERT_EQ(c->player_queue, 2 * MiB);
        ASSERT_EQ(c->gop_cache_max, 16 * MiB);
        ASSERT_STR_EQ(c->recordings, "./recordings");
        ASSERT_EQ(c->grace, 30000);
        ASSERT_EQ(c->segment_duration, 4000);
        ASSERT_EQ(c->record_format, KB_CONF_REC_FMP4);
        ASSERT_EQ(c->record_queue, 64 * MiB);
        ASSERT_EQ(c->thumbnail_interval, 5 * 60000);
        ASSERT_EQ(c->export_mp4, 1);
    }
    ASSERT_EQ(cfg->n_streams, 1);
    const struct kb_stream_conf *s = cfg->streams;
    ASSERT_STR_EQ(s->name, "a");
    ASSERT_STR_EQ(s->key, "abcdefgh12");
    ASSERT_EQ(s->gop_cache, 1);
    ASSERT_EQ(s->record, 0);
    ASSERT_EQ(s->retention_age, 0);
    ASSERT_EQ(s->retention_size, 0);
    ASSERT_EQ(s->line, 1);
    ASSERT_NULL(s->next);
    return 0;
}

/* Every default in the table is valid text for its own key. */
static int test_defaults_parse_as_values(void)
{
    size_t n = 0;
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        ASSERT_NOT_NULL(d);
        if (!d->name)
            break;
        n++;
        if (!d->def)
            continue;
        char text[512];
        if (strcmp(d->section, "stream") != 0)
            snprintf(text, sizeof(text), "[%s]\n%s = %s\n", d->section, d->name, d->def);
        else
            snprintf(text, sizeof(text), "[stream a]\nkey = abcdefgh12\n%s = %s\n", d->name,
                     d->def);
        if (parse_ok(text)) {
            fprintf(stderr, "... the default of %s\n", d->name);
            return 1;
        }
    }
    ASSERT_LE(14, n);
    return 0;
}

static int test_all_values(void)
{
    ASSERT_OK(parse_ok("[server]\n"
                       "listen = 127.0.0.1:1936\n"
                       "listen = [::1]:1937\n"
                       "app = cam\n"
                       "log_level = DEBUG\n"
                       "chunk_size = 65536\n"
                       "max_message_size = 64K\n"
                       "window_ack_size = 4096\n"
                       "max_connections = 1\n"
                       "handshake_timeout = 100ms\n"
                       "publish_timeout = 1h\n"
                       "player_queue = 1G\n"
                       "gop_cache_max = 0\n"
                       "recordings = /var/lib/kebun\n"
                       "grace = 0\n"
                       "segment_duration = 1min\n"
                       "record_format = mpegts\n"
                       "record_queue = 4G\n"
                       "thumbnail_interval = 1d\n"
                       "export_mp4 = off\n"
                       "[stream cam-1]\n"
                       "key = k3y_with.punct-~!\n"
                       "gop_cache = no\n"
                       "record = yes\n"
                       "retention_age = 30d\n"
                       "retention_size = 20G\n"));
    const struct kb_config *c = cfg;
    ASSERT_EQ(c->n_listen, 2);
    ASSERT_STR_EQ(c->listen[0].host, "127.0.0.1");
    ASSERT_EQ(c->listen[0].port, 1936);
    ASSERT_STR_EQ(c->listen[1].host, "::1");
    ASSERT_EQ(c->listen[1].port, 1937);
    ASSERT_STR_EQ(c->app, "cam");
    ASSERT_EQ(c->log_level, KB_CONF_LOG_DEBUG);
    ASSERT_EQ(c->chunk_size, 65536);
    ASSERT_EQ(c->max_message_size, 64 * KiB);
    ASSERT_EQ(c->window_ack_size, 4096);
    ASSERT_EQ(c->max_connections, 1);
    ASSERT_EQ(c->handshake_timeout, 100);
    ASSERT_EQ(c->publish_timeout, 3600000);
    ASSERT_EQ(c->player_queue, GiB);
    ASSERT_EQ(c->gop_cache_max, 0);
    ASSERT_STR_EQ(c->recordings, "/var/lib/kebun");
    ASSERT_EQ(c->grace, 0);
    ASSERT_EQ(c->segment_duration, 60000);
    ASSERT_EQ(c->record_format, KB_CONF_REC_MPEGTS);
    ASSERT_EQ(c->record_queue, 4 * GiB);
    ASSERT_EQ(c->thumbnail_interval, 86400000);
    ASSERT_EQ(c->export_mp4, 0);
    const struct kb_stream_conf *s = c->streams;
    ASSERT_STR_EQ(s->name, "cam-1");
    ASSERT_STR_EQ(s->key, "k3y_with.punct-~!");
    ASSERT_EQ(s->gop_cache, 0);
    ASSERT_EQ(s->record, 1);
    ASSERT_EQ(s->retention_age, 30ull * 86400000);
    ASSERT_EQ(s->retention_size, 20 * GiB);
    ASSERT_EQ(s->line, 21);
    return 0;
}

static int test_units_and_words(void)
{
    static const struct {
        const char *v;
        uint64_t want;
    } sizes[] = {
        {"8M", 8 * MiB},      {"8 M", 8 * MiB},   {"8m", 8 * MiB},     {"8MB", 8 * MiB},
        {"8MiB", 8 * MiB},    {"8192K", 8 * MiB}, {"8192kb", 8 * MiB}, {"65536", 64 * KiB},
        {"65536B", 64 * KiB}, {"1G", GiB},        {"1gib", GiB},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[server]\nmax_message_size = %s\n", sizes[i].v);
        if (sizes[i].want > 256 * MiB)
            snprintf(text, sizeof(text), "[server]\nplayer_queue = %s\n", sizes[i].v);
        ASSERT_OK(parse_ok(text));
        ASSERT_EQ(sizes[i].want > 256 * MiB ? cfg->player_queue : cfg->max_message_size,
                  sizes[i].want);
    }
    static const struct {
        const char *v;
        uint64_t want;
    } durations[] = {
        {"1500ms", 1500}, {"2s", 2000},    {"2 s", 2000},   {"2S", 2000},
        {"1m", 60000},    {"1min", 60000}, {"1h", 3600000}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[server]\ngrace = %s\n", durations[i].v);
        ASSERT_OK(parse_ok(text));
        ASSERT_EQ(cfg->grace, durations[i].want);
    }
    static const struct {
        const char *v;
        int want;
    } bools[] = {
        {"on", 1},  {"ON", 1},  {"yes", 1}, {"true", 1},  {"True", 1}, {"1", 1},
        {"off", 0}, {"Off", 0}, {"no", 0},  {"false", 0}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), STREAM_A "gop_cache = %s\n", bools[i].v);
        ASSERT_OK(parse_ok(text));
        ASSERT_EQ(cfg->streams->gop_cache, bools[i].want);
    }
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        char text[128];
        snprintf(text, sizeof(text), "[server]\nlog_level = %s\n", levels[i]);
        ASSERT_OK(parse_ok(text));
        ASSERT_EQ(cfg->log_level, i);
        ASSERT_STR_EQ(kb_config_log_level_name(i), levels[i]);
    }
    ASSERT_STR_EQ(kb_config_log_level_name(-1), "?");
    ASSERT_STR_EQ(kb_config_log_level_name(4), "?");
    return 0;
}

/* ---- errors ------------------------------------------------------------- */

static int test_err_unknown_key(void)
{
    ASSERT_OK(expect_error("[server]\nlisten = 1935\nlog_levl = info\n", 3, 1, "[server]",
                           "unknown key 'log_levl'", "did you mean 'log_level'", NULL));
    ASSERT_OK(expect_error("[server]\n\nzzzzzzzz = 1\n", 3, 1, "unknown key 'zzzzzzzz'", NULL));
    ASSERT_OK(expect_error("[server]\nzzzzzzzz = 1\n", 2, 1, NULL));
    ASSERT_STR_LACKS(err, "did you mean");
    /* A mistyped key name never echoes the (secret) value. */
    ASSERT_OK(expect_error("[stream a]\nkye = Sup3rSecretValue\n", 2, 2, "[stream a]",
                           "unknown key 'kye'", "did you mean 'key'", NULL));
    ASSERT_STR_LACKS(err, "Sup3rSecretValue");
    /* Keys belong to their section. */
    ASSERT_OK(expect_error(STREAM_A "app = live\n", 3, 1, "[stream a]", "unknown key 'app'", NULL));
    ASSERT_OK(expect_error("[server]\ngop_cache = on\n", 2, 1, "[server]",
                           "unknown key 'gop_cache'", NULL));
    /* Every key in the table, one letter off, is suggested in its section. */
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        if (!d->name)
            break;
        char text[256], typo[64], want[128];
        snprintf(typo, sizeof(typo), "%sx", d->name);
        int stream = strcmp(d->section, "stream") == 0;
        if (stream)
            snprintf(text, sizeof(text), STREAM_A "%s = 1\n", typo);
        else
            snprintf(text, sizeof(text), "[%s]\n%s = 1\n", d->section, typo);
        snprintf(want, sizeof(want), "did you mean '%s'", d->name);
        int line = stream ? 3 : 2;
        if (expect_error(text, line, 1, want, NULL)) {
            fprintf(stderr, "... for %s\n", d->name);
            return 1;
        }
    }
    return 0;
}

static int test_err_sections(void)
{
    /* Unknown section: one error; its keys are skipped quietly. */
    ASSERT_OK(
        expect_error("[servr]\nlisten = 1935\napp = x\n", 1, 1, "unknown section [servr]", NULL));
    ASSERT_OK(expect_error("[stream]\nkey = abcdefgh12\n", 1, 1, "unknown section [stream]", NULL));
    ASSERT_OK(expect_error("\n[streams a]\n", 2, 1, "unknown section", NULL));
    ASSERT_OK(expect_error("[server\napp = x\n", 1, 1, "']'", NULL));
    /* A key before any section. */
    ASSERT_OK(expect_error("# comment\nlisten = 1935\n[server]\n", 2, 1,
                           "'listen' outside any section", NULL));
    ASSERT_OK(expect_error("key = Sup3rSecretValue\n" STREAM_A, 1, 1, "'key'", NULL));
    ASSERT_STR_LACKS(err, "Sup3rSecretValue");
    /* A line that is not KEY = VALUE. */
    ASSERT_OK(expect_error("[stream a]\nSup3rSecretValue\n", 2, 2, "KEY = VALUE", NULL));
    ASSERT_STR_LACKS(err, "Sup3rSecretValue");
    /* Whitespace inside the brackets is fine. */
    ASSERT_OK(parse_ok("[ server ]\napp = x\n[  stream   b  ]\nkey = abcdefgh12\n"));
    ASSERT_STR_EQ(cfg->streams->name, "b");
    return 0;
}

static int test_err_duplicates(void)
{
    ASSERT_OK(expect_error("[server]\napp = a\n\napp = b\n", 4, 1, "[server] app",
                           "set twice (first on line 2)", NULL));
    ASSERT_OK(expect_error(STREAM_A "gop_cache = on\ngop_cache = off\n", 4, 1, "[stream a]",
                           "gop_cache", "first on line 3", NULL));
    /* The secret is not echoed when the key is set twice. */
    ASSERT_OK(expect_error(STREAM_A "key = Sup3rSecretValue\n", 3, 1, "[stream a] key", "set twice",
                           NULL));
    ASSERT_STR_LACKS(err, "Sup3rSecretValue");
    /* The same key in two streams is no duplicate. */
    ASSERT_OK(parse_ok(STREAM_A "gop_cache = on\n[stream b]\nkey = bcdefghi12\ngop_cache = on\n"));
    /* [server] twice: the second one's keys are skipped. */
    ASSERT_OK(expect_error("[server]\n" STREAM_A "[server]\napp = x\n", 4, 1,
                           "[server] appears twice (first on line 1)", NULL));
    /* A stream twice. */
    ASSERT_OK(expect_error(STREAM_A "[stream b]\nkey = bcdefghi12\n[stream a]\nkey = cdefghij12\n",
                           5, 1, "[stream a]", "defined twice", NULL));
    return 0;
}

static int test_err_stream_names(void)
{
    static const char *const bad[] = {
        "a/b",
        "..",
        ".hidden",
        "-dash",
        "_under",
        "a b",
        "a\001b",
        "caf\xc3\xa9",
        "a:b",
        "a?b",
        "a%2fb",
        "../etc",
        "x123456789012345678901234567890123456789012345678901234567890abcd", /* 65 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[server]\n[stream %s]\nkey = abcdefgh12\n", bad[i]);
        if (expect_error(text, 2, 1, "stream name", NULL)) {
            fprintf(stderr, "... for stream name \"%s\"\n", bad[i]);
            return 1;
        }
    }
    static const char *const good[] = {
        "a",
        "A",
        "0",
        "orchard-1",
        "cam_2.hd",
        "a..b",
        "x12345678901234567890123456789012345678901234567890123456789abcd", /* 64 */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[stream %s]\nkey = abcdefgh12\n", good[i]);
        if (parse_ok(text)) {
            fprintf(stderr, "... for stream name \"%s\"\n", good[i]);
            return 1;
        }
        ASSERT_STR_EQ(cfg->streams->name, good[i]);
    }
    return 0;
}

static int test_err_missing_key(void)
{
    ASSERT_OK(expect_error("[server]\n\n[stream a]\ngop_cache = on\n", 3, 1, "[stream a]",
                           "missing required key 'key'", NULL));
    /* Two streams without keys: two errors, each on its own line. */
    ASSERT_OK(expect_error("[stream a]\n[stream b]\n", 1, 2, "[stream a]", NULL));
    ASSERT_OK(expect_error("[stream a]\n[stream b]\n", 2, 2, "[stream b]", NULL));
    return 0;
}

static int test_err_bad_keys(void)
{
    static const char *const bad[] = {
        "Sup3r",   /* too short */
        "Sup3rSe", /* 7 */
        "Sup3r/SecretVal",
        "Sup3r SecretVal",
        "Sup3r?SecretVal",
        "Sup3r#SecretVal",
        "Sup3r&SecretVal",
        "Sup3r%SecretVal",
        "Sup3r\"SecretVal",
        "Sup3r\tSecretVal",
        "Sup3r\x7fSecretVal",
        "Sup3r\x01SecretVal",
        "Sup3r\xc3\xa9SecretVal",
        "\"Sup3r SecretVal\"", /* quoted, with a space */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[stream a]\nkey = %s\n", bad[i]);
        if (expect_error(text, 2, 1, "[stream a] key", "the key", NULL)) {
            fprintf(stderr, "... for key \"%s\"\n", bad[i]);
            return 1;
        }
        ASSERT_STR_LACKS(err, "Sup3r");
        ASSERT_STR_LACKS(err, "SecretVal");
    }
    /* 257 characters. */
    char text[512] = "[stream a]\nkey = ";
    size_t n = strlen(text);
    memset(text + n, 'Q', 257);
    text[n + 257] = '\0';
    ASSERT_OK(expect_error(text, 2, 1, "[stream a] key", "256", NULL));
    ASSERT_STR_LACKS(err, "QQQQQQQQ");
    /* 8 and 256 characters are fine. */
    ASSERT_OK(parse_ok("[stream a]\nkey = abcdefgh\n"));
    text[n + 256] = '\0';
    ASSERT_OK(parse_ok(text));
    ASSERT_EQ(strlen(cfg->streams->key), 256);
    return 0;
}

static int test_err_key_conflicts(void)
{
    /* Two streams with one key: reported on the second stream's line. */
    ASSERT_OK(expect_error("[stream a]\nkey = Sup3rSecretValue\n\n[stream b]\n"
                           "key = Sup3rSecretValue\n",
                           4, 1, "[stream b]", "same key as [stream a]", NULL));
    ASSERT_STR_LACKS(err, "Sup3rSecretValue");
    /* A key equal to a public name (another stream's, or its own). */
    ASSERT_OK(expect_error("[stream publicname1]\nkey = abcdefgh12\n[stream b]\n"
                           "key = publicname1\n",
                           3, 1, "[stream b]", "key", "public name of [stream publicname1]", NULL));
    ASSERT_OK(expect_error("[stream selfnamed1]\nkey = selfnamed1\n", 1, 1, "[stream selfnamed1]",
                           "public name", NULL));
    return 0;
}

static int test_err_bad_values(void)
{
    static const struct {
        const char *line;
        const char *want;
    } cases[] = {
        {"max_message_size = 8X", "not a valid size"},
        {"max_message_size = M", "not a valid size"},
        {"max_message_size = -1", "not a valid size"},
        {"max_message_size = 1.5M", "not a valid size"},
        {"max_message_size = 0x100000", "not a valid size"},
        {"max_message_size =", "not a valid size"},
        {"player_queue = 99999999999999999999999", "not a valid size"},
        {"player_queue = 17179869184G", "not a valid size"}, /* 2^64: overflows */
        {"handshake_timeout = 10", "needs a unit"},
        {"handshake_timeout = 10x", "not a valid duration"},
        {"handshake_timeout = s", "not a valid duration"},
        {"handshake_timeout = 10 seconds", "not a valid duration"},
        {"chunk_size = 4K", "not a valid integer"},
        {"chunk_size = 4096.0", "not a valid integer"},
        {"chunk_size = 0x1000", "not a valid integer"},
        {"log_level = verbose", "is not one of error, warn, info, debug"},
        {"log_level = 2", "is not one of"},
        {"record_format = mp4", "is not one of fmp4, mpegts"},
        {"export_mp4 = maybe", "is not on or off"},
        {"listen = localhost:1935", "not HOST:PORT"},
        {"listen = 0.0.0.0:99999", "not HOST:PORT"},
        {"listen = 0.0.0.0:", "not HOST:PORT"},
        {"listen = [::1]", "not HOST:PORT"},
        {"app =", "1 to 128 characters"},
        {"app = \"\"", "1 to 128 characters"},
        {"listen = 1935 # the default port", "not HOST:PORT"}, /* no trailing comments */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256], name[64];
        snprintf(text, sizeof(text), "[server]\n%s\n", cases[i].line);
        snprintf(name, sizeof(name), "[server] %.*s:", (int)strcspn(cases[i].line, " ="),
                 cases[i].line);
        if (expect_error(text, 2, 1, name, cases[i].want, NULL)) {
            fprintf(stderr, "... for \"%s\"\n", cases[i].line);
            return 1;
        }
    }
    ASSERT_OK(expect_error(STREAM_A "gop_cache = maybe\n", 3, 1,
                           "[stream a] gop_cache:", "'maybe' is not on or off", NULL));
    ASSERT_OK(expect_error(STREAM_A "retention_age = 30\n", 3, 1,
                           "[stream a] retention_age:", "needs a unit", NULL));
    /* Every non-string key refuses "!!" and names itself. */
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        if (!d->name)
            break;
        if (strcmp(d->type, "string") == 0)
            continue;
        int server = strcmp(d->section, "stream") != 0; /* [server] or [http] */
        char text[256], name[64], label[32];
        snprintf(label, sizeof(label), "[%s]", server ? d->section : "stream a");
        if (server)
            snprintf(text, sizeof(text), "%s\n%s = !!\n", label, d->name);
        else if (strcmp(d->name, "key") == 0)
            snprintf(text, sizeof(text), "[stream a]\nkey = !!\n");
        else
            snprintf(text, sizeof(text), STREAM_A "%s = !!\n", d->name);
        snprintf(name, sizeof(name), "%s %s:", label, d->name);
        int line = server || strcmp(d->name, "key") == 0 ? 2 : 3;
        if (expect_error(text, line, 1, name, NULL)) {
            fprintf(stderr, "... for %s\n", d->name);
            return 1;
        }
    }
    return 0;
}

static int test_err_out_of_range(void)
{
    static const struct {
        const char *bad, *good;
    } cases[] = {
        {"chunk_size = 127", "chunk_size = 128"},
        {"chunk_size = 65537", "chunk_size = 65536"},
        {"max_message_size = 63K", "max_message_size = 64K"},
        {"max_message_size = 257M", "max_message_size = 256M"},
        {"window_ack_size = 4095", "window_ack_size = 4096"},
        {"window_ack_size = 2147483648", "window_ack_size = 2147483647"},
        {"max_connections = 0", "max_connections = 1"},
        {"max_connections = 1000001", "max_connections = 1000000"},
        {"handshake_timeout = 99ms", "handshake_timeout = 100ms"},
        {"handshake_timeout = 601s", "handshake_timeout = 10m"},
        {"handshake_timeout = 0", "handshake_timeout = 1s"},
        {"publish_timeout = 999ms", "publish_timeout = 1s"},
        {"publish_timeout = 61m", "publish_timeout = 60m"},
        {"player_queue = 63K", "player_queue = 64K"},
        {"player_queue = 1025M", "player_queue = 1024M"},
        {"gop_cache_max = 1025M", "gop_cache_max = 0"},
        {"grace = 3600001ms", "grace = 1h"},
        {"segment_duration = 999ms", "segment_duration = 1s"},
        {"segment_duration = 61s", "segment_duration = 1m"},
        {"record_queue = 1023K", "record_queue = 1M"},
        {"record_queue = 4097M", "record_queue = 4G"},
        {"thumbnail_interval = 25h", "thumbnail_interval = 24h"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256], name[64];
        snprintf(text, sizeof(text), "[server]\n\n%s\n", cases[i].bad);
        snprintf(name, sizeof(name), "[server] %.*s:", (int)strcspn(cases[i].bad, " "),
                 cases[i].bad);
        if (expect_error(text, 3, 1, name, "out of range", NULL)) {
            fprintf(stderr, "... for \"%s\"\n", cases[i].bad);
            return 1;
        }
        snprintf(text, sizeof(text), "[server]\n%s\n", cases[i].good);
        if (parse_ok(text)) {
            fprintf(stderr, "... for \"%s\"\n", cases[i].good);
            return 1;
        }
    }
    ASSERT_OK(expect_error(STREAM_A "retention_age = 3651d\n", 3, 1,
                           "[stream a] retention_age:", "out of range", NULL));
    ASSERT_OK(expect_error(STREAM_A "retention_size = 16777215T\n", 3, 1,
                           "[stream a] retention_size:", "not a valid size", NULL));
    ASSERT_OK(parse_ok(STREAM_A "retention_age = 3650d\nretention_size = 1000000G\n"));
    return 0;
}

static int test_several_errors(void)
{
    const char *text = "[server]\n"              /* 1 */
                       "chunk_size = 1\n"        /* 2: out of range */
                       "app = live\n"            /* 3 */
                       "colour = blue\n"         /* 4: unknown */
                       "[stream ok]\n"           /* 5 */
                       "key = abcdefgh12\n"      /* 6 */
                       "gop_cache = sometimes\n" /* 7: not a bool */
                       "[stream bad/name]\n"     /* 8: bad name */
                       "key = whatever12\n"      /* 9: skipped quietly */
                       "[stream nokey]\n"        /* 10: missing key */
                       "[server]\n"              /* 11: twice */
                       "log_level = loud\n";     /* 12: skipped quietly */
    int rc = parse(text);
    ASSERT_EQ(rc, -EINVAL);
    static const char *const want[] = {
        "t.conf:2: [server] chunk_size: 1 is out of range",
        "t.conf:4: [server]: unknown key 'colour'",
        "t.conf:7: [stream ok] gop_cache: 'sometimes' is not on or off",
        "t.conf:8: [stream bad/name]: a stream name is",
        "t.conf:10: [stream nokey]: missing required key 'key'",
        "t.conf:11: [server] appears twice (first on line 1)",
    };
    ASSERT_EQ(count_lines(err), 6);
    const char *at = err;
    for (size_t i = 0; i < 6; i++) {
        if (strncmp(at, want[i], strlen(want[i])) != 0) {
            fprintf(stderr, "error %zu: want \"%s...\", errors are:\n%s", i, want[i], err);
            return 1;
        }
        at = strchr(at, '\n') + 1;
    }
    ASSERT_EQ(*at, '\0');
    return 0;
}

/* ---- listen ------------------------------------------------------------- */

static int test_listen_parse(void)
{
    static const struct {
        const char *in;
        const char *host;
        uint16_t port;
    } good[] = {
        {"0.0.0.0:1935", "0.0.0.0", 1935},
        {"[::]:1935", "::", 1935},
        {":1935", "0.0.0.0", 1935},
        {"1935", "0.0.0.0", 1935},
        {"127.0.0.1:1", "127.0.0.1", 1},
        {"192.168.1.20:65535", "192.168.1.20", 65535},
        {"[::1]:443", "::1", 443},
        {"[fe80::1:2]:1935", "fe80::1:2", 1935},
        {"[::ffff:10.0.0.1]:80", "::ffff:10.0.0.1", 80},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct kb_listen_conf l;
        memset(&l, 0, sizeof(l));
        if (kb_config_parse_listen(good[i].in, &l) != 0) {
            fprintf(stderr, "\"%s\" refused\n", good[i].in);
            return 1;
        }
        ASSERT_STR_EQ(l.host, good[i].host);
        ASSERT_EQ(l.port, good[i].port);
    }
    static const char *const bad[] = {
        "127.0.0.1:0",
        "0",
        ":0",
        "host:1935",
        "localhost:1935",
        "example.com:1935",
        "0.0.0.0:65536",
        "0.0.0.0:99999",
        "0.0.0.0:123456",
        "0.0.0.0:-1",
        "0.0.0.0:+80",
        "0.0.0.0: 80",
        "0.0.0.0:80x",
        "0.0.0.0:",
        "",
        ":",
        "[::1]",
        "[]:1935", /* empty brackets are not "every address" */
        "[::1]:",
        "[::1]1935",
        "[::1:1935",
        "256.0.0.1:1935",
        "1.2.3:1935",
        "::1",
        "::",
        "2001:db8::5",
        "[aaaa:bbbb:cccc:dddd:eeee:ffff:aaaa:bbbb:cccc:dddd:eeee:ffff:aaaa:bbbb]:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kb_listen_conf l;
        if (kb_config_parse_listen(bad[i], &l) != -EINVAL) {
            fprintf(stderr, "\"%s\" accepted, want -EINVAL\n", bad[i]);
            return 1;
        }
    }
    /* Through the file: the error names the key and the line. */
    ASSERT_OK(expect_error("[server]\nlisten = 127.0.0.1:0\n", 2, 1,
                           "[server] listen:", "'127.0.0.1:0'", NULL));
    ASSERT_OK(expect_error("[server]\nlisten = myhost:1935\n", 2, 1,
                           "[server] listen:", "numeric address", NULL));
    return 0;
}

static int test_listen_repeat(void)
{
    char text[1024] = "[server]\n";
    for (int i = 0; i < KB_CONF_MAX_LISTEN; i++) {
        char line[64];
        snprintf(line, sizeof(line), "listen = 127.0.0.%d:%d\n", i + 1, 2000 + i);
        strcat(text, line);
    }
    ASSERT_OK(parse_ok(text));
    ASSERT_EQ(cfg->n_listen, KB_CONF_MAX_LISTEN);
    for (int i = 0; i < KB_CONF_MAX_LISTEN; i++) {
        char host[32];
        snprintf(host, sizeof(host), "127.0.0.%d", i + 1);
        ASSERT_STR_EQ(cfg->listen[i].host, host);
        ASSERT_EQ(cfg->listen[i].port, 2000 + i);
    }
    strcat(text, "listen = 127.0.0.99:1935\n");
    ASSERT_OK(expect_error(text, KB_CONF_MAX_LISTEN + 2, 1, "[server] listen:", "at most 8", NULL));
    /* A listen key replaces the default instead of adding to it. */
    ASSERT_OK(parse_ok("[server]\nlisten = :1936\n"));
    ASSERT_EQ(cfg->n_listen, 1);
    ASSERT_EQ(cfg->listen[0].port, 1936);
    return 0;
}

/* ---- syntax ------------------------------------------------------------- */

static int test_comments_and_quotes(void)
{
    ASSERT_OK(parse_ok("# leading comment\n"
                       "; another\n"
                       "   # indented comment\n"
                       "\t; tab-indented\n"
                       "\n"
                       "   \t  \n"
                       "[server]  \n"
                       "  app   =   \"my app\"  \n"
                       "recordings = \"/data/rec # not a comment\"\n"
                       "log_level=debug\n"
                       "# [stream commented]\n"
                       "[stream a]\n"
                       "key = \"abcdefgh12\"\n"
                       "gop_cache = \"off\"\n"));
    ASSERT_STR_EQ(cfg->app, "my app");
    ASSERT_STR_EQ(cfg->recordings, "/data/rec # not a comment");
    ASSERT_EQ(cfg->log_level, KB_CONF_LOG_DEBUG);
    ASSERT_EQ(cfg->n_streams, 1);
    ASSERT_STR_EQ(cfg->streams->key, "abcdefgh12");
    ASSERT_EQ(cfg->streams->gop_cache, 0);
    /* Only a matching pair of quotes is removed. */
    ASSERT_OK(parse_ok("[server]\napp = \"half\n"));
    ASSERT_STR_EQ(cfg->app, "\"half");
    ASSERT_OK(parse_ok("[server]\napp = a \"b\" c\n"));
    ASSERT_STR_EQ(cfg->app, "a \"b\" c");
    /* '=' inside the value. */
    ASSERT_OK(parse_ok("[stream a]\nkey = abc=defgh12\n"));
    ASSERT_STR_EQ(cfg->streams->key, "abc=defgh12");
    /* No final newline. */
    ASSERT_OK(parse_ok("[server]\napp = tail"));
    ASSERT_STR_EQ(cfg->app, "tail");
    return 0;
}

static int test_crlf(void)
{
    ASSERT_OK(parse_ok("# windows\r\n[server]\r\nlisten = 0.0.0.0:1940\r\napp = \"live\"\r\n"
                       "\r\n[stream a]\r\nkey = abcdefgh12\r\ngop_cache = off\r\n"));
    ASSERT_EQ(cfg->listen[0].port, 1940);
    ASSERT_STR_EQ(cfg->app, "live");
    ASSERT_STR_EQ(cfg->streams->key, "abcdefgh12");
    ASSERT_EQ(cfg->streams->gop_cache, 0);
    ASSERT_EQ(cfg->streams->line, 6);
    /* Line numbers count CRLF lines. */
    ASSERT_OK(expect_error("[server]\r\n\r\nchunk_size = 1\r\n", 3, 1, "chunk_size", NULL));
    ASSERT_STR_LACKS(err, "\r");
    return 0;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(fwrite(p, 1, n, f), n);
    ASSERT_EQ(fclose(f), 0);
    return 0;
}

static int test_load_errors(void)
{
    char dir[] = "/tmp/kb-test-config-XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    char path[256], e[1024];
    struct kb_config *c = (struct kb_config *)1;

    /* Missing file. */
    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    ASSERT_EQ(kb_config_load(path, &c, e, sizeof(e)), -ENOENT);
    ASSERT_NULL(c);
    ASSERT_STR_HAS(e, path);
    ASSERT_STR_HAS(e, "No such file or directory");
    /* Also without an error buffer. */
    ASSERT_EQ(kb_config_load(path, &c, NULL, 0), -ENOENT);

    /* A directory. */
    c = (struct kb_config *)1;
    ASSERT_EQ(kb_config_load(dir, &c, e, sizeof(e)), -EINVAL);
    ASSERT_NULL(c);
    ASSERT_STR_HAS(e, dir);
    ASSERT_STR_HAS(e, "not a regular file");

    /* A NUL byte. */
    snprintf(path, sizeof(path), "%s/nul.conf", dir);
    ASSERT_OK(write_file(path, "[server]\napp = a\0b\n", 19));
    c = (struct kb_config *)1;
    ASSERT_EQ(kb_config_load(path, &c, e, sizeof(e)), -EINVAL);
    ASSERT_NULL(c);
    ASSERT_STR_HAS(e, path);
    ASSERT_STR_HAS(e, "NUL");
    unlink(path);

    /* Over 1 MiB. */
    snprintf(path, sizeof(path), "%s/big.conf", dir);
    size_t big = (1 << 20) + 1;
    char *text = malloc(big);
    ASSERT_NOT_NULL(text);
    memset(text, '#', big);
    text[big - 1] = '\n';
    ASSERT_OK(write_file(path, text, big));
    free(text);
    ASSERT_EQ(kb_config_load(path, &c, e, sizeof(e)), -EINVAL);
    unlink(path);

    /* Errors inside a file carry its path. */
    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    ASSERT_OK(write_file(path, "[server]\nchunk_size = 1\n", 24));
    ASSERT_EQ(kb_config_load(path, &c, e, sizeof(e)), -EINVAL);
    char want[300];
    snprintf(want, sizeof(want), "%s:2: [server] chunk_size", path);
    ASSERT_STR_HAS(e, want);
    unlink(path);

    /* An empty file is a valid (all defaults) configuration. */
    snprintf(path, sizeof(path), "%s/empty.conf", dir);
    ASSERT_OK(write_file(path, "", 0));
    ASSERT_EQ(kb_config_load(path, &c, e, sizeof(e)), 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(c->n_streams, 0);
    kb_config_free(c);
    unlink(path);
    ASSERT_EQ(rmdir(dir), 0);
    return 0;
}

/* A small error buffer is filled, terminated and never overrun. */
/* ---- rtmps: listen_tls, tls_cert, tls_key -------------------------------- */

/* What the parser checks is text only (OpenSSL, in the relay, decodes), so
 * stand-ins with the right armour do. The key holds a marker that must
 * never appear in an error. */
#define PEM_CERT "-----BEGIN CERTIFICATE-----\nMIIBzTCCAXOgAwIBAgIU\n-----END CERTIFICATE-----\n"
#define KEY_MARK "SeCrEtKeYmAtErIaL"
#define PEM_KEY "-----BEGIN PRIVATE KEY-----\nMIGH" KEY_MARK "\n-----END PRIVATE KEY-----\n"

struct tls_files {
    char dir[64];
    char cert[128], key[128], rsa[128], enc[128], legacy_enc[128], der[128], junk[128];
    char secret_junk[128], missing[128];
};

static int tls_files_make(struct tls_files *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/kb-test-tls-XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(f->dir));
#define MK(field, name, text, len)                                                               \
    snprintf(f->field, sizeof(f->field), "%s/" name, f->dir);                                     \
    ASSERT_OK(write_file(f->field, text, len))
    MK(cert, "cert.pem", PEM_CERT PEM_CERT, strlen(PEM_CERT PEM_CERT));
    MK(key, "key.pem", PEM_KEY, strlen(PEM_KEY));
    static const char rsa[] = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE "
                              "KEY-----\n";
    MK(rsa, "rsa.pem", rsa, strlen(rsa));
    static const char enc[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF" KEY_MARK
                              "\n-----END ENCRYPTED PRIVATE KEY-----\n";
    MK(enc, "enc.pem", enc, strlen(enc));
    static const char legacy[] = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                                 "DEK-Info: AES-256-CBC,00\n\n" KEY_MARK
                                 "\n-----END RSA PRIVATE KEY-----\n";
    MK(legacy_enc, "legacy.pem", legacy, strlen(legacy));
    static const char der[] = "\x30\x82\x01\xcd\x00\x01" KEY_MARK;
    MK(der, "cert.der", der, sizeof(der) - 1);
    MK(junk, "junk.pem", "hello\n", 6);
    static const char secret_junk[] = KEY_MARK "-----BEGIN PUBLIC KEY-----\n" KEY_MARK "\n";
    MK(secret_junk, "secret.pem", secret_junk, strlen(secret_junk));
#undef MK
    snprintf(f->missing, sizeof(f->missing), "%s/missing.pem", f->dir);
    return 0;
}

static void tls_files_remove(const struct tls_files *f)
{
    const char *const all[] = {f->cert, f->key,  f->rsa,         f->enc,
                               f->der,  f->junk, f->secret_junk, f->legacy_enc};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        unlink(all[i]);
    rmdir(f->dir);
}

static int test_tls_keys(void)
{
    struct tls_files f;
    ASSERT_OK(tls_files_make(&f));
    char text[2048];

    /* None by default. */
    ASSERT_OK(parse_ok(STREAM_A));
    ASSERT_EQ(cfg->n_listen_tls, 0);
    ASSERT_STR_EQ(cfg->tls_cert.path, "");
    ASSERT_STR_EQ(cfg->tls_key.path, "");
    ASSERT_NULL(cfg->tls_cert.text);
    ASSERT_NULL(cfg->tls_key.text);

    /* Two addresses, the chain and the key read with the config. */
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:1935\nlisten_tls = 127.0.0.1:1936\n"
             "listen_tls = [::1]:443\ntls_cert = %s\ntls_key = \"%s\"\n" STREAM_A,
             f.cert, f.key);
    ASSERT_OK(parse_ok(text));
    ASSERT_EQ(cfg->n_listen, 1);
    ASSERT_EQ(cfg->n_listen_tls, 2);
    ASSERT_STR_EQ(cfg->listen_tls[0].host, "127.0.0.1");
    ASSERT_EQ(cfg->listen_tls[0].port, 1936);
    ASSERT_STR_EQ(cfg->listen_tls[1].host, "::1");
    ASSERT_EQ(cfg->listen_tls[1].port, 443);
    ASSERT_EQ(cfg->listen_tls_line, 3);
    ASSERT_STR_EQ(cfg->tls_cert.path, f.cert);
    ASSERT_EQ(cfg->tls_cert.line, 5);
    ASSERT_EQ(cfg->tls_key.line, 6);
    ASSERT_NOT_NULL(cfg->tls_cert.text);
    ASSERT_EQ(cfg->tls_cert.len, strlen(PEM_CERT PEM_CERT));
    ASSERT_STR_EQ(cfg->tls_cert.text, PEM_CERT PEM_CERT);
    ASSERT_STR_EQ(cfg->tls_key.text, PEM_KEY);
    ASSERT_NULL(cfg->notes);
    /* listen_tls alone keeps the default plain address; the older key
     * armour (RSA PRIVATE KEY) and one file holding both are fine. */
    snprintf(text, sizeof(text), "[server]\nlisten_tls = :1936\ntls_cert = %s\ntls_key = %s\n",
             f.cert, f.rsa);
    ASSERT_OK(parse_ok(text));
    ASSERT_EQ(cfg->n_listen, 1);
    ASSERT_EQ(cfg->listen[0].port, 1935);
    ASSERT_STR_EQ(cfg->listen_tls[0].host, "0.0.0.0");

    /* listen_tls needs both files: one error each, on its line. */
    ASSERT_OK(expect_error("[server]\nlog_level = info\nlisten_tls = 127.0.0.1:1936\n", 3, 2,
                           "[server] listen_tls needs tls_cert", NULL));
    ASSERT_STR_HAS(err, "t.conf:3: [server] listen_tls needs tls_key");
    snprintf(text, sizeof(text), "[server]\ntls_key = %s\nlisten_tls = :1936\n", f.key);
    ASSERT_OK(expect_error(text, 3, 1, "listen_tls needs tls_cert", NULL));

    /* The files: missing, not PEM, the wrong kind, encrypted. */
    static const struct {
        int key; ///< the bad file is tls_key (else tls_cert)
        size_t which;
        const char *want;
    } bad[] = {
        {0, offsetof(struct tls_files, missing), "cannot open: No such file or directory"},
        {1, offsetof(struct tls_files, missing), "cannot open: No such file or directory"},
        {0, offsetof(struct tls_files, junk), "holds no PEM certificate"},
        {0, offsetof(struct tls_files, key), "holds no PEM certificate"},
        {0, offsetof(struct tls_files, der), "is not PEM text"},
        {0, offsetof(struct tls_files, dir), "not a regular file"},
        {1, offsetof(struct tls_files, cert), "holds no PEM private key"},
        {1, offsetof(struct tls_files, junk), "holds no PEM private key"},
        {1, offsetof(struct tls_files, secret_junk), "holds no PEM private key"},
        {1, offsetof(struct tls_files, der), "is not PEM text"},
        {1, offsetof(struct tls_files, enc), "is encrypted with a passphrase"},
        {1, offsetof(struct tls_files, legacy_enc), "is encrypted with a passphrase"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path = (const char *)&f + bad[i].which;
        snprintf(text, sizeof(text),
                 "[server]\nlisten_tls = 127.0.0.1:1936\ntls_cert = %s\ntls_key = %s\n" STREAM_A,
                 bad[i].key ? f.cert : path, bad[i].key ? path : f.key);
        char name[64], where[160];
        snprintf(name, sizeof(name), "[server] %s: ", bad[i].key ? "tls_key" : "tls_cert");
        snprintf(where, sizeof(where), "%s%s", name, path);
        if (expect_error(text, bad[i].key ? 4 : 3, 1, where, bad[i].want, NULL)) {
            fprintf(stderr, "... case %zu\n", i);
            return 1;
        }
        /* Whatever the file held, the error shows none of it. */
        ASSERT_STR_LACKS(err, KEY_MARK);
        ASSERT_STR_LACKS(err, "MIIB");
    }

    /* A port speaks RTMP or RTMPS, not both. */
    snprintf(text, sizeof(text),
             "[server]\nlisten = 0.0.0.0:1935\nlisten_tls = 127.0.0.1:1936\n"
             "listen_tls = 127.0.0.1:1935\ntls_cert = %s\ntls_key = %s\n",
             f.cert, f.key);
    ASSERT_OK(expect_error(text, 3, 1, "[server] listen_tls: 127.0.0.1:1935 is also a plain RTMP",
                           NULL));
    snprintf(text, sizeof(text), "[server]\nlisten_tls = 0.0.0.0:1935\ntls_cert = %s\ntls_key = %s\n",
             f.cert, f.key);
    ASSERT_OK(expect_error(text, 2, 1, "0.0.0.0:1935 is also a plain RTMP address", NULL));
    snprintf(text, sizeof(text),
             "[server]\nlisten_tls = [::]:1936\nlisten_tls = [::1]:1936\ntls_cert = %s\n"
             "tls_key = %s\n",
             f.cert, f.key);
    ASSERT_OK(expect_error(text, 2, 1, "[::1]:1936 is given twice", NULL));
    /* Other families and ports do not clash. */
    snprintf(text, sizeof(text),
             "[server]\nlisten = 0.0.0.0:1935\nlisten_tls = [::]:1935\nlisten_tls = 0.0.0.0:1936\n"
             "tls_cert = %s\ntls_key = %s\n",
             f.cert, f.key);
    ASSERT_OK(parse_ok(text));

    /* At most eight, like listen. */
    char many[1024] = "[server]\n";
    for (int i = 0; i <= KB_CONF_MAX_LISTEN; i++) {
        char line[64];
        snprintf(line, sizeof(line), "listen_tls = 127.0.0.1:%d\n", 2000 + i);
        strcat(many, line);
    }
    ASSERT_OK(expect_error(many, KB_CONF_MAX_LISTEN + 2, 3, "[server] listen_tls:", "at most 8",
                           NULL));

    /* Files without listen_tls are read, checked, and only noted. */
    snprintf(text, sizeof(text), "[server]\ntls_cert = %s\ntls_key = %s\n", f.cert, f.key);
    ASSERT_OK(parse_ok(text));
    ASSERT_NULL(cfg->tls_cert.text);
    ASSERT_NULL(cfg->tls_key.text);
    ASSERT_NOT_NULL(cfg->notes);
    ASSERT_STR_HAS(cfg->notes, "t.conf:2: [server] tls_cert is set but listen_tls is not");
    snprintf(text, sizeof(text), "[server]\ntls_key = %s\n", f.missing);
    ASSERT_OK(expect_error(text, 2, 1, "[server] tls_key: ", "cannot open", NULL));

    /* A path is at most 4096 characters. */
    char *longtext = malloc(8192);
    ASSERT_NOT_NULL(longtext);
    int n = snprintf(longtext, 8192, "[server]\ntls_cert = /");
    memset(longtext + n, 'a', 4100);
    strcpy(longtext + n + 4100, "\n");
    int rc = expect_error(longtext, 2, 1, "[server] tls_cert: a path of at most 4096", NULL);
    free(longtext);
    ASSERT_OK(rc);

    /* Through kb_config_load too, with the file's own name. */
    char conf[160], e[1024];
    snprintf(conf, sizeof(conf), "%s/kebun.conf", f.dir);
    snprintf(text, sizeof(text), "# rtmps\n[server]\nlisten_tls = :1936\ntls_cert = %s\n"
                                 "tls_key = %s\n",
             f.cert, f.cert);
    ASSERT_OK(write_file(conf, text, strlen(text)));
    struct kb_config *c = NULL;
    ASSERT_EQ(kb_config_load(conf, &c, e, sizeof(e)), -EINVAL);
    ASSERT_NULL(c);
    char want[512];
    snprintf(want, sizeof(want), "%s:5: [server] tls_key: %s holds no PEM private key", conf,
             f.cert);
    ASSERT_STR_HAS(e, want);
    unlink(conf);

    tls_files_remove(&f);
    return 0;
}

static int test_small_error_buffer(void)
{
    const char *text = "[server]\nchunk_size = 1\nfoo = 1\nbar = 2\n";
    for (size_t len = 1; len < 120; len += 7) {
        char *e = malloc(len);
        ASSERT_NOT_NULL(e);
        memset(e, 'Z', len);
        struct kb_config *c = NULL;
        ASSERT_EQ(kb_config_parse("t.conf", text, &c, e, len), -EINVAL);
        ASSERT_NULL(c);
        ASSERT_TRUE(memchr(e, '\0', len) != NULL);
        const char *first = "t.conf:2: [server] chunk_size";
        size_t k = strlen(first) < len - 1 ? strlen(first) : len - 1;
        ASSERT_EQ(strlen(e), len - 1 < 40 ? len - 1 : strlen(e));
        ASSERT_TRUE(strncmp(e, first, k) == 0);
        free(e);
    }
    struct kb_config *c = NULL;
    ASSERT_EQ(kb_config_parse("t.conf", text, &c, NULL, 0), -EINVAL);
    ASSERT_NULL(c);
    return 0;
}

static int test_stream_lookup(void)
{
    ASSERT_OK(parse_ok("[stream a]\nkey = key-of-a-1\n[stream b]\nkey = key-of-b-1\n"));
    ASSERT_EQ(cfg->n_streams, 2);
    ASSERT_STR_EQ(cfg->streams->name, "a");
    ASSERT_STR_EQ(cfg->streams->next->name, "b");
    ASSERT_EQ(cfg->streams->next->line, 3);
    ASSERT_STR_EQ(kb_config_stream_by_name(cfg, "b")->key, "key-of-b-1");
    ASSERT_STR_EQ(kb_config_stream_by_key(cfg, "key-of-a-1")->name, "a");
    ASSERT_NULL(kb_config_stream_by_name(cfg, "c"));
    ASSERT_NULL(kb_config_stream_by_name(cfg, "key-of-a-1"));
    ASSERT_NULL(kb_config_stream_by_key(cfg, "a"));
    ASSERT_NULL(kb_config_stream_by_key(cfg, "key-of-a"));
    return 0;
}

static int test_doc_table(void)
{
    size_t n = 0;
    int stream_seen = 0;
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        if (!d->name)
            break;
        n++;
        ASSERT_NOT_NULL(d->section);
        ASSERT_NOT_NULL(d->type);
        ASSERT_NOT_NULL(d->doc);
        ASSERT_LE(20, strlen(d->doc));
        ASSERT_TRUE(strcmp(d->section, "server") == 0 || strcmp(d->section, "http") == 0 ||
                    strcmp(d->section, "stream") == 0);
        /* Server and http keys first, then stream keys (the reference's layout). */
        if (strcmp(d->section, "stream") == 0)
            stream_seen = 1;
        else
            ASSERT_EQ(stream_seen, 0);
        /* Names are unique within their section. */
        for (size_t j = 0; j < i; j++)
            ASSERT_TRUE(strcmp(kb_config_doc(j)->name, d->name) != 0 ||
                        strcmp(kb_config_doc(j)->section, d->section) != 0);
    }
    ASSERT_LE(14, n);
    /* Past the end stays at the terminator. */
    ASSERT_NULL(kb_config_doc(n + 5)->name);
    return 0;
}

/* The reference in docs/CONFIG.md prints keys with kb_conf_doc.required as
 * "required": a section that leaves one out must be refused, naming the
 * key; a repeatable key without a default may be left out. */
static int test_doc_required_means_required(void)
{
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        if (!d->name)
            break;
        if (!d->required) {
            ASSERT_TRUE(d->def != NULL || d->repeat);
            continue;
        }
        const char *text;
        char want[96];
        int line;
        if (strcmp(d->section, "server") == 0) {
            text = "[server]\n";
            line = 1;
        } else if (strcmp(d->name, "key") == 0) {
            text = "[stream a]\n";
            line = 1;
        } else {
            text = STREAM_A;
            line = 1;
        }
        snprintf(want, sizeof(want), "missing required key '%s'", d->name);
        if (expect_error(text, line, 1, want, NULL)) {
            fprintf(stderr,
                    "%s:%d: [%s] %s has no default, so kb_config_doc() and "
                    "docs/CONFIG.md call it required, but a section without it is accepted\n",
                    __FILE__, __LINE__, d->section, d->name);
            return 1;
        }
    }
    return 0;
}

/* ---- docs/CONFIG.md ----------------------------------------------------- */

static char *read_docs(void)
{
    FILE *f = fopen(docs_path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open: %s\n", docs_path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            text = realloc(text, cap + 1);
            if (!text)
                abort();
        }
        size_t r = fread(text + len, 1, cap - len, f);
        if (r == 0)
            break;
        len += r;
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

/* Every key appears in the docs as `name`. */
static int test_docs_mention_every_key(void)
{
    char *text = read_docs();
    ASSERT_NOT_NULL(text);
    int missing = 0;
    for (size_t i = 0;; i++) {
        const struct kb_conf_doc *d = kb_config_doc(i);
        if (!d->name)
            break;
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "`%s`", d->name);
        if (!strstr(text, quoted)) {
            fprintf(stderr, "%s does not mention [%s] key `%s`\n", docs_path, d->section, d->name);
            missing++;
        }
    }
    free(text);
    ASSERT_EQ(missing, 0);
    return 0;
}

static int test_http_section(void)
{
    /* On by default, on the loopback address, read-only without a token. */
    ASSERT_OK(parse_ok("[stream a]\nkey = abcdefgh12\n"));
    ASSERT_EQ(cfg->http.enabled, 1);
    ASSERT_STR_EQ(cfg->http.listen.host, "127.0.0.1");
    ASSERT_EQ(cfg->http.listen.port, 8080);
    ASSERT_STR_EQ(cfg->http.token, "");
    ASSERT_EQ(cfg->http.max_body, 64 * KiB);
    ASSERT_EQ(cfg->http.request_timeout, 10000);
    ASSERT_OK(parse_ok("[http]\nlisten = off\n"));
    ASSERT_EQ(cfg->http.enabled, 0);
    ASSERT_OK(parse_ok("[http]\nlisten = [::1]:9000\nmax_body = 1M\n"));
    ASSERT_STR_EQ(cfg->http.listen.host, "::1");
    ASSERT_EQ(cfg->http.max_body, 1 * MiB);
    ASSERT_OK(parse_ok("[http]\nlisten = 127.0.0.2:80\n"));
    /* Reachable from elsewhere: the API needs a token, said at the listen line. */
    ASSERT_OK(expect_error("[server]\n\n[http]\nlog = x\n", 4, 1, "unknown key 'log'", NULL));
    ASSERT_OK(expect_error("[http]\n# the web side\nlisten = 0.0.0.0:8080\n", 3, 1,
                           "[http] listen: 0.0.0.0 is reachable from other machines",
                           "set [http] token", NULL));
    ASSERT_OK(expect_error("[http]\nlisten = [::]:8080\n", 2, 1, "needs a token", NULL));
    ASSERT_OK(parse_ok("[http]\nlisten = 0.0.0.0:8080\ntoken = a-long-enough-token\n"));
    ASSERT_STR_EQ(cfg->http.token, "a-long-enough-token");
    /* A bad token is refused without being echoed. */
    ASSERT_OK(expect_error("[http]\ntoken = short-secret\n", 2, 1, "[http] token:", "the value",
                           "at least 16", NULL));
    ASSERT_STR_LACKS(err, "short-secret");
    ASSERT_OK(expect_error("[http]\nlisten = nowhere\n", 2, 1, "[http] listen:", "or off", NULL));
    ASSERT_OK(expect_error("[http]\n[http]\n", 2, 1, "[http] appears twice", NULL));
    return 0;
}

static int test_push_ids(void)
{
    ASSERT_OK(parse_ok("[stream a]\nkey = abcdefgh12\n"
                       "push = rtmp://live.example/app/KEY-ONE-1234\n"
                       "push = rtmp://live.example/app/KEY-TWO-5678\n"
                       "push = youtube:yt-key-9999 name=live.example-2\n"
                       "push = rtmp://other.example/app/KEY-3 name=shop\n"));
    const struct kb_push_conf *p = cfg->streams->pushes;
    ASSERT_STR_EQ(p->id, "live.example");
    ASSERT_STR_EQ(p->next->id, "live.example-2");
    /* Taken by the one before it: the label gets its own suffix. */
    ASSERT_STR_EQ(p->next->next->id, "live.example-2-2");
    ASSERT_STR_EQ(p->next->next->next->id, "shop");
    ASSERT_EQ(p->source, KB_PUSH_CONFIG);
    char v[512];
    ASSERT_EQ(kb_push_format(p->next->next, v, sizeof(v)), 0);
    ASSERT_STR_EQ(v, "rtmp://a.rtmp.youtube.com/live2/yt-key-9999 name=live.example-2");
    return 0;
}

static int write_text(const char *path, const char *text)
{
    return write_file(path, text, strlen(text));
}

static int test_state_file(void)
{
    char dir[] = "/tmp/kb-test-state-XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    char conf[256], state[256], text[1024];
    snprintf(conf, sizeof(conf), "%s/kebun.conf", dir);
    snprintf(state, sizeof(state), "%s/.kebun-destinations.conf", dir);
    snprintf(text, sizeof(text),
             "[server]\nrecordings = %s\n[stream a]\nkey = abcdefgh12\n"
             "push = rtmp://one.example/app/KEY-ONE-1234\n"
             "push = rtmp://two.example/app/KEY-TWO-1234\n"
             "[stream b]\nkey = bbbbbbbb12\n",
             dir);
    ASSERT_OK(write_text(conf, text));
    struct kb_config *c;
    char e[2048];
    /* No state file: only the config's destinations. */
    ASSERT_EQ(kb_config_load(conf, &c, e, sizeof(e)), 0);
    ASSERT_STR_EQ(c->state_path, state);
    ASSERT_EQ(c->streams->n_pushes, 2);
    kb_config_free(c);

    ASSERT_OK(write_text(state, "# written by kebun\n"
                                "[stream a]\n"
                                "push = rtmp://three.example/app/KEY-3-1234 name=three\n"
                                "remove = two.example\n"
                                "push = rtmp://one.example/app/KEY-ONE-1234 name=one.example\n"
                                "[stream gone]\n"
                                "push = rtmp://x.example/app/KEY-X-1234\n"));
    ASSERT_EQ(kb_config_load(conf, &c, e, sizeof(e)), 0);
    const struct kb_stream_conf *a = c->streams;
    ASSERT_EQ(a->n_pushes, 2);
    ASSERT_STR_EQ(a->pushes->id, "one.example");
    ASSERT_EQ(a->pushes->source, KB_PUSH_CONFIG);
    ASSERT_STR_EQ(a->pushes->next->id, "three");
    ASSERT_EQ(a->pushes->next->source, KB_PUSH_API);
    ASSERT_EQ(a->n_removed, 1);
    ASSERT_STR_EQ(a->removed[0], "two.example");
    ASSERT_NOT_NULL(c->notes);
    ASSERT_STR_HAS(c->notes, ".kebun-destinations.conf:6: [stream gone] is no stream");
    ASSERT_STR_LACKS(c->notes, "KEY-X");
    kb_config_free(c);

    /* A broken line is an error with the state file's name and line. */
    ASSERT_OK(write_text(state, "[stream a]\nkey = nope-nope-nope\npush = ftp://x/y/KEY\n"));
    ASSERT_EQ(kb_config_load(conf, &c, e, sizeof(e)), -EINVAL);
    ASSERT_NULL(c);
    ASSERT_STR_HAS(e, ".kebun-destinations.conf:2: [stream a]: 'key' does not belong");
    ASSERT_STR_HAS(e, ".kebun-destinations.conf:3: [stream a] push:");
    ASSERT_STR_LACKS(e, "nope-nope");
    unlink(state);
    unlink(conf);
    rmdir(dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--docs") == 0) {
        docs_path = argv[2];
        RUN(test_docs_mention_every_key);
        return test_summary();
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_config KEBUN.CONF | --docs CONFIG.MD\n");
        return 2;
    }
    example_path = argv[1];
    RUN(test_example_config);
    RUN(test_defaults);
    RUN(test_defaults_parse_as_values);
    RUN(test_all_values);
    RUN(test_units_and_words);
    RUN(test_err_unknown_key);
    RUN(test_err_sections);
    RUN(test_http_section);
    RUN(test_push_ids);
    RUN(test_state_file);
    RUN(test_err_duplicates);
    RUN(test_err_stream_names);
    RUN(test_err_missing_key);
    RUN(test_err_bad_keys);
    RUN(test_err_key_conflicts);
    RUN(test_err_bad_values);
    RUN(test_err_out_of_range);
    RUN(test_several_errors);
    RUN(test_listen_parse);
    RUN(test_listen_repeat);
    RUN(test_comments_and_quotes);
    RUN(test_crlf);
    RUN(test_load_errors);
    RUN(test_tls_keys);
    RUN(test_small_error_buffer);
    RUN(test_stream_lookup);
    RUN(test_doc_table);
    RUN(test_doc_required_means_required);
    kb_config_free(cfg);
    return test_summary();
}
