#!/usr/bin/env bash
# gpupool-sim's command line, outputs (table, CSV, plot), the time mode,
# capacity planning, and bad input (clear errors, sysexits codes).
. "$(dirname "$0")/common.sh"

"$SIM" --help | grep -q "gpupool-sim COMMAND"; ok $? "--help"
"$SIM" --version | grep -Eq "^gpupool-sim [0-9]"; ok $? "--version"
"$SIM" policies | grep -c . | grep -qx 10; ok $? "ten policies listed"

# --- table, CSV and plot
tab=$("$SIM" replay -n "$NODES" -p "$PODS" -P fgd,bestfit -s 42 -q --csv "$T_TMP/s.csv" \
      --plot "$T_TMP/s.svg")
is "$?" 0 "table with CSV and plot"
like "$tab" "^policy +alloc@90%" "the table has a header"
like "$(head -1 "$T_TMP/s.csv")" "^policy,arrived_pct,alloc_pct$" "CSV header"
[ "$(grep -c '^fgd,' "$T_TMP/s.csv")" -gt 100 ]; ok $? "CSV has the FGD series"
grep -q "<svg" "$T_TMP/s.svg"; ok $? "an SVG plot is written"

# --- hand-made JSON-lines inputs: time mode, unplaceable job, planning
cat > "$T_TMP/inv.jsonl" <<'J'
# two nodes
{"name":"a","cpu_milli":32000,"mem_mib":131072,"devices":[{"uuid":"a0","model":"A10","mem_mib":24576},{"uuid":"a1","model":"A10","mem_mib":24576}]}
{"name":"b","cpu_milli":32000,"mem_mib":131072,"region":"eu","devices":[{"uuid":"b0","model":"T4","mem_mib":15360}]}
J
cat > "$T_TMP/work.jsonl" <<'J'
{"id":"w1","devices":1,"mem_percent":50,"compute_percent":50,"cpu_milli":1000,"arrival":0,"duration":100}
{"id":"w2","nvidia.com/gpu":1,"nvidia.com/gpumem-percentage":50,"nvidia.com/gpucores":50,"arrival":10,"duration":100}
{"id":"w3","devices":2,"arrival":20,"duration":50}
{"id":"w4","devices":1,"regions":["eu"],"arrival":30,"duration":10}
{"id":"huge","devices":4,"arrival":40,"duration":10}
J
t=$("$SIM" replay -n "$T_TMP/inv.jsonl" -p "$T_TMP/work.jsonl" --mode time --max-wait 1000 \
    -P fgd --json -q --csv "$T_TMP/t.csv")
is "$?" 0 "time mode on JSON lines"
is "$(field "$t" placed)" 4 "four jobs placed (w3 waits for room)"
is "$(field "$t" failed_pods)" 1 "the job no node could hold is reported as failed"
like "$(head -1 "$T_TMP/t.csv")" "^policy,t_s,util_pct,running,queued$" "utilization series"
t=$("$SIM" replay -n "$T_TMP/inv.jsonl" -p "$T_TMP/work.jsonl" --mode time -P binpack -q \
    --arrival-rate 0.5 --duration 20 --count 200 --json)
is "$(field "$t" pods)" 200 "synthetic arrivals and durations"
p=$("$SIM" plan -n "$NODES" -p "$PODS" -P bestfit --success 95 --json)
is "$?" 0 "capacity planning"
sh=$(printf '%s' "$p" | grep -o '"shared":{[^}]*' | grep -o '"gpus":[0-9]*' | cut -d: -f2)
wh=$(printf '%s' "$p" | grep -o '"whole":{[^}]*' | grep -o '"gpus":[0-9]*' | cut -d: -f2)
[ -n "$sh" ] && [ "$sh" -lt "$wh" ]; ok $? "sharing needs fewer GPUs ($sh) than whole GPUs ($wh)"
# the inference scenario README documents: 65 small services on mixed models
SC="$GP_ROOT/simulations/scenarios"
p=$("$SIM" plan -n "$SC/inference_nodes.jsonl" -p "$SC/inference_services.jsonl" -P fgd \
    --success 100 --seeds 42-51 --json)
is "$?" 0 "capacity planning on the inference scenario (JSON-lines inventory)"
sh=$(printf '%s' "$p" | grep -o '"shared":{[^}]*' | grep -o '"gpus":[0-9]*' | cut -d: -f2)
wh=$(printf '%s' "$p" | grep -o '"whole":{[^}]*' | grep -o '"gpus":[0-9]*' | cut -d: -f2)
[ -n "$sh" ] && [ $((sh * 2)) -lt "$wh" ]
ok $? "65 services: sharing needs under half the GPUs ($sh) of whole GPUs ($wh)"

# --- bad input: clear errors with file and line, sysexits codes
printf 'sn,cpu_milli,gpu,model\nn1,1000,1,T4\n' > "$T_TMP/nocol.csv"
e=$("$SIM" replay -n "$T_TMP/nocol.csv" -p "$PODS" 2>&1); rc=$?
is "$rc" 65 "missing column: EX_DATAERR"
like "$e" "nocol.csv:1: missing column memory_mib" "names file, line and column"
printf 'sn,cpu_milli,memory_mib,gpu,model\nn1,-5,1000,1,T4\n' > "$T_TMP/neg.csv"
e=$("$SIM" replay -n "$T_TMP/neg.csv" -p "$PODS" 2>&1); rc=$?
is "$rc" 65 "negative number: EX_DATAERR"
like "$e" "neg.csv:2: column cpu_milli: negative" "names the line"
printf 'sn,cpu_milli,memory_mib,gpu,model\nn1,5,1000,1,Z80\n' > "$T_TMP/model.csv"
e=$("$SIM" replay -n "$T_TMP/model.csv" -p "$PODS" 2>&1); rc=$?
is "$rc" 65 "unknown model: EX_DATAERR"
like "$e" "model.csv:2: unknown GPU model \"Z80\"" "names the model"
printf '{"id":"x","devices":1,"gpus":3}\n' > "$T_TMP/badjob.jsonl"
e=$("$SIM" replay -n "$T_TMP/inv.jsonl" -p "$T_TMP/badjob.jsonl" 2>&1); rc=$?
is "$rc" 65 "unknown job field: EX_DATAERR"
like "$e" "badjob.jsonl:1: unknown field \"gpus\"" "names the field"
printf 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,10,1,1200\n' > "$T_TMP/milli.csv"
e=$("$SIM" replay -n "$NODES" -p "$T_TMP/milli.csv" 2>&1); rc=$?
is "$rc" 65 "gpu_milli over 1000: EX_DATAERR"
"$SIM" replay -n "$T_TMP/none.csv" -p "$PODS" 2>/dev/null; is "$?" 66 "missing file: EX_NOINPUT"
e=$("$SIM" replay -n "$T_TMP" -p "$PODS" 2>&1); rc=$?
is "$rc" 66 "a directory given as a file: EX_NOINPUT"
like "$e" "Is a directory" "and it says so"
"$SIM" replay -n "$NODES" -p "$PODS" --policy nope 2>/dev/null; is "$?" 64 "unknown policy: EX_USAGE"
"$SIM" replay -n "$NODES" -p "$PODS" --bogus 2>/dev/null; is "$?" 64 "unknown flag: EX_USAGE"
"$SIM" replay -n "$NODES" -p "$PODS" --seeds 9-1 2>/dev/null; is "$?" 64 "bad seeds: EX_USAGE"
"$SIM" replay -n "$NODES" 2>/dev/null; is "$?" 64 "missing --pods: EX_USAGE"
done_testing
