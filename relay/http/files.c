/* Files: the pages (from web_root) and the recordings' files (/rec/).
 *
 * h2o's file handler answers Range, ETag/304 and HEAD, but it follows
 * symlinks out of its root, serves dotfiles, and truncates a path at a
 * decoded %00 (serving live.m3u8 for "live.m3u8%00.txt", as text). In front
 * of it a guard lets through only the names kebun writes: /rec/STREAM/ID/
 * FILE (and thumbs/FILE), each a plain name, none a symlink, the file a
 * regular one. The state file of runtime destinations, which holds keys,
 * sits in the recordings root as a dotfile and is never served.
 *
 * A playlist is rewritten in place while it is recorded: within one second
 * at the same size its ETag would not change, so the guard strips the
 * conditional headers for .m3u8 and asks clients not to cache it.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "route.h"

static int not_found(h2o_req_t *req)
{
    kb__send(req, 404, "text/plain; charset=utf-8", "Not Found\n", 10);
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* 1 when path (under root) exists, is no symlink, and is a directory (dir)
 * or a regular file. */
static int plain(const char *root, const char *rel, int dir)
{
    char full[PATH_MAX];
    struct stat st;
    if (snprintf(full, sizeof(full), "%s/%s", root, rel) >= (int)sizeof(full) ||
        lstat(full, &st) < 0)
        return 0;
    return dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static int rec_guard(h2o_handler_t *self, h2o_req_t *req)
{
    struct kb_http *h = ((struct kb_handler_ctx *)self)->h;
    const char *p = req->path_normalized.base;
    size_t n = req->path_normalized.len;
    static const char prefix[] = "/rec/";
    if (n <= sizeof(prefix) - 1 || memcmp(p, prefix, sizeof(prefix) - 1) != 0 ||
        memchr(p, '\0', n))
        return not_found(req);
    /* STREAM/ID/FILE or STREAM/ID/thumbs/FILE, every part a plain name. */
    char rel[PATH_MAX];
    size_t rl = n - (sizeof(prefix) - 1);
    if (rl >= sizeof(rel))
        return not_found(req);
    memcpy(rel, p + sizeof(prefix) - 1, rl);
    rel[rl] = '\0';
    char *parts[5], *save = NULL;
    int k = 0;
    for (char *t = strtok_r(rel, "/", &save); t && k < 5; t = strtok_r(NULL, "/", &save))
        parts[k++] = t;
    if (k < 3 || k > 4 || (k == 4 && strcmp(parts[2], "thumbs") != 0))
        return not_found(req);
    for (int i = 0; i < k; i++)
        if (!kb_route_name_ok(parts[i], strlen(parts[i]), 255))
            return not_found(req);
    char path[PATH_MAX];
    int len = 0;
    for (int i = 0; i < k; i++) {
        len += snprintf(path + len, sizeof(path) - (size_t)len, "%s%s", i ? "/" : "", parts[i]);
        if (len >= (int)sizeof(path) || !plain(h->recordings, path, i < k - 1))
            return not_found(req);
    }
    if (ends_with(p, n, ".m3u8")) {
        ssize_t i;
        while ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1)) != -1)
            h2o_delete_header(&req->headers, i);
        while ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_MODIFIED_SINCE, -1)) != -1)
            h2o_delete_header(&req->headers, i);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("no-cache"));
    }
    return -1; /* h2o's file handler takes it from here */
}

/* The pages: no dotfiles, no NUL. */
static int page_guard(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    const char *p = req->path_normalized.base;
    size_t n = req->path_normalized.len;
    if (memchr(p, '\0', n))
        return not_found(req);
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '/' && p[i + 1] == '.')
            return not_found(req);
    return -1;
}

static h2o_pathconf_t *path(struct kb_http *h, h2o_hostconf_t *host, const char *prefix,
                            enum kb_handler kind, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, prefix, 0);
    pc->error_log.emit_request_errors = 0;
    kb__route_common(h, pc, kind);
    struct kb_handler_ctx *g = (struct kb_handler_ctx *)h2o_create_handler(pc, sizeof(*g));
    g->super.on_req = on_req;
    g->h = h;
    g->kind = kind;
    return pc;
}

int kb__files_register(struct kb_http *h, h2o_hostconf_t *host)
{
    h2o_mimemap_t *mime = h2o_mimemap_create();
    h2o_mimemap_define_mimetype(mime, "m4s", "video/iso.segment", NULL);
    h2o_mimemap_define_mimetype(mime, "m3u8", "application/vnd.apple.mpegurl", NULL);
    h2o_mimemap_define_mimetype(mime, "ts", "video/mp2t", NULL);
    h2o_mimemap_define_mimetype(mime, "flv", "video/x-flv", NULL);
    h2o_mimemap_define_mimetype(mime, "js", "text/javascript; charset=utf-8", NULL);
    h2o_mimemap_define_mimetype(mime, "html", "text/html; charset=utf-8", NULL);
    h2o_mimemap_define_mimetype(mime, "css", "text/css; charset=utf-8", NULL);
    h2o_mimemap_set_default_type(mime, "application/octet-stream", NULL);
    static const char *no_index[] = {NULL};
    static const char *index_html[] = {"index.html", NULL};

    h2o_pathconf_t *pc = path(h, host, "/rec", KB_H_REC, rec_guard);
    h2o_file_register(pc, h->recordings, no_index, mime, 0);

    /* Every /watch/NAME and /replay[/...] is one page that reads its path. */
    char file[PATH_MAX];
    static const struct {
        const char *prefix, *file;
    } pages[] = {{"/watch", "watch.html"}, {"/replay", "replay.html"}};
    /* Pages, scripts and styles go gzipped to a browser that takes it (the
     * players are a third of their size so, on a phone's link); video,
     * under /rec and /live, as it is. */
    h2o_compress_args_t gzip = {.min_size = 1024, .gzip = {.quality = 6},
                                .brotli = {.quality = -1}};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        snprintf(file, sizeof(file), "%s/%s", h->web_root, pages[i].file);
        pc = path(h, host, pages[i].prefix, KB_H_PAGE, page_guard);
        h2o_file_register_file(pc, file, h2o_mimemap_get_type_by_extension(mime,
                                              h2o_iovec_init(H2O_STRLIT("html"))), 0);
        h2o_compress_register(pc, &gzip);
    }
    pc = path(h, host, "/", KB_H_PAGE, page_guard);
    h2o_file_register(pc, h->web_root, index_html, mime, 0);
    h2o_compress_register(pc, &gzip);
    h2o_mem_release_shared(mime);
    return 0;
}
