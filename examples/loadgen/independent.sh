#!/usr/bin/env bash
# independent.sh: an independent check of loadgen's P2 figure. vegeta
# (github.com/tsenart/vegeta), not loadgen, drives HTTP issuance of an EC
# P-256 certificate with a server-made key, on three servers of this
# machine, each with its own SQLite store, one after the other, ROUNDS times:
#
#   clm      clmserver, CredInfo create certmode client (PEM, key and CA in the answer)
#   minimal  loadgen -serve-baselines: keygen + sign + one row insert (GORM, SQLite)
#   cfssl    cfssl serve with a SQLite certdb: /api/v1/cfssl/newcert (a P-256
#            key, a CSR, the signature, the certificate stored)
#
# Each clm request names a path of its own (a request repeated at a path
# within the replay window would get the certificate already issued). It
# prints each run's successful (2xx) requests per second, then clm's median ratio
# to each of the others. Needs vegeta (go install
# github.com/tsenart/vegeta/v12@latest), cfssl (go install
# github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5), openssl, curl, jq, python3.
#
#   examples/loadgen/independent.sh [ROUNDS] [SECONDS] [CLIENTS]
set -euo pipefail
ROUNDS=${1:-5} SECS=${2:-5} CLIENTS=${3:-8}
cd "$(dirname "$0")/../.."
for t in vegeta cfssl openssl curl jq python3; do
	command -v $t >/dev/null || { echo "independent.sh: $t is needed" >&2; exit 1; }
done
W=$(mktemp -d)
PIDS=()
trap 'kill ${PIDS[@]:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
go build -o "$W/clmserver" ./examples/clmserver
go build -o "$W/loadgen" ./examples/loadgen

# clm, on a SQLite file
mkdir "$W/clm"
CLM_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= "$W/clmserver" -addr 127.0.0.1:0 \
	-store "sqlite:$W/clm/clm.db" -data-dir "$W/clm" -license independent-license-0123 -log-level error >"$W/clm.out" 2>&1 &
PIDS+=($!)
# the baselines
"$W/loadgen" -serve-baselines >"$W/base.out" 2>&1 &
PIDS+=($!)
# cfssl: a P-256 CA made by openssl, a SQLite certdb with cfssl's schema
# (its certdb/sqlite migrations 001 and 002)
openssl ecparam -name prime256v1 -genkey -noout -out "$W/ca-key.pem" 2>/dev/null
openssl req -x509 -new -key "$W/ca-key.pem" -subj /CN=cfssl-ca -days 30 -out "$W/ca.pem" 2>/dev/null
python3 - "$W/certs.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
PRAGMA journal_mode=WAL;
CREATE TABLE certificates (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, ca_label blob,
  status blob NOT NULL, reason int, expiry timestamp, revoked_at timestamp, pem blob NOT NULL,
  issued_at timestamp, not_before timestamp, metadata text, sans text, common_name text,
  PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, body blob NOT NULL,
  expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier));
