#!/usr/bin/env bash
# The REST API's reads and a few intake limits: GET /v1/jobs/<id> carries
# "alloc" once placed (not before); GET /v1/jobs filters by state, region
# and owner (through `gpupool ls`, global options after the command);
# GET /v1/nodes reports what is allocated on each node; names are at most
# 127 characters and do not start with "."; a gang has at most 30
# members; a command-less job is a reservation that ends after duration_s.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
pool_agent a2 r2 1 1xT4:15360 || bail_out "a2 did not start"
API=${POOL_API[c1]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
get() { curl -s -m 5 -H "$AUTH" "$API$1" | tr -d ' \n'; }
post_status() { curl -s -o /dev/null -w '%{http_code}' -m 5 -H "$AUTH" --data-binary "$1" "$API/v1/jobs"; }

submit '{"id": "j1", "devices": 1, "mem_mib": 12288, "compute_percent": 10, "owner": "team-a"}'
submit '{"id": "j2", "devices": 1, "models": ["T4"], "owner": "team-b", "region": "r2"}'
wait_state c1 j1 running 15 && wait_state c1 j2 running 15; ok $? "two jobs run, one per region"
submit '{"id": "j3", "devices": 1, "models": ["T4"], "regions": ["r2"], "owner": "team-b", "region": "r2"}'
has_reason() { [ -n "$(job_field c1 j3 reason)" ]; }
wait_for 15 has_reason
is "$(job_state c1 j3)" pending "a third waits for r2's only T4"

like "$(get /v1/jobs/j1)" '"alloc":\{"job":"j1","node":"a1-0000".*"devices":\[\{"uuid":"GPU-a1-0000-[01]","index":[01],"mem_mib":12288' \
     "GET /v1/jobs/j1 carries its allocation: node, device, memory"
isnt "$(get /v1/jobs/j3 | grep -c '"alloc"')" 1 "a pending job has no \"alloc\""

ids() { gpupool_ c1 ls -q "$@" | sort | tr '\n' ' '; }
is "$(ids --owner team-a)" "j1 " "ls --owner team-a: j1"
is "$(ids --owner team-b)" "j2 j3 " "ls --owner team-b: j2 j3"
is "$(ids --region r2)" "j2 j3 " "ls --region r2: j2 j3"
is "$(ids --region r1)" "j1 " "ls --region r1: j1"
is "$(ids --state pending)" "j3 " "ls --state pending: j3"
is "$(ids --state running --region r2)" "j2 " "filters combine"
like "$(gpupool_ c1 ls --owner team-a -o json | tr -d ' \n')" '^\{"jobs":\[\{"id":"j1"' \
     "a global option after the command (ls ... -o json)"
is "$(get '/v1/jobs?owner=team-b&state=running' | grep -o '"id":"[^"]*","spec"' | tr '\n' ' ')" '"id":"j2","spec" ' \
   "GET /v1/jobs?owner=&state= directly: j2 alone"

nodes=$(get /v1/nodes)
like "$nodes" '"name":"a1-0000"[^{}]*"allocated":\{"gpu_milli":500,"mem_mib":12288,"jobs":1\}' \
     "GET /v1/nodes: a1-0000 has 500 GPU milli, 12288 MiB and 1 job allocated"
like "$nodes" '"name":"a2-0000"[^{}]*"allocated":\{"gpu_milli":1000,"mem_mib":15360,"jobs":1\}' \
     "a2-0000 has its whole T4 allocated"

long=$(printf 'n%.0s' $(seq 1 127))
is "$(post_status "{\"id\": \"$long\", \"devices\": 0, \"cpu_milli\": 10}")" 201 "an id of 127 characters is accepted"
is "$(post_status "{\"id\": \"${long}x\", \"devices\": 0, \"cpu_milli\": 10}")" 400 "an id of 128 is refused"
is "$(post_status '{"id": ".hidden", "devices": 0, "cpu_milli": 10}')" 400 "an id starting with . is refused"
is "$(post_status '{"id": "big-gang", "devices": 0, "cpu_milli": 10, "gang": "g", "gang_size": 31}')" 400 \
   "a gang of 31 is refused"
is "$(post_status '{"id": "max-gang", "devices": 0, "cpu_milli": 10, "gang": "g30", "gang_size": 30}')" 201 \
   "a gang of 30 is accepted"

submit '{"id": "res", "devices": 1, "mem_mib": 1024, "compute_percent": 5, "duration_s": 1}'
wait_state c1 res succeeded 20; ok $? "a command-less job with duration_s 1 runs, then succeeds"
like "$(gpupool_ c1 -o json get res | tr -d ' \n')" '"state":"running".*"state":"succeeded"' "its history: running, succeeded"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
for d in a1 a2 c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
