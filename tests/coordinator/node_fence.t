#!/usr/bin/env bash
# The commit's per-node fence: a commit on a node is refused when any
# allocation was created under alloc/<node>/ after the revision its plan
# saw (a range compare of create revisions: no per-node counter is
# written).  The leader decides a round and stalls before committing it
# (GPUPOOL_FAULT_COMMIT_PAUSE_MS, shorter than its lease); meanwhile another
# job's allocation appears on the node behind its back, taking the whole
# GPU.  The commit is refused and nothing is over-committed; the job is
# placed once the other is cancelled.  And an allocation whose job does not
# exist is released by the leader.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
GPUPOOL_FAULT_COMMIT_PAUSE_MS=3000 pool_coordinator c1 r1 --lease-ttl 10s || bail_out "c1 did not start"
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
uuid=$(etcdctl_ get /gpupool/nodes/r1/a1-0000 --print-value-only | grep -o '"uuid": *"[^"]*"' | head -1 | cut -d'"' -f4)
like "$uuid" '.' "the node's GPU ($uuid)"

echo '{"id": "whole", "devices": 1}' | gpupool_ c1 submit - >/dev/null &   # answered after the commit
wait_for 20 grep -q 'fault injection: pausing' "$T_TMP/c1.log"
ok $? "the leader decided a round and stalls before committing it"
etcdctl_ put /gpupool/jobs/intruder \
    '{"id":"intruder","spec":{"id":"intruder","devices":1},"region":"r1","state":"running","node":"a1-0000","attempts":1}' >/dev/null
etcdctl_ put /gpupool/alloc/a1-0000/intruder \
    "{\"job\":\"intruder\",\"node\":\"a1-0000\",\"priority\":0,\"cpu_milli\":0,\"host_mem_mib\":0,\"devices\":[{\"uuid\":\"$uuid\",\"index\":0,\"mem_mib\":24576,\"compute_percent\":100,\"whole\":true}]}" >/dev/null
ok $? "meanwhile another job's allocation takes the whole GPU behind its back"
refused() { [ "$(pool_metric c1 gpupool_coordinator_commit_conflicts_total)" -ge 1 ] 2>/dev/null; }
wait_for 20 refused; ok $? "the stalled commit on that node is refused"
is "$(etcdctl_ get /gpupool/alloc/a1-0000/whole --keys-only)" "" "the job got no allocation there"
is "$(pool_metric c1 gpupool_coordinator_placements_total)" 0 "and nothing was placed (the counter exists at 0 from the start)"
is "$(pool_leader r1)" c1 "while c1 kept its leadership (the fence was the node's, not the leader's)"
pool_check >"$T_TMP/check.out"; is "$?" 0 "nothing is over-committed"
gpupool_ c1 cancel intruder >/dev/null
wait_state c1 whole running 20; ok $? "once the other job is cancelled, the job is placed and runs"

gpupool_ c1 cancel whole >/dev/null
etcdctl_ put /gpupool/alloc/a1-0000/ghost \
    "{\"job\":\"ghost\",\"node\":\"a1-0000\",\"priority\":0,\"cpu_milli\":0,\"host_mem_mib\":0,\"devices\":[{\"uuid\":\"$uuid\",\"index\":0,\"mem_mib\":1024,\"compute_percent\":10,\"whole\":false}]}" >/dev/null
wait_for 20 grep -q 'releasing an allocation whose job has no record job=ghost' "$T_TMP/c1.log"
ok $? "an allocation without a job is released by the leader"
gone() { [ -z "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only)" ]; }
wait_for 10 gone; ok $? "and nothing is left allocated"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
for d in a1 c1; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
