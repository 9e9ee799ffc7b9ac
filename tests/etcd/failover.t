#!/usr/bin/env bash
# Kill one member of three: reads, writes, txns and batches go on through the others.
. "$(dirname "$0")/../lib.sh"
etcd_start 3 || bail_out "etcd did not start"
ETCD_PIDS=$(daemon_pid etcd0),$(daemon_pid etcd1),$(daemon_pid etcd2)
export ETCD_PIDS
"$GP_BUILD/tests/etcd/etcd_client_test" failover
rc=$?
# reap the member the program killed, quietly
for i in 0 1 2; do
    pid=$(daemon_pid etcd$i)
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; } 2>/dev/null
done
exit $rc
