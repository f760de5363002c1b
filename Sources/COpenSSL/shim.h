#ifndef FASTGW_COPENSSL_SHIM_H
#define FASTGW_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <string.h>
#include <time.h>

/* OpenSSL exposes these as macros, which Swift cannot call. */
static inline long fastgw_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long fastgw_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long fastgw_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
/* No renegotiation, no compression (CRIME): options that are macros of 64-bit constants. */
static inline void fastgw_SSL_CTX_harden(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}
/* AES-128-GCM first: as strong as a tunnel needs and the cheapest with AES-NI. */
static inline int fastgw_SSL_CTX_prefer_fast_ciphers(SSL_CTX *ctx) {
    return SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
}
static inline size_t fastgw_BIO_ctrl_pending(BIO *bio) {
    return BIO_ctrl_pending(bio);
}
static inline int fastgw_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *)) {
    return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline long fastgw_SSL_CTX_set_tlsext_servername_arg(SSL_CTX *ctx, void *arg) {
    return SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
/* The DNS names of the context's certificate (subjectAltName), each followed by '\n', written
   into out as far as cap allows; returns the size all of them need. */
static inline size_t fastgw_SSL_CTX_certificate_dns_names(SSL_CTX *ctx, char *out, size_t cap) {
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (cert == NULL) return 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) return 0;
    size_t used = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_DNS) continue;
        size_t len = (size_t)ASN1_STRING_length(name->d.dNSName);
        if (used + len + 1 <= cap) {
            memcpy(out + used, ASN1_STRING_get0_data(name->d.dNSName), len);
            out[used + len] = '\n';
        }
        used += len + 1;
    }
    GENERAL_NAMES_free(names);
    return used;
}
/* The context's certificate's notAfter as seconds since the epoch; 0 without one. */
static inline long long fastgw_SSL_CTX_certificate_not_after(SSL_CTX *ctx) {
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (cert == NULL) return 0;
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
    return (long long)timegm(&tm);
}
/* A certificate chain (leaf first) and its key from PEM text, for TLS-ALPN-01 validation. */
static inline int fastgw_SSL_CTX_use_pem_identity(SSL_CTX *ctx, const char *cert, const char *key) {
    BIO *b = BIO_new_mem_buf(cert, -1);
    if (b == NULL) return 0;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (x == NULL) return 0;
    int ok = SSL_CTX_use_certificate(ctx, x);
    X509_free(x);
    if (ok != 1) return 0;
    b = BIO_new_mem_buf(key, -1);
    if (b == NULL) return 0;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (k == NULL) return 0;
    ok = SSL_CTX_use_PrivateKey(ctx, k);
    EVP_PKEY_free(k);
    return ok == 1 && SSL_CTX_check_private_key(ctx) == 1;
}

static inline long fastgw_BIO_set_mem_eof_return(BIO *bio, long value) {
    return BIO_set_mem_eof_return(bio, value);
}
/* ---- Client certificates on the tunnel (mTLS) ----
   The handshake must not fail on a bad client certificate, so that the gateway can answer
   with the reason: the callback records the first verification error and lets it go on. The
   error goes to an int the caller owns: the SSL's app data during a handshake, the store
   context's app data when a chain is verified again at reload. */
static int fastgw_record_first_verify_error(int ok, X509_STORE_CTX *store) {
    if (ok) return 1;
    int *first = X509_STORE_CTX_get_app_data(store);
    if (first == NULL) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
        first = ssl ? SSL_get_app_data(ssl) : NULL;
    }
    if (first != NULL && *first == X509_V_OK) *first = X509_STORE_CTX_get_error(store);
    return 1;
}
/* Asks every client for a certificate without requiring one. No session resumption: a
   resumed session would skip verification against a CRL loaded since. */
static inline void fastgw_SSL_CTX_request_client_certificate(SSL_CTX *ctx) {
    static const unsigned char sid[] = "fastgw-tunnel";
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, fastgw_record_first_verify_error);
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
}
static inline void fastgw_SSL_set_verify_error_slot(SSL *ssl, int *slot) {
    SSL_set_app_data(ssl, slot);
}
/* Loads every CRL in a PEM file into the context's store and turns on revocation checking
   of the client's certificate; returns how many were loaded (0 on error). */
