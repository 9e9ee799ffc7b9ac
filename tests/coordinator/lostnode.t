#!/usr/bin/env bash
# Lost nodes: kill an agent; once its lease expires, its allocations are
# released and its jobs are marked lost and requeued by their restart
# policy -- and run elsewhere; a job that may not restart stays lost.  A
# node of 600 jobs takes more than one release pass (512 a pass, each in
# the background): every one is released, and counted once.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
submit '{"id": "again", "devices": 1, "restart": "always"}'
submit '{"id": "onfail", "devices": 1, "restart": "on-failure"}'
wait_state c1 again running 15 && wait_state c1 onfail running 15
ok $? "two jobs run on a1's only node"
pool_agent a2 r1 1 2xA10:24576 || bail_out "a2 did not start"
submit '{"id": "never", "devices": 1, "restart": "never", "labels": {"gpupool.io/simulated": "true"}, "uuids": ["GPU-a2-0000-0"]}'
wait_state c1 never running 15; ok $? "a job that may not restart runs on a2"

stop_daemon a2 KILL
wait_state c1 never lost 20; ok $? "when a2's lease expires its job is lost"
like "$(job_field c1 never reason)" "vanished" "because its node vanished"
stop_daemon a1 KILL
start=$(date +%s)
wait_for 20 bash -c "[ \$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/alloc/ --prefix --keys-only | grep -c .) = 0 ]"
ok $? "a1's allocations are released"
st=$(job_state c1 again)
is "$st" pending "a job with restart=always is requeued (until a node comes)"
like "$(gpupool_ c1 -o json get again | tr -d ' \n')" '"state":"lost".*"state":"pending"' \
     "its history shows lost, then pending"
pool_agent a3 r1 1 2xA10:24576 || bail_out "a3 did not start"
wait_state c1 again running 20; ok $? "the requeued job runs on another node"
is "$(job_field c1 again node)" a3-0000 "a3's"
wait_state c1 onfail running 20; ok $? "so does the on-failure one"
is "$(job_state c1 never)" lost "the restart=never job stays lost"

pool_agent a4 r1 1 8xA100:81920 || bail_out "a4 did not start"
pool_submit c1 "$T_TMP/many" many 1 600 '"devices": 1, "mem_mib": 64, "compute_percent": 1, "restart": "never"'
is "$(wc -l <"$T_TMP/many")" 600 "600 small jobs submitted"
on_a4() { etcdctl_ get /gpupool/alloc/a4-0000/ --prefix --keys-only | grep -c .; }
a4_holds() { [ "$(on_a4)" = "$1" ]; }
wait_for 60 a4_holds 600
ok $? "all 600 placed on a4-0000 ($(on_a4))"
lost0=$(pool_metric c1 gpupool_coordinator_lost_allocations_total)
stop_daemon a4 KILL
wait_for 40 a4_holds 0
ok $? "when a4's lease expires all 600 allocations are released ($(on_a4) left)"
counted() { [ "$(( $(pool_metric c1 gpupool_coordinator_lost_allocations_total) - lost0 ))" -ge 600 ]; }
wait_for 10 counted
is "$(( $(pool_metric c1 gpupool_coordinator_lost_allocations_total) - lost0 ))" 600 \
   "gpupool_coordinator_lost_allocations_total counts each release once"
# (the coordinator's own view, from its watch: the last releases of the
# burst are the last writes, with nothing after them to push them through)
all_lost() { [ "$(gpupool_ c1 ls --state lost -q | grep -c '^many-')" = 600 ]; }
wait_for 10 all_lost
ok $? "and the coordinator shows each of the 600 jobs lost ($(gpupool_ c1 ls --state lost -q | grep -c '^many-'))"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
done_testing
