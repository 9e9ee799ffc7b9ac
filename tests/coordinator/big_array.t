#!/usr/bin/env bash
# A large submission is answered and costs no leadership: one request of
# 10,000 jobs to a region of two coordinators (their default 5 s leases)
# and 200 simulated nodes gets its answer with every job stored, every
# job is placed, and the region's leader keeps its term throughout.  (Under
# the sanitizers, whose build spends about three times the CPU per job, the
# request holds 2,500 jobs: the same paths, checked for memory errors.)
. "$(dirname "$0")/../lib.sh"

n=10000
[ "${GP_SAN:-0}" = 1 ] && n=2500

etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 --lease-ttl 5s || bail_out "c1 did not start"
pool_coordinator c2 r1 --lease-ttl 5s || bail_out "c2 did not start"
pool_agent a1 r1 200 8xA100:81920 --lease-ttl 10s || bail_out "a1 did not start"
has_leader() { [ -n "$(pool_leader r1)" ]; }
wait_for 10 has_leader || bail_out "no leader"
term() { pool_leader_term r1; }
t0=$(term); leader=$(pool_leader r1)

body="["
for i in $(seq 1 "$n"); do body+="{\"id\":\"big-$i\",\"devices\":1,\"mem_mib\":1024,\"compute_percent\":1},"; done
echo "${body%,}]" >"$T_TMP/body.json"
code=$(curl -s -m 120 -o "$T_TMP/resp" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
    --data-binary @"$T_TMP/body.json" "${POOL_API[$leader]}/v1/jobs")
is "$code" 200 "a request of $n jobs is answered"
is "$(grep -o '"status":201' "$T_TMP/resp" | wc -l)" "$n" "every job of it stored (201 each)"
n_allocs() { etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .; }
all_placed() { [ "$(n_allocs)" = "$n" ]; }
wait_for 120 all_placed; ok $? "every job is placed ($(n_allocs) allocations)"
is "$(term)" "$t0" "the leader kept its term through the submission"
grep -q 'lease lost' "$T_TMP/c1.log" "$T_TMP/c2.log" "$T_TMP/a1.log"; isnt $? 0 "no daemon lost its lease"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
for d in a1 c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
