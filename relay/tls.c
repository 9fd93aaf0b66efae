#include "tls.h"

#include <arpa/inet.h>

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kb_tls {
    SSL *ssl;
    BIO *in;   ///< ciphertext from the peer, read by OpenSSL
    BIO *out;  ///< ciphertext from OpenSSL, to send
    char error[192];
};

static void set_error(struct kb_tls *t, const char *what)
{
    unsigned long e = ERR_get_error();
    long vr = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(t->error, sizeof(t->error), "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(vr));
    else if (e)
        snprintf(t->error, sizeof(t->error), "%s: %s", what, ERR_reason_error_string(e));
    else
        snprintf(t->error, sizeof(t->error), "%s", what);
    ERR_clear_error();
}

/* Contexts by trust settings. Building one reads and parses the CA store
 * from disk (the system bundle is some 150 certificates), which must not
 * happen on the loop at every reconnect: each is built once and kept until
 * the next reload. */
struct ctx_entry {
    char *ca_file; ///< NULL = system store
    int verify;
    SSL_CTX *ctx;
    struct ctx_entry *next;
};
static struct ctx_entry *ctx_cache;

static SSL_CTX *get_ctx(const char *ca_file, int verify, char *err, size_t errlen)
{
    for (struct ctx_entry *e = ctx_cache; e; e = e->next)
        if (e->verify == verify && ((!e->ca_file && !ca_file) ||
                                    (e->ca_file && ca_file && strcmp(e->ca_file, ca_file) == 0)))
            return e->ctx;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS setup failed: %s", ERR_reason_error_string(ERR_get_error()));
        ERR_clear_error();
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (verify) {
        int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            snprintf(err, errlen, "cannot load %s", ca_file ? ca_file : "the system CA store");
            ERR_clear_error();
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    struct ctx_entry *e = calloc(1, sizeof(*e));
    if (!e || (ca_file && !(e->ca_file = strdup(ca_file)))) {
        free(e);
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->verify = verify;
    e->ctx = ctx;
    e->next = ctx_cache;
    ctx_cache = e;
    return ctx;
}

void kb_tls_forget_contexts(void)
{
    while (ctx_cache) {
        struct ctx_entry *e = ctx_cache;
        ctx_cache = e->next;
        SSL_CTX_free(e->ctx); /* connections still open keep their own reference */
        free(e->ca_file);
        free(e);
    }
}

int kb_tls_client_new(struct kb_tls **out, const char *host, const char *ca_file, int verify,
                      char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *ctx = get_ctx(ca_file, verify, err, errlen);
    if (!ctx)
        return -EINVAL;
    struct kb_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        BIO_free(t->in);
        BIO_free(t->out);
        t->in = t->out = NULL;
        goto fail;
    }
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL now owns both BIOs */
    SSL_set_connect_state(t->ssl);
    /* SNI: ingest servers behind shared front ends route by it. An IP
     * address is never sent as SNI (RFC 6066 3); OpenSSL's host check
     * then matches it against the certificate's IP addresses. */
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip && SSL_set_tlsext_host_name(t->ssl, host) != 1)
        goto fail;
    if (verify && SSL_set1_host(t->ssl, host) != 1)
        goto fail;
    *out = t;
    return 0;
fail:
    snprintf(err, errlen, "TLS setup failed: %s", ERR_reason_error_string(ERR_get_error()));
    ERR_clear_error();
    kb_tls_free(t);
    return -ENOMEM;
}

void kb_tls_free(struct kb_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

int kb_tls_handshake(struct kb_tls *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    set_error(t, "TLS handshake failed");
    return -EPROTO;
}

int kb_tls_feed(struct kb_tls *t, const uint8_t *p, size_t n)
{
    while (n) {
        int w = BIO_write(t->in, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0)
            return -ENOMEM;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kb_tls_read(struct kb_tls *t, uint8_t *buf, size_t cap)
{
    int r = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (r > 0)
        return r;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->error, sizeof(t->error), "TLS connection closed by peer");
        return -ECONNRESET;
    }
    set_error(t, "TLS read failed");
    return -EPROTO;
}

int kb_tls_write(struct kb_tls *t, const uint8_t *p, size_t n)
{
    while (n) {
        int w = SSL_write(t->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0) {
            set_error(t, "TLS write failed");
            return -EPROTO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kb_tls_take(struct kb_tls *t, struct kb_buf *out)
{
    size_t pending = BIO_ctrl_pending(t->out);
    if (!pending)
        return 0;
    int err = kb_buf_reserve(out, pending);
    if (err)
        return err;
    int r = BIO_read(t->out, out->data + out->len, (int)pending);
    if (r > 0)
        out->len += (size_t)r;
    return 0;
}

const char *kb_tls_error(const struct kb_tls *t)
{
    return t->error[0] ? t->error : "TLS error";
}
