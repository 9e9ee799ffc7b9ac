#!/usr/bin/env bash
# Watches: events in revision order, prev_kv, progress notifications (etcd
# sends them every second here), a compacted start revision.
. "$(dirname "$0")/../lib.sh"
ETCD_EXTRA_ARGS=(--experimental-watch-progress-notify-interval 1s)
etcd_start 1 || bail_out "etcd did not start"
run_tap_program "$GP_BUILD/tests/etcd/etcd_client_test" watch
