#!/usr/bin/env bash
# The PKI flows of the README with curl, jq and openssl: a certificate for a
# key the device made (CSR), its chain to an offline-able root, OCSP at the
# URL the certificate names, renewal with a new CSR, revocation. Run it
# against a server started with -ca-root and -public-url:
#   clmserver -ca-root root -public-url http://127.0.0.1:8080 &
#   CLM_URL=http://127.0.0.1:8080 CLM_LICENSE=$(cat clm.license) bash examples/clmserver/pki.sh
# It stops at the first step that fails.
set -euo pipefail
: "${CLM_URL:=http://127.0.0.1:8080}" "${CLM_LICENSE:?set CLM_LICENSE}"
API="$CLM_URL/SWCLM/v10"
CURL=(curl -sS --fail-with-body -u "secureware-clm:$CLM_LICENSE")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
step() { printf '== %s\n' "$*"; }

PSK=$("${CURL[@]}" -d '{"mode":"create","tenantid":"tenant01","alias":"sensors"}' "$API/IDInfo")
KEYID=$(jq -r .keyid <<<"$PSK"); KEY=$(jq -r .key <<<"$PSK")

step "the device makes its key and a CSR; only the CSR is sent (certmode csr)"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key \
  -subj /CN=sensor-1.example.com -out dev.csr 2>/dev/null
CERT=$(jq -n --arg keyid "$KEYID" --arg key "$KEY" --rawfile csr dev.csr \
  '{mode:"create", keyid:$keyid, key:$key, devicename:"sensor-1", certmode:"csr", catype:"ca1", csr:$csr,
    keyfilepath:"/etc/clm/dev.key", cafilepath:"/etc/clm/chain.pem", clientfilepath:"/etc/clm/dev.pem"}' |
  "${CURL[@]}" -d @- "$API/CredInfo")
DEV=$(jq -c '{deviceid, devicekey, devicename:"sensor-1", catype:"ca1"}' <<<"$CERT" | jq -c --arg keyid "$KEYID" --arg key "$KEY" '. + {keyid:$keyid, key:$key}')
jq -r .clientcert <<<"$CERT" >dev.pem
jq -r .cacert <<<"$CERT" >chain.pem                       # the issuing CA, then the root
awk '/BEGIN/{n++} n==1' chain.pem >ca1.pem                 # the issuing CA
awk '/BEGIN/{n++} n==2' chain.pem >root.pem                # the root: the only trust anchor
test "$(jq -r '.privatekey // "none"' <<<"$CERT")" = none
test "$(openssl req -in dev.csr -noout -pubkey)" = "$(openssl x509 -in dev.pem -noout -pubkey)"

step "the certificate chains to the root through the intermediate"
openssl verify -CAfile root.pem -untrusted chain.pem dev.pem

step "OCSP at the URL the certificate names"
OCSP_URL=$(openssl x509 -in dev.pem -noout -ocsp_uri); echo "$OCSP_URL"
openssl ocsp -issuer ca1.pem -CAfile root.pem -cert dev.pem -url "$OCSP_URL" | tee ocsp.txt
grep -q 'dev.pem: good' ocsp.txt

step "renew with a new key and CSR; the old certificate is superseded"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev2.key -subj /CN=x -out dev2.csr 2>/dev/null
NEW=$(jq --arg csr "$(cat dev2.csr)" --arg kn "$(jq -r .clientkeynumber <<<"$CERT")" \
  '. + {mode:"update", keynumber:$kn, filepath:"/etc/clm/dev.pem", csr:$csr}' <<<"$DEV" | "${CURL[@]}" -d @- "$API/CredInfo")
jq -r .clientcert <<<"$NEW" >dev2.pem
openssl ocsp -issuer ca1.pem -CAfile root.pem -cert dev.pem -url "$OCSP_URL" | tee ocsp.txt
grep -q 'dev.pem: revoked' ocsp.txt && grep -q 'Reason: superseded' ocsp.txt
openssl ocsp -issuer ca1.pem -CAfile root.pem -cert dev2.pem -url "$OCSP_URL" | tee ocsp.txt
grep -q 'dev2.pem: good' ocsp.txt

step "revoke it: OCSP says so at once"
jq --arg kn "$(jq -r .clientkeynumber <<<"$NEW")" '. + {mode:"revoke", keynumber:$kn}' <<<"$DEV" | "${CURL[@]}" -d @- "$API/CredInfo"; echo
openssl ocsp -issuer ca1.pem -CAfile root.pem -cert dev2.pem -url "$OCSP_URL" | tee ocsp.txt
grep -q 'dev2.pem: revoked' ocsp.txt

step "the CA certificate and CRL the certificate names"
curl -sS --fail-with-body "$(openssl x509 -in dev.pem -noout -ext authorityInfoAccess | sed -n 's/.*CA Issuers - URI://p')" | openssl x509 -inform DER -noout -subject
openssl x509 -in dev.pem -noout -ext crlDistributionPoints | grep -q 'CRL?catype=ca1'
echo "pki: all passed"
