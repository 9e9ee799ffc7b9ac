#!/usr/bin/env bash
# The agent's bids for hand-made states (a full GPU, NVLink pairs, model and
# UUID filters) and its handling of malformed messages, against a probe
# that plays the coordinator (bidprobe.c).
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
alloc_port mport
start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name n --region r1 \
    --simulate 1 --simulate-devices 4xA100:81920 --simulate-nvlink pairs \
    --etcd-endpoints "$ETCD_ENDPOINTS" --state-dir "$T_TMP/state" --shim "" \
    --metrics-listen "127.0.0.1:$mport" --heartbeat 200ms || bail_out "agent did not start"
"$GP_BUILD/tests/agent/bidprobe" "$ETCD_ENDPOINTS" r1 n-0000 "http://127.0.0.1:$mport/metrics"
st=$?
kill -0 "$(daemon_pid agent)" || { echo "not ok - the agent died"; exit 1; }
stop_daemon agent >/dev/null || { echo "not ok - the agent did not exit 0"; exit 1; }
exit $st
