#!/usr/bin/env bash
# Quotas per team: a job over its team's quota waits with a clear reason,
# other teams are not held back, and the job runs once room is freed.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 2 2xA10:24576 || bail_out "agent did not start"
gpupool_ c1 quota set team-a --gpus 1 >/dev/null; is "$?" 0 "quota set exits 0"
like "$(gpupool_ c1 quota ls)" "team-a" "quota ls shows it"
gpupool_ c1 quota set team-a --bogus 1 >/dev/null 2>&1; is "$?" 64 "a bad option is a usage error"

for i in 1 2 3; do
    echo "{\"id\": \"a$i\", \"owner\": \"team-a\", \"devices\": 1, \"mem_mib\": 2048, \"compute_percent\": 50}" |
        gpupool_ c1 submit - >/dev/null
done
echo '{"id": "b1", "owner": "team-b", "devices": 1, "mem_mib": 2048, "compute_percent": 50}' |
    gpupool_ c1 submit - >/dev/null
wait_state c1 b1 running 15; ok $? "team-b is not held back"
count() { local n=0 j; for j in a1 a2 a3; do [ "$(job_state c1 $j)" = "$1" ] && n=$((n + 1)); done; echo $n; }
two_running() { [ "$(count running)" = 2 ]; }
wait_for 10 two_running
is "$(count running)" 2 "two half-GPU jobs of team-a run (its 1 GPU)"
waiting=$(for j in a1 a2 a3; do [ "$(job_state c1 $j)" = pending ] && echo $j; done)
over_quota() { job_field c1 "$waiting" reason | grep -q 'over the quota'; }
[ -n "$waiting" ] && wait_for 10 over_quota
ok $? "a round tried the third ($waiting) and refused it for the quota"
is "$(count pending)" 1 "the third waits"
like "$(job_field c1 "$waiting" reason)" "over the quota of team team-a: GPUs 1.00 in use \+ 0.50 > 1.00" \
     "with the limit it would pass"
running=$(for j in a1 a2 a3; do [ "$(job_state c1 $j)" = running ] && echo $j; done | head -1)
gpupool_ c1 cancel "$running" >/dev/null
wait_state c1 "$waiting" running 15; ok $? "it runs once a team-a job ends"
like "$(gpupool_ c1 -o json quota ls | tr -d ' \n')" '"team":"team-a","used":\{"gpus":1.0' \
     "the team uses its whole quota"
gpupool_ c1 quota rm team-a >/dev/null; is "$?" 0 "quota rm exits 0"

# A job its team's quota holds is not handed to another region: the quota
# counts the team's allocations everywhere, it would be as held there.
gpupool_ c1 cancel --all >/dev/null
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent b1 r2 1 2xA10:24576 || bail_out "b1 did not start"
gpupool_ c1 quota set team-q --gpus 1 >/dev/null
sub() { echo "{\"id\": \"$1\", \"owner\": \"$2\", \"devices\": 1}" | gpupool_ c1 submit - >/dev/null; }
sub q1 team-q
wait_state c1 q1 running 15; ok $? "team-q's first whole GPU runs (its quota: 1)"
is "$(job_field c1 q1 region)" r1 "in r1"
for f in f1 f2 f3; do sub $f team-b; done
for f in f1 f2 f3; do wait_state c1 $f running 15 || break; done
is "$(for f in f1 f2 f3; do job_field c1 $f region; done | sort -u)" r1 "three team-b jobs fill r1's other GPUs"
sub q2 team-q
held() { job_field c1 q2 reason | grep -q 'over the quota of team team-q'; }
wait_for 10 held; ok $? "team-q's second job does not fit r1 and is held by the quota"
sub f4 team-b
wait_state c1 f4 running 15; ok $? "a team-b job that does not fit r1 runs..."
is "$(job_field c1 f4 region)" r2 "...handed off to r2"
is "$(job_field c1 q2 region)" r1 "the quota-held job stays in r1's queue, not handed off"
is "$(job_state c1 q2)" pending "...and waits"
like "$(job_field c1 q2 reason)" 'over the quota of team team-q: GPUs 1.00 in use \+ 1.00 > 1.00' "...saying which limit"
done_testing
