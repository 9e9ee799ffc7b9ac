#!/usr/bin/env bash
# SIGTERM to the agent leaves its jobs running (it exits 0 without touching
# them); a restarted agent adopts the running one without starting it
# again, and reports the one that ended while it was away.  The agent's
# /healthz answers 200.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "agent did not start"
JOBS=$T_TMP/a1.state/jobs
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st:0:1}" != Z ]; }
starts() { cat "$T_TMP"/a1*.log | grep -c "started job=$1 "; }

mport=$(sed -n 's/.*gpupool-agent ready .*metrics=\([0-9]*\).*/\1/p' "$T_TMP/a1.log")
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/healthz")" 200 "the agent's /healthz answers 200"

submit '{"id": "long", "devices": 1, "restart": "never", "command": ["sleep", "300"]}'
submit "{\"id\": \"short\", \"devices\": 1, \"restart\": \"never\",
         \"command\": [\"sh\", \"-c\", \"while [ ! -e $T_TMP/go ]; do sleep 0.05; done; exit 3\"]}"
wait_state c1 long running 15 && wait_state c1 short running 15; ok $? "two jobs run"
lpid=$(awk '{print $2}' "$JOBS"/long.r*/pid)
spid=$(awk '{print $2}' "$JOBS"/short.r*/pid)

stop_daemon a1; is "$?" 0 "SIGTERM: the agent exits 0"
alive "$lpid" && alive "$spid"; ok $? "both jobs' processes still run"
touch "$T_TMP/go"   # the short job ends while the agent is away
wait_for 15 bash -c "ls $JOBS/short.r*/exit >/dev/null 2>&1"
ok $? "the short job ended meanwhile (its supervisor wrote its exit status)"
is "$(job_state c1 short)" running "nobody has reported it yet"

pool_agent a1b r1 1 2xA10:24576 --name a1 --state-dir "$T_TMP/a1.state" || bail_out "agent did not restart"
wait_for 15 grep -q 'adopted running job=long' "$T_TMP/a1b.log"
ok $? "the restarted agent adopts the running job"
wait_state c1 short failed 15; ok $? "and reports the one that ended while it was away"
like "$(gpupool_ c1 -o json get short | tr -d ' \n')" '"exit_code":3' "with its exit code"
alive "$lpid"; ok $? "the adopted job's process is the same one"
is "$(job_state c1 long)" running "and it is still recorded running"
is "$(starts long) $(starts short)" "1 1" "neither job was started a second time"
stop_daemon a1b; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
