#!/usr/bin/env bash
# A returning agent: an agent cut off for longer than its lease (here:
# stopped with SIGSTOP) loses its node; the leader releases the node's
# allocations and marks the job lost; when the agent comes back it finds
# its allocation gone and stops the job's process, then registers again.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st:0:1}" != Z ]; }
gone() { ! alive "$1"; }
node_gone() { [ -z "$(etcdctl_ get /gpupool/nodes/r1/a1-0000 --keys-only)" ]; }
node_back() { ! node_gone; }

echo '{"id": "j", "devices": 1, "restart": "never", "command": ["sleep", "300"]}' | gpupool_ c1 submit - >/dev/null
wait_state c1 j running 15; ok $? "a job runs on a1's node"
pid=$(awk '{print $2}' "$T_TMP"/a1.state/jobs/j.r*/pid)

kill -STOP "$(daemon_pid a1)"
wait_for 20 node_gone; ok $? "the stopped agent's node record goes with its lease"
wait_state c1 j lost 20; ok $? "the leader marks the job lost"
is "$(etcdctl_ get /gpupool/alloc/a1-0000/j --keys-only | grep -c .)" 0 "and releases its allocation"
alive "$pid"; ok $? "the job's process still runs meanwhile"

kill -CONT "$(daemon_pid a1)"
wait_for 20 gone "$pid"; ok $? "the returning agent stops the job whose allocation is gone"
wait_for 20 node_back; ok $? "and registers its node again"
is "$(job_state c1 j)" lost "the job stays lost (restart=never)"
stop_daemon a1; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
