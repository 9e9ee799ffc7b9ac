#!/usr/bin/env bash
# User/password authentication, with tokens that expire after a second so
# that the client must get a new one.
. "$(dirname "$0")/../lib.sh"
ETCD_EXTRA_ARGS=(--auth-token-ttl 1)
etcd_start 1 || bail_out "etcd did not start"
etcdctl_ user add root:rootpw >/dev/null || bail_out "user add failed"
etcdctl_ role add root >/dev/null 2>&1
etcdctl_ user grant-role root root >/dev/null || bail_out "grant-role failed"
etcdctl_ auth enable >/dev/null || bail_out "auth enable failed"
export ETCD_USER=root ETCD_PASSWORD=rootpw
run_tap_program "$GP_BUILD/tests/etcd/etcd_client_test" auth
