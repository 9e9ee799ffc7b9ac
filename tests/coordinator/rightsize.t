#!/usr/bin/env bash
# Right-sizing on a real pool: an agent on fake GPUs runs jobs through the
# shim, learns each class's use from the slice regions into etcd, and the
# coordinator places `rightsize: auto` runs with the recommendation.
#   - a class without history is placed as requested;
#   - a class whose runs peak at 3 GiB of an 8 GiB request converges, after
#     5 runs, to a recommendation within 10% above the true p95 (3 GiB);
#   - a run over its right-sized slice dies of OOM and is restarted with
#     the bump (max(limit + 256 MiB, limit x 1.2)), counting as an attempt;
#   - auto never goes below the class's observed max;
#   - the summaries survive restarts of the agent and the coordinator;
#   - garbage in a stored summary is reported and ignored, then replaced;
#   - `gpupool rightsize`, GET /v1/rightsize and the metrics show it.
. "$(dirname "$0")/../lib.sh"

SHIMTEST=$GP_BUILD/tests/shim/shimtest
PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=1 FAKECUDA_MEM_MIB=16384 FAKECUDA_MODEL=A10
FAKELIB=$GP_BUILD/tests/fakecuda

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
start_agent() {
    start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 \
        --region r1 --nvml "$FAKELIB/libnvidia-ml.so.1" --shim "$PRELOAD" \
        --etcd-endpoints "$ETCD_ENDPOINTS" --state-dir "$T_TMP/state" \
        --metrics-listen 127.0.0.1:0 --lease-ttl 3s --heartbeat 500ms --stop-grace 2s \
        --usage-interval 200ms "$@"
}
start_agent || bail_out "agent did not start"
# class and rightsize are schema-2 fields: taken once the leader has seen
# every daemon of the new pool read schema 2
schema2() { gpupool_ c1 regions | grep -q '^store schema 2$'; }
wait_for 30 schema2 || bail_out "the store schema was not raised to 2"

summary() { etcdctl_ get "/gpupool/rightsize/$1" --print-value-only; }
runs_of() { summary "$1" | grep -o '"runs":[0-9]*' | cut -d: -f2; }
ends_of() { summary "$1" | grep -o '"ends":[0-9]*' | cut -d: -f2; }
applied_mem() { gpupool_ c1 -o json get "$1" | tr -d ' \n' | grep -o '"applied":{[^}]*}' | grep -o '"mem_mib":[0-9]*' | cut -d: -f2; }
rs_json() { gpupool_ c1 -o json rightsize "$@" | tr -d ' \n'; }
# run_job ID MIB [MODE] [REQUEST_MIB]: a job of class train holding MIB of device
# memory for 0.3 s; waits for its end.
run_job() {
    local id=$1 mib=$2 mode=${3:-auto} req=${4:-8192}
    echo "{\"id\": \"$id\", \"class\": \"train\", \"devices\": 1, \"mem_mib\": $req, \"rightsize\": \"$mode\",
           \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"$mib\", \"0.3\"]}" |
        gpupool_ c1 submit - >/dev/null || return 1
    local i
    for i in $(seq 1 300); do
        case "$(job_state c1 "$id")" in succeeded|failed) return 0 ;; esac
        sleep 0.1
    done
    return 1
}
wait_runs() { local want=$2 i; for i in $(seq 1 100); do [ "$(runs_of "$1")" = "$want" ] && return 0; sleep 0.1; done; return 1; }

# 1. No history: as requested.
run_job train-1 3072; ok $? "the first run of class train ends"
is "$(job_state c1 train-1)" succeeded "and succeeds"
is "$(applied_mem train-1)" 8192 "a class without history is placed as requested (8192 MiB)"
wait_runs train 1; ok $? "its usage sample is in etcd ($(summary train | head -c 160))"
like "$(summary train)" '"max_mib":3072' "with the slice's exact peak, 3072 MiB"

