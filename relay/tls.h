/* kebun: TLS as a buffer transform (OpenSSL with memory BIOs).
 *
 * The loop moves bytes; this file turns ciphertext into plaintext and back,
 * with no socket in sight. Client side only for now (RTMPS push outputs):
 * SNI is always sent, and the certificate chain and host name are verified
 * against the system CA store or a given CA file unless verification was
 * explicitly switched off.
 */
#ifndef KB_TLS_H
#define KB_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "relay/rtmp/buf.h"

struct kb_tls;

/* A client connection to `host`. ca_file NULL = system store; verify 0 =
 * accept any certificate. On error returns a negative errno and a sentence
 * in err. */
int kb_tls_client_new(struct kb_tls **out, const char *host, const char *ca_file, int verify,
                      char *err, size_t errlen);
void kb_tls_free(struct kb_tls *t);
/* Drop the cached contexts (trust stores), so the next connection reads
 * its CA files again: on reload and at shutdown. */
void kb_tls_forget_contexts(void);

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
