#!/usr/bin/env bash
# A preemption victim is requeued with its priority, attempts and history:
# its record keeps them, and its priority still counts -- when the GPU
# frees, the victim (priority 50) is placed before a job of priority 10
# that had been waiting longer -- and its next placement is attempt 2.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
# num ID FIELD: a numeric field of the job record (the first occurrence).
num() { gpupool_ c1 -o json get "$1" | tr -d ' \n' | grep -o "\"$2\":-\{0,1\}[0-9]*" | head -1 | cut -d: -f2; }

submit '{"id": "victim", "devices": 1, "priority": 50, "restart": "never"}'
wait_state c1 victim running 15; ok $? "a priority-50 job holds the only GPU"
is "$(num victim attempts)" 1 "on its first attempt"
submit '{"id": "waiter", "devices": 1, "priority": 10}'
has_reason() { [ -n "$(job_field c1 "$1" reason)" ]; }
wait_for 10 has_reason waiter
is "$(job_state c1 waiter)" pending "a priority-10 job waits (it may not preempt a higher priority)"

submit '{"id": "high", "devices": 1, "priority": 100}'
wait_state c1 high running 15; ok $? "a priority-100 job preempts"
is "$(job_state c1 victim)" pending "the victim is requeued"
is "$(num victim priority)" 50 "with its priority"
is "$(num victim attempts)" 1 "and its attempts"
like "$(gpupool_ c1 -o json get victim | tr -d ' \n')" '"state":"running".*"state":"preempted".*"state":"pending"' \
     "and its history"
[ -z "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep /victim)" ] && is "$(job_field c1 victim region)" r1 \
    "without an allocation, in its region: back in its region's queue"

gpupool_ c1 cancel high >/dev/null
wait_state c1 victim running 15; ok $? "when the GPU frees, the victim runs again"
is "$(job_state c1 waiter)" pending "before the lower-priority job that waited longer"
is "$(num victim attempts)" 2 "as its attempt 2"
is "$(num victim priority)" 50 "still with priority 50"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
