#!/usr/bin/env bash
# The etcd client's KV, txn, batch and compaction calls against a real etcd.
. "$(dirname "$0")/../lib.sh"
etcd_start 1 || bail_out "etcd did not start"
run_tap_program "$GP_BUILD/tests/etcd/etcd_client_test" kv
