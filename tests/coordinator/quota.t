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
done_testing
