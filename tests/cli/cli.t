#!/usr/bin/env bash
# The gpupool CLI: its exit statuses and messages for bad command lines, bad
# files, an unreachable API, and (against a real coordinator on a
# one-member etcd) refused tokens, invalid and conflicting jobs, unknown
# jobs, oversized bodies; `keys curve` and `keys token`.
. "$(dirname "$0")/../lib.sh"

CLI=$GP_BUILD/gpupool
[ -x "$CLI" ] || bail_out "$CLI not built (make)"
unset GPUPOOL_API GPUPOOL_TOKEN GPUPOOL_TOKEN_FILE

# run CMD...: sets $out (stdout), $err (stderr) and $rc.
run() {
    "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    out=$(cat "$T_TMP/out")
    err=$(cat "$T_TMP/err")
}

# ---------------------------------------------------------------- offline

run "$CLI" --version
is "$rc" 0 "--version exits 0"
like "$out" '^gpupool [0-9]+\.[0-9]+\.[0-9]+$' "--version prints the version"

run "$CLI" --help
is "$rc" 0 "--help exits 0"
like "$out" 'Exit status:' "--help documents the exit statuses"

run "$CLI"
is "$rc" 64 "no command: 64"
run "$CLI" frobnicate
is "$rc" 64 "unknown command: 64"
like "$err" '^gpupool: unknown command "frobnicate"' "unknown command named"
run "$CLI" --bogus ls
is "$rc" 64 "unknown option: 64"
run "$CLI" -o yaml ls
is "$rc" 64 "-o yaml: 64"
run "$CLI" --api ftp://example.com ls
is "$rc" 64 "non-http API URL: 64"
run "$CLI" get
is "$rc" 64 "get without an id: 64"
run "$CLI" top --interval soon
is "$rc" 64 "top --interval soon: 64"

run "$CLI" submit "$T_TMP/missing.json"
is "$rc" 66 "submit of a missing file: 66"
like "$err" "^gpupool: cannot open $T_TMP/missing.json: No such file or directory$" "...says which file and why"
printf '{"id": "a", "devices": ' >"$T_TMP/broken.json"
run "$CLI" submit "$T_TMP/broken.json"
is "$rc" 65 "submit of a file that is not JSON: 65"
like "$err" "^gpupool: $T_TMP/broken.json: not JSON: .*line 1" "...with the parser's message and line"
echo '"just a string"' >"$T_TMP/scalar.json"
run "$CLI" submit "$T_TMP/scalar.json"
is "$rc" 65 "submit of a JSON scalar: 65"
echo '[]' >"$T_TMP/empty.json"
run "$CLI" submit "$T_TMP/empty.json"
is "$rc" 65 "submit of an empty array: 65"

run "$CLI" --token-file "$T_TMP/no-token" ls
is "$rc" 66 "missing token file: 66"
printf '# only a comment\n\n' >"$T_TMP/empty-token"
run "$CLI" --token-file "$T_TMP/empty-token" ls
is "$rc" 65 "token file without a token: 65"

# An API nothing listens on: a reserved port with no server.
alloc_port dead
run "$CLI" --api "http://127.0.0.1:$dead" ls
is "$rc" 69 "unreachable API: 69"
is "$err" "gpupool: cannot reach http://127.0.0.1:$dead: Connection refused" "...with a clear message"
GPUPOOL_API=http://127.0.0.1:$dead run "$CLI" nodes
is "$rc" 69 "GPUPOOL_API is used"

# A web server that is not the gpupool API: its 404 is not "no such job".
alloc_port web
mkdir -p "$T_TMP/www"
start_daemon web 'Serving HTTP' -- python3 -u -m http.server --bind 127.0.0.1 \
    --directory "$T_TMP/www" "$web" || bail_out "python3 -m http.server did not start"
run "$CLI" --api "http://127.0.0.1:$web" get some-job
is "$rc" 76 "get against a server that is not the gpupool API: 76"
like "$err" "^gpupool: GET http://127.0.0.1:$web/v1/jobs/some-job: the answer is not the gpupool API \\(HTTP 404" \
    "...saying so"
run "$CLI" --api "http://127.0.0.1:$web" ls
is "$rc" 76 "ls against it: 76"
stop_daemon web >/dev/null