""")
PY
echo "{\"driver\":\"sqlite3\",\"data_source\":\"$W/certs.db\"}" >"$W/db.json"
echo '{"signing":{"default":{"expiry":"8760h","usages":["digital signature","client auth"]}}}' >"$W/config.json"
CFSSL_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cfssl serve -address 127.0.0.1 -port "$CFSSL_PORT" -ca "$W/ca.pem" -ca-key "$W/ca-key.pem" \
	-db-config "$W/db.json" -config "$W/config.json" -loglevel 5 >"$W/cfssl.out" 2>&1 &
PIDS+=($!)

wait_for() {
	for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done
	echo "independent.sh: $1 did not start" >&2; cat "$1" >&2; exit 1
}
wait_for "$W/clm.out" 'serving the CLM v10 protocol at'
wait_for "$W/base.out" 'serving the baselines at'
CLM=$(grep -o 'http://[0-9.:]*' "$W/clm.out" | head -1)
BASE=$(grep -o 'http://[0-9.:]*' "$W/base.out" | head -1)
CFSSL=http://127.0.0.1:$CFSSL_PORT
for _ in $(seq 100); do curl -s "$CFSSL/api/v1/cfssl/health" >/dev/null && break; sleep 0.1; done

# a PSK and a device, made once
AUTH=secureware-clm:independent-license-0123
PSK=$(curl -s -u $AUTH -d '{"mode":"create","tenantid":"bench","alias":"b"}' "$CLM/SWCLM/v10/IDInfo")
KEYID=$(jq -r .keyid <<<"$PSK") KEY=$(jq -r .key <<<"$PSK")
FIRST=$(curl -s -u $AUTH -d "{\"mode\":\"create\",\"keyid\":\"$KEYID\",\"key\":\"$KEY\",\"devicename\":\"bench-dev\",\"certmode\":\"client\",\"catype\":\"ca1\",\"clientsubject\":\"/CN=load\",\"keyfilepath\":\"/k\",\"cafilepath\":\"/ca\",\"clientfilepath\":\"/first\"}" "$CLM/SWCLM/v10/CredInfo")
[ "$(jq -r .errorcode <<<"$FIRST")" = 0 ] || { echo "independent.sh: clm setup failed: $FIRST" >&2; exit 1; }

# vegeta's JSON targets, one per line: clm's with a path each (more than the
# runs use), the others' one body each.
python3 - "$W" "$CLM" "$BASE" "$CFSSL" "$AUTH" "$KEYID" "$KEY" "$(jq -r .deviceid <<<"$FIRST")" "$(jq -r .devicekey <<<"$FIRST")" <<'PY'
import base64, json, sys
w, clm, base, cfssl, auth, keyid, key, devid, devkey = sys.argv[1:]
basic = "Basic " + base64.b64encode(auth.encode()).decode()
def target(url, body, auth=None):
    h = {"Content-Type": ["application/json"]}
    if auth:
        h["Authorization"] = [auth]
    return json.dumps({"method": "POST", "url": url, "body": base64.b64encode(body.encode()).decode(), "header": h}) + "\n"
def clm_body(path):
    return json.dumps({"mode": "create", "keyid": keyid, "key": key, "deviceid": devid, "devicename": "bench-dev",
                       "devicekey": devkey, "certmode": "client", "catype": "ca1", "clientsubject": "/CN=load",
                       "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": path})
with open(w + "/clm.targets", "w") as f:
    for i in range(300000):
        f.write(target(clm + "/SWCLM/v10/CredInfo", clm_body("/bench/%d" % i), basic))
with open(w + "/base.targets", "w") as f:
    f.write(target(base + "/baseline-issue", clm_body("/bench/x")))
with open(w + "/cfssl.targets", "w") as f:
    f.write(target(cfssl + "/api/v1/cfssl/newcert", '{"request":{"CN":"load","key":{"algo":"ecdsa","size":256}}}'))
PY
# one request each must succeed before any is measured
curl -sf -u $AUTH -d "$(head -1 "$W/clm.targets" | jq -r .body | base64 -d)" "$CLM/SWCLM/v10/CredInfo" | jq -e '.errorcode == 0' >/dev/null
curl -sf -d "$(head -1 "$W/base.targets" | jq -r .body | base64 -d)" "$BASE/baseline-issue" >/dev/null
curl -sf -d '{"request":{"CN":"load","key":{"algo":"ecdsa","size":256}}}' "$CFSSL/api/v1/cfssl/newcert" | jq -e .success >/dev/null

echo 1 >"$W/used" # clm targets used so far (the first by the check above)
run() { # clm|base|cfssl: SECS of CLIENTS workers; prints successes per second
	local targets=$W/$1.targets
	if [ "$1" = clm ]; then # paths not used before
		targets=$W/clm.run
		tail -n +$(($(cat "$W/used") + 1)) "$W/clm.targets" >"$targets"
	fi
	local rep ok total
	rep=$(vegeta attack -format=json -targets="$targets" -rate=0 -max-workers="$CLIENTS" -workers="$CLIENTS" \
		-duration="${SECS}s" | vegeta report -type=json)
	ok=$(jq '[.status_codes | to_entries[] | select(.key | startswith("2")) | .value] | add // 0' <<<"$rep") total=$(jq .requests <<<"$rep")
	[ "$ok" = "$total" ] || { echo "independent.sh: $1: $((total - ok)) of $total requests failed: $(jq -c '{status_codes, errors}' <<<"$rep")" >&2; return 1; }
	[ "$1" != clm ] || echo $(($(cat "$W/used") + total)) >"$W/used"
	jq -r .throughput <<<"$rep"
}
echo "round  clm req/s  minimal req/s  cfssl req/s  (vegeta, $CLIENTS workers, ${SECS}s each, one after the other)"
R1=() R2=()
for r in $(seq "$ROUNDS"); do
	a=$(run clm) && b=$(run base) && c=$(run cfssl) || exit 1
	printf '%5d  %9.0f  %13.0f  %11.0f\n' "$r" "$a" "$b" "$c"
	R1+=("$(python3 -c "print($a/$b)")") R2+=("$(python3 -c "print($a/$c)")")
done
# every clm request was an issuance, not a replay: the server counted them
ISSUED=$(curl -s "$CLM/metrics" | awk '/^clm_credentials_issued_total\{kind="certificate"\}/ {print $2}')
python3 -c "import sys; sys.exit(0 if float('$ISSUED') >= $(cat "$W/used") + 1 else 1)" ||
	{ echo "independent.sh: clm counted $ISSUED issuances for $(cat "$W/used") requests" >&2; exit 1; }
echo "clm issued $ISSUED certificates for $(cat "$W/used") requests and the setup"
python3 - "${R1[*]}" "${R2[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
print(f"clm / minimal persisted issuer: median {statistics.median(a):.2f} (worst {min(a):.2f})")
print(f"clm / cfssl (SQLite certdb):    median {statistics.median(b):.2f} (worst {min(b):.2f})")
PY
