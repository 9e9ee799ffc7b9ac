#!/usr/bin/env bash
# The restart policy of jobs whose process ends: `never` ends for good,
# `on-failure` runs again after a failure (not after a success), `always`
# runs again whatever the exit status -- each within `max_restarts`, so a
# job runs at most 1 + max_restarts times, then keeps its final state.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 4xA10:24576 || bail_out "agent did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
attempts() { gpupool_ c1 -o json get "$1" | tr -d ' \n' | grep -o '"attempts":[0-9]*' | head -1 | cut -d: -f2; }
# runs ID: how many times the agent started the job's process.
runs() { grep -c "started job=$1 " "$T_TMP/a1.log"; }
ended() { # ID STATE: the job rests in STATE with no allocation left
    [ "$(job_state c1 "$1")" = "$2" ] &&
    [ -z "$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get "/gpupool/alloc/" --prefix --keys-only | grep "/$1\$")" ]
}

submit '{"id": "never", "devices": 1, "restart": "never", "command": ["false"]}'
submit '{"id": "onfail-bad", "devices": 1, "restart": "on-failure", "max_restarts": 2, "command": ["false"]}'
submit '{"id": "onfail-good", "devices": 1, "restart": "on-failure", "max_restarts": 2, "command": ["true"]}'
submit '{"id": "always", "devices": 1, "restart": "always", "max_restarts": 1, "command": ["true"]}'
submit '{"id": "default", "devices": 1, "restart": "on-failure", "command": ["false"]}'

wait_for 30 ended never failed; ok $? "restart=never: a failed job stays failed"
is "$(attempts never)" 1 "after one attempt"
is "$(runs never)" 1 "its process ran once"
like "$(job_field c1 never reason)" "exited with code 1" "the reason gives the exit code"

wait_for 60 ended onfail-bad failed; ok $? "restart=on-failure: a job that keeps failing ends failed"
is "$(attempts onfail-bad)" 3 "after 1 + max_restarts (2) attempts"
is "$(runs onfail-bad)" 3 "its process ran 3 times"
hist=$(gpupool_ c1 -o json get onfail-bad | tr -d ' \n')
like "$hist" 'restarting\(on-failure\).*restarting\(on-failure\)' "its history shows the two restarts"

wait_for 30 ended onfail-good succeeded; ok $? "restart=on-failure: a job that succeeds is not restarted"
is "$(attempts onfail-good)" 1 "one attempt"
is "$(runs onfail-good)" 1 "its process ran once"

wait_for 60 ended always succeeded; ok $? "restart=always: a job that succeeds runs again, then ends"
is "$(attempts always)" 2 "after 1 + max_restarts (1) attempts"
is "$(runs always)" 2 "its process ran twice"
like "$(gpupool_ c1 -o json get always | tr -d ' \n')" 'restarting\(always\)' "its history says why it ran again"

wait_for 60 ended default failed; ok $? "restart=on-failure without max_restarts ends failed"
is "$(attempts default)" 4 "after 1 + 3 attempts: max_restarts defaults to 3"

# The final states are final: a round later nothing has run again.
submit '{"id": "marker", "devices": 1, "restart": "never", "command": ["true"]}'
wait_for 30 ended marker succeeded; ok $? "a later job ran to its end (a round ran)"
is "$(runs onfail-bad) $(runs always) $(runs never) $(runs default)" "3 2 1 4" "and no ended job was started again"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
