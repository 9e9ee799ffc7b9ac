#!/usr/bin/env bash
# The REST API over HTTPS (deploy/certs.sh's certificates): the CLI verifies
# the server (--cacert, GPUPOOL_CACERT) and may present a client
# certificate, which maps to a principal by its CN.  Refused, each with a
# clear error: plain HTTP to the HTTPS listener, a wrong CA, a client
# certificate that expired, one of an unknown CA, one whose CN is no
# principal.
. "$(dirname "$0")/../lib.sh"

pki=$T_TMP/pki other=$T_TMP/other
GPUPOOL_CERT_API_CLIENTS="operator stranger" bash "$GP_ROOT/deploy/certs.sh" "$pki" >/dev/null 2>&1
is "$?" 0 "certs.sh makes the API's certificates"
for f in api-server api-client-operator api-client-stranger; do
    [ -s "$pki/$f.crt" ] && [ "$(stat -c %a "$pki/$f.key")" = 600 ]
    ok $? "$f.crt written, its key mode 0600"
done
like "$(openssl x509 -in "$pki/api-server.crt" -noout -ext subjectAltName 2>/dev/null)" \
     'IP Address:127\.0\.0\.1' "the API's certificate is for 127.0.0.1"
bash "$GP_ROOT/deploy/certs.sh" "$other" >/dev/null 2>&1 || bail_out "a second CA"

# An expired client certificate of the pool's CA (openssl ca sets its dates).
mkdir -p "$T_TMP/ca-db" && : >"$T_TMP/ca-db/index" && echo 1000 >"$T_TMP/ca-db/serial"
cat >"$T_TMP/ca.cnf" <<EOF
[ca]
default_ca = x
[x]
database = $T_TMP/ca-db/index
serial = $T_TMP/ca-db/serial
new_certs_dir = $T_TMP/ca-db
default_md = sha256
policy = p
x509_extensions = e
[p]
commonName = supplied
[e]
extendedKeyUsage = clientAuth
EOF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T_TMP/expired.key" 2>/dev/null &&
openssl req -new -key "$T_TMP/expired.key" -subj "/CN=operator" -out "$T_TMP/expired.csr" 2>/dev/null &&
openssl ca -batch -config "$T_TMP/ca.cnf" -cert "$pki/ca.crt" -keyfile "$pki/ca.key" \
    -startdate 20200101000000Z -enddate 20200201000000Z -notext \
    -in "$T_TMP/expired.csr" -out "$T_TMP/expired.crt" >/dev/null 2>&1
ok $? "an expired client certificate for CN=operator"

TOKENS=$T_TMP/tokens
OPS=$("$GP_BUILD/gpupool" keys token --principal ops --role operator --file "$TOKENS")
echo "cert:operator ops-cert operator -   # the operator's client certificate" >>"$TOKENS"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --api-tls-cert "$pki/api-server.crt" --api-tls-key "$pki/api-server.key" \
    --api-tls-client-ca "$pki/ca.crt" --audit-log "$T_TMP/audit.log" ||
    bail_out "coordinator did not start"
API=${POOL_API[c1]/http:/https:}
HTTP=${POOL_API[c1]}

cli() { "$GP_BUILD/gpupool" --api "$API" "$@"; }

out=$(cli --cacert "$pki/ca.crt" --token "$OPS" regions 2>&1)
is "$?" 0 "the CLI over HTTPS, the server verified with --cacert"
like "$out" 'r1' "answers"
out=$(GPUPOOL_CACERT=$pki/ca.crt cli --token "$OPS" regions 2>&1)
is "$?" 0 "GPUPOOL_CACERT does the same"

out=$("$GP_BUILD/gpupool" --api "$HTTP" --token "$OPS" regions 2>&1)
is "$?" 69 "plain HTTP to the HTTPS listener: refused"
like "$out" 'is the API HTTPS\? use an https:// URL' "saying what is wrong"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPS" "$HTTP/v1/regions")
is "$code" 000 "(curl gets no HTTP answer either)"

out=$(cli --cacert "$other/ca.crt" --token "$OPS" regions 2>&1)
is "$?" 69 "a wrong CA: refused"
like "$out" "certificate.*check --cacert or GPUPOOL_CACERT" "saying the server's certificate is not trusted"

out=$(cli --cacert "$pki/ca.crt" --cert "$pki/api-client-operator.crt" --key "$pki/api-client-operator.key" \
      quota set team-a --gpus 2 2>&1)
is "$?" 0 "a client certificate alone (no token) is the principal of its CN"
like "$(tail -1 "$T_TMP/audit.log")" '"principal":"ops-cert".*"path":"/v1/quotas/team-a","status":200' \
     "the audit log names it"

out=$(cli --cacert "$pki/ca.crt" --cert "$T_TMP/expired.crt" --key "$T_TMP/expired.key" regions 2>&1)
is "$?" 77 "an expired client certificate: refused"
like "$out" 'client certificate refused: expired \(HTTP 401' "saying it expired"
out=$(cli --cacert "$pki/ca.crt" --cert "$other/api-client-operator.crt" \
      --key "$other/api-client-operator.key" regions 2>&1)
is "$?" 77 "a client certificate of an unknown CA: refused"
like "$out" "client certificate refused: not signed by the API's client CA" "saying so"
out=$(cli --cacert "$pki/ca.crt" --cert "$pki/api-client-stranger.crt" \
      --key "$pki/api-client-stranger.key" regions 2>&1)
is "$?" 77 "a valid certificate whose CN is no principal: refused"
like "$out" 'CN=stranger is no principal' "saying so"
out=$(cli --cacert "$pki/ca.crt" --cert "$T_TMP/expired.crt" --key "$T_TMP/expired.key" \
      --token "$OPS" regions 2>&1)
is "$?" 77 "a bad certificate is refused even with a good token"

is "$(curl -s --cacert "$pki/ca.crt" "$API/healthz")" ok "/healthz over HTTPS"
stop_daemon c1; is "$?" 0 "coordinator exits 0"

# A key that does not match the certificate: the coordinator says so.
"$GP_BUILD/gpupool-coordinator" --region r1 --api-tokens "$TOKENS" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --api-listen 127.0.0.1:0 --bid-listen tcp://127.0.0.1:0 --api-tls-cert "$pki/api-server.crt" \
    --api-tls-key "$pki/agent.key" >"$T_TMP/bad.log" 2>&1
is "$?" 69 "a key that does not match the certificate: exit 69"
like "$(cat "$T_TMP/bad.log")" 'TLS certificate and key' "naming the TLS files"
"$GP_BUILD/gpupool-coordinator" -n --region r1 --api-tokens "$TOKENS" --api-tls-cert "$pki/api-server.crt" \
    >"$T_TMP/bad.log" 2>&1
is "$?" 78 "a certificate without a key: a configuration error"
done_testing