# 2. Convergence: 5 runs peaking at 3 GiB of an 8 GiB request.
for k in 2 3 4 5; do
    run_job "train-$k" 3072 || break
    wait_runs train "$k" || break
done
is "$(runs_of train)" 5 "five runs learned"
rec=$(rs_json --class train | grep -o '"recommended":{[^}]*}' | grep -o '"mem_mib":[0-9]*' | cut -d: -f2)
[ -n "$rec" ] && [ "$rec" -ge 3072 ] && [ "$rec" -le 3379 ]
ok $? "the recommendation is within 10% above the true p95 of 3072 MiB: $rec MiB"
is "$(applied_mem train-5)" "$rec" "and auto placed the fifth run with it (requested 8192)"
table=$(gpupool_ c1 rightsize --class train)
like "$table" 'train .* 5 +8G - +3G/3G/3G' "gpupool rightsize shows runs, request and observed p50/p95/max"
diag "$table"

# 3. GPUs freed: a recommend-only job holds its requested 8 GiB of 16.
echo "{\"id\": \"train-hold\", \"class\": \"train\", \"devices\": 1, \"mem_mib\": 8192, \"rightsize\": \"recommend\",
       \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"1024\", \"60\"]}" |
    gpupool_ c1 submit - >/dev/null
wait_state c1 train-hold running 20; ok $? "a recommend-only job runs"
is "$(applied_mem train-hold)" "" "recommend applies nothing"
freed=$(rs_json --class train | grep -o '"gpus_freed":[0-9.]*' | head -1 | cut -d: -f2)
want=$(awk -v r="$rec" 'BEGIN { printf "%.3f", (8192 - r) / 16384 }')
is "$(awk -v f="$freed" 'BEGIN { printf "%.3f", f }')" "$want" "GPUs freed: (8192 - $rec) / 16384 of its GPU"
api=$(curl -s -H "Authorization: Bearer $GPUPOOL_TOKEN" "${POOL_API[c1]}/v1/rightsize?class=train" | tr -d ' \n')
like "$api" '"jobs_allocated":1' "GET /v1/rightsize counts the class's allocated job"
m=$(pool_metric c1 'gpupool_rightsize_recommended_mem_mib{class="train"}')
is "$m" "$rec" "gpupool_rightsize_recommended_mem_mib{class=\"train\"} on /metrics"
w=$(pool_metric c1 'gpupool_rightsize_waste_mem_mib{class="train"}')
is "$w" "$(( 8192 - rec ))" "gpupool_rightsize_waste_mem_mib: what the job holds beyond it"
curl -s -m 5 "${POOL_API[c1]}/metrics" >"$T_TMP/metrics"
pout=$(promtool check metrics <"$T_TMP/metrics" 2>&1); prc=$?
[ "$prc" = 0 ] && [ -z "$pout" ] && grep -q '^gpupool_rightsize_waste_gpus{class="train"}' "$T_TMP/metrics"
ok $? "promtool check metrics passes with the right-sizing series ($pout)"
gpupool_ c1 cancel train-hold >/dev/null
wait_runs train 6; ok $? "a stopped run is a sample too"

