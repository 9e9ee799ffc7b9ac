#!/usr/bin/env bash
# gpupool-agent --check-config refuses a shim that is not there: the
# dynamic loader would skip the preload and every job would run with its
# slice unenforced.  No shim at all is said explicitly: shim = "" (as the
# test pools do).
. "$(dirname "$0")/../lib.sh"

agent() { out=$("$GP_BUILD/gpupool-agent" --check-config --state-dir "$T_TMP/state" "$@" 2>&1); rc=$?; }
agent --shim "$T_TMP/no-such-shim.so"
is "$rc" 78 "a shim path that does not exist: refused (78)"
like "$out" "shim: $T_TMP/no-such-shim.so: No such file or directory \(jobs would run without their slice enforced" \
     "...saying which file and what it would mean"
agent --shim ""
is "$rc" 0 "no shim, said explicitly: accepted"
agent --shim "$GP_BUILD/libgpupool-shim.so"
is "$rc" 0 "the built shim: accepted"
# as LD_PRELOAD takes it: several, separated by spaces or colons
touch "$T_TMP/first.so"
agent --shim "$T_TMP/first.so $GP_BUILD/libgpupool-shim.so"
is "$rc" 0 "a preload list of files that exist: accepted"
agent --shim "$GP_BUILD/libgpupool-shim.so:$T_TMP/second.so"
is "$rc" 78 "a preload list with one missing: refused"
like "$out" "shim: $T_TMP/second.so: No such file" "...naming the missing one"
printf 'region = r1\nstate-dir = %s\nshim = %s\n' "$T_TMP/state" "$T_TMP/gone.so" >"$T_TMP/agent.conf"
out=$("$GP_BUILD/gpupool-agent" -n -c "$T_TMP/agent.conf" 2>&1); rc=$?
is "$rc" 78 "the same from a configuration file"
like "$out" "gone.so" "...naming the file"
done_testing
