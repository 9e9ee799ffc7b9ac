#!/usr/bin/env bash
# A long batch costs no leadership: a leader held in one batch for three
# times its lease's TTL (fault injection: GPUPOOL_FAULT_BUSY_MS, in a bid
# round, as ranking a huge queue on a slow machine would) keeps its lease,
# because the etcd client refreshes it from a thread of its own.  The standby
# never takes over, the leader's term does not change, and the job the
# round was opened for is placed once the batch is over.  (fence.t shows
# the opposite: a stopped process, keep-alives included, loses it.)
. "$(dirname "$0")/../lib.sh"

etcd_start 3 || bail_out "etcd did not start"
GPUPOOL_FAULT_BUSY_MS=6000 pool_coordinator c1 r1 --lease-ttl 2s || bail_out "c1 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" ]'
pool_coordinator c2 r1 --lease-ttl 2s || bail_out "c2 did not start"
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
is "$(pool_leader r1)" c1 "c1 leads"
term=$(pool_leader_term r1)

echo '{"id": "held", "devices": 1, "mem_mib": 1024}' | gpupool_ c2 submit - >/dev/null
wait_for 20 grep -q 'fault injection: busy 6000 ms' "$T_TMP/c1.log"
ok $? "c1 opened a round and is held in a 6 s batch (lease TTL 2 s)"
wait_for 30 grep -q 'fault injection: busy batch over' "$T_TMP/c1.log"
ok $? "the batch ends"
wait_state c2 held running 20; ok $? "and the job it held is placed and runs"
is "$(job_field c2 held node)" a1-0000 "on the agent's node"
is "$(pool_leader r1)" c1 "c1 still leads"
is "$(pool_leader_term r1)" "$term" "in the same term (the leader key was never lost)"
grep -q 'lease lost' "$T_TMP/c1.log"; is "$?" 1 "c1 never logged a lost lease"
grep -q 'elected leader' "$T_TMP/c2.log"; is "$?" 1 "the standby was never elected"
is "$(pool_metric c1 gpupool_coordinator_placements_total)" 1 "the held leader placed the job itself"

pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
for d in a1 c2 c1; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
