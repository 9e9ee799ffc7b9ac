#!/usr/bin/env bash
# No double-booking: many concurrent submissions to two coordinators of one
# region, more jobs than the region holds, and the leader deposed mid-run
# (stopped until its lease expires, then resumed while it still thinks it
# leads).  The final etcd state never over-allocates a device.
. "$(dirname "$0")/../lib.sh"

etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r1 || bail_out "c2 did not start"
# 8 nodes x 4 GPUs; each job takes a quarter of a GPU: 128 fit.
pool_agent a1 r1 8 4xA10:24576 || bail_out "agent did not start"
wait_for 10 bash -c '[ -n "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" ]'
leader=$(pool_leader r1)
ok $? "region r1 has a leader ($leader)"

pool_submit c1 "$T_TMP/acked" a 1 50 &
p1=$!
pool_submit c2 "$T_TMP/acked" b 1 50 &
p2=$!
sleep 0.3
kill -STOP "$(daemon_pid "$leader")"
diag "stopped the leader $leader"
wait_for 15 bash -c '[ "$(ETCDCTL_API=3 etcdctl --endpoints '"$ETCD_ENDPOINTS"' get /gpupool/leader/r1 --print-value-only)" != "'"$leader"'" ]'
ok $? "a standby took over while the leader was stopped"
other=c1; [ "$leader" = c1 ] && other=c2
pool_submit "$other" "$T_TMP/acked" c 1 60 &
p3=$!
kill -CONT "$(daemon_pid "$leader")"
diag "resumed the deposed leader"
pool_submit "$other" "$T_TMP/acked" d 1 20
wait $p1 $p2 $p3

n_acked=$(sort -u "$T_TMP/acked" | wc -l)
[ "$n_acked" -ge 80 ]; ok $? "submissions were acknowledged ($n_acked of 180)"
full() { [ "$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -ge 128 ]; }
wait_for 30 full
ok $? "the region fills up: 128 allocations"
sleep 1   # let any late commit of the deposed leader land (it must fail)
pool_check >"$T_TMP/check.out"; st=$?
diag "$(cat "$T_TMP/check.out")"
is "$st" 0 "no device is over-allocated, no job placed twice"
like "$(cat "$T_TMP/check.out")" "allocations=128 jobs=$n_acked " \
     "exactly the capacity is allocated, and every acknowledged job is stored"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "c1 exits 0"
stop_daemon c2; is "$?" 0 "c2 exits 0"
done_testing
