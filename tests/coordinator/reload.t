#!/usr/bin/env bash
# The coordinator's command line (-n, exit 64 and 78, --version); READY=1
# on $NOTIFY_SOCKET once ready (coordinator and agent); the coordinator's
# SIGHUP: a valid new configuration takes effect (here: the API tokens), an
# invalid one is refused and the running one kept, whole, and an option
# read only at start-up is reported as such; STOPPING=1 and exit 0 on
# SIGTERM.
. "$(dirname "$0")/../lib.sh"

NOTIFY=$GP_BUILD/tests/coordinator/notify_listen
etcd_start 1 || bail_out "etcd did not start"
start_daemon notify 'notify_listen ready' -- "$NOTIFY" "$T_TMP/notify.sock" || bail_out "no listener"

echo "token-number-one-$$" > "$T_TMP/tokens1"
echo "token-number-two-$$" > "$T_TMP/tokens2"
alloc_port port
API="http://127.0.0.1:$port"
conf() { # extra lines...
    {
        echo "id = c1"
        echo "region = r1"
        echo "etcd-endpoints = $ETCD_ENDPOINTS"
        echo "api-listen = 127.0.0.1:$port"
        echo "bid-listen = tcp://127.0.0.1:0"
        echo "lease-ttl = 2s"
        printf '%s\n' "$@"
    } > "$T_TMP/c1.conf"
}
# status TOKEN: the HTTP status of an authenticated request.
status() { curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $1" "$API/v1/jobs"; }
# msgs: what the daemons sent to $NOTIFY_SOCKET, one message a line.
msgs() { grep -v '^notify_listen ready$' "$T_TMP/notify.log"; }
reloads() { grep -c "$1" "$T_TMP/c1.log"; }

# The command line: -n checks, a bad flag is 64, a bad file 78 naming file:line.
conf "api-tokens = $T_TMP/tokens1"
out=$("$GP_BUILD/gpupool-coordinator" -c "$T_TMP/c1.conf" -n 2>&1); st=$?
is "$st" 0 "-n with a good configuration exits 0"
like "$out" "configuration OK" "...saying so"
"$GP_BUILD/gpupool-coordinator" -c "$T_TMP/c1.conf" --bogus 1 >/dev/null 2>&1
is "$?" 64 "an unknown flag: 64 (EX_USAGE)"
conf "api-tokens = $T_TMP/tokens1" "batch = nonsense"
out=$("$GP_BUILD/gpupool-coordinator" -c "$T_TMP/c1.conf" -n 2>&1); st=$?
is "$st" 78 "a bad option value in the file: 78 (EX_CONFIG)"
like "$out" "c1.conf:8: batch" "...naming the file, line and option"
like "$("$GP_BUILD/gpupool-coordinator" --version)" '^gpupool-coordinator [0-9]+\.[0-9]+\.[0-9]+$' "--version"

conf "api-tokens = $T_TMP/tokens1"
NOTIFY_SOCKET=$T_TMP/notify.sock start_daemon c1 'gpupool-coordinator ready' 30 -- \
    "$GP_BUILD/gpupool-coordinator" -c "$T_TMP/c1.conf" || bail_out "coordinator did not start"
wait_for 10 grep -qx READY=1 "$T_TMP/notify.log"
ok $? "the coordinator sends READY=1 on \$NOTIFY_SOCKET"
is "$(msgs | grep -c .)" 1 "once, and nothing else before it"
is "$(status "token-number-one-$$")" 200 "the configured token is accepted"
is "$(status "token-number-two-$$")" 401 "another is refused"

# A valid configuration: the new token file takes effect.
conf "api-tokens = $T_TMP/tokens2"
kill -HUP "$(daemon_pid c1)"
wait_for 10 bash -c "[ \$(grep -c 'configuration reloaded' $T_TMP/c1.log) -ge 1 ]"
ok $? "SIGHUP with a valid configuration: reloaded"
is "$(status "token-number-two-$$")" 200 "the new token is accepted"
is "$(status "token-number-one-$$")" 401 "the old one is refused"
wait_for 10 bash -c "[ \$(grep -c '^READY=1\$' $T_TMP/notify.log) -ge 2 ]"
is "$(msgs | tr '\n' ' ')" "READY=1 RELOADING=1 READY=1 " "systemd is told RELOADING=1, then READY=1"

# Invalid configurations: refused, and nothing of them applied -- not even
# the valid api-tokens line next to the bad one.
conf "api-tokens = $T_TMP/tokens1" "batch = nonsense"
kill -HUP "$(daemon_pid c1)"
wait_for 10 bash -c "[ \$(grep -c 'reload refused' $T_TMP/c1.log) -ge 1 ]"
ok $? "SIGHUP with a bad option value: reload refused"
like "$(grep 'reload refused' "$T_TMP/c1.log")" "batch" "naming the option"
is "$(status "token-number-two-$$")" 200 "the running configuration is kept: its token still works"
is "$(status "token-number-one-$$")" 401 "and the token of the refused file does not"
conf "api-tokens = $T_TMP/missing"
kill -HUP "$(daemon_pid c1)"
wait_for 10 bash -c "[ \$(grep -c 'reload refused' $T_TMP/c1.log) -ge 2 ]"
ok $? "SIGHUP with an api-tokens file that cannot be read: refused"
is "$(status "token-number-two-$$")" 200 "the running configuration is kept"
is "$(reloads 'configuration reloaded')" 1 "only the valid configuration was ever applied"
# A valid configuration that changes an option read only at start-up: the
# rest applies, that option is reported and kept.
conf "api-tokens = $T_TMP/tokens1" "policy = spread"
kill -HUP "$(daemon_pid c1)"
wait_for 10 bash -c "[ \$(grep -c 'configuration reloaded' $T_TMP/c1.log) -ge 2 ]"
ok $? "SIGHUP changing policy: reloaded"
like "$(grep 'changes only at restart' "$T_TMP/c1.log")" 'policy changes only at restart' \
     "the policy change is reported as needing a restart"
is "$(status "token-number-one-$$")" 200 "the other options took effect (the token file)"
kill -0 "$(daemon_pid c1)"; ok $? "the coordinator keeps running"

# The agent tells systemd too.
NOTIFY_SOCKET=$T_TMP/notify.sock pool_agent a1 r1 1 1xA10:24576 || bail_out "agent did not start"
wait_for 10 bash -c "[ \$(grep -c '^READY=1\$' $T_TMP/notify.log) -ge 4 ]"
ok $? "the agent sends READY=1 on \$NOTIFY_SOCKET"
stop_daemon a1; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0 on SIGTERM"
is "$(msgs | grep -c '^STOPPING=1$')" 2 "both sent STOPPING=1"
done_testing
