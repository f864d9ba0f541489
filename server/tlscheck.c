/* Checks on TLS files, with mbedTLS (what Debian's nng uses for TLS). */
#include "tlscheck.h"

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <string.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#endif

int
tlscheck_pair(const char *cert_pem, const char *key_pem, char *why,
    size_t len)
{
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	char msg[200];
	int rv;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);
	/* PEM lengths count the terminating NUL. */
	if ((rv = mbedtls_x509_crt_parse(&crt, (const unsigned char *) cert_pem,
		 strlen(cert_pem) + 1)) < 0) {
		mbedtls_strerror(rv, msg, sizeof(msg));
		snprintf(why, len, "cannot read the certificate: %s", msg);
		goto out;
	}
#if MBEDTLS_VERSION_MAJOR >= 3
	{
		mbedtls_entropy_context ent;
		mbedtls_ctr_drbg_context rng;

		mbedtls_entropy_init(&ent);
		mbedtls_ctr_drbg_init(&rng);
		rv = mbedtls_ctr_drbg_seed(&rng, mbedtls_entropy_func, &ent,
		    NULL, 0);
		if (rv == 0)
			rv = mbedtls_pk_parse_key(&key,
			    (const unsigned char *) key_pem,
			    strlen(key_pem) + 1, NULL, 0,
			    mbedtls_ctr_drbg_random, &rng);
		if (rv == 0 && mbedtls_pk_check_pair(&crt.pk, &key,
				   mbedtls_ctr_drbg_random, &rng) != 0)
			rv = 1;
		mbedtls_ctr_drbg_free(&rng);
		mbedtls_entropy_free(&ent);
	}
#else
	rv = mbedtls_pk_parse_key(&key, (const unsigned char *) key_pem,
	    strlen(key_pem) + 1, NULL, 0);
	if (rv == 0 && mbedtls_pk_check_pair(&crt.pk, &key) != 0)
		rv = 1;
#endif
	if (rv < 0) {
		mbedtls_strerror(rv, msg, sizeof(msg));
		snprintf(why, len, "cannot read the private key: %s", msg);
	} else if (rv > 0) {
		snprintf(why, len, "the private key does not belong to the "
				   "certificate");
	}
out:
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
	return rv == 0 ? 0 : -1;
}
