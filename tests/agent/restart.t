#!/usr/bin/env bash
# The restart policy of jobs whose process ends: `never` ends for good,
# `on-failure` runs again after a failure (not after a success), within
# `max_restarts`, so it runs at most 1 + max_restarts times, then keeps its
# final state; `always` runs again whatever the exit status, without limit.
# Restarts back off as Kubernetes' CrashLoopBackOff: restart-backoff,
# doubling to restart-backoff-max, reset after a run of
# restart-backoff-reset; the reason says which restart and when.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
pool_agent a1 r1 1 4xA10:24576 --restart-backoff 400ms --restart-backoff-max 1600ms \
    --restart-backoff-reset 1h || bail_out "agent did not start"
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
submit '{"id": "loop", "devices": 1, "restart": "always", "command": ["false"]}'
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

field() { gpupool_ c1 -o json get "$1" | tr -d ' \n' | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
restarted() { [ "$(attempts always)" -ge 4 ]; }
wait_for 60 restarted; ok $? "restart=always: a job that succeeds runs again, past max_restarts (1)"
like "$(gpupool_ c1 -o json get always | tr -d ' \n')" 'restarting\(always\)' "its history says why it ran again"

# the backoff: 400 ms, 800, 1600, then 1600 (the max)
looped() { [ "$(field loop restarts)" -ge 4 ]; }
wait_for 60 looped; ok $? "a job that keeps failing keeps restarting (always)"
is "$(gpupool_ c1 -o json get loop | tr -d ' \n' | sed 's/.*"history"//' | grep -o 'restarting(always):restart[0-9]*' | head -4 | tr '\n' ' ')" \
   "restarting(always):restart1 restarting(always):restart2 restarting(always):restart3 restarting(always):restart4 " \
   "each restart's reason counts the restarts"
d=$(field loop restart_delay_ms)
[ "$(field loop restarts)" -ge 3 ] && is "$d" 1600 "the backoff doubled up to restart-backoff-max (1600 ms)"
like "$(gpupool_ c1 get loop | grep '^Restart:')" '^Restart: +always, attempts [0-9]+, restarts [0-9]+ \(backoff 2s, not before 20[0-9-]+T[0-9:]+Z' \
     "gpupool get shows the restarts and the backoff"
rec=$(gpupool_ c1 -o json get loop | tr -d ' \n')
grep -q '"state":"pending"' <<<"$rec" && like "$rec" '"reason":"exitedwithcode1;restarting\(always\):restart[0-9]+in2s,at20[0-9-]+T[0-9:]+Z"' \
    "while it waits, its reason says which restart and when" || ok 1 "(it was running when read)"
# when the history shows it: each restart placed no sooner than its restart_at_ms
gaps=$(gpupool_ c1 -o json get loop | python3 -c '
import json, sys
r = json.load(sys.stdin)
h = r["history"]
# each wait: from a pending entry of a restart to the next placed entry
out = []
for i, e in enumerate(h):
    if e["state"] == "pending" and "restart" in e["reason"]:
        nxt = next((x for x in h[i + 1:] if x["state"] in ("placed", "running")), None)
        if nxt:
            out.append(str(nxt["at_ms"] - e["at_ms"]))
print(" ".join(out[:3]))')
read -r g1 g2 g3 <<<"$gaps"
ok "$([ -n "$g3" ] && [ "$g1" -ge 400 ] && [ "$g2" -ge 800 ] && [ "$g3" -ge 1600 ]; echo $?)" \
   "it is placed again only after each backoff: 400, 800, 1600 ms ($gaps)"

# a run of restart-backoff-reset or longer starts the backoff again (a2: reset after 1 s)
pool_agent a2 r1 1 1xT4:15360 --restart-backoff 400ms --restart-backoff-max 1600ms \
    --restart-backoff-reset 1s || bail_out "a2 did not start"
submit '{"id": "long", "devices": 1, "models": ["T4"], "restart": "always", "command": ["sh", "-c", "sleep 1.5; exit 1"]}'
long3() { [ "$(field long restarts)" -ge 3 ]; }
wait_for 60 long3; ok $? "a job that runs 1.5 s and fails keeps restarting"
is "$(field long restart_delay_ms)" 400 "each run longer than restart-backoff-reset starts the backoff again (400 ms)"
gpupool_ c1 cancel long >/dev/null

wait_for 60 ended default failed; ok $? "restart=on-failure without max_restarts ends failed"
is "$(attempts default)" 4 "after 1 + 3 attempts: max_restarts defaults to 3"

# The final states are final: a round later nothing has run again.
submit '{"id": "marker", "devices": 1, "restart": "never", "command": ["true"]}'
wait_for 30 ended marker succeeded; ok $? "a later job ran to its end (a round ran)"
is "$(runs onfail-bad) $(runs never) $(runs default)" "3 1 4" "and no ended job was started again"
gpupool_ c1 cancel always loop >/dev/null
wait_for 30 ended loop cancelled && wait_for 30 ended always cancelled
ok $? "a job restarting always ends when cancelled"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"; diag "$(cat "$T_TMP/check.out")"
stop_daemon a2; is "$?" 0 "a2 exits 0"
stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
