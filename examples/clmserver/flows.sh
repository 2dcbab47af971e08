#!/usr/bin/env bash
# The main flows of the CLM v10 protocol with curl, jq and openssl, as the
# README shows them. Run it against a server:
#   CLM_URL=http://127.0.0.1:8080 CLM_LICENSE=$(cat clm.license) bash examples/clmserver/flows.sh
# It stops at the first step that fails.
set -euo pipefail
: "${CLM_URL:=http://127.0.0.1:8080}" "${CLM_LICENSE:?set CLM_LICENSE}"
API="$CLM_URL/SWCLM/v10"
CURL=(curl -sS --fail-with-body -u "secureware-clm:$CLM_LICENSE" ${CLM_CACERT:+--cacert "$CLM_CACERT"})
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
step() { printf '== %s\n' "$*"; }

step "issue a PSK (IDInfo create)"
PSK=$("${CURL[@]}" -d '{"mode":"create","tenantid":"tenant01","alias":"DemoKey1"}' "$API/IDInfo")
KEYID=$(jq -r .keyid <<<"$PSK"); KEY=$(jq -r .key <<<"$PSK")
echo "keyid $KEYID"

step "authenticate it (IDInfo auth)"
"${CURL[@]}" -d "{\"mode\":\"auth\",\"keyid\":\"$KEYID\",\"key\":\"$KEY\"}" "$API/IDInfo"; echo

step "a client certificate in PEM; the device registers on this first request"
CERT=$("${CURL[@]}" -d "{\"mode\":\"create\",\"keyid\":\"$KEYID\",\"key\":\"$KEY\",\"devicename\":\"nec-edge-0001\",
  \"certmode\":\"client\",\"catype\":\"ca1\",\"clientsubject\":\"/C=JP/O=NEC/CN=ap1.example.com\",
  \"keyfilepath\":\"/tmp/key\",\"cafilepath\":\"/etc/clm/ca.pem\",\"clientfilepath\":\"/etc/clm/client.pem\"}" "$API/CredInfo")
DEVICEID=$(jq -r .deviceid <<<"$CERT"); DEVICEKEY=$(jq -r .devicekey <<<"$CERT")
KEYNUMBER=$(jq -r .clientkeynumber <<<"$CERT")
jq -r .cacert <<<"$CERT" >ca.pem
jq -r .clientcert <<<"$CERT" >client.pem
jq -r .privatekey <<<"$CERT" >client.key
openssl verify -CAfile ca.pem client.pem
DEV="\"keyid\":\"$KEYID\",\"key\":\"$KEY\",\"deviceid\":\"$DEVICEID\",\"devicename\":\"nec-edge-0001\",\"devicekey\":\"$DEVICEKEY\""

step "the same certificate as PKCS#12 (CredInfo get)"
"${CURL[@]}" -d "{\"mode\":\"get\",$DEV,\"keynumber\":\"$KEYNUMBER\",\"catype\":\"ca1\",
  \"certtype\":\"p12\",\"passphrase\":\"pfx-pass\",\"filepath\":\"/etc/clm/client.p12\"}" "$API/CredInfo" |
  jq -r .clientcert | base64 -d >client.p12
openssl pkcs12 -in client.p12 -passin pass:pfx-pass -noout && echo "client.p12 opens"

step "a symmetric key (KeyInfo create)"
SK=$("${CURL[@]}" -d "{\"mode\":\"create\",$DEV,\"alias\":\"sensor key\",\"keytype\":\"AES\",\"keylength\":\"128\",
  \"keyfilepath\":\"/tmp/key\",\"commonkeyfilepath\":\"/etc/clm/aes.key\"}" "$API/KeyInfo")
echo "keynumber $(jq -r .keynumber <<<"$SK"), $(jq -r .commonkey <<<"$SK" | base64 -d | wc -c) bytes"

step "rotate it (KeyInfo update)"
"${CURL[@]}" -d "{\"mode\":\"update\",$DEV,\"keynumber\":\"$(jq -r .keynumber <<<"$SK")\",\"filepath\":\"/etc/clm/aes.key\"}" "$API/KeyInfo" | jq -c '{errorcode, keynumber}'

step "renew the certificate (CredInfo update): same subject, new key"
NEW=$("${CURL[@]}" -d "{\"mode\":\"update\",$DEV,\"keynumber\":\"$KEYNUMBER\",\"catype\":\"ca1\",\"passphrase\":\"new-pass\",
  \"filepath\":\"/etc/clm/client.pem\",\"newfilepath\":\"/etc/clm/client-2.pem\"}" "$API/CredInfo")
NEWKEYNUMBER=$(jq -r .clientkeynumber <<<"$NEW")
jq -r .clientcert <<<"$NEW" >client-2.pem
openssl verify -CAfile ca.pem client-2.pem

step "revoke the renewed certificate (CredInfo revoke)"
"${CURL[@]}" -d "{\"mode\":\"revoke\",$DEV,\"keynumber\":\"$NEWKEYNUMBER\",\"catype\":\"ca1\"}" "$API/CredInfo"; echo

step "the CRL lists both: the first superseded, the second revoked"
curl -sS --fail ${CLM_CACERT:+--cacert "$CLM_CACERT"} "$API/CRL?catype=ca1&format=pem" >ca1.crl
openssl crl -in ca1.crl -noout -text | grep -E "Serial Number|Reason|Superseded|Key Compromise|Unspecified" || true
if openssl verify -crl_check -CAfile ca.pem -CRLfile ca1.crl client-2.pem; then
  echo "the revoked certificate still verifies" >&2; exit 1
fi
echo "flows: all passed"
