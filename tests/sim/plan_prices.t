#!/usr/bin/env bash
# gpupool-sim plan --prices: the cheapest inventory from the inventory's node
# types.  On small catalogues the search's plan costs what an exhaustive
# search over every inventory (--exhaustive) finds, for sharing and for
# whole GPUs; it honours pins and --max-nodes; bad prices are named by file
# and line, and nothing is written.
. "$(dirname "$0")/common.sh"

# Six small catalogues (three node types in two or three clouds) with
# workloads of 8 to 24 jobs: slices, whole GPUs, multi-GPU, CPU-only jobs,
# model and cloud pins.  Prices drawn so that no type dominates.
python3 - "$T_TMP" <<'PY'
import json, random, sys
out = sys.argv[1]
models = [("T4", 15360), ("A10", 24576), ("L4", 23034), ("A100", 40960)]
for case in range(6):
    r = random.Random(100 + case)
    clouds = ["aws", "gcp", "azure"][: r.choice([2, 3])]
    with open("%s/inv%d.jsonl" % (out, case), "w") as f, open("%s/prices%d.txt" % (out, case), "w") as p:
        for t in range(3):
            m, mem = models[r.randrange(len(models))]
            n = r.choice([1, 2, 4])
            c = clouds[t % len(clouds)]
            name = "n%d" % t
            f.write(json.dumps({"name": name, "cloud": c, "region": c + "-1",
                                "labels": {"type": "type%d" % t},
                                "cpu_milli": r.choice([16000, 32000, 48000]),
                                "mem_mib": r.choice([65536, 131072]),
                                "devices": [{"uuid": "%s-%d" % (name, i), "model": m, "mem_mib": mem}
                                            for i in range(n)]}) + "\n")
            p.write("%s type=type%d %.2f\n" % (c, t, n * r.uniform(0.5, 2.5) + r.uniform(0, 1)))
    with open("%s/work%d.jsonl" % (out, case), "w") as f:
        for j in range(r.randrange(8, 25)):
            kind = r.random()
            if kind < 0.5:
                job = {"devices": 1, "mem_percent": r.choice([10, 20, 30, 50]),
                       "compute_percent": r.choice([10, 20, 40])}
            elif kind < 0.8:
                job = {"devices": r.choice([1, 1, 2])}
            elif kind < 0.9:
                job = {"devices": 0}
            else:
                job = {"devices": 1, "mem_mib": 8000, "compute_percent": 25}
            job["cpu_milli"] = r.choice([1000, 2000, 4000])
            job["host_mem_mib"] = r.choice([2048, 8192])
            f.write(json.dumps(job) + "\n")
PY

# compare <search JSON> <exhaustive JSON> <shared|whole>: "same" when the
# search's plan costs what the exhaustive one does, or less with a count
# outside the exhaustive search's box (0..12 per type); else both costs
compare() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
try:
    a, b = json.loads(sys.argv[1])[sys.argv[3]], json.loads(sys.argv[2])[sys.argv[3]]
except Exception as e:
    print("unreadable:", sys.argv[1][:200], sys.argv[2][:200]); sys.exit(0)
inside = all(t["nodes"] <= 12 for t in a["by_type"])
if abs(a["cost_per_hour"] - b["cost_per_hour"]) < 1e-6 or (a["cost_per_hour"] < b["cost_per_hour"] and not inside):
    print("same")
else:
    print("search %.3f (%s), exhaustive %.3f (%s)" % (a["cost_per_hour"], a["by_type"], b["cost_per_hour"], b["by_type"]))
