#!/usr/bin/env bash
# CLI exit status 76 (EX_PROTOCOL): the server answered, successfully, but
# not as the gpupool API does -- a body that is not JSON, or JSON without
# the fields the command needs.  Real servers stand in for "a wrong URL":
# a coordinator's /metrics (Prometheus text) and etcd's /version (JSON of
# another shape).  The same commands against the API itself exit 0.
. "$(dirname "$0")/../lib.sh"

unset GPUPOOL_API GPUPOOL_TOKEN GPUPOOL_TOKEN_FILE
CLI=$GP_BUILD/gpupool
run() { "$@" >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?; out=$(cat "$T_TMP/out"); err=$(cat "$T_TMP/err"); }

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
API=${POOL_API[c1]}
etcd_url=${ETCD_CLIENT_URL[0]}

run "$CLI" --api "$API" ls
is "$rc" 0 "ls against the API exits 0"
run "$CLI" --api "$API" top --once
is "$rc" 0 "top --once against the API exits 0"
echo '{"id": "j1", "devices": 0, "cpu_milli": 100}' | "$CLI" --api "$API" submit - >/dev/null
run "$CLI" --api "$API" get j1
is "$rc" 0 "get of a stored job against the API exits 0"

# The URL's query swallows the API path: the request is GET /metrics?/v1/jobs.
run "$CLI" --api "$API/metrics?" ls
is "$rc" 76 "ls answered 200 with a body that is not JSON: 76"
like "$err" '^gpupool: .*not JSON' "...saying the answer is not JSON"
run "$CLI" --api "$API/metrics?" top --once
is "$rc" 76 "top answered with Prometheus text: 76"

run "$CLI" --api "$etcd_url/version?" ls
is "$rc" 76 "ls answered with JSON of another shape (etcd's /version): 76"
like "$err" 'no "jobs" array' "...saying what is missing"
run "$CLI" --api "$etcd_url/version?" regions
is "$rc" 76 "regions answered by etcd's /version: 76"
run "$CLI" --api "$etcd_url/version?" top --once
is "$rc" 76 "top answered by etcd's /version: 76"
like "$err" 'no "pool" object' "...saying what is missing"
run "$CLI" --api "$etcd_url/version?" -o json top --once
is "$rc" 76 "top -o json too: 76"
is "$out" "" "...printing nothing on stdout"
run "$CLI" --api "$etcd_url/version?" get j1
is "$rc" 76 "get answered by etcd's /version: 76"
like "$err" 'not a job record' "...saying it is not a job record"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
