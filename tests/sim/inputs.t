#!/usr/bin/env bash
# Inputs as users have them: each file's format decided by itself (extension,
# else content), forced per file; every combination of an openb CSV and a
# JSON-lines file; workloads as a count per shape; bad input named by file
# and line.
. "$(dirname "$0")/common.sh"

SC="$GP_ROOT/simulations/scenarios"
cp "$SC/inference_services.jsonl" "$T_TMP/services.jsonl"
cp "$SC/inference_nodes.jsonl" "$T_TMP/nodes.jsonl"
head -200 "$PODS" > "$T_TMP/pods.csv"

# pods <args...>: how many pods a replay read (time mode replays each once),
# or the error
pods() { "$SIM" replay -q --json -P binpack --mode time "$@" 2>&1 | grep -o '"pods":[0-9.]*\|gpupool-sim:.*' | cut -d: -f2-; }

is "$(pods -n "$NODES" -p "$T_TMP/services.jsonl")" 65 "openb node list with a JSON-lines workload"
is "$(pods -n "$T_TMP/nodes.jsonl" -p "$T_TMP/pods.csv")" 199 "JSON-lines inventory with an openb pod list"
is "$(pods -n "$NODES" -p "$T_TMP/pods.csv")" 199 "openb with openb"
is "$(pods -n "$T_TMP/nodes.jsonl" -p "$T_TMP/services.jsonl")" 65 "JSON lines with JSON lines"

# by content, whatever the name
cp "$NODES" "$T_TMP/nodelist"
cp "$T_TMP/services.jsonl" "$T_TMP/services"
is "$(pods -n "$T_TMP/nodelist" -p "$T_TMP/services")" 65 "no extension: each file's content decides"
# forced per file
cp "$T_TMP/services.jsonl" "$T_TMP/services.txt.csv"
is "$(pods -n "$NODES" -p "$T_TMP/services.txt.csv" --pods-format jsonl)" 65 \
   "--pods-format jsonl overrides a .csv name"
e=$("$SIM" replay -q -n "$NODES" -p "$T_TMP/services.txt.csv" 2>&1); rc=$?
is "$rc" 65 "JSON lines named .csv: EX_DATAERR"
like "$e" "services.txt.csv:1: a JSON object where the CSV header was expected .*--pods-format jsonl" \
     "and the error says how to force the format"
e=$("$SIM" replay -q -n "$T_TMP/nodelist" -p "$T_TMP/services" --nodes-format jsonl 2>&1); rc=$?
is "$rc" 65 "a CSV node list forced to JSON lines: EX_DATAERR"
like "$e" "nodelist:1: not a JSON object \(a CSV node list\? then say so with --nodes-format openb\)" \
     "names file and line and the fix"
"$SIM" replay -q -n "$NODES" -p "$PODS" --nodes-format xml 2>/dev/null; is "$?" 64 "--nodes-format xml: EX_USAGE"

# a count per shape
cat > "$T_TMP/counts.jsonl" <<'J'
# a team's services as shapes and counts
{"shape": {"devices": 1, "mem_percent": 10, "compute_percent": 10, "cpu_milli": 1000}, "count": 40, "team": "search"}
{"shape": {"devices": 1, "mem_percent": 25, "compute_percent": 20, "models": ["A10"]}, "count": 7}
{"devices": 1}
J
is "$(pods -n "$T_TMP/nodes.jsonl" -p "$T_TMP/counts.jsonl")" 48 "count lines: 40 + 7 + 1 pods"
p=$("$SIM" plan -n "$T_TMP/nodes.jsonl" -p "$T_TMP/counts.jsonl" -P binpack --success 100 --json)
is "$?" 0 "plan on count lines"
like "$p" '"shared":\{"nodes":[0-9]+,"gpus":[0-9]+,"success_pct":100.0\}' "every pod placed"

printf '{"shape": {"devices": 1}, "count": 0}\n' > "$T_TMP/c0.jsonl"
e=$("$SIM" replay -q -n "$NODES" -p "$T_TMP/c0.jsonl" 2>&1); rc=$?
is "$rc" 65 "count 0: EX_DATAERR"
like "$e" 'c0.jsonl:1: field "count": expected a whole number 1..10000000' "names file, line and field"
printf '{"devices":1}\n{"shape": {"devices": 1}, "count": 2, "replicas": 3}\n' > "$T_TMP/cx.jsonl"
e=$("$SIM" replay -q -n "$NODES" -p "$T_TMP/cx.jsonl" 2>&1)
like "$e" 'cx.jsonl:2: unknown field "replicas"' "an unknown field beside a shape"
printf '{"shape": {"devices": 1, "gpus": 2}, "count": 2}\n' > "$T_TMP/cs.jsonl"
e=$("$SIM" replay -q -n "$NODES" -p "$T_TMP/cs.jsonl" 2>&1)
like "$e" 'cs.jsonl:1: unknown field "gpus"' "an unknown field in the shape"
printf '{"shape": 3, "count": 2}\n' > "$T_TMP/cn.jsonl"
e=$("$SIM" replay -q -n "$NODES" -p "$T_TMP/cn.jsonl" 2>&1)
like "$e" 'cn.jsonl:1: field "shape": expected a job spec' "a shape that is not an object"
printf '{"devices": 1, "team": ""}\n' > "$T_TMP/ct.jsonl"
e=$("$SIM" replay -q -n "$NODES" -p "$T_TMP/ct.jsonl" 2>&1)
like "$e" 'ct.jsonl:1: field "team": expected a name' "an empty team"
done_testing
