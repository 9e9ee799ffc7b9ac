#!/usr/bin/env bash
# deploy/certs.sh: the CA and certificates it makes run etcd over TLS with
# client certificates, and gpupool's own etcd client (an
# agent) connects with them; without a certificate etcd refuses.
. "$(dirname "$0")/../lib.sh"

CERTS=$GP_ROOT/deploy/certs.sh
pki=$T_TMP/pki
bash "$CERTS" "$pki" >"$T_TMP/certs.out" 2>&1
is "$?" 0 "certs.sh exits 0"
for f in ca etcd-server etcd-peer coordinator agent; do
    [ -s "$pki/$f.crt" ] && [ "$(stat -c %a "$pki/$f.key")" = 600 ]
    ok $? "$f.crt written, $f.key mode 0600"
done
openssl verify -CAfile "$pki/ca.crt" "$pki/coordinator.crt" "$pki/agent.crt" >/dev/null 2>&1
ok $? "the client certificates verify against the CA"
like "$(openssl x509 -in "$pki/etcd-server.crt" -noout -ext subjectAltName 2>/dev/null)" \
    'IP Address:127\.0\.0\.1' "the server certificate is for 127.0.0.1"
before=$(cat "$pki/ca.key")
bash "$CERTS" "$pki" >/dev/null 2>&1
is "$?" 73 "certs.sh refuses to overwrite an existing CA: 73"
is "$(cat "$pki/ca.key")" "$before" "...and leaves it as it was"

ETCD_SCHEME=https
ETCD_EXTRA_ARGS=(--cert-file "$pki/etcd-server.crt" --key-file "$pki/etcd-server.key"
                 --client-cert-auth --trusted-ca-file "$pki/ca.crt")
ETCDCTL_ARGS=(--cacert "$pki/ca.crt" --cert "$pki/coordinator.crt" --key "$pki/coordinator.key")
etcd_start 1 || bail_out "etcd did not start over TLS"
etcdctl_ put /certs-test ok >/dev/null
ok $? "etcdctl with the coordinator's certificate writes"
is "$(etcdctl_ get /certs-test --print-value-only)" ok "...and reads"
ETCDCTL_ARGS=(--cacert "$pki/ca.crt")
etcdctl_ get /certs-test >/dev/null 2>&1
isnt "$?" 0 "without a client certificate etcd refuses"

if [ -x "$GP_BUILD/gpupool-agent" ]; then
    start_daemon agent '^gpupool-agent ready ' -- "$GP_BUILD/gpupool-agent" \
        --name tls --region r1 --simulate 1 --simulate-devices 1xT4:15360 \
        --etcd-endpoints "$ETCD_ENDPOINTS" --etcd-ca "$pki/ca.crt" \
        --etcd-cert "$pki/agent.crt" --etcd-key "$pki/agent.key" \
        --state-dir "$T_TMP/agent" --shim "" --metrics-listen 127.0.0.1:0
    ok $? "an agent registers over TLS with the agent's certificate"
    stop_daemon agent
    is "$?" 0 "...and exits 0 on SIGTERM"
else
    skip 2 "gpupool-agent not built"
fi
done_testing
