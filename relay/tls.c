#include "tls.h"

#include <arpa/inet.h>

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kb_tls {
    SSL *ssl;
    BIO *in;   ///< ciphertext from the peer, read by OpenSSL
    BIO *out;  ///< ciphertext from OpenSSL, to send
    int server; ///< accepted (rtmps ingest), not connected out
    char error[256];
};

struct kb_tls_server {
    SSL_CTX *ctx;     ///< the chain and key; each connection holds a reference
    char about[256];  ///< for the log
    char warning[160]; ///< expired or not yet valid, or ""
};

/* What an operator can do about a handshake failure, when OpenSSL's reason
 * alone does not say. */
static const char *hint(const struct kb_tls *t, int reason)
{
    switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
        return "the peer offers only TLS versions older than 1.2, which kebun does not speak";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        return t->server ? "the client does not trust kebun's certificate (tls_cert)" : NULL;
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        return t->server ? "the client says kebun's certificate expired (tls_cert)" : NULL;
    default:
        return NULL;
    }
}

static void set_error(struct kb_tls *t, const char *what)
{
    unsigned long e = ERR_get_error();
    long vr = t->ssl && !t->server ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    const char *h = e ? hint(t, ERR_GET_REASON(e)) : NULL;
    if (vr != X509_V_OK)
        snprintf(t->error, sizeof(t->error), "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(vr));
    else if (why && h)
        snprintf(t->error, sizeof(t->error), "%s: %s (%s)", what, why, h);
    else if (why)
        snprintf(t->error, sizeof(t->error), "%s: %s", what, why);
    else
        snprintf(t->error, sizeof(t->error), "%s", what);
    ERR_clear_error();
}

/* One connection's SSL on memory BIOs, or NULL (out of memory). */
static struct kb_tls *tls_new(SSL_CTX *ctx)
{
    struct kb_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx); /* takes a reference on ctx */
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        BIO_free(t->in);
        BIO_free(t->out);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL now owns both BIOs */
    return t;
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
    struct kb_tls *t = tls_new(ctx);
    if (!t) {
        snprintf(err, errlen, "TLS setup failed: out of memory");
        return -ENOMEM;
    }
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

/* ---- the server side (listen_tls) ------------------------------------ */

/* A daemon has nobody to ask for a passphrase: OpenSSL must never prompt
 * on the terminal for one. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* "FILE:LINE: [server] KEY: PATH: what (OpenSSL's reason)" into err. */
static void file_error(char *err, size_t errlen, const struct kb_config *conf, const char *key,
                       const struct kb_conf_file *f, const char *what)
{
    unsigned long e = ERR_get_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s:%d: [server] %s: %s: %s%s%s%s\n", conf->path, f->line, key, f->path,
             what, why ? " (" : "", why ? why : "", why ? ")" : "");
    ERR_clear_error();
}

static void format_time(const ASN1_TIME *at, char *buf, size_t n)
{
    struct tm tm;
    if (!at || ASN1_TIME_to_tm(at, &tm) != 1 || !strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(buf, n, "?");
}

/* The log line's description of the certificate, and a warning when no
 * client will take it today (the clock or a missed renewal). */
static void describe(struct kb_tls_server *s, X509 *leaf)
{
    char cn[96] = "";
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn,
                                  sizeof(cn)) < 0)
        snprintf(cn, sizeof(cn), "(none)");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char fp[EVP_MAX_MD_SIZE * 3 + 1] = "?";
    if (X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1)
        for (unsigned int i = 0; i < mdlen; i++)
            snprintf(fp + 3 * i, sizeof(fp) - 3 * i, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    char until[40], from[40];
    format_time(X509_get0_notAfter(leaf), until, sizeof(until));
    format_time(X509_get0_notBefore(leaf), from, sizeof(from));
    snprintf(s->about, sizeof(s->about), "CN=%s, SHA-256 %s, valid until %s", cn, fp, until);
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
        snprintf(s->warning, sizeof(s->warning),
                 "the certificate expired on %s: clients will refuse it", until);
    else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
        snprintf(s->warning, sizeof(s->warning),
                 "the certificate is not valid before %s: clients will refuse it", from);
    ERR_clear_error();
}

/* The server's certificate first, then the intermediates that follow it in
 * the file. Returns the leaf (owned by the context), or NULL after writing
 * err. */
