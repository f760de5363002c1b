#ifndef FASTGW_COPENSSL_SHIM_H
#define FASTGW_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

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
static inline long fastgw_BIO_set_mem_eof_return(BIO *bio, long value) {
    return BIO_set_mem_eof_return(bio, value);
}
#endif
