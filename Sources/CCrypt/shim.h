// The system's libcrypt (libxcrypt on Debian, package libcrypt-dev): crypt_rn verifies the
// htpasswd entries of basic auth (bcrypt and SHA-512-crypt) with caller-owned state, so
// verifier threads share nothing.
#include <crypt.h>
