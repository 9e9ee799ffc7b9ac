#!/usr/bin/env bash
# A real (not simulated) agent on fake GPUs: discovery through NVML, then
# jobs that use the CUDA driver through the shim -- suspended and resumed
# (their launches stop and restart, their memory stays), cancelled and
# preempted (their processes stop; the agent leaves the coordinator's
# record alone).
. "$(dirname "$0")/../lib.sh"

SHIMTEST=$GP_BUILD/tests/shim/shimtest
PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=2 FAKECUDA_MEM_MIB=16384 \
       FAKECUDA_MODEL=A10 FAKECUDA_NVLINK=0-1 FAKECUDA_NUMA=0,1
FAKELIB=$GP_BUILD/tests/fakecuda
now_ns() { LD_LIBRARY_PATH=$FAKELIB "$SHIMTEST" now; }
sleep_until() { local d=$(( $1 - $(now_ns) )); [ "$d" -gt 0 ] && sleep "$(awk -v d="$d" 'BEGIN { print d / 1e9 }')"; }

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 --region r1 \
    --nvml "$FAKELIB/libnvidia-ml.so.1" --shim "$PRELOAD" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/state" --metrics-listen 127.0.0.1:0 --lease-ttl 3s --heartbeat 500ms \
    --stop-grace 2s --usage-interval 500ms || bail_out "agent did not start"

rec=$(etcdctl_ get /gpupool/nodes/r1/gpu1 --print-value-only)
is "$(echo "$rec" | grep -o '"uuid"' | wc -l)" 2 "NVML discovery finds the 2 devices"
like "$rec" '"mem_mib":16384,"model":"A10"' "with their model and memory"
like "$rec" '"links":\[1\].*"links":\[0\]' "and the NVLink between them"
like "$rec" '"numa":1' "and their NUMA nodes"

# Suspend and resume a job that launches 1 ms kernels for 6 s from t0.
# The suspension takes hold when the agent sees the allocation change (its
# log says "suspended job=spin"), not when the command returns: the launch
# counts are compared over the times observed, whatever the load.
t0=$(( $(now_ns) + 3000000000 ))
cat > "$T_TMP/spin.json" <<EOJ
{"id": "spin", "devices": 1, "mem_mib": 2048, "env": {"LD_LIBRARY_PATH": "$FAKELIB"},
 "command": ["$SHIMTEST", "launchlog", "$t0", "6.0", "1000"]}
EOJ
gpupool_ c1 submit "$T_TMP/spin.json" >/dev/null
state() { gpupool_ c1 -o json get "$1" | grep -o '"state": *"[a-z]*"' | head -1 | sed 's/.*"\([a-z]*\)"$/\1/'; }
wait_for 15 bash -c "[ \"\$($GP_BUILD/gpupool --api ${POOL_API[c1]} -o json get spin | grep -o '\"state\": *\"[a-z]*\"' | head -1)\" != '' ] && $GP_BUILD/gpupool --api ${POOL_API[c1]} -o json get spin | grep -q '\"state\": *\"running\"'"
ok $? "the job runs"
sleep_until $(( t0 + 1000000000 ))
t_suspend=$(now_ns)
gpupool_ c1 suspend spin >/dev/null; is "$?" 0 "suspend exits 0"
is "$(state spin)" suspended "the job is suspended"
wait_for 15 grep -q 'suspended job=spin' "$T_TMP/agent.log"; t_held=$(now_ns)
# Resumed 2.5 s from t0, or 1.2 s after the suspension took hold when that
# is later (a loaded machine).
t_resume=$(( t0 + 2500000000 )); [ "$t_resume" -ge $(( t_held + 1200000000 )) ] || t_resume=$(( t_held + 1200000000 ))
sleep_until "$t_resume"
t_resume=$(now_ns)
gpupool_ c1 resume spin >/dev/null; is "$?" 0 "resume exits 0"
is "$(state spin)" running "the job runs again"
wait_for 15 grep -q 'resumed job=spin' "$T_TMP/agent.log"; t_free=$(now_ns)
wait_for 20 bash -c "ls $T_TMP/state/done | grep -q '^spin\\.'"
ok $? "the job ends"
ranges=$(suspend_ranges "$t0" "$t_suspend" "$t_held" "$t_resume" "$t_free" 59)
diag "buckets before, during, after: $ranges"
read -r before during after <<<"$(launch_sums "$T_TMP"/state/done/spin.r*/stdout $ranges)"
diag "launches per 100 ms: $(sed -n 's/^buckets=//p' "$T_TMP"/state/done/spin.r*/stdout)"
[ "$before" -gt 0 ]; ok $? "launches before the suspension ($before)"
is "$during" 0 "no launch while suspended"
[ "$after" -gt 0 ]; ok $? "launches after the resume ($after)"

# Cancel and preempt jobs that hold device memory.
for j in hold1 hold2; do
    echo "{\"id\": \"$j\", \"devices\": 1, \"mem_mib\": 4096, \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"},
           \"command\": [\"$SHIMTEST\", \"hold\", \"1024\", \"300\"]}" | gpupool_ c1 submit - >/dev/null
done
wait_for 15 bash -c "ls $T_TMP/state/jobs | grep -q '^hold1\\.' && ls $T_TMP/state/jobs | grep -q '^hold2\\.'"
ok $? "two jobs that hold memory start"
wait_for 10 bash -c "grep -q holding $T_TMP/state/jobs/hold1.*/stdout && grep -q holding $T_TMP/state/jobs/hold2.*/stdout"
ok $? "and hold their memory"
p1=$(awk '{print $2}' "$T_TMP"/state/jobs/hold1.r*/pid)
p2=$(awk '{print $2}' "$T_TMP"/state/jobs/hold2.r*/pid)
gpupool_ c1 cancel hold1 >/dev/null; is "$?" 0 "cancel exits 0"
wait_for 10 bash -c "! kill -0 $p1 2>/dev/null"; ok $? "the cancelled job's process stops"
# Preemption as the coordinator writes it: the record says preempted, then
# the allocation goes (the coordinator does both in one transaction).
akey=$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep '/hold2$')
etcdctl_ get /gpupool/jobs/hold2 --print-value-only | sed 's/"state":"[a-z]*"/"state":"preempted"/' |
    etcdctl_ put /gpupool/jobs/hold2 >/dev/null
etcdctl_ del "$akey" >/dev/null
wait_for 10 bash -c "! kill -0 $p2 2>/dev/null"; ok $? "the preempted job's process stops"
# The agent has finished with both ends once their folders moved to done/.
wait_for 10 bash -c "ls $T_TMP/state/done | grep -q '^hold1\.' && ls $T_TMP/state/done | grep -q '^hold2\.'"
ok $? "the agent has handled both ends"
is "$(state hold2)" preempted "the agent leaves the preempted record alone"
is "$(state hold1)" cancelled "and the cancelled one"
stop_daemon agent; is "$?" 0 "the agent exits 0"
done_testing
