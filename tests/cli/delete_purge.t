#!/usr/bin/env bash
# gpupool delete ID... removes ended jobs' records; gpupool purge deletes
# every ended job that matches and ended long enough ago; a live job is
# refused (cancel it first).  With job-archive the records go there.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --job-archive "$T_TMP/archive.jsonl" || bail_out "coordinator did not start"
pool_agent a1 r1 1 4xA10:24576 || bail_out "agent did not start"
run() { out=$("$@" 2>"$T_TMP/err"); rc=$?; err=$(cat "$T_TMP/err"); }
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
submit '{"id": "s1", "devices": 1, "command": ["true"]}'
submit '{"id": "s2", "devices": 1, "command": ["true"]}'
submit '{"id": "f1", "devices": 1, "command": ["false"]}'
submit '{"id": "r1", "devices": 1}'
wait_state c1 s1 succeeded 20 && wait_state c1 s2 succeeded 20 && wait_state c1 f1 failed 20 &&
    wait_state c1 r1 running 20
ok $? "two jobs succeeded, one failed, one runs"

run gpupool_ c1 delete r1
is "$rc" 65 "deleting a running job: refused (65)"
like "$err" 'job r1 is running: only an ended job can be deleted \(cancel it first\)' "...saying why"
run gpupool_ c1 delete s1
is "$rc" 0 "delete exits 0"
is "$out" "s1 deleted" "and says so"
like "$(gpupool_ c1 ls -q | sort | tr '\n' ' ')" '^f1 r1 s2 $' "ls no longer shows it"
is "$(etcdctl_ get /gpupool/jobs/s1 --print-value-only | grep -c .)" 0 "its record is gone from etcd"
like "$(cat "$T_TMP/archive.jsonl")" '"id":"s1"' "and went to the job archive"
like "$(gpupool_ c1 -o json get s1 | tr -d ' \n')" '"archived":true' "get finds it there, marked archived"
run gpupool_ c1 delete nosuch
is "$rc" 66 "an unknown job: 66"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
      "${POOL_API[c1]}/v1/jobs/s2/record")" 405 "GET on a record's delete endpoint: 405"

run gpupool_ c1 purge --state running
is "$rc" 64 "purge of a live state: usage error"
run gpupool_ c1 purge --state succeeded --older-than 1h
is "$rc" 0 "purge with nothing old enough exits 0"
like "$err" 'no job to purge' "...and says there was none"
like "$(gpupool_ c1 ls -q | tr '\n' ' ')" 's2' "the job that ended just now stays"
ended_ms=$(gpupool_ c1 -o json get s2 | tr -d ' \n' | grep -o '"updated_ms":[0-9]*' | head -1 | cut -d: -f2)
old_enough() { [ $(( $(date +%s%3N) - ended_ms )) -gt 1500 ]; }
wait_for 10 old_enough
run gpupool_ c1 purge --state succeeded --older-than 1s
is "$out" "s2 deleted" "purge --state succeeded --older-than 1s deletes the succeeded job ended before"
like "$(gpupool_ c1 ls -q | sort | tr '\n' ' ')" '^f1 r1 $' "the failed and the running job stay"
run gpupool_ c1 purge
is "$out" "f1 deleted" "purge without a state deletes every ended job: the failed one"
is "$(gpupool_ c1 ls -q | tr '\n' ' ')" "r1 " "the running job is never purged"
gpupool_ c1 cancel r1 >/dev/null
run gpupool_ c1 purge --owner nobody-team
like "$err" 'no job to purge' "purge honours --owner"
run gpupool_ c1 purge --state cancelled
is "$out" "r1 deleted" "once cancelled it can be purged"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
