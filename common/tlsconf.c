/* TLS settings from PEM files for nng's tls+tcp:// transport. */
#include "tlsconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Certificates and keys are small; a bigger file is a mistake. */
#define PEM_MAX (1u << 20)

/* Reads path into a new NUL-terminated string in *out. Returns 0, or -1
 * with the reason in err ("OPT PATH: reason"). */
static int
read_pem(const char *opt, const char *path, char **out, char *err,
    size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(PEM_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s %s: out of memory", opt, path);
		return -1;
	}
	n = fread(buf, 1, PEM_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
		goto fail;
	}
	if (n > PEM_MAX) {
		snprintf(err, errlen, "%s %s: larger than 1 MiB, not a PEM "
				      "certificate or key", opt, path);
		goto fail;
	}
	buf[n] = '\0';
	fclose(f);
	*out = buf;
	return 0;
fail:
	fclose(f);
	free(buf);
	return -1;
}

/* What a PEM text holds, by its "-----BEGIN ...-----" lines. */
static bool
has_cert(const char *pem)
{
	return strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL;
}

static bool
has_key(const char *pem)
{
	return strstr(pem, "PRIVATE KEY-----") != NULL;
}

static bool
key_encrypted(const char *pem)
{
	return strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
	       strstr(pem, "Proc-Type: 4,ENCRYPTED") != NULL;
}

/* Loads o->cert and o->key (or the key inside o->cert) into cfg, having
 * checked them with o->check_pair when there is one. */
static int
load_own(nng_tls_config *cfg, const tlsconf_opts *o, char *err,
    size_t errlen)
{
	char *cert = NULL, *key = NULL, why[256];
	const char *kopt = o->key ? o->key_opt : o->cert_opt;
	const char *kpath = o->key ? o->key : o->cert;
	int rv = NNG_EINVAL;

	if (read_pem(o->cert_opt, o->cert, &cert, err, errlen) != 0 ||
	    (o->key && read_pem(o->key_opt, o->key, &key, err, errlen) != 0))
		goto out;
	if (!has_cert(cert)) {
		snprintf(err, errlen, "%s %s: no PEM certificate in it "
				      "(-----BEGIN CERTIFICATE-----)",
		    o->cert_opt, o->cert);
		goto out;
	}
	if (!has_key(key ? key : cert)) {
		snprintf(err, errlen, "%s %s: no PEM private key in it%s%s%s",
		    kopt, kpath, o->key ? "" : " (give ",
		    o->key ? "" : o->key_opt, o->key ? "" : " too)");
		goto out;
	}
	if (key_encrypted(key ? key : cert)) {
		snprintf(err, errlen, "%s %s: the private key is encrypted; "
				      "give an unencrypted one (openssl pkey "
				      "-in KEY -out PLAIN)", kopt, kpath);
		goto out;
	}
	if ((rv = nng_tls_config_own_cert(cfg, cert, key ? key : cert,
	     NULL)) != 0) {
		snprintf(err, errlen, "%s %s%s%s%s: not a usable certificate "
				      "and private key: %s", o->cert_opt, o->cert,
		    o->key ? ", " : "", o->key ? o->key_opt : "",
		    o->key ? o->key : "", nng_strerror(rv));
	} else if (o->check_pair != NULL &&
	    o->check_pair(cert, key ? key : cert, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s %s: %s in %s %s", kopt, kpath, why,
		    o->cert_opt, o->cert);
		rv = NNG_EINVAL;
	}
out:
	free(cert);
	free(key);
	return rv;
}

static int
load_ca(nng_tls_config *cfg, const tlsconf_opts *o, char *err,
    size_t errlen)
{
	char *ca;
	int rv;

	/* Read it here too: a missing file then says why, not "Entry not
	 * found". */
	if (read_pem(o->ca_opt, o->ca, &ca, err, errlen) != 0)
		return NNG_EINVAL;
	if (!has_cert(ca)) {
		snprintf(err, errlen, "%s %s: no PEM certificate in it "
				      "(-----BEGIN CERTIFICATE-----)",
		    o->ca_opt, o->ca);
		free(ca);
		return NNG_EINVAL;
	}
	free(ca);
	if ((rv = nng_tls_config_ca_file(cfg, o->ca)) != 0)
		snprintf(err, errlen, "%s %s: not usable CA certificates: %s",
		    o->ca_opt, o->ca, nng_strerror(rv));
	return rv;
}

int
tlsconf_new(nng_tls_config **out, const tlsconf_opts *o, char *err,
    size_t errlen)
{
	nng_tls_config *cfg;
	int rv;

	if (o->server && o->cert == NULL) {
		snprintf(err, errlen, "TLS needs a certificate (%s)",
		    o->cert_opt);
		return NNG_EINVAL;
	}
	if (!o->server && o->ca == NULL) {
		snprintf(err, errlen, "TLS needs the CA certificate that "
				      "signed the server's (%s)", o->ca_opt);
		return NNG_EINVAL;
	}
	if (o->key != NULL && o->cert == NULL) {
		snprintf(err, errlen, "%s needs %s too", o->key_opt,
		    o->cert_opt);
		return NNG_EINVAL;
	}
	if ((rv = nng_tls_config_alloc(&cfg, o->server ? NNG_TLS_MODE_SERVER
						       : NNG_TLS_MODE_CLIENT)) !=
	    0) {
		snprintf(err, errlen, "cannot set up TLS: %s", nng_strerror(rv));
		return rv;
	}
	if (o->cert != NULL && (rv = load_own(cfg, o, err, errlen)) != 0)
		goto fail;
	if (o->ca != NULL && (rv = load_ca(cfg, o, err, errlen)) != 0)
		goto fail;
	/* A listener with a CA requires client certificates; a dialer always
	 * verifies the server. */
	if ((o->ca != NULL || !o->server) &&
	    (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) !=
		0) {
		snprintf(err, errlen, "cannot set up TLS: %s", nng_strerror(rv));
		goto fail;
	}
	if (!o->server && o->server_name != NULL &&
	    (rv = nng_tls_config_server_name(cfg, o->server_name)) != 0) {
		snprintf(err, errlen, "TLS server name '%s': %s",
		    o->server_name, nng_strerror(rv));
		goto fail;
	}
	*out = cfg;
	return 0;
fail:
	nng_tls_config_free(cfg);
	return rv;
}

bool
tlsconf_url_is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss://", 6) == 0 ||
	       strncmp(url, "wss4://", 7) == 0 || strncmp(url, "wss6://", 7) == 0;
}
