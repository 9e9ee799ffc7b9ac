#!/usr/bin/env bash
# gpupool logs JOB [-f] [--tail N]: a job's stdout and stderr from its node,
# through a coordinator of the node's region (which asks the node's agent
# over their channel); also after the job ended (log-retention); -f follows
# the run until it ends; a coordinator of another region sends the CLI on
# to the next endpoint (421); only the job's team or an operator reads them.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
pool_token
BOB=$("$GP_BUILD/gpupool" keys token --principal bob --role submitter --team team-b \
      --file "$T_TMP/tokens" 2>/dev/null)
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r2 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
pool_agent b1 r2 1 1xA10:24576 || bail_out "b1 did not start"
submit() { echo "$1" | gpupool_ c1 submit - >/dev/null; }
run() { out=$("$@" 2>"$T_TMP/err"); rc=$?; err=$(cat "$T_TMP/err"); }

submit '{"id": "hello", "owner": "team-a", "devices": 1, "mem_mib": 1024, "command": ["sh", "-c", "echo out-1; echo err-1 >&2; printf '"'"'caf\\303\\251 \\377\\n'"'"'; echo out-2"]}'
wait_state c1 hello succeeded 20; ok $? "a job that writes to stdout and stderr ran"
run gpupool_ c1 logs hello
is "$rc" 0 "logs exits 0"
is "$out" "$(printf 'out-1\ncaf\303\251 \357\277\275\nout-2')" \
   "its stdout on ours, after it ended (bytes that are not UTF-8 shown as U+FFFD)"
is "$err" "err-1" "its stderr on ours"
run gpupool_ c1 logs hello --tail 1
is "$out" "out-2" "--tail 1: the last line of stdout"
is "$err" "err-1" "...and of stderr"
run gpupool_ c1 -o json logs hello
like "$(tr -d ' \n' <<<"$out")" '"job":"hello".*"node":"a1-0000".*"run":"hello\.r[0-9]+".*"running":false' \
     "-o json: the node, the run and that it ended"

submit '{"id": "ticker", "owner": "team-a", "devices": 1, "mem_mib": 1024, "command": ["sh", "-c", "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.4; done"]}'
wait_state c1 ticker running 20; ok $? "a job that writes a line every 0.4 s runs"
gpupool_ c1 logs -f ticker >"$T_TMP/follow" 2>&1 &
fpid=$!; track_pid $fpid
follow_done() { ! kill -0 $fpid 2>/dev/null; }
wait_for 30 follow_done; ok $? "logs -f ends by itself when the run ends"
wait $fpid; is "$?" 0 "...with status 0"
is "$(tr '\n' ' ' <"$T_TMP/follow")" "tick-1 tick-2 tick-3 tick-4 tick-5 tick-6 " \
   "-f printed every line, in order, once"

trun=$(gpupool_ c1 -o json logs ticker | tr -d ' \n' | grep -o '"run":"[^"]*"' | head -1 | cut -d'"' -f4)
# "tick" is a prefix of "ticker": the run of the one is not the other's
submit '{"id": "tick", "owner": "team-a", "devices": 1, "mem_mib": 1024, "command": ["true"]}'
wait_state c1 tick succeeded 20
code=$(curl -s -o "$T_TMP/other" -w '%{http_code}' -H "Authorization: Bearer $GPUPOOL_TOKEN" \
       "${POOL_API[c1]}/v1/jobs/tick/logs?run=$trun")
isnt "$code" 200 "a run of another job ($trun) is not served under the name of job tick"
grep -q tick- "$T_TMP/other"; isnt "$?" 0 "...none of its lines"
submit '{"id": "waits", "owner": "team-a", "devices": 1, "gang": "gw", "gang_size": 2}'
listed() { gpupool_ c1 ls -q | grep -q '^waits$'; }
wait_for 10 listed
run gpupool_ c1 logs waits
is "$rc" 65 "a job that has not run yet: 65"
like "$err" 'has not run on a node yet' "...saying so"
run gpupool_ c1 logs nosuch
is "$rc" 66 "an unknown job: 66"

run env GPUPOOL_TOKEN="$BOB" "$GP_BUILD/gpupool" --api "${POOL_API[c1]}" logs hello
is "$rc" 77 "another team's principal may not read them (77)"
like "$err" 'HTTP 403' "...403"

submit '{"id": "far", "owner": "team-a", "devices": 1, "regions": ["r2"], "command": ["sh", "-c", "echo far-away"]}'
wait_state c1 far succeeded 20; ok $? "a job pinned to r2 ran there"
run gpupool_ c1 logs far
is "$rc" 65 "asked of r1's coordinator alone: 65"
like "$err" "node b1-0000 is in region r2: its logs are served by that region's coordinators" \
     "...saying whose they are (HTTP 421)"
run "$GP_BUILD/gpupool" --api "${POOL_API[c1]}" --api "${POOL_API[c2]}" logs far
is "$out" "far-away" "with both coordinators as endpoints the CLI moves on to r2's and prints them"

stop_daemon a1; is "$?" 0 "a1 exits 0"
for d in c1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
