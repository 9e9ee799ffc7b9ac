#!/usr/bin/env bash
# Principals and roles on the REST API: a submitter of team-a cannot own,
# cancel, suspend or read team-b's jobs, nor set any quota; an operator can
# do each.  Other teams' jobs are listed without command or env; a secret
# env value reaches the job but never an answer or a log; a token removed
# from the file is refused after SIGHUP; every mutating request leaves one
# audit line naming its principal.
. "$(dirname "$0")/../lib.sh"

TOKENS=$T_TMP/tokens
mint() { # principal role team... -> the token (its hashed entry goes to $TOKENS)
    local p=$1 r=$2 args=() t
    shift 2
    for t in "$@"; do args+=(--team "$t"); done
    "$GP_BUILD/gpupool" keys token --principal "$p" --role "$r" "${args[@]}" --file "$TOKENS"
}
ALICE=$(mint alice submitter team-a)
BOB=$(mint bob submitter team-b)
OPS=$(mint ops operator)
VIEWER=$(mint viewer reader)
is "$(wc -l <"$TOKENS")" 4 "keys token appended one entry per principal"
! grep -q "$ALICE" "$TOKENS"; ok $? "the file holds no token in the clear"
like "$(grep ' alice ' "$TOKENS")" '^sha256:[0-9a-f]{64} alice submitter team-a$' \
     "an entry is sha256:<hash> principal roles teams"
is "$(stat -c %a "$TOKENS")" 600 "the token file is made 0600"

# A bad entry is a configuration error naming its file and line.
bad_file() { # LINE -> the coordinator's -n exit status and message
    { head -2 "$TOKENS"; echo "$1"; } >"$T_TMP/bad-tokens"
    local out rc
    out=$("$GP_BUILD/gpupool-coordinator" -n --region r1 --api-tokens "$T_TMP/bad-tokens" 2>&1)
    rc=$?
    echo "$out exit=$rc"
}
like "$(bad_file "sha256:abcd alice submitter team-a")" "bad-tokens:3: sha256: needs 64 hex digits.*exit=78" \
     "a short hash: exit 78, naming file and line"
like "$(bad_file "cert:x bob admin -")" 'bad-tokens:3: unknown role "admin".*exit=78' "an unknown role"
like "$(bad_file "cert:x bob submitter -")" 'bad-tokens:3: a submitter needs at least one team.*exit=78' \
     "a submitter without a team"
like "$(bad_file "cert:x bob reader -   # a comment")" 'configuration OK' "a reader without teams, and a comment"

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --audit-log "$T_TMP/audit.log" || bail_out "coordinator did not start"
API=${POOL_API[c1]}
export GPUPOOL_TOKEN=$OPS   # for the helpers (job_state)

# api TOKEN METHOD PATH [BODY]: prints the HTTP status; the answer is in
# $T_TMP/ans.  Mutating requests are counted in $T_TMP/mutations.
api() {
    local tok=$1 m=$2 p=$3 body=${4-}
    [ "$m" = GET ] || echo "$m $p" >>"$T_TMP/mutations"
    local args=(-s -m 10 -o "$T_TMP/ans" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(--data-binary "$body")
    curl "${args[@]}" "$API$p"
}
ans() { cat "$T_TMP/ans"; }

SECRET=s3cr3t-$RANDOM$RANDOM
SUM=$(printf %s "$SECRET" | sha256sum | cut -c1-64)   # the job checks the value by its hash
B1='{"id": "b1", "cpu_milli": 100, "command": ["sh", "-c", "test \"$(printf %s \"$DB_PASS\" | sha256sum | cut -c1-64)\" = '$SUM' && test \"$PLAIN\" = visible"],
     "env": {"PLAIN": "visible", "DB_PASS": {"secret": "'$SECRET'"}}}'

is "$(api "$ALICE" POST /v1/jobs '{"id": "x1", "owner": "team-b", "cpu_milli": 100}')" 403 \
   "team-a's submitter: a job owned by team-b is 403"
like "$(ans)" 'alice may not submit jobs for team team-b' "saying why"
is "$(api "$ALICE" POST /v1/jobs '{"id": "a1", "cpu_milli": 100, "command": ["sleep", "300"]}')" 201 \
   "a job without an owner is accepted"
