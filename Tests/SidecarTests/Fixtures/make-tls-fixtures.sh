#!/usr/bin/env bash
# TLS material for the Sidecar tests, in DIR: the project's test PKI (scripts/make-pki.sh),
# an unrelated CA, and a certificate from the test CA that expired in 2020.
set -euo pipefail
dir=${1:?usage: make-tls-fixtures.sh DIR}
root=$(cd "$(dirname "$0")/../../.." && pwd)
"$root/scripts/make-pki.sh" "$dir"
cd "$dir"
[ -f expired.crt ] && exit 0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=unrelated CA" -keyout other-ca.key -out other-ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -keyout expired.key -out expired.csr 2>/dev/null
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
new_certs_dir = ca-db
serial = ca-db/serial
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
CNF
openssl ca -batch -config ca-db/ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out expired.crt \
  -startdate 20200101000000Z -enddate 20200102000000Z -notext 2>/dev/null
rm -f expired.csr
# Client certificates for mTLS from the test CA: agent (good), revoked (listed in ca.crl).
[ -f ca.crl ] && exit 0
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:agent.test,URI:spiffe://fastgw.test/agent\n' > client.ext
sed 's/^\[test\]$/[test]\ncrlnumber = ca-db\/crlnumber\ndefault_crl_days = 30\nunique_subject = no/' ca-db/ca.cnf > ca-db/client.cnf
echo 1000 > ca-db/crlnumber
for name in agent revoked; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout $name.key -out $name.csr 2>/dev/null
  openssl ca -batch -config ca-db/client.cnf -cert ca.crt -keyfile ca.key -in $name.csr -out $name.crt \
    -extfile client.ext -days 30 -notext 2>/dev/null
  rm -f $name.csr
done
openssl ca -batch -config ca-db/client.cnf -cert ca.crt -keyfile ca.key -revoke revoked.crt 2>/dev/null
openssl ca -batch -config ca-db/client.cnf -cert ca.crt -keyfile ca.key -gencrl -out ca.crl 2>/dev/null
rm -f client.ext
