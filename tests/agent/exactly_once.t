#!/usr/bin/env bash
# A committed allocation starts its job once, with the slice's environment;
# after kill -9 and a restart of the agent the job is adopted, not started
# again; a job that ended while the agent was away is reported; an
# allocation that goes away stops its job.  The agent is driven through
# etcd alone, as a coordinator would.
. "$(dirname "$0")/../lib.sh"

PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then     # the ASan-built shim needs its runtime first
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
etcd_start 1 || bail_out "etcd did not start"
AGENT=("$GP_BUILD/gpupool-agent" --name n --region r1 --simulate 1 --simulate-devices 1xA10:24576
       --etcd-endpoints "$ETCD_ENDPOINTS" --state-dir "$T_TMP/state" --shim "$PRELOAD"
       --metrics-listen 127.0.0.1:0 --lease-ttl 3s --stop-grace 2s)
start_daemon agent 'gpupool-agent ready' 20 -- "${AGENT[@]}" || bail_out "agent did not start"

# commit JOB MEM COMPUTE COMMAND: what a coordinator's commit writes.
commit() {
    local job=$1 mem=$2 cpt=$3 cmd=$4
    etcdctl_ put "/gpupool/jobs/$job" "{\"id\":\"$job\",\"spec\":{\"id\":\"$job\",\"devices\":1,\"mem_mib\":$mem,\"compute_percent\":$cpt},\"command\":[\"sh\",\"-c\",\"$cmd\"],\"region\":\"r1\",\"state\":\"placed\",\"node\":\"n-0000\",\"attempts\":1}" >/dev/null
    etcdctl_ put "/gpupool/alloc/n-0000/$job" "{\"job\":\"$job\",\"node\":\"n-0000\",\"priority\":0,\"cpu_milli\":0,\"host_mem_mib\":0,\"devices\":[{\"uuid\":\"GPU-n-0000-0\",\"index\":0,\"mem_mib\":$mem,\"compute_percent\":$cpt,\"whole\":false}]}" >/dev/null
}
state() { etcdctl_ get "/gpupool/jobs/$1" --print-value-only | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4; }

commit j1 4096 30 "echo started >> $T_TMP/starts; env | grep -E '^(GP_SLICE|CUDA_VISIBLE|GPUPOOL_|LD_PRELOAD)' | sort > $T_TMP/env; exec sleep 60"
wait_for 10 test -s "$T_TMP/env"; ok $? "the committed allocation starts the job"
env=$(cat "$T_TMP/env")
like "$env" "GP_SLICE_MEM_LIMIT=4096" "the job gets its memory limit"
like "$env" "GP_SLICE_COMPUTE=30" "its compute cap"
like "$env" "CUDA_VISIBLE_DEVICES=GPU-n-0000-0" "its device"
like "$env" "GPUPOOL_JOB=j1" "its id"
like "$env" "LD_PRELOAD=$PRELOAD" "the shim preloaded"
region=$(sed -n 's/^GP_SLICE_REGION=//p' "$T_TMP/env")
[ -f "$region" ]; ok $? "its accounting region exists ($region)"
wait_for 10 bash -c "[ \"\$(ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/jobs/j1 --print-value-only | grep -o '\"state\":\"[a-z]*\"' | head -1)\" = '\"state\":\"running\"' ]"
ok $? "the agent reports it running"
pid=$(awk '{print $2}' "$T_TMP"/state/jobs/j1.r*/pid)

# j2 waits on a FIFO (the shell's own read: no process started per poll,
# which under ASan with the shim preloaded costs a slow start each)
mkfifo "$T_TMP/j2.fifo"
commit j2 2048 10 "read x < $T_TMP/j2.fifo; exit 3"
wait_for 10 bash -c "ls $T_TMP/state/jobs/ | grep -q '^j2\\.'"
ok $? "a second job starts"
stop_daemon agent KILL
kill -0 "$pid"; ok $? "kill -9 of the agent leaves the job running"
commit j3 1024 10 "echo j3 >> $T_TMP/starts3; exec sleep 60"   # while the agent is away
timeout 30 sh -c "echo end > $T_TMP/j2.fifo"   # j2 ends while the agent is away: its supervisor records it
wait_for 30 bash -c "grep -q 'exit 3' $T_TMP/state/jobs/j2.r*/exit"
ok $? "j2 ended while the agent was away"
start_daemon agent2 'gpupool-agent ready' 20 -- "${AGENT[@]}" || bail_out "agent did not restart"
wait_for 10 grep -q 'adopted running job=j1' "$T_TMP/agent2.log"
ok $? "the restarted agent adopts the running job"
wait_for 10 test -s "$T_TMP/starts3"; ok $? "an allocation committed while the agent was away starts"
wait_for 10 bash -c "ETCDCTL_API=3 etcdctl --endpoints $ETCD_ENDPOINTS get /gpupool/jobs/j2 --print-value-only | grep -q '\"state\":\"failed\"'"
ok $? "the job that ended while the agent was away is reported failed"
grep -q 'job ended while the agent was away job=j2' "$T_TMP/agent2.log"
ok $? "through the path for jobs that ended while the agent was away"
# j3 started and j2 reported: the agent's job passes since its restart have run.
is "$(wc -l < "$T_TMP/starts")" 1 "the adopted job was not started again"
is "$(wc -l < "$T_TMP/starts3")" 1 "and the new one started once"
like "$(etcdctl_ get /gpupool/jobs/j2 --print-value-only)" '"exit_code":3' "with its exit code"
is "$(etcdctl_ get /gpupool/alloc/n-0000/j2 --keys-only | grep -c .)" 0 "and its allocation released"

etcdctl_ del /gpupool/alloc/n-0000/j1 >/dev/null
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"; ok $? "removing the allocation stops the job"
wait_for 10 bash -c "ls $T_TMP/state/done/ | grep -q '^j1\\.'"
ok $? "its folder (logs) moves to done/"
[ ! -e "$region" ]; ok $? "its accounting region is removed"
stop_daemon agent2; is "$?" 0 "the agent exits 0 on SIGTERM"
pid3=$(awk '{print $2}' "$T_TMP"/state/jobs/j3.r*/pid)
kill -0 "$pid3"; ok $? "jobs keep running after the agent stops"
kill "$pid3"
done_testing
