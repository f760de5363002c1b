#ifndef FASTGW_COPENSSL_SHIM_H
#define FASTGW_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>

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
static inline long fastgw_BIO_set_mem_eof_return(BIO *bio, long value) {
    return BIO_set_mem_eof_return(bio, value);
}
#endif
