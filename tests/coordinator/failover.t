#!/usr/bin/env bash
# Leader kill -9 under load: the standby takes over within the lease TTL
# and every acknowledged job is placed exactly once.
. "$(dirname "$0")/../lib.sh"

etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" ]'
pool_coordinator c2 r1 || bail_out "c2 did not start"
pool_agent a1 r1 16 8xA100:81920 || bail_out "agent did not start"
is "$(pool_leader r1)" c1 "c1 leads"

spec='"devices": 1, "mem_mib": 8192, "compute_percent": 10'
pool_submit c2 "$T_TMP/acked" x 1 100 "$spec"
kill -KILL "$(daemon_pid c1)"
t0=$(date +%s%N)
diag "killed the leader c1 with SIGKILL"
pool_submit c2 "$T_TMP/acked" y 1 200 "$spec"
wait_for 15 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" = c2 ]'
ok $? "c2 takes over"
diag "takeover after $(( ($(date +%s%N) - t0) / 1000000 )) ms (lease 2 s)"
pool_submit c2 "$T_TMP/acked" z 1 100 "$spec"

sort -u "$T_TMP/acked" > "$T_TMP/ids"
is "$(wc -l < "$T_TMP/ids")" 400 "all 400 submissions were acknowledged"
placed() { [ "$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -ge 400 ]; }
wait_for 30 placed
ok $? "400 allocations appear"
pool_check --placed "$T_TMP/ids" >"$T_TMP/check.out"; st=$?
diag "$(cat "$T_TMP/check.out")"
is "$st" 0 "every acknowledged job is placed exactly once"
like "$(cat "$T_TMP/check.out")" "allocations=400 jobs=400 expected_placed=400 violations=0" \
     "400 jobs, 400 allocations"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c2; is "$?" 0 "c2 exits 0"
done_testing
