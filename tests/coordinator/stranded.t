#!/usr/bin/env bash
# An accepted job is never stranded: a hand-off that etcd refuses leaves the
# job in its region's queue, and it is handed off again; a pending job that
# the leader's queue lost (here: by the fault hook GPUPOOL_FAULT_QUEUE_DROP,
# standing for a bug in the queue's bookkeeping) is put back by the
# leader's periodic reconciliation of its queue with its rule.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
GPUPOOL_FAULT_HANDOFF_PAUSE_MS=6000 GPUPOOL_FAULT_QUEUE_DROP=late pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a1 r1 1 1xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r2 1 2xA10:24576 || bail_out "a2 did not start"

submit() { echo "$2" | gpupool_ "$1" submit - >/dev/null; }
submit c1 '{"id": "fill", "devices": 1}'
wait_state c1 fill running 15; ok $? "a whole-GPU job fills region r1"

# The hand-off of "spill" to r2 stalls before its transaction; meanwhile its
# record changes (rewritten as it is), so etcd refuses the hand-off.
# (In the background: the leader's loop may stall before it answers.)
submit c1 '{"id": "spill", "devices": 1}' &
spill_pid=$!
pausing() { grep -q 'pausing .* before a hand-off' "$T_TMP/c1.log"; }
wait_for 15 pausing; ok $? "r1's leader decided a hand-off and stalls before committing it"
etcdctl_ get /gpupool/jobs/spill --print-value-only | etcdctl_ put /gpupool/jobs/spill >/dev/null
refused() { grep -q 'hand-off not committed.* job=spill' "$T_TMP/c1.log"; }
wait_for 15 refused; ok $? "etcd refused the hand-off, and the leader says so"
wait "$spill_pid"
wait_state c1 spill running 20; ok $? "the job is not stranded: handed off again, it runs"
is "$(job_field c1 spill region)" r2 "in r2"

# A job the queue loses: nothing but reconciliation would ever queue it.
submit c1 '{"id": "late", "devices": 1, "mem_mib": 1024}'
lost() { grep -q 'fault injection: the queue loses job=late' "$T_TMP/c1.log"; }
wait_for 15 lost; ok $? "the leader's queue lost the job"
# stored (pending until the repair, which may come at once: a refused
# hand-off asks for a reconciliation within a second)
st=$(job_state c1 late)
case "$st" in pending|placed|running) ok 0 "it is stored ($st)" ;; *) ok 1 "it is stored ($st)" ;; esac
repaired() { grep -q 'queue repaired.* job=late' "$T_TMP/c1.log"; }
wait_for 30 repaired; ok $? "the leader's reconciliation finds the job missing from its queue"
wait_state c1 late running 20; ok $? "and the job runs"
is "$(pool_metric c1 gpupool_coordinator_queue_repairs_total)" 1 "the repair is counted"

pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
for d in a1 a2 c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
