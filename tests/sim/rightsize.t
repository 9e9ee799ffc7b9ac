#!/usr/bin/env bash
# gpupool-sim replay --mode time --rightsize auto: a class whose runs use
# 8 GiB and 10% of a 40 GiB / 50% request is placed with the recommendation
# once it has history (the pool's code: common/rightsize.h), a run that needs
# more than its right-sized slice is a limit hit and its class gets the OOM
# bump; the GPU time, utilization and GPUs figures are checked against a
# hand computation; the shipped example is replayed; bad input is refused.
. "$(dirname "$0")/common.sh"

cat > "$T_TMP/nodes.jsonl" <<'EOF'
{"name":"n1","cpu_milli":64000,"mem_mib":262144,"devices":[{"uuid":"g0","model":"A100","mem_mib":81920}]}
EOF
{
    for i in 0 1 2 3 4; do
        echo "{\"id\": \"train-$i\", \"devices\": 1, \"mem_mib\": 40960, \"compute_percent\": 50, \"arrival\": $((i * 3600)), \"duration\": 3600, \"use\": {\"mem_mib\": 8192, \"compute_percent\": 10}}"
    done
    for i in 5 6; do
        echo "{\"id\": \"train-$i\", \"devices\": 1, \"mem_mib\": 40960, \"compute_percent\": 50, \"arrival\": $((i * 3600)), \"duration\": 3600, \"use\": {\"mem_mib\": 9000, \"compute_percent\": 10}}"
    done
    echo '{"id": "other", "devices": 1, "mem_mib": 20480, "arrival": 0, "duration": 7200}'
} > "$T_TMP/pods.jsonl"

out=$("$SIM" replay -q --json -P binpack --mode time -n "$T_TMP/nodes.jsonl" -p "$T_TMP/pods.jsonl" --rightsize auto)
is "$?" 0 "the replay runs"
rs=$(printf '%s' "$out" | grep -o '"rightsize":{[^}]*}')
is "$(field "$rs" runs)" 8 "8 runs ended"
# As requested: 7 train runs x 0.5 GPU x 1 h + "other" 0.25 GPU x 2 h.
is "$(field "$rs" gpu_hours_before)" 4 "GPU-hours allocated as requested: 4.0"
# Right-sized: train-0 as requested (no history); train-1..5 at 8192 x 1.05
# rounded up to 128 = 8704 MiB (106 thousandths) and 10% x 1.15 rounded up
# = 12% (120 thousandths, the larger share); train-5 needed 9000: an OOM at
# 8704; train-6 at the bump's 10445 MiB and more (134): 0.5 + 0.5 +
# 5 x 0.120 + 0.134 = 1.734.
a=$(field "$rs" gpu_hours_after)
num_ge "$a" 1.72 && num_ge 1.75 "$a"; ok $? "GPU-hours as right-sized: $a (1.734 by hand)"
u=$(field "$rs" gpu_hours_used)
num_ge "$u" 1.21 && num_ge 1.23 "$u"; ok $? "GPU-hours used: $u (1.216 by hand)"
ub=$(field "$rs" util_before_pct)
num_ge "$ub" 30.3 && num_ge 30.5 "$ub"; ok $? "utilization of what was requested: $ub% (30.4 by hand)"
ua=$(field "$rs" util_after_pct)
num_ge "$ua" 69.5 && num_ge 70.5 "$ua"; ok $? "utilization of what was right-sized: $ua% (70.1 by hand)"
is "$(field "$rs" limit_hits)" 1 "one run would have hit its limit"
is "$(field "$rs" mem_hits)" 1 "its memory (9000 MiB in a slice of 8704)"
is "$(field "$rs" compute_hits)" 0 "no run was throttled"
is "$(field "$rs" gpus_before)" 0.75 "GPUs needed as requested: 0.75"
table=$("$SIM" replay -q -P binpack --mode time -n "$T_TMP/nodes.jsonl" -p "$T_TMP/pods.jsonl" --rightsize auto)
like "$table" 'binpack +8 +4\.0 +1\.7 +1\.2 +30\.4[0-9]% +70\.[0-9]+% +0\.8 +0\.8 +1 12\.50%' "the table shows the same"
off=$("$SIM" replay -q --json -P binpack --mode time -n "$T_TMP/nodes.jsonl" -p "$T_TMP/pods.jsonl")
printf '%s' "$off" | grep -q '"rightsize"'; isnt "$?" 0 "without --rightsize nothing is right-sized nor reported"

# The shipped example (README): its figures are the benchmark's.
EX="$GP_ROOT/simulations/examples"
ex=$("$SIM" replay -q --json -P fgd --mode time -n "$EX/rightsize_nodes.jsonl" -p "$EX/rightsize.jsonl" --rightsize auto)
is "$?" 0 "the example replays"
rs=$(printf '%s' "$ex" | grep -o '"rightsize":{[^}]*}')
num_gt "$(field "$rs" util_after_pct)" "$(field "$rs" util_before_pct)"
ok $? "right-sizing raises the utilization of what is allocated ($(field "$rs" util_before_pct)% -> $(field "$rs" util_after_pct)%)"

# Bad input and flags.
echo '{"id": "x", "devices": 1, "mem_mib": 1024, "use": {"mem_mib": -1}}' > "$T_TMP/bad.jsonl"
e=$("$SIM" replay -q --mode time -n "$T_TMP/nodes.jsonl" -p "$T_TMP/bad.jsonl" --rightsize auto 2>&1); rc=$?
is "$rc" 65 "a bad use exits 65"
like "$e" 'bad.jsonl:1: field "use": expected' "naming the file, the line and the field"
echo '{"id": "x", "devices": 1, "mem_mib": 1024, "class": "a b", "use": {"mem_mib": 1}}' > "$T_TMP/bad.jsonl"
e=$("$SIM" replay -q --mode time -n "$T_TMP/nodes.jsonl" -p "$T_TMP/bad.jsonl" 2>&1); rc=$?
is "$rc" 65 "a bad class exits 65"
like "$e" 'bad.jsonl:1: field "class"' "naming it"
e=$("$SIM" replay -q -n "$T_TMP/nodes.jsonl" -p "$T_TMP/pods.jsonl" --rightsize auto 2>&1); rc=$?
is "$rc" 64 "--rightsize without --mode time exits 64"
e=$("$SIM" replay -q --mode time -n "$T_TMP/nodes.jsonl" -p "$T_TMP/pods.jsonl" --rightsize maybe 2>&1); rc=$?
is "$rc" 64 "an unknown --rightsize mode exits 64"
done_testing
