#!/usr/bin/env bash
# CURVE: agents and coordinators authenticate each other.  An agent whose
# key is not authorized cannot bid (its handshake is refused and counted);
# an agent does not talk to a coordinator whose key it does not trust; with
# the right keys, jobs are placed.
. "$(dirname "$0")/../lib.sh"

K=$T_TMP/keys
mkdir -p "$K"
for k in coord good rogue; do "$GP_BUILD/gpupool" keys curve "$K/$k" >/dev/null || bail_out "keys"; done
"$GP_BUILD/gpupool" keys curve "$K/other-coord" >/dev/null
cp "$K/good.pub" "$K/agents"           # the coordinator admits only "good"
cp "$K/coord.pub" "$K/coordinators"    # agents trust only "coord"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --curve-key "$K/coord.key" --agent-keys "$K/agents" ||
    bail_out "coordinator did not start"

pool_agent rogue r1 1 1xA10:24576 --curve-key "$K/rogue.key" --coordinator-keys "$K/coordinators" ||
    bail_out "rogue agent did not start"
echo '{"id": "j1", "devices": 1, "mem_mib": 1024}' | gpupool_ c1 submit - >/dev/null
wait_for 10 grep -q 'unknown CURVE key' "$T_TMP/c1.log"
ok $? "the coordinator refused its handshake: $(grep -o 'connection refused: unknown CURVE key' "$T_TMP/c1.log" | head -1)"
refused() { [ "$(pool_metric c1 gpupool_coordinator_curve_refusals_total)" -ge 1 ]; }
wait_for 10 refused
ok $? "and counted it: gpupool_coordinator_curve_refusals_total $(pool_metric c1 gpupool_coordinator_curve_refusals_total)"
no_agent() { job_field c1 j1 reason | grep -q 'no agent answers'; }
wait_for 10 no_agent; ok $? "a round found no agent to ask for the rogue agent's node"
like "$(gpupool_ c1 -o json get j1)" '"state": *"pending"' "an unauthorized agent's node gets no job"
stop_daemon rogue >/dev/null

pool_agent good r1 1 1xA10:24576 --curve-key "$K/good.key" --coordinator-keys "$K/coordinators" ||
    bail_out "good agent did not start"
wait_for 15 bash -c "$GP_BUILD/gpupool --api ${POOL_API[c1]} -o json get j1 | grep -q '\"state\": *\"running\"'"
ok $? "with an authorized key the job is placed and runs"
like "$(grep 'connected to coordinator' "$T_TMP/good.log")" "curve=yes" "over CURVE"

# A coordinator registered with a key the agent does not trust.
etcdctl_ put /gpupool/coordinators/r1/impostor \
    "{\"id\":\"impostor\",\"region\":\"r1\",\"bid\":\"tcp://127.0.0.1:1\",\"public_key\":\"$(awk '/public-key/ {print $3}' "$K/other-coord.pub")\"}" >/dev/null
wait_for 10 grep -q 'not connecting to coordinator=impostor' "$T_TMP/good.log"
ok $? "the agent does not connect to a coordinator whose key it does not trust"
is "$(curl -s "http://127.0.0.1:$(sed -n 's/.*metrics=\([0-9]*\).*/\1/p' "$T_TMP/good.log" | head -1)/metrics" |
      awk '$1 == "gpupool_agent_coordinators_refused_total" { print $2 }')" 1 \
   "and counts it: gpupool_agent_coordinators_refused_total 1"
stop_daemon good; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
