#!/usr/bin/env bash
# A bounded store: etcd's history is compacted behind the pool; ended jobs
# leave the store after their retention (a job's ttl_after_finished_s
# overrides it; beyond job-retention-max the oldest go first), archived
# and still readable; freed space is given back by defragmentation; a full
# store (etcd's NOSPACE alarm) refuses
# submissions with 507 without hammering etcd, and once an operator cleared
# the alarm the pool places jobs again by itself.
. "$(dirname "$0")/../lib.sh"

ETCD_EXTRA_ARGS=(--quota-backend-bytes 16777216)   # 16 MiB
etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --job-retention 1s --compaction-retention 1s \
    --job-archive "$T_TMP/archive.jsonl" --defrag-threshold 0.5 || bail_out "c1 did not start"
pool_coordinator c2 r2 --job-retention 1h --job-retention-max 1 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r2 1 2xA10:24576 || bail_out "a2 did not start"
submit() { echo "$2" | gpupool_ "$1" submit - 2>&1; }
stored() { [ -n "$(etcdctl_ get "/gpupool/jobs/$1" --keys-only)" ]; }

# Compaction: the first revisions are forgotten once the retention passed.
compacted() { etcdctl_ get /gpupool/ --prefix --rev 2 --keys-only 2>&1 | grep -q compacted; }
wait_for 20 compacted; ok $? "etcd's history is compacted behind the pool"
like "$(grep -m1 'compacted etcd' "$T_TMP/c1.log")" "revision=[0-9]+" "by the first region's leader, which logs it"

# Retention in r1: 1 s, or a job's own ttl_after_finished_s.
submit c1 '{"id": "j1", "devices": 1, "mem_mib": 1024, "duration_s": 0.2}' >/dev/null
submit c1 '{"id": "j2", "devices": 1, "mem_mib": 1024, "duration_s": 0.2, "ttl_after_finished_s": 3600}' >/dev/null
wait_state c1 j2 succeeded 15; ok $? "two short jobs end"
gone() { ! stored j1; }
wait_for 15 gone; ok $? "the ended job leaves the store after job-retention"
stored j2; ok $? "the one with ttl_after_finished_s 3600 stays"
like "$(gpupool_ c1 -o json get j1 | tr -d ' \n')" '"state":"succeeded".*"archived":true|"archived":true.*"state":"succeeded"' \
    "gpupool get still answers for it, from the archive"
is "$(grep -c '"id":"j1"' "$T_TMP/archive.jsonl")" 1 "its final record is archived once"
is "$(pool_metric c1 gpupool_coordinator_jobs_removed_total)" 1 "the removal is counted"

# r2 keeps at most one ended job: the oldest go first.
for k in k1 k2 k3; do
    submit c2 "{\"id\": \"$k\", \"devices\": 1, \"mem_mib\": 1024, \"duration_s\": 0.1}" >/dev/null
    wait_state c2 "$k" succeeded 15 || diag "$k did not end"
done
only_k3() { ! stored k1 && ! stored k2 && stored k3; }
wait_for 15 only_k3; ok $? "beyond job-retention-max, the oldest ended jobs go first"

# Deleted data frees pages etcd's file keeps: the pool defragments.
head -c 1000000 /dev/zero | tr '\0' x >"$T_TMP/blob"
db_bytes() { etcdctl_ endpoint status -w json | grep -o '"dbSize":[0-9]*' | cut -d: -f2; }
for i in 1 2 3 4 5 6; do etcdctl_ put "/scratch/$i" <"$T_TMP/blob" >/dev/null; done
etcdctl_ del /scratch/ --prefix >/dev/null
submit c1 '{"id": "after-scratch", "devices": 1, "mem_mib": 1024, "duration_s": 0.1}' >/dev/null
big=$(db_bytes)
defragmented() { grep -q 'defragmented an etcd member' "$T_TMP/c1.log"; }
wait_for 40 defragmented; ok $? "with most of its backend unused, the pool defragments the member"
small() { [ "$(db_bytes)" -lt $((big / 2)) ]; }
wait_for 10 small; ok $? "which gives the space back ($big bytes before, $(db_bytes) after)"

# Fill the store past its quota: etcd raises NOSPACE.
etcd_fill /filler/
like "$(etcdctl_ alarm list)" NOSPACE "etcd's NOSPACE alarm is raised"
out=$(submit c1 '{"id": "f1", "devices": 1, "mem_mib": 1024}')
like "$out" "507|full|space" "a submission is refused as the store is full ($out)"
full() { [ "$(pool_metric c1 gpupool_coordinator_store_full)" = 1 ]; }
wait_for 10 full; ok $? "the coordinator reports the store full"
like "$(gpupool_ c1 regions)" "store full: etcd's NOSPACE alarm" "gpupool regions says so"
like "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
        --data-binary '{"id": "f2", "devices": 1}' "${POOL_API[c1]}/v1/jobs")" '^507$' \
     "the next one is refused at once with 507"
e0=$(pool_metric c1 gpupool_coordinator_etcd_errors_total'{op="submit",kind="nospace"}')
sleep 3   # the length of the observation: writes attempted while full
e1=$(pool_metric c1 gpupool_coordinator_etcd_errors_total'{op="submit",kind="nospace"}')
is "${e1:-0}" "${e0:-0}" "while full, submissions do not reach etcd"

# The documented recovery: free space, compact, defragment, disarm.
etcd_recover_nospace /filler/
healed=$(date +%s%N)
writable() { [ "$(pool_metric c1 gpupool_coordinator_store_full)" = 0 ]; }
wait_for 20 writable; ok $? "the coordinator sees the store writable again"
gpupool_ c1 regions | grep -q "store full"; isnt $? 0 "gpupool regions no longer says it is full"
out=$(submit c1 '{"id": "f3", "devices": 1, "mem_mib": 1024}')
is "$out" "f3 pending" "submissions are stored again"
wait_state c1 f3 running 20; ok $? "and placed: the leader's rounds resumed"
diag "recovery after disarm: $(( ($(date +%s%N) - healed) / 1000000 )) ms"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
diag "$(cat "$T_TMP/check.out")"
for d in a1 a2 c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
