#!/usr/bin/env bash
# TLS with client certificates: a CA, a server and a client certificate made
# here with openssl; the client connects with its certificate and is refused
# without it.
. "$(dirname "$0")/../lib.sh"
pki=$T_TMP/pki
mkdir -p "$pki"
(
  cd "$pki" || exit 1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=gpupool test CA" \
      -keyout ca.key -out ca.crt
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > ext.cnf
  for who in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout $who.key -out $who.csr
    openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out $who.crt
  done
) >"$T_TMP/openssl.log" 2>&1 || { diag_file "$T_TMP/openssl.log"; bail_out "openssl failed"; }
ETCD_SCHEME=https
ETCD_EXTRA_ARGS=(--cert-file "$pki/server.crt" --key-file "$pki/server.key"
                 --client-cert-auth --trusted-ca-file "$pki/ca.crt")
ETCDCTL_ARGS=(--cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
etcd_start 1 || bail_out "etcd did not start"
export ETCD_CA=$pki/ca.crt ETCD_CERT=$pki/client.crt ETCD_KEY=$pki/client.key
run_tap_program "$GP_BUILD/tests/etcd/etcd_client_test" tls
