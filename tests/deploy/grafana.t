#!/usr/bin/env bash
# The Grafana dashboard (deploy/grafana/gpupool.json) asks only for what the
# pool exports: every metric each of its queries names is on a running
# pool's /metrics (coordinator and agent), after the work a pool does —
# jobs submitted, placed, run under the shim (slice memory and compute),
# suspended and resumed, cancelled, and a request without a token; and
# every label a legend shows is on the series its query names.  The names
# come from the live /metrics, not from a list kept here.
. "$(dirname "$0")/../lib.sh"

DASH=$GP_ROOT/deploy/grafana/gpupool.json
SHIMTEST=$GP_BUILD/tests/shim/shimtest
PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
FAKELIB=$GP_BUILD/tests/fakecuda
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=1 FAKECUDA_MEM_MIB=24576 FAKECUDA_MODEL=A10
now_ns() { LD_LIBRARY_PATH=$FAKELIB "$SHIMTEST" now; }

# The dashboard's queries: one per line, "PANEL<TAB>EXPR<TAB>LEGEND LABELS".
queries=$(python3 - "$DASH" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for p in walk(d["panels"]):
    for t in p.get("targets", []):
        labels = re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", t.get("legendFormat", ""))
        print("%s\t%s\t%s" % (p["title"], t["expr"], " ".join(labels)))
PY
)
ok $? "the dashboard is JSON with panels and queries"
[ "$(printf '%s\n' "$queries" | grep -c .)" -ge 10 ]; ok $? "it has queries ($(printf '%s\n' "$queries" | grep -c .))"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
alloc_port mport
start_daemon agent 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 --region r1 \
    --nvml "$FAKELIB/libnvidia-ml.so.1" --shim "$PRELOAD" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/state" --metrics-listen "127.0.0.1:$mport" --lease-ttl 3s \
    --heartbeat 500ms --stop-grace 2s --usage-interval 200ms || bail_out "agent did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }

submit "{\"id\": \"mem\", \"devices\": 1, \"mem_mib\": 4096, \"compute_percent\": 10,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"1024\", \"600\"]}"
submit "{\"id\": \"spin\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 30,
         \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"launchlog\", \"$(now_ns)\", \"600\", \"1000\"]}"
submit '{"id": "short", "devices": 1, "mem_mib": 1024, "compute_percent": 5, "duration_s": 1}'
wait_state c1 mem running 20 && wait_state c1 spin running 20 && wait_state c1 short succeeded 20
ok $? "jobs run under the shim, and one to its end"
gpupool_ c1 suspend spin >/dev/null && gpupool_ c1 resume spin >/dev/null; ok $? "a job suspended and resumed"
submit '{"id": "gone", "devices": 0, "cpu_milli": 10, "duration_s": 600}'
gpupool_ c1 cancel gone >/dev/null; ok $? "a job cancelled"
curl -s -o /dev/null "${POOL_API[c1]}/v1/jobs"   # no token: counted as unauthorized

# The names a pool exports: every sample's name on the two /metrics.
scrape() {
    { curl -s -m 5 "${POOL_API[c1]}/metrics"; curl -s -m 5 "http://127.0.0.1:$mport/metrics"; } |
        grep -v '^#' >"$T_TMP/samples"
    awk 'NF { sub(/[{ ].*/, "", $1); print $1 }' "$T_TMP/samples" | sort -u >"$T_TMP/exported"
}
slices_seen() { scrape; grep -qx gpupool_agent_slice_memory_bytes "$T_TMP/exported"; }
wait_for 20 slices_seen; ok $? "the agent exports its slices' metrics ($(wc -l <"$T_TMP/exported") names in all)"

names=$(printf '%s\n' "$queries" | cut -f2 | grep -o 'gpupool_[a-z0-9_]*' | sort -u)
# labelled NAMES LABEL: some series of one of NAMES carries LABEL.
labelled() {
    local n
    for n in $1; do
        grep -Eq "^$n\{([^}]*,)?$2=" "$T_TMP/samples" && return 0
    done
    return 1
}
while IFS=$'\t' read -r title expr legend; do
    printf '%s' "$expr" | grep -q 'gpupool_[a-z0-9_]'
    ok $? "\"$title\": the query names a gpupool metric ($expr)"
    qnames=$(printf '%s' "$expr" | grep -o 'gpupool_[a-z0-9_]*' | sort -u | tr '\n' ' ')
    for l in $legend; do
        labelled "$qnames" "$l"; ok $? "\"$title\": its legend's label $l is on the series it names"
    done
done <<<"$queries"
for n in $names; do
    grep -qx "$n" "$T_TMP/exported"; ok $? "$n is exported by the pool"
done

# Jobs outlive their agent: those still running are stopped by their cancel.
gpupool_ c1 cancel mem spin >/dev/null
ended() { compgen -G "$T_TMP/state/done/mem*" >/dev/null && compgen -G "$T_TMP/state/done/spin*" >/dev/null; }
wait_for 30 ended; ok $? "the running jobs are cancelled and their processes ended"
stop_daemon agent; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