# keys
run "$CLI" keys curve "$T_TMP/k1"
is "$rc" 0 "keys curve writes a key pair"
is "$(stat -c %a "$T_TMP/k1.key")" 600 "the .key file is mode 0600"
is "$(stat -c %a "$T_TMP/k1.pub")" 644 "the .pub file is mode 0644"
like "$(cat "$T_TMP/k1.key")" 'secret-key = .{40}' "the .key file holds the secret key"
pub=$(sed -n 's/^public-key = //p' "$T_TMP/k1.pub")
is "${#pub}" 40 "the .pub file holds a 40-character Z85 public key"
like "$out" "public-key=$(printf '%s' "$pub" | sed 's/[][\.*^$(){}?+|/]/\\&/g')" "the public key is printed"
before=$(cat "$T_TMP/k1.key")
run "$CLI" keys curve "$T_TMP/k1"
is "$rc" 73 "keys curve refuses to overwrite: 73"
like "$err" 'k1.key exists' "...and says so"
is "$(cat "$T_TMP/k1.key")" "$before" "...and the key file is unchanged"
touch "$T_TMP/k2.pub"
run "$CLI" keys curve "$T_TMP/k2"
is "$rc" 73 "keys curve refuses when only the .pub exists"
[ ! -e "$T_TMP/k2.key" ]; ok $? "...and writes no .key"
run "$CLI" keys curve "$T_TMP/no/such/dir/k"
is "$rc" 73 "keys curve into a missing folder: 73"
run "$CLI" keys token
is "$rc" 0 "keys token exits 0"
like "$out" '^[0-9a-f]{64}$' "keys token prints 64 hex characters"
t1=$out
run "$CLI" keys token
isnt "$out" "$t1" "two tokens differ"
run "$CLI" keys
is "$rc" 64 "keys without a kind: 64"

# ---------------------------------------------------------------- a coordinator

COORD=$GP_BUILD/gpupool-coordinator
if [ ! -x "$COORD" ]; then
    skip 26 "gpupool-coordinator not built"
    done_testing
fi

etcd_start 1 || bail_out "etcd did not start"
"$CLI" keys token >"$T_TMP/tokens"
good=$(cat "$T_TMP/tokens")
alloc_port api
start_daemon coord '^gpupool-coordinator ready ' -- "$COORD" --id c0 --region r1 \
    --etcd-endpoints "$ETCD_ENDPOINTS" --api-listen "127.0.0.1:$api" \
    --bid-listen tcp://127.0.0.1:0 --api-tokens "$T_TMP/tokens" --max-body 1 \
    || bail_out "coordinator did not start"
export GPUPOOL_API=http://127.0.0.1:$api

run "$CLI" ls
is "$rc" 77 "no token: 77"
run "$CLI" --token "not-$good" ls
is "$rc" 77 "wrong token: 77"
like "$err" '^gpupool: .*HTTP 401' "...the server's refusal is shown"

export GPUPOOL_TOKEN_FILE=$T_TMP/tokens
run "$CLI" ls
is "$rc" 0 "the token file's token is accepted"
run "$CLI" -o json regions
is "$rc" 0 "regions -o json"
like "$out" '"name": "r1"' "...lists the coordinator's region"

echo '{"id": "bad-1", "devices": 99}' >"$T_TMP/bad.json"
run "$CLI" submit "$T_TMP/bad.json"
is "$rc" 65 "an invalid job: 65"
like "$err" '^gpupool: .*devices.*\(HTTP 400\)$' "...with the server's message naming the field"

echo '{"id": "job-1", "devices": 1, "mem_mib": 1024, "compute_percent": 10}' >"$T_TMP/job.json"
run "$CLI" submit "$T_TMP/job.json"
is "$rc" 0 "a valid job is stored"
is "$out" "job-1 pending" "...and its id and state printed"
run "$CLI" submit - <"$T_TMP/job.json"
is "$rc" 0 "the same job again, from stdin: 0 (idempotent)"
echo '{"id": "job-1", "devices": 2}' >"$T_TMP/job-other.json"
run "$CLI" submit "$T_TMP/job-other.json"
is "$rc" 65 "the same id with another spec: 65"
like "$err" 'HTTP 409' "...a conflict"

printf '[{"id": "arr-1", "devices": 1, "mem_mib": 512, "compute_percent": 5}, {"id": "arr-2", "devices": -1}]' >"$T_TMP/arr.json"
run "$CLI" submit "$T_TMP/arr.json"
is "$rc" 65 "an array with one invalid job: 65"
like "$out" '^arr-1 created$' "...the valid one is created"
like "$err" 'arr-2: ' "...the invalid one is named"

{ printf '{"id": "big", "devices": 1, "env": {"PAD": "'; head -c 1100000 /dev/zero | tr '\0' x; printf '"}}'; } >"$T_TMP/big.json"
run "$CLI" submit "$T_TMP/big.json"
is "$rc" 65 "a body over max-body: 65"
like "$err" 'HTTP 413' "...refused with 413"

run "$CLI" get no-such-job
is "$rc" 66 "get of an unknown job: 66"
like "$err" '^gpupool: no-such-job: ' "...names the job"
run "$CLI" get job-1
is "$rc" 0 "get of a known job"
like "$out" 'State: +(pending|placed|running)' "...shows its state"
run "$CLI" ls -q
like "$out" 'job-1' "ls -q lists its id"
run "$CLI" cancel job-1 no-such-job
is "$rc" 66 "cancel of a known and an unknown job: 66"
like "$out" '^job-1 cancelled$' "...the known one is cancelled"

stop_daemon coord
is "$?" 0 "the coordinator exits 0 on SIGTERM"
done_testing
