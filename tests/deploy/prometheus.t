#!/usr/bin/env bash
# A real Prometheus server (Debian's prometheus) scrapes a local pool -- a
# leader, a standby and an agent -- with deploy/prometheus/'s rules loaded:
# every target is up, and series read back through its HTTP API have the
# values the pool shows (allocation counted once, leadership, job state
# changes, counters at 0); the rules load and evaluate without error.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
alloc_port pport
PROM=http://127.0.0.1:$pport
# c1's web console reads its history from this Prometheus; c2's from its own samples.
pool_coordinator c1 r1 --console-prometheus "$PROM" || bail_out "c1 did not start"
pool_coordinator c2 r1 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
amport=$(sed -n 's/.*gpupool-agent ready .*metrics=\([0-9]*\).*/\1/p' "$T_TMP/a1.log")
[ -n "$amport" ] || bail_out "no metrics port in the agent's ready line"
echo '{"id": "half", "devices": 1, "mem_mib": 12288, "compute_percent": 10}' | gpupool_ c1 submit - >/dev/null
wait_state c1 half running 15; ok $? "a half-GPU job runs"

cp "$GP_ROOT/deploy/prometheus/gpupool.rules.yml" "$T_TMP/"
cat >"$T_TMP/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - gpupool.rules.yml
scrape_configs:
  - job_name: gpupool-coordinator
    static_configs:
      - targets: ["${POOL_API[c1]#http://}", "${POOL_API[c2]#http://}"]
  - job_name: gpupool-agent
    static_configs:
      - targets: ["127.0.0.1:$amport"]
EOC
start_daemon prom 'Server is ready to receive web requests' 60 -- prometheus \
    --config.file="$T_TMP/prometheus.yml" --storage.tsdb.path="$T_TMP/prom-data" \
    --web.listen-address="127.0.0.1:$pport" || bail_out "prometheus did not start"

# q PROMQL: the query's result as "labels=value" lines, sorted (python3
# reads Prometheus' JSON).
q() {
    curl -s -m 5 -G --data-urlencode "query=$1" "$PROM/api/v1/query" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
for s in sorted(r["data"]["result"], key=lambda s: sorted(s["metric"].items())):
    m = s["metric"]
    print(",".join("%s=%s" % kv for kv in sorted(m.items()) if kv[0] != "__name__") + "=" + s["value"][1])'
}
q_is() { [ "$(q "$1")" = "$2" ]; }   # q_is PROMQL EXPECTED

wait_for 60 q_is 'count(up == 1)' '=3'
ok $? "Prometheus scraped all three daemons ($(q 'up'))"
wait_for 30 q_is 'sum(gpupool_gpu_milli_allocated)' '=500'
ok $? "sum(gpupool_gpu_milli_allocated) over every coordinator is the one slice, 500 ($(q 'gpupool_gpu_milli_allocated'))"
is "$(q 'sum(gpupool_gpu_milli_capacity)')" '=2000' "sum(gpupool_gpu_milli_capacity) is the agent's two GPUs"
is "$(q 'sum by (region) (gpupool_coordinator_leader)')" 'region=r1=1' "one leader in r1"
is "$(q 'count(gpupool_coordinator_leader)')" '=2' "both coordinators report on leadership"
is "$(q 'gpupool_agent_jobs_total{state="started"}')" \
   "instance=127.0.0.1:$amport,job=gpupool-agent,state=started=1" "the agent's job start, as Prometheus stored it"
is "$(q 'sum(gpupool_coordinator_unauthorized_total)')" '=0' "a counter before its first event is 0, not absent"
rules=$(curl -s -m 5 "$PROM/api/v1/rules" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["groups"]
rules = [x for g in r for x in g["rules"]]
print(len(rules), sorted(set(x["health"] for x in rules)))')
is "$rules" "9 ['ok']" "the nine alerting rules load and evaluate without error"
firing=$(q 'ALERTS{alertstate="firing"}')
is "$firing" "" "no alert fires on a healthy pool"

# The console's one-hour history: from Prometheus where it is configured.
overview() { curl -s -m 10 -H "Authorization: Bearer $GPUPOOL_TOKEN" "${POOL_API[$1]}/ui/api/overview"; }
history() { # NAME -> "source total allocated" of the newest sample
    overview "$1" | python3 -c '
import json, sys
h = json.load(sys.stdin)["history"]
s = h["samples"][-1] if h["samples"] else [0, 0, 0, 0]
print(h["source"], s[1], s[2])'
}
history_is() { [ "$(history "$1")" = "$2" ]; }
wait_for 40 history_is c1 "prometheus 2000 500"
ok $? "c1's console history comes from Prometheus: 2,000 GPU milli, 500 allocated ($(history c1))"
like "$(history c2)" '^coordinator ' "c2's, without console-prometheus, from its own samples"
stop_daemon prom; is "$?" 0 "prometheus exits 0"
wait_for 40 history_is c1 "coordinator 2000 500"
ok $? "with Prometheus gone, c1's console falls back to its own samples ($(history c1))"
grep -q 'console: Prometheus did not answer' "$T_TMP/c1.log"; ok $? "...and says so in its log"
stop_daemon a1; is "$?" 0 "the agent exits 0"
stop_daemon c2; is "$?" 0 "c2 exits 0"
stop_daemon c1; is "$?" 0 "c1 exits 0"
done_testing
