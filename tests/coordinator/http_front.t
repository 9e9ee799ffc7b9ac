#!/usr/bin/env bash
# The coordinator's HTTP front end against raw bytes (a small python client
# over a socket): a DELETE smuggled behind two Content-Length headers, or
# behind Transfer-Encoding with Content-Length, is never executed (400, the
# connection closed); a %00 in a job id does not cancel the job the id's
# prefix names; paths that decode badly get 400 with a JSON error and
# unknown ones 404; an id repeated in one array is stored once; slow clients
# beyond the per-client limit do not keep another client out.
. "$(dirname "$0")/../lib.sh"

command -v python3 >/dev/null || bail_out "python3 needed for the raw HTTP client"
etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --api-connections-per-client 4 --api-max-connections 8 \
    --api-header-timeout 1s || bail_out "coordinator did not start"
pool_agent a1 r1 2 2xA10:24576 || bail_out "agent did not start"
API=${POOL_API[c1]}
PORT=${API##*:}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"

# raw FILE: send FILE's bytes to the API from 127.0.0.1 ($RAW_SRC to change),
# read until the server closes; prints the answer then "closed" or
# "still open" (no close within 20 s).
raw() {
    python3 - "$PORT" "$1" "${RAW_SRC:-127.0.0.1}" <<'EOF'
import socket, sys
port, path, src = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.bind((src, 0))
s.connect(("127.0.0.1", port))
s.sendall(open(path, "rb").read())
s.settimeout(20)
out, state = b"", "closed"
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except ConnectionResetError:
    pass
except socket.timeout:
    state = "still open"
sys.stdout.write(out.decode("latin-1") + "\n" + state + "\n")
EOF
}

submit() { echo "$1" | "$GP_BUILD/gpupool" --api "$API" submit - >/dev/null; }
for id in victim victim2 decoy nultest; do
    submit "{\"id\": \"$id\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 10}" ||
        bail_out "cannot submit $id"
done
not_cancelled() { [ "$(job_state c1 "$1")" != cancelled ] && [ -n "$(job_state c1 "$1")" ]; }

# The raw client sees a pipelined DELETE executed: the check below can fail.
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nDELETE /v1/jobs/decoy HTTP/1.1\r\nHost: x\r\n%s\r\nConnection: close\r\n\r\n' \
    "$AUTH" >"$T_TMP/pair"
out=$(raw "$T_TMP/pair")
like "$out" '"state":"cancelled"' "a well-formed pipelined DELETE is executed"
is "$(job_state c1 decoy)" cancelled "the decoy is cancelled"

# Two Content-Length headers: the first (5) would end the body before the
# hidden DELETE.
hidden="DELETE /v1/jobs/victim HTTP/1.1\r\nHost: x\r\n$AUTH\r\n\r\n"
printf "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 5\r\nContent-Length: 90\r\n\r\n[1,2]$hidden" \
    "$AUTH" >"$T_TMP/cl2"
out=$(raw "$T_TMP/cl2")
like "$out" '^HTTP/1.1 400 ' "two Content-Length headers: 400"
like "$out" '\{"error":"Content-Length given more than once"\}' "with a JSON error saying why"
like "$out" 'closed$' "and the connection closed"
unlike_hidden=$(echo "$out" | grep -c 'HTTP/1.1 200')
is "$unlike_hidden" 0 "no answer to a second request"
not_cancelled victim; ok $? "the hidden DELETE was not executed: victim is $(job_state c1 victim)"

printf "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n%s\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n$hidden" \
    "$AUTH" | sed 's/victim/victim2/' >"$T_TMP/tecl"
out=$(raw "$T_TMP/tecl")
like "$out" '^HTTP/1.1 400 ' "Transfer-Encoding with Content-Length: 400"
like "$out" '\{"error":"both Transfer-Encoding and Content-Length"\}' "saying why"
like "$out" 'closed$' "and the connection closed"
not_cancelled victim2; ok $? "its hidden DELETE was not executed: victim2 is $(job_state c1 victim2)"

printf "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n%s\r\nX-Note: one\r\n two\r\n\r\n" "$AUTH" >"$T_TMP/fold"
out=$(raw "$T_TMP/fold")
like "$out" '^HTTP/1.1 400 ' "obsolete line folding: 400"
like "$out" '\{"error":"obsolete line folding' "saying why"
like "$out" 'closed$' "and the connection closed"

# %00 and friends in an id.
code() { curl -s --path-as-is -o "$T_TMP/body" -w '%{http_code}' -H "$AUTH" "$@"; }
is "$(code -X DELETE "$API/v1/jobs/nultest%00x")" 400 "DELETE /v1/jobs/nultest%00x: 400"
like "$(cat "$T_TMP/body")" '^\{"error":"%00 \(NUL\) in the path"\}$' "with a JSON error"
not_cancelled nultest; ok $? "and job nultest is not cancelled ($(job_state c1 nultest))"
is "$(code -X DELETE "$API/v1/jobs/nultest%2Fx")" 400 "an id with %2F: 400"
is "$(code "$API/v1/jobs/%ff")" 400 "GET /v1/jobs/%ff: 400"
like "$(cat "$T_TMP/body")" '^\{"error":"the path does not decode to UTF-8"\}$' "with a JSON error"
is "$(code "$API/v1/jobs/%c3%a9t%c3%a9")" 400 "an id that is UTF-8 but not a job id: 400"
like "$(cat "$T_TMP/body")" '^\{"error":"bad job id \\"été\\""\}$' "with the id in the JSON error"
is "$(code "$API/v1/jobs/../x")" 400 "GET /v1/jobs/../x: 400"
like "$(cat "$T_TMP/body")" '"error":".*\.\. segment' "saying why"
is "$(code "$API/v1/jobs//")" 404 "GET /v1/jobs//: 404"
like "$(cat "$T_TMP/body")" '"error":"no such endpoint' "with a JSON error"
is "$(code -X PUT "$API/v1/jobs//")" 404 "PUT /v1/jobs//: 404 (no such endpoint, not 405)"
is "$(code "$API/v1/jobs/decoy/frobnicate")" 404 "an unknown action: 404"
is "$(code -X PUT "$API/v1/jobs/decoy")" 405 "PUT on a job: 405"
is "$(code -X GET "$API/v1/jobs/decoy/suspend")" 405 "GET on suspend: 405"
is "$(code "$API/v1/jobs?state=cancelled&state=pending")" 400 "a query parameter twice: 400"
is "$(code "$API/v1/jobs?state=cancel%6ced")" 200 "an escaped query value is decoded"
like "$(cat "$T_TMP/body")" '"id":"decoy"' "and used: the cancelled decoy is listed"

# 200 copies of one new id in one array: one stored, the others refused.
python3 -c 'import json; print(json.dumps([{"id": "copy", "devices": 1, "mem_mib": 512}] * 200))' \
    >"$T_TMP/copies"
is "$(curl -s -o "$T_TMP/body" -w '%{http_code}' -H "$AUTH" --data-binary "@$T_TMP/copies" "$API/v1/jobs")" \
    200 "an array of 200 copies of one id: 200"
is "$(grep -o '"status":201' "$T_TMP/body" | wc -l)" 1 "one copy is stored (201)"
is "$(grep -o '"status":400,"error":"this id appears earlier in the same request"' "$T_TMP/body" | wc -l)" \
    199 "the 199 others get 400: the id appears earlier in the request"
is "$(grep -o '"status":503' "$T_TMP/body" | wc -l)" 0 "none gets 503"
is "$(etcdctl_ get /gpupool/jobs/copy --keys-only | grep -c .)" 1 "etcd holds the job once"
curl -s -o "$T_TMP/body" -H "$AUTH" --data-binary "@$T_TMP/copies" "$API/v1/jobs"
like "$(cat "$T_TMP/body")" '^\{"results":\[\{"id":"copy","status":200,' "the same array again: the first copy is 200 (stored already)"

# Ten slow clients from 127.0.0.1 (4 allowed per client, 8 in all): another
# client (127.0.0.2) is still answered, and the slow ones are closed.
python3 - "$PORT" >"$T_TMP/slow" <<'EOF'
import socket, sys
port = int(sys.argv[1])
slow = []
for i in range(10):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost:")
    slow.append(s)
o = socket.socket()
o.bind(("127.0.0.2", 0))
o.settimeout(20)
o.connect(("127.0.0.1", port))
o.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
ans = b""
try:
    while True:
        d = o.recv(4096)
        if not d:
            break
        ans += d
except socket.timeout:
    pass
print("other:", ans.split(b"\r\n")[0].decode())
closed = 0
for s in slow:
    s.settimeout(20)
    try:
        closed += s.recv(4096) == b""
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print("closed:", closed)
EOF
like "$(cat "$T_TMP/slow")" 'other: HTTP/1.1 200 OK' "10 slow connections from one client leave room for another"
like "$(cat "$T_TMP/slow")" 'closed: 10' "the slow connections are closed (over the limit, or a late header)"
is "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" 200 "the first client is served again"

kill -0 "$(daemon_pid c1)"; ok $? "the coordinator is still running"
stop_daemon c1; is "$?" 0 "and exits 0 on SIGTERM"
done_testing