like "$(ans)" '"owner":"team-a"' "its owner defaults to the submitter's team"
is "$(api "$BOB" POST /v1/jobs "$B1")" 201 "team-b submits b1 with a secret env value"
! grep -q "$SECRET" "$T_TMP/ans"; ok $? "the answer does not show the secret"
like "$(ans)" '"DB_PASS":\{"secret":true\}' "it shows that DB_PASS is a secret"
like "$(ans)" '"PLAIN":"visible"' "and the plain value"
is "$(api "$BOB" POST /v1/jobs '[{"id": "b2", "cpu_milli": 100}, {"id": "b3", "owner": "team-a", "cpu_milli": 100}]' | head -c 3)" 200 \
   "an array from team-b"
like "$(ans)" '"id":"b3","status":403' "its job owned by team-a is 403, alone"
is "$(api "$BOB" POST /v1/jobs '{"id": "b 9", "cpu_milli": 100}')" 400 "a bad id: 400"
like "$(ans)" 'id: \\"b 9\\" must be' "its error quotes the id"

# Nothing is placed yet (no agent): the jobs wait in the queue, listed.
is "$(api "$ALICE" GET '/v1/jobs?owner=team-b')" 200 "team-a lists team-b's jobs"
ans | grep -q '"id":"b1"' && ! ans | grep -q 'command' && ! ans | grep -q '"env"'
ok $? "without their command or env"
like "$(ans)" '"redacted":true' "marked redacted"
api "$ALICE" GET '/v1/jobs?owner=team-a' >/dev/null
like "$(ans)" '"command":\["sleep","300"\]' "its own jobs whole"

is "$(api "$ALICE" GET /v1/jobs/b1)" 403 "team-a reading team-b's job (its env): 403"
is "$(api "$ALICE" DELETE /v1/jobs/b2)" 403 "team-a cancelling team-b's job: 403"
like "$(ans)" 'alice may not change job b2 of team team-b' "saying why"
is "$(api "$ALICE" POST /v1/jobs/b1/suspend)" 403 "team-a suspending team-b's job: 403"
is "$(api "$ALICE" POST /v1/jobs/b1/resume)" 403 "team-a resuming team-b's job: 403"
is "$(api "$ALICE" PUT /v1/quotas/team-b '{"gpus": 0}')" 403 "team-a setting team-b's quota: 403"
is "$(api "$ALICE" PUT /v1/quotas/team-a '{"gpus": 8}')" 403 "team-a setting its own quota: 403"
like "$(ans)" 'changing quotas takes the operator role' "saying why"
is "$(api "$VIEWER" POST /v1/jobs '{"id": "v1", "owner": "team-a", "cpu_milli": 100}')" 403 \
   "a reader cannot submit"
is "$(api "$VIEWER" GET /v1/jobs/a1)" 403 "nor read a team's job whole"
is "$(api "$VIEWER" GET /v1/regions)" 200 "a reader reads the pool"
is "$(api "$ALICE" GET /v1/audit)" 403 "the audit log is for operators"

# The web console's data follows the same roles, and never shows a secret.
is "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$API/ui/api/jobs")" 401 \
   "the console's data without a principal: 401"
is "$(api "$ALICE" GET /ui/api/jobs/b1)" 200 "team-a opens team-b's job in the console"
like "$(ans)" '"full":false' "as metadata only"
! ans | grep -q '"command"'; ok $? "without its command"
api "$ALICE" GET /ui/api/jobs/a1 >/dev/null
like "$(ans)" '"full":true' "its own team's job in full"
api "$ALICE" GET /ui/api/jobs >/dev/null
is "$(ans | python3 -c 'import json, sys; print([j["full"] for j in json.load(sys.stdin)["jobs"] if j["id"] in ("a1", "b1")])')" \
   "[True, False]" "the console's job list: team-a's job in full, team-b's metadata-only"
api "$OPS" GET /ui/api/jobs/b1 >/dev/null
like "$(ans)" '"full":true' "an operator sees b1 in full in the console"
like "$(ans)" '"DB_PASS":\{"secret":true\}' "...its secret shown as a secret"
! grep -q "$SECRET" "$T_TMP/ans"; ok $? "...never its value"

is "$(api "$OPS" GET /v1/jobs/b1)" 200 "an operator reads team-b's job"
! grep -q "$SECRET" "$T_TMP/ans"; ok $? "without the secret value"
like "$(ans)" '"command":\["sh"' "with its command"
is "$(api "$OPS" PUT /v1/quotas/team-b '{"gpus": 4}')" 200 "an operator sets a quota"
is "$(api "$OPS" POST /v1/jobs '{"id": "o1", "owner": "team-b", "cpu_milli": 100}')" 201 \
   "an operator submits for any team"
