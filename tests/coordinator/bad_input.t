#!/usr/bin/env bash
# Bad input at the REST API: each gets a clear 4xx, nothing is stored, and
# the coordinator keeps serving.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --max-body 1 || bail_out "coordinator did not start"
pool_agent a1 r1 2 2xA10:24576 || bail_out "agent did not start"
API=${POOL_API[c1]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"

# post BODY [HEADER]: prints "STATUS BODY"
post() {
    local hdr=${2:-$AUTH}
    curl -s -o "$T_TMP/resp" -w '%{http_code}' -H "$hdr" -H 'Content-Type: application/json' \
        --data-binary "$1" "$API/v1/jobs"
    printf ' %s' "$(cat "$T_TMP/resp")"
}

out=$(post '{"id": "bad-1", "devices": 1,')
like "$out" '^400 .*not valid JSON' "malformed JSON: 400 and why"
out=$(post '{"id": "bad-2", "devices": 1, "colour": "blue"}')
like "$out" '^400 .*unknown field \\"colour\\"' "an unknown field: 400 naming it"
out=$(post '{"id": "bad-3", "devices": 1, "mem_mib": 1024, "mem_percent": 50}')
like "$out" '^400 ' "contradictory fields: 400"
out=$(post '{"id": "bad-4", "devices": 1, "compute_percent": 150}')
like "$out" '^400 .*compute' "an out-of-range value: 400 naming the field"
out=$(post '{"id": "bad-5", "devices": 8}')
like "$out" '^400 .*could ever hold' "a job no node could ever hold: 400"
out=$(post '{"id": "bad-6", "devices": 1, "models": ["H100"]}')
like "$out" '^400 .*could ever hold' "a model the pool does not have: 400"
out=$(post '{"id": "../etc", "devices": 1}')
like "$out" '^400 .*id' "a bad id: 400"
out=$(post '[1, {"id": "bad-7", "devices": "x"}]')
like "$out" '^200 .*"status":400.*"status":400' "an array reports each bad job"

head -c 1200000 /dev/zero | tr '\0' ' ' > "$T_TMP/big"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" --data-binary "@$T_TMP/big" "$API/v1/jobs")
is "$code" 413 "an oversized body: 413"

out=$(post '{"id": "bad-8", "devices": 1}' 'X-Nothing: 1')
like "$out" '^401 ' "no token: 401"
out=$(post '{"id": "bad-9", "devices": 1}' 'Authorization: Bearer not-the-token-at-all')
like "$out" '^401 ' "a wrong token: 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/nodes")
is "$code" 401 "reads need the token too"

n=$(etcdctl_ get /gpupool/jobs/ --prefix --keys-only | grep -c .)
is "$n" 0 "none of them was stored"

out=$(post '{"id": "good-1", "devices": 1, "mem_mib": 1024}')
like "$out" '^201 ' "the coordinator still accepts a good job"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")
is "$code" 200 "and is healthy"
kill -0 "$(daemon_pid c1)"; ok $? "it is still running"
stop_daemon c1; is "$?" 0 "and exits 0 on SIGTERM"
done_testing
