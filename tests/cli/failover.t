#!/usr/bin/env bash
# The CLI's API endpoints: GPUPOOL_API and --api take several (commas, and
# --api repeats); a request that may be repeated goes to the next endpoint
# when one cannot be reached or answers 5xx, and the note says so; a
# submission without ids is never sent twice; a coordinator killed under
# the CLI is failed over.
. "$(dirname "$0")/../lib.sh"

CLI=$GP_BUILD/gpupool
unset GPUPOOL_API GPUPOOL_TOKEN GPUPOOL_TOKEN_FILE

run() {
    "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    out=$(cat "$T_TMP/out")
    err=$(cat "$T_TMP/err")
}

# offline: the list's syntax
run "$CLI" --api "http://127.0.0.1:1,ftp://x" ls
is "$rc" 64 "a list with a non-http URL: 64"
like "$err" 'expected http:// or https:// URLs separated by commas' "...says what a list is"
run "$CLI" --api "http://127.0.0.1:1,," ls
is "$rc" 64 "an empty entry in the list: 64"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_coordinator c2 r1 || bail_out "c2 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
nodes_seen() { gpupool_ c1 nodes | grep -q 'a1-0000'; }
wait_for 15 nodes_seen || bail_out "the node is not listed"

alloc_port dead
DEAD=http://127.0.0.1:$dead
C1=${POOL_API[c1]}
C2=${POOL_API[c2]}

# A server that answers every request 503, as a coordinator that is
# shutting down does.
alloc_port sick
cat >"$T_TMP/sick.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with open(sys.argv[2], "ab") as f:
            f.write(b"%s %s %d\n" % (self.command.encode(), self.path.encode(), len(body)))
        msg = b'{"error": "shutting down"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)
    do_GET = do_POST = do_DELETE = do_PUT = answer
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("sick ready", flush=True)
s.serve_forever()
PY
start_daemon sick 'sick ready' -- python3 -u "$T_TMP/sick.py" "$sick" "$T_TMP/sick.requests" \
    || bail_out "the 503 server did not start"
SICK=http://127.0.0.1:$sick

# --- reads fail over
GPUPOOL_API="$DEAD,$C1" run "$CLI" nodes
is "$rc" 0 "GPUPOOL_API=dead,c1: nodes succeeds"
like "$out" 'a1-0000' "...with c1's answer"
is "$err" "gpupool: cannot reach $DEAD: Connection refused; trying $C1" "...noting the failover"
run "$CLI" --api "$DEAD" --api "$C2" ls
is "$rc" 0 "--api repeated: the second is used when the first is down"
GPUPOOL_API="$C1" run "$CLI" --api "$DEAD" ls
is "$rc" 69 "--api replaces GPUPOOL_API (not appended to it)"
run "$CLI" --api "$SICK,$C1" -o json nodes
is "$rc" 0 "a 503 from the first endpoint: the next answers"
like "$err" "shutting down \\(HTTP 503\\); trying $C1" "...the note gives the 503 and where it goes"
run "$CLI" --api "$DEAD,$SICK" ls
is "$rc" 69 "every endpoint failing: 69"
like "$err" "cannot reach $DEAD.*trying $SICK" "...the first failure is noted"
like "$err" "gpupool: shutting down \\(HTTP 503\\)\$" "...and the last one is the error"

# --- submissions: repeated only when they name their ids
: >"$T_TMP/sick.requests"
run "$CLI" --api "$SICK,$C1" submit - <<<'{"devices": 1, "mem_mib": 1024, "compute_percent": 10}'
is "$rc" 69 "a submission without an id is not sent to a second endpoint"
is "$(cat "$T_TMP/sick.requests")" "POST /v1/jobs 55" "...it went to the first one once"
is "$(gpupool_ c1 ls -q | wc -l)" 0 "...and no job was created"
run "$CLI" --api "$SICK,$C1" submit - <<<'[{"id": "f1", "devices": 1, "mem_mib": 1024}, {"id": "f2", "devices": 1, "mem_mib": 1024}]'
is "$rc" 0 "a submission whose jobs all name their ids fails over"
like "$out" 'f1 created' "...f1 created by c1"
run "$CLI" --api "$DEAD,$C2" submit - <<<'{"id": "f1", "devices": 1, "mem_mib": 1024}'
is "$rc" 0 "sent again through another list"
like "$out" '^f1 ' "...the same job answers (idempotent by id)"
is "$(gpupool_ c1 ls -q | sort | tr '\n' ' ')" "f1 f2 " "...and each job exists once"
run "$CLI" --api "$SICK,$C1" submit - <<<'[{"id": "f3", "devices": 1, "mem_mib": 1024}, {"devices": 1, "mem_mib": 1024}]'
is "$rc" 69 "an array with one job without an id is not repeated"

# --- writes that may be repeated: DELETE
run "$CLI" --api "$DEAD,$C1" cancel f2
is "$rc" 0 "cancel fails over"
like "$out" '^f2 cancelled$' "...f2 cancelled"

# --- a coordinator killed under the CLI: the next command goes on
stop_daemon c1 KILL
run "$CLI" --api "$C1,$C2" get f1
is "$rc" 0 "c1 killed: get goes to c2"
like "$out" 'Job: +f1' "...and shows the job"
like "$err" "cannot reach $C1: Connection refused; trying $C2" "...noting it"

stop_daemon sick
for d in a1 c2; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