static inline int fastgw_SSL_CTX_load_crl_file(SSL_CTX *ctx, const char *path) {
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == NULL) return 0;
    int n = X509_load_crl_file(lookup, path, X509_FILETYPE_PEM);
    if (n > 0) X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return n > 0 ? n : 0;
}
/* The intermediates the client sent (the server's peer chain leaves out the leaf). */
static inline int fastgw_SSL_peer_chain_count(SSL *ssl) {
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    return chain ? sk_X509_num(chain) : 0;
}
static inline X509 *fastgw_SSL_peer_chain_at(SSL *ssl, int i) {
    return sk_X509_value(SSL_get_peer_cert_chain(ssl), i);
}
static inline int fastgw_is_clean_name(const unsigned char *p, size_t len) {
    for (size_t i = 0; i < len; i++) if (p[i] < 0x20 || p[i] == 0x7f) return 0;
    return len > 0;
}
static inline size_t fastgw_append_name(char *out, size_t cap, size_t used, const unsigned char *p, size_t len) {
    if (!fastgw_is_clean_name(p, len)) return used;
    if (used + len + 1 <= cap) {
        memcpy(out + used, p, len);
        out[used + len] = '\n';
    }
    return used + len + 1;
}
/* The certificate's names of one kind (0: subject CN, 1: DNS subjectAltName, 2: URI
   subjectAltName), UTF-8, each followed by '\n', written into out as far as cap allows;
   returns the size all of them need. Names with control characters are left out: they
   could not name an agent and must not pass for several names. */
static inline size_t fastgw_X509_names(X509 *cert, int kind, char *out, size_t cap) {
    size_t used = 0;
    if (kind == 0) {
        X509_NAME *subject = X509_get_subject_name(cert);
        for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
            unsigned char *utf8 = NULL;
            int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
            if (len > 0) used = fastgw_append_name(out, cap, used, utf8, (size_t)len);
            OPENSSL_free(utf8);
        }
        return used;
    }
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) return 0;
    int wanted = kind == 1 ? GEN_DNS : GEN_URI;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != wanted) continue;
        const ASN1_STRING *value = kind == 1 ? name->d.dNSName : name->d.uniformResourceIdentifier;
        used = fastgw_append_name(out, cap, used, ASN1_STRING_get0_data(value), (size_t)ASN1_STRING_length(value));
    }
    GENERAL_NAMES_free(names);
    return used;
}
/* Verifies a client's chain again (DER certificates one after another, the leaf first)
   against ctx's trust store and settings, as a handshake would; returns X509_V_OK, the
   first verification error, or -1 when the bytes are not certificates. */
static inline int fastgw_verify_client_chain(SSL_CTX *ctx, const unsigned char *der, long len) {
    const unsigned char *p = der, *end = der + len;
    X509 *leaf = d2i_X509(NULL, &p, end - p);
    if (leaf == NULL) return -1;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int result = -1;
    while (untrusted != NULL && p < end) {
        X509 *c = d2i_X509(NULL, &p, end - p);
        if (c == NULL || !sk_X509_push(untrusted, c)) { X509_free(c); goto done; }
    }
    X509_STORE_CTX *store = X509_STORE_CTX_new();
    if (store == NULL || !X509_STORE_CTX_init(store, SSL_CTX_get_cert_store(ctx), leaf, untrusted)) {
        X509_STORE_CTX_free(store);
        goto done;
    }
    int first = X509_V_OK;
    X509_STORE_CTX_set_default(store, "ssl_client");
    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(store), SSL_CTX_get0_param(ctx));
    X509_STORE_CTX_set_app_data(store, &first);
    X509_STORE_CTX_set_verify_cb(store, fastgw_record_first_verify_error);
    /* The callback lets every error pass, so a failure without one is an internal error. */
    int verified = X509_verify_cert(store);
    result = first != X509_V_OK ? first : verified > 0 ? X509_V_OK : -1;
    X509_STORE_CTX_free(store);
done:
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    return result;
}
#endif
