#!/usr/bin/env bash
# The commit, as etcd's revisions record it: a placement writes three keys
# from submission to running -- the job record when it is stored, its
# allocation when it is committed (the record is not rewritten: on the
# region's leader both in one transaction, else the allocation later), the
# record again when the agent reports it running -- and nothing else (no
# queue key, no per-node counter); each transaction commits at most 60
# awards.  And a round closes at its deadline when an agent does not
# answer: the job is placed on another agent's node while the silent
# agent's node is still registered.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 2 8xA10:24576 || bail_out "agent did not start"
API=${POOL_API[c1]}
# kv_rev KEY FIELD [REV]: create_revision or mod_revision of KEY (at REV).
kv_rev() {
    etcdctl_ get "$1" -w json ${3:+--rev=$3} | tr -d ' \n' | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}

# --- one submission of 100 jobs
body="["
for i in $(seq 1 100); do body+="{\"id\": \"q-$i\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 5},"; done
body="${body%,}]"
curl -s -m 30 -H "Authorization: Bearer $GPUPOOL_TOKEN" --data-binary "$body" "$API/v1/jobs" >"$T_TMP/submit.out"
is "$(grep -o '"status":201' "$T_TMP/submit.out" | wc -l)" 100 "100 jobs stored in one request"
hundred() { [ "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" = 100 ]; }
wait_for 30 hundred; ok $? "all 100 are placed"

running() { [ "$(gpupool_ c1 ls -q --state running | grep -c '^q-')" = 100 ]; }
wait_for 30 running; ok $? "and all 100 run"

ac=$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep '/q-7$' | head -1)
ar=$(kv_rev "$ac" create_revision)
jm=$(kv_rev /gpupool/jobs/q-7 mod_revision "$ar")
jc=$(kv_rev /gpupool/jobs/q-7 create_revision "$ar")
[ -n "$ar" ] && [ -n "$jm" ] && [ "$jm" = "$jc" ] && [ "$jc" -le "$ar" ]
ok $? "the commit wrote q-7's allocation (revision $ar) and did not rewrite its record (stored at $jc, still at $jm)"
versions() {   # KEY-PREFIX: "key version" of every key under it
    etcdctl_ get "$1" --prefix -w json | python3 -c '
import base64, json, sys
for kv in json.load(sys.stdin).get("kvs", []):
    print(base64.b64decode(kv["key"]).decode(), kv["version"])'
}
versions /gpupool/jobs/ | grep -c '/q-[0-9]* 2$' >"$T_TMP/jv"
versions /gpupool/alloc/ | grep -c '/q-[0-9]* 1$' >"$T_TMP/av"
is "$(cat "$T_TMP/jv")" 100 "each record was written twice: stored, then running"
is "$(cat "$T_TMP/av")" 100 "each allocation once"
is "$(etcdctl_ get /gpupool/ --prefix --keys-only | grep -c -e '/queue/' -e '/nodealloc/')" 0 \
   "no other key per job or per node"

etcdctl_ get /gpupool/alloc/ --prefix -w json | tr -d ' \n' | grep -o '"key":"[^"]*","create_revision":[0-9]*' |
    sed 's/"key":"\([^"]*\)","create_revision":\([0-9]*\)/\1 \2/' | while read -r k r; do
        echo "$(echo "$k" | base64 -d | cut -d/ -f4) $r"
    done >"$T_TMP/allocs"   # node revision
is "$(wc -l < "$T_TMP/allocs")" 100 "100 allocations listed"
max=$(awk '{print $2}' "$T_TMP/allocs" | sort | uniq -c | sort -rn | awk 'NR == 1 {print $1}')
[ "$max" -le 60 ]; ok $? "no transaction committed more than 60 awards (largest: $max)"
diag "awards per transaction: $(awk '{print $2}' "$T_TMP/allocs" | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')"

# --- a silent agent: the round closes at its deadline
pool_agent a2 r1 1 1xT4:15360 --lease-ttl 60s || bail_out "a2 did not start"
pool_agent a3 r1 1 1xT4:15360 || bail_out "a3 did not start"
kill -STOP "$(daemon_pid a2)"
echo '{"id": "t4", "devices": 1, "models": ["T4"]}' | gpupool_ c1 submit - >/dev/null
wait_state c1 t4 running 30; ok $? "with one of two T4 agents silent, a T4 job is placed"
is "$(job_field c1 t4 node)" a3-0000 "on the agent that answers"
[ -n "$(etcdctl_ get /gpupool/nodes/r1/a2-0000 --keys-only)" ]
ok $? "while the silent agent's node was still registered (its lease had not expired)"
kill -CONT "$(daemon_pid a2)"
for d in a1 a2 a3 c1; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
