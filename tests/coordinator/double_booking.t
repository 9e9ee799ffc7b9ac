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
has_leader() { [ -n "$(pool_leader r1)" ]; }
wait_for 10 has_leader
leader=$(pool_leader r1)
like "$leader" '^c[12]$' "region r1 has a leader, one of the two coordinators ($leader)"
[ -n "$leader" ] || bail_out "no leader"

pool_submit c1 "$T_TMP/acked" a 1 50 &
p1=$!
pool_submit c2 "$T_TMP/acked" b 1 50 &
p2=$!
# Stop the leader in the middle of its work: once it has placed something.
placing() { [ -n "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only --limit 1)" ]; }
wait_for 20 placing || diag "no allocation before the leader was stopped"
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
# The coordinator that was never stopped answers every submission it was
# sent; only those sent to the stopped leader may time out.
mine=a; [ "$other" = c2 ] && mine=b
unacked=$( { for i in $(seq 1 50); do echo "$mine-$i"; done
             for i in $(seq 1 60); do echo "c-$i"; done
             for i in $(seq 1 20); do echo "d-$i"; done; } |
           sort | comm -23 - <(sort -u "$T_TMP/acked") | wc -l)
is "$unacked" 0 "the coordinator that kept running acknowledged all 130 of its submissions ($n_acked of 180 in all)"
full() { [ "$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get /gpupool/alloc/ --prefix --keys-only | grep -c .)" -ge 128 ]; }
wait_for 30 full
ok $? "the region fills up: 128 allocations"
# The deposed leader noticed (lease lost, or deposed by the cache): any
# commit it had in flight when it was stopped has finished by then.
noticed() { grep -Eq 'lease lost|deposed' "$T_TMP/$leader.log"; }
wait_for 20 noticed; ok $? "the resumed leader noticed it no longer leads"
pool_check >"$T_TMP/check.out"; st=$?
diag "$(cat "$T_TMP/check.out")"
is "$st" 0 "no device is over-allocated, no job placed twice"
like "$(cat "$T_TMP/check.out")" "allocations=128 " "exactly the capacity is allocated"
# Every acknowledged job is stored.  (A submission whose answer timed out
# may be stored too: the client was not told, so it is not counted here.)
missing=$(sort -u "$T_TMP/acked" | comm -23 - <(etcdctl_ get /gpupool/jobs/ --prefix --keys-only |
          sed -n 's#^/gpupool/jobs/##p' | sort) | wc -l)
is "$missing" 0 "every acknowledged job is stored ($n_acked acknowledged)"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "c1 exits 0"
stop_daemon c2; is "$?" 0 "c2 exits 0"
done_testing
