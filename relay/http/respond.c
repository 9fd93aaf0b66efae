/* Answers: JSON documents and errors, and the request counts /metrics
 * shows. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *kb__reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

h2o_iovec_t kb__pool_str(h2o_req_t *req, const char *s)
{
    return h2o_strdup(&req->pool, s, strlen(s));
}

void kb__send(h2o_req_t *req, int status, const char *type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = kb__reason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
                   strlen(type));
    /* Answers change from one request to the next. */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    /* h2o_send_inline copies the body and sends none for HEAD. */
    h2o_send_inline(req, body, len);
}

void kb__send_json(h2o_req_t *req, int status, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        kb__send(req, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    kb__send(req, status, "application/json", text, strlen(text));
    cJSON_free(text);
}

void kb__send_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *doc = cJSON_CreateObject();
    if (doc && !cJSON_AddStringToObject(doc, "error", msg)) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    kb__send_json(req, status, doc);
}

/* The codes counted one by one; the rest are "other". */
static const int counted[KB_CODES - 1] = {200, 201, 206, 304, 400, 401, 404, 405, 409, 413, 503};

void kb__count(struct kb_http *h, enum kb_handler kind, int status)
{
    int i = 0;
    while (i < KB_CODES - 1 && counted[i] != status)
        i++;
    h->counts[kind][i]++;
}

int kb__count_code(int i)
{
    return i < KB_CODES - 1 ? counted[i] : 0;
}

size_t kb__head_size(const h2o_req_t *req)
{
    size_t n = req->input.method.len + req->input.path.len + req->input.authority.len + 16;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

void kb__iso_ms(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[32];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", s, (int)(ms % 1000));
}
