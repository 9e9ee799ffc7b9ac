#!/usr/bin/env bash
# Priorities.  Scheduling preemption: a high-priority job that fits nowhere
# takes a lower-priority job's place; the victim is stopped, requeued with
# its history and runs again later.  Compute preemption: on a shared GPU, a
# low-priority (negative) slice's kernel launches stop while a high-priority slice is
# busy (seen in the fake driver's launch log) and the job's record says so.
. "$(dirname "$0")/../lib.sh"

SHIMTEST=$GP_BUILD/tests/shim/shimtest
PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
FAKELIB=$GP_BUILD/tests/fakecuda
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=1 FAKECUDA_MEM_MIB=24576 FAKECUDA_MODEL=A10
now_ns() { LD_LIBRARY_PATH=$FAKELIB "$SHIMTEST" now; }

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 --region r1 \
    --nvml "$FAKELIB/libnvidia-ml.so.1" --shim "$PRELOAD" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/state" --metrics-listen 127.0.0.1:0 --lease-ttl 3s --heartbeat 500ms \
    --stop-grace 2s --usage-interval 200ms || bail_out "agent did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }

# --- scheduling preemption
submit '{"id": "low", "devices": 1, "priority": 0, "restart": "never", "command": ["sleep", "300"]}'
wait_state c1 low running 15; ok $? "a low-priority job holds the only GPU"
pid=$(awk '{print $2}' "$T_TMP"/state/jobs/low.r*/pid)
submit '{"id": "high", "devices": 1, "priority": 100, "command": ["sleep", "300"]}'
wait_state c1 high running 15; ok $? "a high-priority job that fits nowhere runs"
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"; ok $? "the victim's process was stopped"
is "$(job_state c1 low)" pending "the victim is requeued"
hist=$(gpupool_ c1 -o json get low | tr -d ' \n')
like "$hist" '"state":"running".*"state":"preempted".*"reason":"preemptedbyhigh\(priority100\)".*"state":"pending"' \
     "with its history: running, preempted by high, pending"
like "$(gpupool_ c1 -o json get high | tr -d '\n')" '"reason": *"attempt 1, preempting 1 job"' \
     "the high-priority job's history says it preempted"
gpupool_ c1 cancel high >/dev/null
wait_state c1 low running 15; r=$?
ok "$r" "the victim runs again when the GPU frees"
[ "$r" = 0 ] || diag "$(gpupool_ c1 get low; grep -E 'job=(low|high)' "$T_TMP/c1.log" "$T_TMP/agent.log")" >&2   # (stderr: prove shows it)
gpupool_ c1 cancel low >/dev/null

# --- compute preemption on a shared GPU
wait_for 10 bash -c "[ \$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/alloc/ --prefix --keys-only | grep -c .) = 0 ]"
t0=$(( $(now_ns) + 3000000000 ))
submit "{\"id\": \"batch\", \"devices\": 1, \"mem_mib\": 2048, \"compute_percent\": 40, \"priority\": -100,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"launchlog\", \"$t0\", \"4.0\", \"1000\"]}"
submit "{\"id\": \"online\", \"devices\": 1, \"mem_mib\": 2048, \"compute_percent\": 40, \"priority\": 100,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"burst\", \"$t0\", \"1000\", \"2000\", \"1000\"]}"
submit "{\"id\": \"ordinary\", \"devices\": 1, \"mem_mib\": 2048, \"compute_percent\": 20,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"launchlog\", \"$t0\", \"4.0\", \"1000\"]}"
wait_state c1 batch running 15 && wait_state c1 online running 15
ok $? "a low- and a high-priority slice share the GPU"
wait_state c1 batch suspended 15; ok $? "while the high-priority slice is busy, the low one is recorded suspended"
like "$(job_field c1 batch reason)" "compute preempted" "with the reason"
wait_for 15 bash -c "ls $T_TMP/state/done | grep -q '^batch\\.'"
ok $? "the low-priority job finishes"
read -r before during after <<<"$(launch_sums "$T_TMP"/state/done/batch.r*/stdout 1-8 12-19 28-38)"
diag "launches per 100 ms: $(sed -n 's/^buckets=//p' "$T_TMP"/state/done/batch.r*/stdout)"
[ "$before" -gt 0 ]; ok $? "it launched before the high-priority burst ($before)"
is "$during" 0 "no launch during the burst"
[ "$after" -gt 0 ]; ok $? "launches resumed after it ($after)"
like "$(gpupool_ c1 -o json get batch | tr -d ' \n')" '"state":"suspended".*"state":"running"' \
     "its history shows suspended, then running again"
wait_for 15 bash -c "ls $T_TMP/state/done | grep -q '^ordinary\\.'"
ok $? "the job of the default priority 0 finishes"
read -r before during after <<<"$(launch_sums "$T_TMP"/state/done/ordinary.r*/stdout 1-8 12-19 28-38)"
diag "priority 0, launches per 100 ms: $(sed -n 's/^buckets=//p' "$T_TMP"/state/done/ordinary.r*/stdout)"
[ "$during" -gt 0 ]; ok $? "priority 0 runs as a normal slice: it launches during the burst ($during)"
unlike_susp() { ! gpupool_ c1 -o json get ordinary | tr -d ' \n' | grep -q '"state":"suspended"'; }
unlike_susp; ok $? "...and is never recorded suspended"
stop_daemon agent; is "$?" 0 "the agent exits 0"
done_testing
