#!/usr/bin/env bash
# Kill one member of three: reads, writes, txns and batches go on through the others.
. "$(dirname "$0")/../lib.sh"
etcd_start 3 || bail_out "etcd did not start"
ETCD_PIDS=$(daemon_pid etcd0),$(daemon_pid etcd1),$(daemon_pid etcd2)
export ETCD_PIDS
# The program kills a member itself; keep bash's "Killed" notice for that
# job out of the output (the shell's stderr is parked meanwhile).
exec 3>&2 2>/dev/null
"$GP_BUILD/tests/etcd/etcd_client_test" failover 2>&3
rc=$?
for i in 0 1 2; do
    pid=$(daemon_pid etcd$i)
    kill -0 "$pid" 2>/dev/null || wait "$pid"
done
exec 2>&3 3>&-
exit $rc
