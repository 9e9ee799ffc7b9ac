#!/usr/bin/env bash
# Leases: grant, time-to-live, revoke, expiry, keep-alive and its loss.
. "$(dirname "$0")/../lib.sh"
etcd_start 1 || bail_out "etcd did not start"
run_tap_program "$GP_BUILD/tests/etcd/etcd_client_test" lease
