/* kebun: TLS as a buffer transform (OpenSSL with memory BIOs).
 *
 * The loop moves bytes; this file turns ciphertext into plaintext and back,
 * with no socket in sight, on either side:
 * - client (RTMPS push outputs): SNI is always sent, and the certificate
 *   chain and host name are verified against the system CA store or a given
 *   CA file unless verification was explicitly switched off;
 * - server (RTMPS ingest, `listen_tls`): one context holds the certificate
 *   chain and key, parsed once; each accepted connection takes a reference,
 *   so a reload that brings a renewed certificate serves it to new
 *   connections while live ones keep the context they started with.
 * Both speak TLS 1.2 and 1.3 only.
 */
#ifndef KB_TLS_H
#define KB_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "relay/rtmp/buf.h"

struct kb_tls;
struct kb_tls_server;

/* A client connection to `host`. ca_file NULL = system store; verify 0 =
 * accept any certificate. On error returns a negative errno and a sentence
 * in err. */
int kb_tls_client_new(struct kb_tls **out, const char *host, const char *ca_file, int verify,
                      char *err, size_t errlen);
void kb_tls_free(struct kb_tls *t);
/* Drop the cached contexts (trust stores), so the next connection reads
 * its CA files again: on reload and at shutdown. */
void kb_tls_forget_contexts(void);

/* The server context for listen_tls, from the certificate chain and key the
 * config read (conf->tls_cert, conf->tls_key). On error returns a negative
 * errno and writes "FILE:LINE: [server] tls_...: ..." lines into err (the
 * key's contents never). */
int kb_tls_server_new(struct kb_tls_server **out, const struct kb_config *conf, char *err,
                      size_t errlen);
/* Let go of a server context; connections that use it keep it alive. */
void kb_tls_server_free(struct kb_tls_server *s);
/* What the context serves, for the log: "CN=..., SHA-256 AB:CD:..., valid
 * until 2027-01-31". */
const char *kb_tls_server_about(const struct kb_tls_server *s);
/* The certificate is expired or not yet valid: a sentence, or NULL. */
const char *kb_tls_server_warning(const struct kb_tls_server *s);
/* An accepted connection's TLS state, on the context's reference. */
int kb_tls_accept_new(struct kb_tls **out, struct kb_tls_server *s);
/* The protocol version and cipher agreed ("TLSv1.3 TLS_AES_256_GCM_SHA384"). */
const char *kb_tls_describe(const struct kb_tls *t, char *buf, size_t n);

/* Drive the handshake: 1 done, 0 needs more bytes from the peer, negative
 * on failure (kb_tls_error() says why: e.g. "certificate verify failed:
 * unable to get local issuer certificate"). Ciphertext to send accumulates
 * (take it with kb_tls_take). */
int kb_tls_handshake(struct kb_tls *t);
/* Ciphertext received from the socket. 0 or -ENOMEM. */
int kb_tls_feed(struct kb_tls *t, const uint8_t *p, size_t n);
/* Plaintext out: >0 bytes, 0 none available, negative on failure or close. */
int kb_tls_read(struct kb_tls *t, uint8_t *buf, size_t cap);
/* Plaintext in; all of it is taken (encrypted into the outgoing buffer). */
int kb_tls_write(struct kb_tls *t, const uint8_t *p, size_t n);
/* Move pending ciphertext into out. 0 or -ENOMEM. */
int kb_tls_take(struct kb_tls *t, struct kb_buf *out);
const char *kb_tls_error(const struct kb_tls *t);

#endif