# 4. OOM: a run that needs more than its right-sized slice.
run_job train-big 3500; ok $? "a run that needs 3500 MiB ends"
is "$(job_state c1 train-big)" succeeded "after one OOM restart it succeeds"
hist=$(gpupool_ c1 -o json get train-big | tr -d '\n')
like "$hist" "memory was refused in its slice; restarting with [0-9]+ MiB" "its history names the OOM restart"
is "$(job_field c1 train-big attempts; gpupool_ c1 -o json get train-big | grep -o '"attempts": *[0-9]*' | head -1 | grep -o '[0-9]*$')" 2 "the restart counts as an attempt"
bump=$(gpupool_ c1 -o json get train-big | tr -d ' \n' | grep -o '"rightsize_floor_mib":[0-9]*' | cut -d: -f2)
exp=$(awk -v r="$rec" 'BEGIN { a = r + 256; b = r * 1.2; b = (b == int(b)) ? b : int(b) + 1; print (a > b ? a : b) }')
is "$bump" "$exp" "the bump is max(limit + 256, limit x 1.2) of its $rec MiB limit"
ap=$(applied_mem train-big)
[ -n "$ap" ] && [ "$ap" -ge "$bump" ] && [ "$ap" -le $(( bump * 110 / 100 )) ]
ok $? "the restarted run was placed with at least the bump: $ap MiB (above its 8192 request it would be allowed too)"
like "$(gpupool_ c1 get train-big)" "Rightsize: +auto, class train; applied [0-9.]+G no cap \(requested 8G no cap\)" "gpupool get shows applied and requested"
like "$(gpupool_ c1 rightsize train-big)" "job train-big: class train, rightsize auto, requested 8G -, applied [0-9.]+G -" "gpupool rightsize JOB shows its class and both sizes"
gpupool_ c1 rightsize no-such-job >/dev/null 2>&1; is "$?" 66 "gpupool rightsize of an unknown job exits 66"

# 5. Never below the observed max: a summary whose p95 is 1000 MiB and max 3000.
etcdctl_ put /gpupool/rightsize/spiky '{"v":1,"class":"spiky","updated_ms":1,"runs":100,"ends":100,"ooms":0,"mem":{"max_mib":3000,"buckets":[[71,99],[94,1]]},"compute":{"max_pct":-1,"buckets":[]},"asked":{"mem_mib":8192,"compute_percent":0}}' >/dev/null
r2=$(rs_json --class spiky | grep -o '"recommended":{[^}]*}' | grep -o '"mem_mib":[0-9]*' | cut -d: -f2)
[ -n "$r2" ] && [ "$r2" -lt 3000 ]; ok $? "a class whose p95 is under its max is recommended $r2 MiB"
echo "{\"id\": \"spiky-1\", \"devices\": 1, \"mem_mib\": 8192, \"rightsize\": \"auto\",
       \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"2900\", \"0.3\"]}" |
    gpupool_ c1 submit - >/dev/null
wait_state c1 spiky-1 succeeded 30; ok $? "its run succeeds"
is "$(applied_mem spiky-1)" 3000 "auto placed it at the observed max, not below"

# 5b. Quotas are charged what was applied: two auto jobs of 8 GiB requests
# fit a 3000 MiB quota once right-sized to 1152 MiB each.
etcdctl_ put /gpupool/rightsize/qa.q '{"v":1,"class":"qa.q","owner":"qa","updated_ms":1,"runs":10,"ends":10,"ooms":0,"mem":{"max_mib":1000,"buckets":[[71,10]]},"compute":{"max_pct":-1,"buckets":[]},"asked":{"mem_mib":8192,"compute_percent":0}}' >/dev/null
gpupool_ c1 quota set qa --mem-mib 3000 >/dev/null; is "$?" 0 "team qa gets a quota of 3000 MiB"
for q in q-1 q-2; do
    echo "{\"id\": \"$q\", \"owner\": \"qa\", \"devices\": 1, \"mem_mib\": 8192, \"rightsize\": \"auto\",
           \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"512\", \"8\"]}" |
        gpupool_ c1 submit - >/dev/null
done
wait_state c1 q-1 running 20 && wait_state c1 q-2 running 20
ok $? "both run together within the quota (8192 MiB each asked, over it as asked)"
is "$(applied_mem q-1) $(applied_mem q-2)" "1152 1152" "each charged the 1152 MiB it was given"
wait_state c1 q-2 succeeded 40; gpupool_ c1 quota rm qa >/dev/null