static X509 *load_chain(SSL_CTX *ctx, const struct kb_config *conf, char *err, size_t errlen)
{
    const struct kb_conf_file *f = &conf->tls_cert;
    BIO *b = BIO_new_mem_buf(f->text, (int)f->len);
    X509 *leaf = b ? PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL) : NULL;
    if (!leaf) {
        file_error(err, errlen, conf, "tls_cert", f, "the certificate cannot be read");
        BIO_free(b);
        return NULL;
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        file_error(err, errlen, conf, "tls_cert", f, "the certificate cannot be used");
        X509_free(leaf);
        BIO_free(b);
        return NULL;
    }
    X509_free(leaf); /* the context holds its own reference */
    for (int n = 2;; n++) {
        X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        if (!x) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error(); /* the end of the file */
                break;
            }
            char what[64];
            snprintf(what, sizeof(what), "certificate %d of the chain cannot be read", n);
            file_error(err, errlen, conf, "tls_cert", f, what);
            BIO_free(b);
            return NULL;
        }
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            X509_free(x);
            file_error(err, errlen, conf, "tls_cert", f, "the chain cannot be used");
            BIO_free(b);
            return NULL;
        }
    }
    BIO_free(b);
    return SSL_CTX_get0_certificate(ctx);
}

static int load_key(SSL_CTX *ctx, X509 *leaf, const struct kb_config *conf, char *err,
                    size_t errlen)
{
    const struct kb_conf_file *f = &conf->tls_key;
    BIO *b = BIO_new_mem_buf(f->text, (int)f->len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    if (!key) {
        file_error(err, errlen, conf, "tls_key", f, "the private key cannot be read");
        return -EINVAL;
    }
    int r = 0;
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen,
                 "%s:%d: [server] tls_key: %s is not the private key of the certificate in %s "
                 "(line %d; the certificate file must start with the server's own "
                 "certificate)\n",
                 conf->path, f->line, f->path, conf->tls_cert.path, conf->tls_cert.line);
        r = -EINVAL;
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        file_error(err, errlen, conf, "tls_key", f, "the private key cannot be used");
        r = -EINVAL;
    }
    EVP_PKEY_free(key);
    return r;
}

int kb_tls_server_new(struct kb_tls_server **out, const struct kb_config *conf, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (!conf->tls_cert.text || !conf->tls_key.text) {
        snprintf(err, errlen, "%s: [server] listen_tls needs tls_cert and tls_key\n", conf->path);
        return -EINVAL;
    }
    struct kb_tls_server *s = calloc(1, sizeof(*s));
    SSL_CTX *ctx = s ? SSL_CTX_new(TLS_server_method()) : NULL;
    if (!ctx) {
        snprintf(err, errlen, "%s: TLS setup failed: out of memory\n", conf->path);
        ERR_clear_error();
        free(s);
        return -ENOMEM;
    }
    s->ctx = ctx;
    /* TLS 1.0 and 1.1 are deprecated (RFC 8996), whatever the system's
     * OpenSSL configuration allows. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No client-initiated renegotiation (a TLS 1.2 CPU sink); idle
     * connections (players between frames) give their buffers back. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    X509 *leaf = load_chain(ctx, conf, err, errlen);
    if (!leaf || load_key(ctx, leaf, conf, err, errlen) < 0) {
        kb_tls_server_free(s);
        return -EINVAL;
    }
    describe(s, leaf);
    *out = s;
    return 0;
}

void kb_tls_server_free(struct kb_tls_server *s)
{
    if (!s)
        return;
    SSL_CTX_free(s->ctx); /* connections still open keep their own reference */
    free(s);
}

const char *kb_tls_server_about(const struct kb_tls_server *s)
{
    return s->about;
}

const char *kb_tls_server_warning(const struct kb_tls_server *s)
{
    return s->warning[0] ? s->warning : NULL;
}

int kb_tls_accept_new(struct kb_tls **out, struct kb_tls_server *s)
{
    *out = tls_new(s->ctx);
    if (!*out)
        return -ENOMEM;
    (*out)->server = 1;
    SSL_set_accept_state((*out)->ssl);
    return 0;
}

const char *kb_tls_describe(const struct kb_tls *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    return buf;
}

/* ---- both sides ------------------------------------------------------ */

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