is "$(api "$OPS" DELETE /v1/jobs/b2)" 200 "an operator cancels team-b's job"
is "$(api "$BOB" DELETE /v1/jobs/o1)" 200 "team-b cancels its own job"

# Now an agent: the jobs run; b1 checks its env itself.
pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
wait_state c1 b1 succeeded 30; ok $? "b1 ran and found DB_PASS (the secret) and PLAIN in its env"
wait_state c1 a1 running 30; ok $? "a1 runs"
is "$(api "$BOB" POST /v1/jobs/a1/suspend)" 403 "team-b suspending team-a's running job: 403"
is "$(api "$OPS" POST /v1/jobs/a1/suspend)" 200 "an operator suspends it"
is "$(api "$ALICE" POST /v1/jobs/a1/resume)" 200 "its team resumes it"
is "$(api "$BOB" DELETE /v1/jobs/a1)" 403 "team-b cancelling it: 403"
is "$(api "$ALICE" DELETE /v1/jobs/a1)" 200 "its team cancels it"

# A removed token is refused after SIGHUP.
grep -v ' alice ' "$TOKENS" >"$T_TMP/tokens.new" && cat "$T_TMP/tokens.new" >"$TOKENS"
n_reload=$(grep -c 'configuration reloaded' "$T_TMP/c1.log")
kill -HUP "$(daemon_pid c1)"
reloaded() { [ "$(grep -c 'configuration reloaded' "$T_TMP/c1.log")" -gt "$n_reload" ]; }
wait_for 10 reloaded; ok $? "c1 reloaded its principals on SIGHUP"
is "$(api "$ALICE" POST /v1/jobs '{"id": "a2", "cpu_milli": 100}')" 401 "alice's revoked token: 401"
like "$(ans)" 'API token refused \(unknown or revoked\)' "saying so"
is "$(api "$BOB" GET /v1/regions)" 200 "the others still work"
"$GP_BUILD/gpupool" --api "$API" --token "$ALICE" ls >/dev/null 2>"$T_TMP/cli.err"
is "$?" 77 "the CLI exits 77 for a refused token"
like "$(cat "$T_TMP/cli.err")" 'revoked.*HTTP 401' "and says why"

# Secrets never reach a log.
! grep -rq "$SECRET" "$T_TMP"/*.log "$T_TMP/audit.log"
ok $? "the secret is in no daemon log nor the audit log"

# The audit log: one line per mutating request, with its principal.
is "$(wc -l <"$T_TMP/audit.log")" "$(wc -l <"$T_TMP/mutations")" \
   "one audit line per mutating request of this test"
is "$(grep -c '"principal":"alice".*"method":"PUT","path":"/v1/quotas/team-b","status":403' "$T_TMP/audit.log")" 1 \
   "alice's refused quota change is there, with its principal and status"
is "$(grep -c '"principal":"ops".*"method":"DELETE","path":"/v1/jobs/b2","status":200' "$T_TMP/audit.log")" 1 \
   "the operator's cancel too"
like "$(grep '"path":"/v1/jobs","status":401' "$T_TMP/audit.log")" '"principal":null' \
     "a refused token is recorded without a principal"
like "$(grep '"id":"a1"' "$T_TMP/audit.log")" '"principal":"alice","peer":"127.0.0.1"' \
     "a submission names its job, who and from where"
is "$(grep -c '"principal":"bob".*"path":"/v1/jobs","status":200,"jobs":2,"jobs_accepted":1' "$T_TMP/audit.log")" 1 \
   "an array's line counts its jobs and those accepted"
is "$(grep -c '"path":"/v1/jobs","status":400,"error":"id: \\"b 9\\" must be' "$T_TMP/audit.log")" 1 \
   "a refusal's line carries its error, escapes and all"
out=$("$GP_BUILD/gpupool" --api "$API" --token "$OPS" audit --principal bob)
is "$?" 0 "gpupool audit (an operator)"
is "$(echo "$out" | grep -c ' bob ')" "$(grep -c '"principal":"bob"' "$T_TMP/audit.log")" \
   "lists bob's requests"
"$GP_BUILD/gpupool" --api "$API" --token "$BOB" audit >/dev/null 2>&1
is "$?" 77 "gpupool audit by a submitter: refused"
like "$("$GP_BUILD/gpupool" audit --file "$T_TMP/audit.log" --limit 1 -o json)" '"entries": \[' \
     "gpupool audit --file reads a copy of the file"

stop_daemon a1; is "$?" 0 "agent exits 0"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
