#!/usr/bin/env bash
# deploy/certs.sh DIR - certificates for running etcd over TLS with client
# certificates, and the coordinators' REST API over HTTPS, made with openssl:
#
#   DIR/ca.crt, ca.key                 the pool's CA (keep ca.key offline)
#   DIR/etcd-server.crt, .key          etcd's client-facing certificate
#   DIR/etcd-peer.crt, .key            etcd's member-to-member certificate
#   DIR/coordinator.crt, .key          client certificate of the coordinators
#   DIR/agent.crt, .key                client certificate of the agents
#   DIR/api-server.crt, .key           the coordinators' HTTPS certificate
#   DIR/api-client-NAME.crt, .key      API client certificates, CN=NAME, one per
#                                      name in $GPUPOOL_CERT_API_CLIENTS
#                                      (default "operator")
#
# The API with them (coordinator.conf), and the CLI:
#   api-tls-cert = DIR/api-server.crt
#   api-tls-key = DIR/api-server.key
#   api-tls-client-ca = DIR/ca.crt       (optional: client certificates)
#   gpupool --api https://127.0.0.1:8080 --cacert DIR/ca.crt \
#           [--cert DIR/api-client-operator.crt --key DIR/api-client-operator.key]
# A client certificate is a principal by its CN: "cert:operator ops operator -"
# in the coordinators' api-tokens file (coordinator/auth.h).
#
# The server certificate carries clientAuth as well as serverAuth: with
# --client-cert-auth, etcd's JSON gateway (which gpupool uses) dials etcd's
# own gRPC server presenting the server certificate as a client.
# The server and peer certificates are for 127.0.0.1 and localhost, plus the
# names and addresses in $GPUPOOL_CERT_SANS (e.g. "DNS:etcd-0.etcd,IP:10.0.0.11").
# Validity: $GPUPOOL_CERT_DAYS days (default 825).  Keys are EC P-256, mode
# 0600.  Refuses to overwrite an existing DIR/ca.key.
#
# etcd with them (each member):
#   etcd --cert-file DIR/etcd-server.crt --key-file DIR/etcd-server.key \
#        --client-cert-auth --trusted-ca-file DIR/ca.crt \
#        --peer-cert-file DIR/etcd-peer.crt --peer-key-file DIR/etcd-peer.key \
#        --peer-client-cert-auth --peer-trusted-ca-file DIR/ca.crt \
#        --listen-client-urls https://127.0.0.1:2379 ...
# and the daemons (coordinator.conf / agent.conf):
#   etcd-endpoints = https://127.0.0.1:2379
#   etcd-ca = DIR/ca.crt
#   etcd-cert = DIR/coordinator.crt      (agent.crt for agents)
#   etcd-key = DIR/coordinator.key       (agent.key for agents)
# With etcd's --client-cert-auth and RBAC, the certificate's CN is the etcd
# user: gpupool-coordinator and gpupool-agent.
set -eu
set -o pipefail

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 64
fi
command -v openssl >/dev/null || { echo "certs.sh: openssl not found" >&2; exit 69; }
dir=$1
days=${GPUPOOL_CERT_DAYS:-825}
sans="IP:127.0.0.1,DNS:localhost${GPUPOOL_CERT_SANS:+,$GPUPOOL_CERT_SANS}"

mkdir -p "$dir"
if [ -e "$dir/ca.key" ]; then
    echo "certs.sh: $dir/ca.key exists; not overwriting (remove $dir first)" >&2
    exit 73
fi
umask 077
log=$(mktemp)
trap 'rm -f "$log" "$dir"/*.csr "$dir"/*.ext "$dir"/ca.srl' EXIT

s_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" >>"$log" 2>&1; }

# s_cert NAME CN USAGE [SANS]: a key and a certificate signed by the CA.
s_cert() {
    local name=$1 cn=$2 usage=$3 alt=${4:-}
    s_key "$dir/$name.key"
    openssl req -new -key "$dir/$name.key" -subj "/O=gpupool/CN=$cn" \
        -out "$dir/$name.csr" >>"$log" 2>&1
    {
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature, keyEncipherment"
        echo "extendedKeyUsage = $usage"
        [ -z "$alt" ] || echo "subjectAltName = $alt"
    } >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days "$days" -sha256 -extfile "$dir/$name.ext" \
        -out "$dir/$name.crt" >>"$log" 2>&1
    openssl verify -CAfile "$dir/ca.crt" "$dir/$name.crt" >>"$log" 2>&1
}

# One client certificate per name of $GPUPOOL_CERT_API_CLIENTS.
s_clients() {
    local n
    for n in ${GPUPOOL_CERT_API_CLIENTS:-operator}; do
        case $n in *[!A-Za-z0-9._@-]*|'') echo "certs.sh: bad client name \"$n\"" >>"$log"; return 1;; esac
        s_cert "api-client-$n" "$n" clientAuth || return 1
    done
}

if ! {
    s_key "$dir/ca.key" &&
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" \
        -subj "/O=gpupool/CN=gpupool CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/ca.crt" >>"$log" 2>&1 &&
    s_cert etcd-server etcd "serverAuth, clientAuth" "$sans" &&
    s_cert etcd-peer etcd-peer "serverAuth, clientAuth" "$sans" &&
    s_cert coordinator gpupool-coordinator clientAuth &&
    s_cert agent gpupool-agent clientAuth &&
    s_cert api-server gpupool-api serverAuth "$sans" &&
    s_clients
}; then
    echo "certs.sh: openssl failed:" >&2
    sed 's/^/  | /' "$log" >&2
    exit 70
fi
chmod 0644 "$dir"/*.crt
chmod 0600 "$dir"/*.key
echo "certs.sh: wrote $(cd "$dir" && echo *.crt *.key) in $dir"
