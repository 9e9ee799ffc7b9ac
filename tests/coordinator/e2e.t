#!/usr/bin/env bash
# End to end through the CLI: submit -> placed -> running -> succeeded on a
# fractional slice; the job sees its slice; idempotent resubmission; cancel
# stops a running job; daemons exit 0 on SIGTERM.
. "$(dirname "$0")/../lib.sh"

etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 2 2xA10:24576 || bail_out "agent did not start"

# A fractional job whose command prints its slice.
cat > "$T_TMP/job.json" <<EOJ
{"id": "infer-1", "devices": 1, "mem_mib": 6144, "compute_percent": 25,
 "command": ["sh", "-c", "echo slice \$GP_SLICE_MEM_LIMIT \$GP_SLICE_COMPUTE \$CUDA_VISIBLE_DEVICES; sleep 1"]}
EOJ
out=$(gpupool_ c1 submit "$T_TMP/job.json"); st=$?
is "$st" 0 "submit exits 0"
like "$out" "infer-1" "submit names the job"

state_of() { gpupool_ c1 -o json get "$1" | grep -o '"state": *"[a-z]*"' | head -1 | sed 's/.*"\([a-z]*\)"$/\1/'; }
wait_state() { # job state timeout
    local i
    for i in $(seq 1 $(( $3 * 10 ))); do
        [ "$(state_of "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
wait_state infer-1 succeeded 20; ok $? "the job runs and succeeds"
hist=$(gpupool_ c1 -o json get infer-1 | tr -d ' \n')
like "$hist" '"state":"placed".*"state":"running".*"state":"succeeded"' \
     "its history is placed, running, succeeded"
like "$hist" '"node":"a1-000[01]"' "it ran on one of the agent's nodes"
logf=$(ls "$T_TMP"/a1.state/done/infer-1.r*/stdout 2>/dev/null | head -1)
like "$(cat "$logf" 2>/dev/null)" '^slice 6144 25 GPU-a1-000[01]-[01]$' \
     "the job saw its slice: memory limit, compute cap, its device"

# The same job again is idempotent; another job under the same id is refused.
gpupool_ c1 submit "$T_TMP/job.json" >/dev/null; is "$?" 0 "resubmitting the same job succeeds"
echo '{"id": "infer-1", "devices": 1, "mem_mib": 1024}' > "$T_TMP/other.json"
err=$(gpupool_ c1 submit "$T_TMP/other.json" 2>&1); st=$?
is "$st" 65 "a different job under the same id is refused (exit 65)"
like "$err" "different job" "and says why"

# Cancel a running job: its process is stopped.
echo '{"id": "long-1", "devices": 1, "mem_mib": 2048, "command": ["sleep", "300"]}' > "$T_TMP/long.json"
gpupool_ c1 submit "$T_TMP/long.json" >/dev/null
wait_state long-1 running 20; ok $? "a long job runs"
pid=$(awk '{print $2}' "$T_TMP"/a1.state/jobs/long-1.r*/pid 2>/dev/null)
kill -0 "$pid" 2>/dev/null; ok $? "its process exists (pid $pid)"
gpupool_ c1 cancel long-1 >/dev/null; is "$?" 0 "cancel exits 0"
is "$(state_of long-1)" cancelled "the job is cancelled"
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"; ok $? "its process was stopped"
gpupool_ c1 get no-such-job >/dev/null 2>&1; is "$?" 66 "an unknown job exits 66"

out=$(gpupool_ c1 ls); like "$out" "infer-1 +succeeded" "ls shows the job and its state"
out=$(gpupool_ c1 nodes); like "$out" "a1-0000" "nodes lists the agent's nodes"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"; diag "$(cat "$T_TMP/check.out")"

stop_daemon a1; is "$?" 0 "the agent exits 0 on SIGTERM"
stop_daemon c1; is "$?" 0 "the coordinator exits 0 on SIGTERM"
done_testing
