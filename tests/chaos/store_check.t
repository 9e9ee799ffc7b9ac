#!/usr/bin/env bash
# store_check.py, the chaos suite's independent checker, reports what it
# must: planted over-commitment, a lost acknowledged job, an allocation
# without its job, a job placed twice, a pending job once settled; and
# passes a consistent store.
. "$(dirname "$0")/../lib.sh"

CHECK=$GP_ROOT/tests/chaos/store_check.py
kv() { printf '{"key":"%s","value":"%s"}' "$(printf %s "$1" | base64 -w0)" "$(printf %s "$2" | base64 -w0)"; }
store() { local IFS=,; echo "{\"kvs\":[$*]}"; }
node=$(kv /gpupool/nodes/r1/n1 '{"oversub":1,"devices":[{"uuid":"U1","mem_mib":1000},{"uuid":"U2","mem_mib":1000}]}')
j1=$(kv /gpupool/jobs/j1 '{"state":"running","node":"n1"}')
a1=$(kv /gpupool/alloc/n1/j1 '{"devices":[{"uuid":"U1","mem_mib":600,"compute_percent":50}]}')
echo j1 >"$T_TMP/acked"

out=$(store "$node" "$j1" "$a1" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled); st=$?
is "$st" 0 "a consistent store passes ($out)"
a2=$(kv /gpupool/alloc/n1/j2 '{"devices":[{"uuid":"U1","mem_mib":600,"compute_percent":10}]}')
out=$(store "$node" "$j1" "$a1" "$a2" | python3 "$CHECK" /gpupool/ "$T_TMP/acked"); st=$?
is "$st" 1 "over-committed memory fails"
like "$out" "device U1: 1200 MiB allocated of 1000" "naming the device"
w=$(kv /gpupool/alloc/n1/j2 '{"devices":[{"uuid":"U1","whole":true}]}')
out=$(store "$node" "$j1" "$a1" "$w" | python3 "$CHECK" /gpupool/ "$T_TMP/acked")
like "$out" "U1: a whole-device allocation shares it" "a shared whole device fails"
echo j9 >>"$T_TMP/acked"
out=$(store "$node" "$j1" "$a1" | python3 "$CHECK" /gpupool/ "$T_TMP/acked")
like "$out" "acknowledged job j9 is not stored" "a lost acknowledged job fails"
echo j1 >"$T_TMP/acked"
out=$(store "$node" "$j1" "$a1" "$a2" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled)
like "$out" "allocation of j2 on n1 has no job record" "an allocation without its job fails, once settled"
n2=$(kv /gpupool/nodes/r1/n2 '{"devices":[{"uuid":"U3","mem_mib":1000}]}')
a3=$(kv /gpupool/alloc/n2/j1 '{"devices":[{"uuid":"U3","mem_mib":100}]}')
out=$(store "$node" "$n2" "$j1" "$a1" "$a3" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled)
like "$out" "job j1 has 2 allocations" "a job placed twice fails"
p=$(kv /gpupool/jobs/j1 '{"state":"pending","reason":"no bids"}')
out=$(store "$node" "$p" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled)
like "$out" "acknowledged job j1 is still pending" "a pending job fails once settled"
out=$(store "$node" "$p" | python3 "$CHECK" /gpupool/ "$T_TMP/acked"); st=$?
is "$st" 0 "but not before"
out=$(store "$node" "$p" "$a1" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled); st=$?
is "$st" 0 "a pending record with its allocation is placed ($out)"
c=$(kv /gpupool/jobs/j1 '{"state":"cancelled","node":"n1"}')
out=$(store "$node" "$c" "$a1" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled)
like "$out" "allocation of j1 on n1: its record says cancelled" "an allocation of an ended job fails, once settled"
echo "not json" | python3 "$CHECK" /gpupool/ "$T_TMP/acked" >/dev/null 2>&1
is "$?" 2 "unreadable input exits 2"
done_testing