PY
}
optimal() { printf '%s' "$1" | python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print(j["shared"]["optimal"] and j["whole"]["optimal"])'; }

for c in 0 1 2 3 4 5; do
    a=$("$SIM" plan -n "$T_TMP/inv$c.jsonl" -p "$T_TMP/work$c.jsonl" --prices "$T_TMP/prices$c.txt" \
        -P fgd --success 100 --json 2>&1)
    b=$("$SIM" plan -n "$T_TMP/inv$c.jsonl" -p "$T_TMP/work$c.jsonl" --prices "$T_TMP/prices$c.txt" \
        -P fgd --success 100 --json --exhaustive 12 2>&1)
    is "$(optimal "$a" 2>&1)" True "catalogue $c: the search proves its plan optimal"
    is "$(compare "$a" "$b" shared)" same "catalogue $c: sharing costs what the exhaustive search finds"
    is "$(compare "$a" "$b" whole)" same "catalogue $c: whole GPUs cost what the exhaustive search finds"
done

# --- the example inventory: pins, per-cloud limits, the report
EX="$GP_ROOT/simulations/examples"
p=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$EX/prices.txt" \
    --success 100 --json)
is "$?" 0 "the example: three clouds, 169 services"
check=$(printf '%s' "$p" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
s, w = j["shared"], j["whole"]
ok = [s["success_pct"] == 100, w["success_pct"] == 100,
      abs(sum(t["cost_per_hour"] for t in s["by_type"]) - s["cost_per_hour"]) < 0.01,
      sum(t["gpus"] for t in s["by_type"]) == s["gpus"],
      j["gpus_saved_by_sharing"] == w["gpus"] - s["gpus"] > 0,
      abs(j["cost_saved_per_hour"] - (w["cost_per_hour"] - s["cost_per_hour"])) < 0.01,
      any(t["cloud"] == "gcp" for t in s["by_type"])]
print(" ".join(str(int(x)) for x in ok))')
is "$check" "1 1 1 1 1 1 1" "per type costs and GPUs add up; sharing saves GPUs and money; gcp-pinned services get gcp nodes"
# --max-nodes: the cloud the cheapest plans of catalogue 0 and 3 use most,
# one node fewer; the search and the exhaustive search still agree
for c in 0 3; do
    a=$("$SIM" plan -n "$T_TMP/inv$c.jsonl" -p "$T_TMP/work$c.jsonl" --prices "$T_TMP/prices$c.txt" \
        -P fgd --success 100 --json)
    lim=$(printf '%s' "$a" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
n = {}
for k in ("shared", "whole"):
    for t in j[k]["by_type"]:
        n[t["cloud"]] = max(n.get(t["cloud"], 0), t["nodes"])
c = max(n, key=n.get)
print("%s=%d" % (c, n[c] - 1))')
    a=$("$SIM" plan -n "$T_TMP/inv$c.jsonl" -p "$T_TMP/work$c.jsonl" --prices "$T_TMP/prices$c.txt" \
        -P fgd --success 100 --json --max-nodes "$lim" 2>&1)
    b=$("$SIM" plan -n "$T_TMP/inv$c.jsonl" -p "$T_TMP/work$c.jsonl" --prices "$T_TMP/prices$c.txt" \
        -P fgd --success 100 --json --max-nodes "$lim" --exhaustive 12 2>&1)
    if printf '%s' "$b" | grep -q "no inventory"; then
        like "$a" "no inventory of the node types within --max-nodes" \
             "catalogue $c, --max-nodes $lim: none, as the exhaustive search finds"
    else
        is "$(compare "$a" "$b" shared)/$(compare "$a" "$b" whole)" same/same \
           "catalogue $c, --max-nodes $lim: the cost the exhaustive search finds"
        cl=${lim%=*}; n=${lim#*=}
        m=$(printf '%s' "$a" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
print(max(sum(t["nodes"] for t in j[k]["by_type"] if t["cloud"] == sys.argv[1]) for k in ("shared", "whole")))' "$cl")
        [ -n "$m" ] && [ "$m" -le "$n" ]; ok $? "catalogue $c: at most $n nodes in $cl ($m)"
    fi
done
t=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$EX/prices.txt" \
    --success 100 --plot "$T_TMP/plan.svg")
like "$t" "sharing saves [0-9]+ GPUs and [0-9.]+ per hour" "the table says what sharing saves"
grep -q "<svg" "$T_TMP/plan.svg"; ok $? "--plot: a bar chart"

# --- bad input
e=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$EX/prices.txt" \
    --success 100 --max-nodes gcp=0,aws=0,azure=0 --plot "$T_TMP/none.svg" 2>&1); rc=$?
is "$rc" 65 "no inventory within the limits: EX_DATAERR"
like "$e" "no inventory of the node types within --max-nodes places 100.00% of the pods" "says so"
[ ! -e "$T_TMP/none.svg" ]; ok $? "and writes nothing"
printf 'aws type=g4dn.12xlarge 3.91\naws g5 5.67\n' > "$T_TMP/bad.txt"
e=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$T_TMP/bad.txt" 2>&1); rc=$?
is "$rc" 65 "a bad price line: EX_DATAERR"
like "$e" 'bad.txt:2: "g5": expected type=NAME or gpu=MODEL' "names file and line"
printf 'aws type=g4dn.12xlarge\n' > "$T_TMP/two.txt"
e=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$T_TMP/two.txt" 2>&1)
like "$e" "two.txt:1: expected CLOUD type=NAME\|gpu=MODEL PRICE" "a line without a price"
printf 'aws type=g4dn.12xlarge -3\n' > "$T_TMP/neg.txt"
e=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$T_TMP/neg.txt" 2>&1)
like "$e" 'neg.txt:1: "-3" is not a price' "a negative price"
grep -v "p4d" "$EX/prices.txt" | grep -v "A100" > "$T_TMP/nop4d.txt"
e=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$T_TMP/nop4d.txt" 2>&1); rc=$?
is "$rc" 65 "a node type without a price: EX_DATAERR"
like "$e" "inventory.jsonl:6: no price for node type p4d.24xlarge in cloud aws" "names the inventory's line"
"$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$T_TMP/missing.txt" 2>/dev/null
is "$?" 66 "a missing price file: EX_NOINPUT"
"$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$EX/prices.txt" \
    --max-nodes gcp 2>/dev/null
is "$?" 64 "--max-nodes without =N: EX_USAGE"
"$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --max-nodes gcp=1 2>/dev/null
is "$?" 64 "--max-nodes without --prices: EX_USAGE"
e=$("$SIM" plan -n "$EX/inventory.jsonl" -p "$EX/services.jsonl" --prices "$EX/prices.txt" \
    --exhaustive 10 2>&1); rc=$?
is "$rc" 64 "--exhaustive on 9 types x 0..10 nodes: EX_USAGE"
like "$e" "--exhaustive: 9 node types with 0..10 nodes each are 2.36e\+09 inventories, too many" \
     "says why"
done_testing
