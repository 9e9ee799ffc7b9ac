#!/usr/bin/env bash
# The web console, in a real browser against a real pool: Debian's headless
# Chromium, driven through ChromeDriver by console.py (python3-selenium),
# talks to a coordinator of a pool of real etcd and a simulated agent while
# the CLI submits and cancels jobs.  The console's pages open without a
# token and show only the login page; its data needs the API's token.
# Screenshots of every page: $GP_BUILD/ui-shots/ (make ui-shots).
. "$(dirname "$0")/../lib.sh"

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] ||
   ! /usr/bin/python3 -c 'import selenium' 2>/dev/null; then
    echo "1..0 # SKIP Chromium, ChromeDriver or python3-selenium is not installed (make deps installs them)"
    exit 0
fi

SHIMTEST=$GP_BUILD/tests/shim/shimtest
PRELOAD=$GP_BUILD/libgpupool-shim.so
if [ "${GP_SAN:-0}" = 1 ]; then
    PRELOAD="$(gcc -print-file-name=libasan.so) $PRELOAD"
    export ASAN_OPTIONS=detect_leaks=0
fi
FAKELIB=$GP_BUILD/tests/fakecuda
export FAKECUDA_STATE=$T_TMP/fakegpu FAKECUDA_DEVICES=1 FAKECUDA_MEM_MIB=23034 FAKECUDA_MODEL=L4

etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "c1 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
# A node with a (fake) GPU that real processes use through the shim: its
# usage record says what a slice really uses.
start_daemon gpu1 'gpupool-agent ready' 20 -- "$GP_BUILD/gpupool-agent" --name gpu1 --region r1 \
    --nvml "$FAKELIB/libnvidia-ml.so.1" --shim "$PRELOAD" --etcd-endpoints "$ETCD_ENDPOINTS" \
    --state-dir "$T_TMP/gpu1.state" --metrics-listen 127.0.0.1:0 --lease-ttl 3s \
    --heartbeat 500ms --stop-grace 2s --usage-interval 200ms || bail_out "gpu1 did not start"
export GP_UI_HOLD_JOB="{\"id\": \"hold\", \"devices\": 1, \"mem_mib\": 4096, \"compute_percent\": 20, \"models\": [\"L4\"], \"owner\": \"team-c\", \"env\": {\"LD_LIBRARY_PATH\": \"$FAKELIB\"}, \"command\": [\"$SHIMTEST\", \"hold\", \"1024\", \"600\"]}"
API=${POOL_API[c1]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
code() { curl -s -o /dev/null -w '%{http_code}' -m 10 "$@"; }

# Without a browser: what is served to whom.
is "$(code "$API/ui/")" 200 "GET /ui/ without a token: 200 (the login page)"
page=$(curl -s -m 10 "$API/ui/")
like "$page" 'id="login"' "it is the console's page, with its login form"
isnt "$(printf '%s' "$page" | grep -c 'a1-0000')" 1 "and holds no data"
is "$(code "$API/ui/api/overview")" 401 "the console's data without a token: 401"
is "$(code -H 'Authorization: Bearer wrong' "$API/ui/api/nodes")" 401 "with a wrong token: 401"
is "$(code -H "$AUTH" "$API/ui/api/overview")" 200 "with the token: 200"
is "$(code -X POST -H "$AUTH" "$API/ui/api/jobs")" 405 "the console's data is read-only (POST: 405)"
like "$(curl -s -m 10 -H "$AUTH" "$API/ui/api/nodes")" '"name":"a1-0000"' "GET /ui/api/nodes lists the node"
etag=$(curl -s -m 10 -D - -o /dev/null -H "$AUTH" "$API/ui/api/jobs" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
is "$(code -H "$AUTH" -H "If-None-Match: $etag" "$API/ui/api/jobs")" 304 "an unchanged view with its ETag: 304"
for f in app.js app.css; do
    is "$(code "$API/ui/$f")" 200 "GET /ui/$f is served from the binary"
done
like "$(curl -s -m 10 -D - -o /dev/null "$API/ui/")" 'Content-Security-Policy: default-src .none.' \
     "the console's pages forbid anything from elsewhere (CSP)"

# In the browser.
shots=${GP_UI_SHOTS:-$GP_BUILD/ui-shots}
rm -rf "$shots"
py_rc=
while IFS= read -r line; do
    case $line in
        "ok - "*) t_result 1 "${line#ok - }" ;;
        "not ok - "*) t_result 0 "${line#not ok - }" ;;
        "# console.py exit "*) py_rc=${line##* } ;;
        *) echo "$line" ;;
    esac
done < <(GP_UI_URL="$API/ui/" GPUPOOL_API="$API" GP_UI_SHOTS="$shots" \
         timeout 600 /usr/bin/python3 "$GP_ROOT/tests/ui/console.py" 2>"$T_TMP/browser.err"; \
         echo "# console.py exit $?")
[ "${py_rc:-none}" = 0 ] || diag_file "$T_TMP/browser.err" 30
is "${py_rc:-none}" 0 "the browser session ran to its end (console.py exit 0)"
ls "$shots"/overview.png "$shots"/nodes.png "$shots"/queue.png "$shots"/job.png "$shots"/login.png >/dev/null 2>&1
ok $? "screenshots of every page in $shots"

# Jobs outlive their agent: the job holding memory is stopped by its cancel.
gpupool_ c1 cancel hold >/dev/null
ended() { compgen -G "$T_TMP/gpu1.state/done/hold*" >/dev/null; }
wait_for 30 ended; ok $? "the job holding memory is cancelled and its process ended"
stop_daemon gpu1; is "$?" 0 "the agents exit 0" && stop_daemon a1; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
