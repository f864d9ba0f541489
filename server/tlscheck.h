/* Checks on TLS files that nng does not make when it loads them. */
#ifndef GILD_TLSCHECK_H
#define GILD_TLSCHECK_H

#include <stddef.h>

/* Whether the PEM private key key_pem belongs to the first certificate in
 * cert_pem (both NUL-terminated). nng takes any key with any certificate,
 * and a wrong pair only shows as every client's handshake failing. Returns
 * 0, or -1 with the reason in why. */
int tlscheck_pair(const char *cert_pem, const char *key_pem, char *why,
    size_t len);

#endif
