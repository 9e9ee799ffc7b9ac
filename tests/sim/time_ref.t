#!/usr/bin/env bash
# The time mode gives the results it gave before its engine was made faster
# and smaller: three runs, compared field by field (wall time aside) and
# series by series with the output of the earlier engine, kept in
# tests/sim/data/time_*.{json,csv} (the trace's own times; synthetic
# arrivals on 300 nodes with a queue that grows; fixed lifetimes with
# --max-wait dropping pods; 50,000 pods on 2,000 nodes, whose 100,000
# changes pass the engine's change log so that shape indexes are both
# caught up and rebuilt, with a queue of thousands retried).  Then the queueing report: per priority and
# per team, and why pods were never placed.
. "$(dirname "$0")/common.sh"

DATA="$GP_ROOT/tests/sim/data"

# same <reference.json> <new.json> <desc>: every field of every reference
# line (but wall_s and max_rss_mib) has the same value in the new line of the same policy
same() {
    python3 - "$1" "$2" <<'PY'
import json, sys
ref = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
new = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
bad = []
if len(ref) != len(new):
    bad.append("%d lines, expected %d" % (len(new), len(ref)))
for r, n in zip(ref, new):
    for k, v in r.items():
        if k not in ("wall_s", "max_rss_mib") and n.get(k) != v:
            bad.append("%s %s: got %r, expected %r" % (r.get("policy"), k, n.get(k), v))
for b in bad:
    print("#   " + b)
sys.exit(1 if bad else 0)
PY
}

"$SIM" replay -n "$NODES" -p "$PODS" --mode time -P fgd,bestfit -s 42 --json -q \
    --max-wait 86400 --csv "$T_TMP/trace.csv" > "$T_TMP/trace.json"
is "$?" 0 "time mode on the trace's own times"
same "$DATA/time_trace.json" "$T_TMP/trace.json"; ok $? "the trace's times: same results as before"
cmp -s "$DATA/time_trace.csv" "$T_TMP/trace.csv"; ok $? "the trace's times: same series"

"$SIM" replay -n "$NODES" -p "$PODS" --mode time -P fgd,bestfit,binpack -s 42,43 \
    --scale-nodes 300 --count 20000 --arrival-rate 0.02 --duration 2e5 --json -q \
    --csv "$T_TMP/syn.csv" > "$T_TMP/syn.json"
is "$?" 0 "synthetic arrivals, 3 policies x 2 seeds"
same "$DATA/time_synthetic.json" "$T_TMP/syn.json"; ok $? "synthetic arrivals: same results as before"
cmp -s "$DATA/time_synthetic.csv" "$T_TMP/syn.csv"; ok $? "synthetic arrivals: same series"

"$SIM" replay -n "$NODES" -p "$PODS" --mode time -P fgd -s 44 --scale-nodes 500 --count 20000 \
    --arrival-rate 0.02 --duration 1.7e5 --duration-dist fixed --max-wait 20000 --json -q \
    --csv "$T_TMP/mw.csv" > "$T_TMP/mw.json"
is "$?" 0 "fixed lifetimes with --max-wait"
same "$DATA/time_maxwait.json" "$T_TMP/mw.json"; ok $? "--max-wait: same results as before"
cmp -s "$DATA/time_maxwait.csv" "$T_TMP/mw.csv"; ok $? "--max-wait: same series"
"$SIM" replay -n "$NODES" -p "$PODS" --mode time -P fgd,bestfit -s 45 --scale-nodes 2000 \
    --count 50000 --arrival-rate 0.02 --duration 1.1e6 --max-wait 1e6 --json -q \
    --csv "$T_TMP/mid.csv" > "$T_TMP/mid.json"
is "$?" 0 "50,000 pods on 2,000 nodes, fgd and bestfit"
same "$DATA/time_mid.json" "$T_TMP/mid.json"; ok $? "2,000 nodes: same results as before"
cmp -s "$DATA/time_mid.csv" "$T_TMP/mid.csv"; ok $? "2,000 nodes: same series"

g=$(python3 -c '
import json, sys
j = json.loads(open(sys.argv[1]).readline())
g = {x["priority"]: x for x in j["groups"]}
print(len(j["groups"]), g[0]["dropped"] + g[10]["dropped"], j["dropped"], j["failed_pods"],
      int(g[0]["placed"] + g[10]["placed"]), j["placed"],
      int(g[0]["wait_p50_s"] <= g[0]["wait_p95_s"] <= g[0]["wait_p99_s"]))' "$T_TMP/mw.json")
is "$g" "2 252 252 252 19748 19748 1" \
   "per priority (0 and 10): the dropped and placed pods add up, p50 <= p95 <= p99"

# --- per team, and why pods never placed
cat > "$T_TMP/inv.jsonl" <<'J'
{"name":"a","cpu_milli":32000,"mem_mib":131072,"devices":[{"uuid":"a0","model":"A10","mem_mib":24576},{"uuid":"a1","model":"A10","mem_mib":24576}]}
J
cat > "$T_TMP/work.jsonl" <<'J'
{"shape":{"devices":1,"arrival":0,"duration":100},"count":2,"team":"search"}
{"devices":2,"arrival":10,"duration":50,"team":"ads"}
{"devices":1,"models":["A10"],"arrival":20,"duration":10,"team":"ads","priority":5}
{"shape":{"devices":4,"arrival":30,"duration":10},"count":3,"team":"ads"}
{"devices":1,"arrival":40,"duration":10,"team":"late"}
J
t=$("$SIM" replay -n "$T_TMP/inv.jsonl" -p "$T_TMP/work.jsonl" --mode time --max-wait 85 \
    -P binpack --json -q)
is "$?" 0 "time mode with teams and count lines"
r=$(printf '%s' "$t" | python3 -c '
import json, sys
j = json.loads(sys.stdin.readline())
def grp(k, v):
    return [g for g in j["groups"] if g.get(k) == v][0]
s, a, l = grp("team", "search"), grp("team", "ads"), grp("team", "late")
print(j["pods"], j["placed"], j["never_fit"], j["dropped"], s["placed"], s["wait_p99_s"],
      a["placed"], a["wait_p50_s"], a["never_fit"], a["dropped"], l["placed"], l["wait_p50_s"],
      grp("priority", 5)["placed"])')
# The two search pods hold both devices from 0 to 100.  At 100 the queue is
# retried in order: the 2-GPU ads job has waited 90 s > 85 (dropped), the
# priority-5 one takes the freed device (80 s), the 4-GPU ones fit no node
# (they stay until the end), the late one takes the second device (60 s).
is "$r" "8 4 3 1 2 0.0 1 80.0 3 1 1 60.0 1" \
   "per team and priority: waits; 4-GPU jobs fit no node; one dropped after 85 s"
done_testing
