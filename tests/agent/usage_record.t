#!/usr/bin/env bash
# The usage record follows the node: it lists a running job's slice (and
# only the slices of its own node, an agent speaking for two), drops it once
# the job has ended (also on devices with no live telemetry), and comes back
# after the agent's lease was lost and its records with it.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name n --region r1 \
    --simulate 2 --simulate-devices 1xA10:24576 --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/state" --shim "" --metrics-listen 127.0.0.1:0 --lease-ttl 3s \
    --usage-interval 200ms || bail_out "agent did not start"
usage() { etcdctl_ get /gpupool/usage/r1/n-0000 --print-value-only; }
usage1() { etcdctl_ get /gpupool/usage/r1/n-0001 --print-value-only; }
job_listed() { usage | grep -q '"job":"u1"'; }

etcdctl_ put /gpupool/jobs/u1 '{"id":"u1","spec":{"id":"u1","devices":1,"mem_mib":2048,"compute_percent":20},"command":["sh","-c","while [ ! -e '"$T_TMP"'/end ]; do sleep 0.05; done"],"region":"r1","state":"placed","node":"n-0000","attempts":1}' >/dev/null
etcdctl_ put /gpupool/alloc/n-0000/u1 '{"job":"u1","node":"n-0000","priority":0,"cpu_milli":0,"host_mem_mib":0,"devices":[{"uuid":"GPU-n-0000-0","index":0,"mem_mib":2048,"compute_percent":20,"whole":false}]}' >/dev/null
wait_for 15 job_listed; ok $? "the usage record lists the running job's slice"

# A second job on the other node: each record lists its own node's slice.
etcdctl_ put /gpupool/jobs/u2 '{"id":"u2","spec":{"id":"u2","devices":1,"mem_mib":1024,"compute_percent":10},"command":["sh","-c","while [ ! -e '"$T_TMP"'/end ]; do sleep 0.05; done"],"region":"r1","state":"placed","node":"n-0001","attempts":1}' >/dev/null
etcdctl_ put /gpupool/alloc/n-0001/u2 '{"job":"u2","node":"n-0001","priority":0,"cpu_milli":0,"host_mem_mib":0,"devices":[{"uuid":"GPU-n-0001-0","index":0,"mem_mib":1024,"compute_percent":10,"whole":false}]}' >/dev/null
u2_listed() { usage1 | grep -q '"job":"u2"'; }
wait_for 15 u2_listed; ok $? "the other node's record lists the other job's slice"
usage | grep -q '"job":"u2"'; isnt $? 0 "the first node's record does not list it ($(usage | head -c 160))"
usage1 | grep -q '"job":"u1"'; isnt $? 0 "the other node's record does not list the first job"

touch "$T_TMP/end"
ended() { etcdctl_ get /gpupool/jobs/u1 --print-value-only | grep -q '"state":"succeeded"'; }
wait_for 15 ended; ok $? "the job ended"
not_listed() { usage | grep -q '"slices":\[\]'; }
wait_for 15 not_listed; ok $? "its slice leaves the usage record ($(usage | head -c 120))"

# The lease is revoked under the agent: node and usage records go with it.
lease=$(etcdctl_ get /gpupool/nodes/r1/n-0000 -w json | grep -o '"lease":[0-9]*' | cut -d: -f2)
[ -n "$lease" ] && etcdctl_ lease revoke "$(printf '%x' "$lease")" >/dev/null
ok $? "the agent's lease is revoked"
relisted() { grep -q 'lease lost' "$T_TMP/agent.log" && [ -n "$(usage)" ]; }
wait_for 15 relisted; ok $? "after re-registering, the usage record is there again"
stop_daemon agent; is "$?" 0 "the agent exits 0"
done_testing