# 6. Restarts lose no summary.
before=$(summary train)
stop_daemon agent; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
pool_coordinator c1 r1 || bail_out "coordinator did not restart"
start_agent --rightsize-interval 1s || bail_out "agent did not restart"
is "$(summary train)" "$before" "the summary is in etcd as it was"
like "$(rs_json --class train)" '"runs":8' "the restarted coordinator shows it (8 samples: the OOM run is one)"
run_job train-9 3072; ok $? "a run after the restarts"
wait_ends() { local i; for i in $(seq 1 100); do [ "$(ends_of train)" = 9 ] && return 0; sleep 0.1; done; return 1; }
wait_ends; ok $? "adds to the same summary: 9 runs ended ($(summary train | grep -o '"runs":[0-9]*,"ends":[0-9]*'))"

# 7. Garbage in a stored summary: reported, ignored, replaced.
etcdctl_ put /gpupool/rightsize/junk '{"v":1,"class":"junk","runs":"lots"}' >/dev/null
wait_for 10 grep -q 'ignoring a malformed usage summary class=junk' "$T_TMP/c1.log"
ok $? "the coordinator reports the malformed summary"
is "$(pool_metric c1 'gpupool_coordinator_bad_records_total{kind="rightsize"}')" 1 "and counts it"
echo "{\"id\": \"junk-1\", \"devices\": 1, \"mem_mib\": 8192, \"rightsize\": \"auto\",
       \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"512\", \"0.3\"]}" |
    gpupool_ c1 submit - >/dev/null
wait_state c1 junk-1 succeeded 30; ok $? "a job of that class runs"
is "$(applied_mem junk-1)" 8192 "placed as requested: the garbage is not trusted"
wait_runs junk 1; ok $? "the agent replaced the summary with a valid one"
grep -q 'ignoring a malformed usage summary, starting it again key=/gpupool/rightsize/junk' "$T_TMP/agent.log"
ok $? "and said so"

# 7b. A long run gives its class a sample per rightsize-interval (1 s here)
# while it runs, not only at its end.
echo "{\"id\": \"long-1\", \"devices\": 1, \"mem_mib\": 4096, \"rightsize\": \"recommend\",
       \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"1536\", \"30\"]}" |
    gpupool_ c1 submit - >/dev/null
long_samples() { n=$(runs_of long); [ -n "$n" ] && [ "$n" -ge 3 ]; }
wait_for 20 long_samples; ok $? "a long run's class has $(runs_of long) samples while it runs"
is "$(job_state c1 long-1)" running "and the run is still running"
like "$(summary long)" '"max_mib":1536' "with its peak so far"
gpupool_ c1 cancel long-1 >/dev/null

# 7c. A run throttled at its compute cap (5%: low, so that even a run starved
# of CPU by its neighbours wants more than it) wanted more: its class learns
# the compute bump, min(100, max(5 + 5, 5 x 1.2)) = 10, not only the 5 it got.
echo "{\"id\": \"capped-1\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 5, \"rightsize\": \"recommend\",
       \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"compute\", \"kernel\", \"2.5\", \"1000\"]}" |
    gpupool_ c1 submit - >/dev/null
capped_ended() { [ "$(ends_of capped)" = 1 ]; }
wait_for 30 capped_ended; ok $? "the capped run ended and was learned"
like "$(summary capped)" '"max_pct":10,' "its class's compute max is the bump, 10 ($(summary capped | grep -o '"compute":{[^}]*}'))"

# 8. Bad input is refused.
out=$(echo '{"id": "x", "devices": 1, "mem_mib": 1024, "rightsize": "always"}' | gpupool_ c1 submit - 2>&1)
like "$out" 'rightsize: expected "off", "recommend" or "auto"' "an unknown rightsize mode is refused"
out=$(echo '{"id": "x", "devices": 1, "mem_mib": 1024, "class": "a/b"}' | gpupool_ c1 submit - 2>&1)
like "$out" 'class: expected' "a class that cannot be a key is refused"

stop_daemon agent; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
