/* TLS settings for nng's tls+tcp:// transport (mbedTLS in Debian's libnng),
 * built from PEM files, shared by the server (listeners) and libgild
 * (dialers). Internal: not part of the gild.h API. */
#ifndef GILD_TLSCONF_H
#define GILD_TLSCONF_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/* What a tls+tcp:// endpoint presents and checks. The *_opt names are how
 * error messages call each file (the option the user gave it with, such
 * as "--tls-cert" or "tls_cert"). */
typedef struct tlsconf_opts {
	bool server;      /* a listener (else a dialer) */
	const char *cert; /* PEM certificate (chain); may hold the key too */
	const char *key;  /* PEM private key, unencrypted (NULL: in cert) */
	/* PEM CA certificate(s). A listener with one requires and verifies
	 * client certificates; a dialer verifies the server against it. */
	const char *ca;
	const char *server_name; /* dialer: the name the server's certificate
				    must carry (NULL: no name check) */
	const char *cert_opt, *key_opt, *ca_opt;
	/* Checks that the PEM key belongs to the PEM certificate, which nng
	 * does not (NULL: no check); returns 0, or -1 with the reason in
	 * why. The server's uses mbedTLS, which libgild does not link. */
	int (*check_pair)(const char *cert, const char *key, char *why,
	    size_t len);
} tlsconf_opts;

/* Builds an nng TLS configuration: a listener needs cert; a dialer needs
 * ca and always verifies the server (NNG_TLS_AUTH_MODE_REQUIRED). Returns
 * 0 with a new configuration in *out (release with nng_tls_config_free;
 * listeners and dialers hold their own reference), or an nng error code
 * with a message naming the file and option in err. */
int tlsconf_new(nng_tls_config **out, const tlsconf_opts *o, char *err,
    size_t errlen);

/* Whether url uses TLS (tls+tcp://, tls+tcp4://, tls+tcp6://, wss://). */
bool tlsconf_url_is_tls(const char *url);

#endif
