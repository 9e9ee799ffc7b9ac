#!/usr/bin/env bash
# Changes to a job from the API (cancel, delete its record, suspend,
# resume) run in the background: the coordinator's loop does not wait for
# their round trips to etcd.  With every byte between the coordinator and
# etcd held back 1 s, a cancel takes seconds (a read, then a transaction);
# a request sent after it is answered before it.  Each change still does
# what it says.
. "$(dirname "$0")/../lib.sh"

etcd_start 1 || bail_out "etcd did not start"
relay_start || bail_out "relay did not start"
relay_coordinator c1 r1 --lease-ttl 15s || bail_out "c1 did not start"
pool_agent a1 r1 1 2xA10:24576 || bail_out "a1 did not start"
API=${POOL_API[c1]}
AUTH="Authorization: Bearer $GPUPOOL_TOKEN"
for j in j1 j2; do echo "{\"id\": \"$j\", \"devices\": 1}" | gpupool_ c1 submit - >/dev/null; done
wait_state c1 j1 running 20 && wait_state c1 j2 running 20; ok $? "two jobs run"

# change METHOD PATH NAME: the change in the background; its status goes to
# $T_TMP/NAME.code, and NAME to $T_TMP/order when it is answered
change() {
    (curl -s -m 60 -o "$T_TMP/$3.out" -w '%{http_code}' -X "$1" -H "$AUTH" "$API$2" >"$T_TMP/$3.code"
     echo "$3" >>"$T_TMP/order") &
    change_pid=$!
}
# after_change: a plain request 0.3 s after the change started, then wait
# for the change
after_change() {
    sleep 0.3
    curl -s -m 60 -o /dev/null "$API/healthz"; echo healthz >>"$T_TMP/order"
    wait "$change_pid"
}

relay_delay 1000
: >"$T_TMP/order"
change POST /v1/jobs/j2/suspend suspend; after_change
is "$(head -1 "$T_TMP/order")" healthz "a request sent while a suspend waits for etcd is answered first ($(paste -sd ' ' "$T_TMP/order"))"
is "$(cat "$T_TMP/suspend.code")" 200 "the suspend is answered 200"
like "$(tr -d ' \n' <"$T_TMP/suspend.out")" '"state":"suspended"' "and says suspended"
: >"$T_TMP/order"
change DELETE /v1/jobs/j1 cancel; after_change
is "$(head -1 "$T_TMP/order")" healthz "a request sent while a cancel waits for etcd is answered first ($(paste -sd ' ' "$T_TMP/order"))"
is "$(cat "$T_TMP/cancel.code")" 200 "the cancel is answered 200"
like "$(tr -d ' \n' <"$T_TMP/cancel.out")" '"state":"cancelled"' "and says cancelled"
: >"$T_TMP/order"
change DELETE /v1/jobs/j1/record delete; after_change
is "$(head -1 "$T_TMP/order")" healthz "a request sent while a deletion waits for etcd is answered first"
is "$(cat "$T_TMP/delete.code")" 200 "the deletion is answered 200"
relay_delay 0
is "$(etcdctl_ get /gpupool/jobs/j1 --keys-only)" "" "j1's record is gone"
is "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c j1)" 0 "and its allocation"
like "$(etcdctl_ get /gpupool/alloc/a1-0000/j2 --print-value-only | tr -d ' ')" '"suspended":true' \
     "j2's allocation says suspended"
is "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$AUTH" "$API/v1/jobs/j2/record")" 409 \
   "a live job's record cannot be deleted"
is "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$AUTH" "$API/v1/jobs/nosuch")" 404 \
   "a cancel of a job that does not exist is 404"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTH" "$API/v1/jobs/j1/resume")" 404 \
   "a resume of a deleted job is 404"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
for d in a1 c1; do stop_daemon $d; is "$?" 0 "$d exits 0"; done
done_testing
