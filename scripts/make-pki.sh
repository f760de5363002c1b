#!/usr/bin/env bash
# Creates a throwaway CA and a gateway certificate for localhost / 127.0.0.1 / ::1 in DIR.
# Usage: scripts/make-pki.sh DIR
set -euo pipefail
dir=${1:?usage: make-pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f ca.crt ] && [ -f gateway.crt ] && exit 0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=fastgw test CA" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=localhost" -keyout gateway.key -out gateway.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' > gateway.ext
openssl x509 -req -in gateway.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
  -extfile gateway.ext -out gateway.crt 2>/dev/null
rm -f gateway.csr gateway.ext
chmod 600 ca.key gateway.key
