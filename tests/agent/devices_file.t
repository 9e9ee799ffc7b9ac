#!/usr/bin/env bash
# Devices declared in a devices-file (vendors without NVML): the agent
# registers them as written, they are placed on like any other, and a file
# that is not a JSON array of devices is refused at start (exit 78).
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
cat >"$T_TMP/devices.json" <<'JSON'
[{"uuid": "NPU-0", "vendor": "huawei", "model": "Ascend910B", "mem_mib": 65536, "compute_units": 100, "numa": 0},
 {"uuid": "NPU-1", "vendor": "huawei", "model": "Ascend910B", "mem_mib": 65536, "compute_units": 100, "numa": 1}]
JSON
AGENT=("$GP_BUILD/gpupool-agent" --name npu1 --region r1 --etcd-endpoints "$ETCD_ENDPOINTS"
       --state-dir "$T_TMP/state" --metrics-listen 127.0.0.1:0 --shim "" --lease-ttl 3s --heartbeat 500ms)
echo '{"uuid": "x"}' >"$T_TMP/bad.json"
out=$(timeout 20 "${AGENT[@]}" --devices-file "$T_TMP/bad.json" 2>&1); st=$?   # an agent that starts anyway is stopped: 124
is "$st" 78 "a devices-file that is not an array: exit 78"
like "$out" "bad.json" "naming the file"

start_daemon agent 'gpupool-agent ready' 20 -- "${AGENT[@]}" --devices-file "$T_TMP/devices.json" ||
    bail_out "agent did not start"
like "$(cat "$T_TMP/agent.log")" 'gpupool-agent ready .*devices=2' "the agent is ready with 2 devices"
rec=$(etcdctl_ get /gpupool/nodes/r1/npu1 --print-value-only | tr -d ' ')
like "$rec" '"uuid":"NPU-0"' "the node record lists NPU-0"
like "$rec" '"model":"Ascend910B".*"model":"Ascend910B"' "both devices with their model"
like "$rec" '"vendor":"huawei"' "and vendor"
echo '{"id": "npu-job", "devices": 1, "vendors": ["huawei"], "mem_mib": 32768, "compute_percent": 50}' |
    gpupool_ c1 submit - >/dev/null
wait_state c1 npu-job running 15; ok $? "a job asking for a huawei device runs"
like "$(gpupool_ c1 -o json get npu-job | tr -d ' \n')" '"uuid":"NPU-[01]"' "on a declared device"
stop_daemon agent; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
