#!/usr/bin/env bash
# The audit log is rotated past audit-log-size: FILE.1 holds the older
# lines, FILE starts again, no line is lost, both stay 0600, and GET
# /v1/audit reads across the two.
. "$(dirname "$0")/../lib.sh"

TOKENS=$T_TMP/tokens
OPS=$("$GP_BUILD/gpupool" keys token --principal ops --role operator --file "$TOKENS")
etcd_start 1 || bail_out "etcd did not start"
AUDIT=$T_TMP/audit.log
pool_coordinator c1 r1 --audit-log "$AUDIT" --audit-log-size 1 || bail_out "coordinator did not start"

# 6,500 cancels of jobs that do not exist (404 each), on one connection:
# about 1.2 MiB of audit lines (some 190 bytes each).
n=6500
{
    echo "request = DELETE"
    echo "header = \"Authorization: Bearer $OPS\""
    echo "silent"
    for i in $(seq 1 $n); do
        echo "url = \"${POOL_API[c1]}/v1/jobs/nx-$i\""
        echo "output = /dev/null"
    done
} >"$T_TMP/curl.cfg"
curl -K "$T_TMP/curl.cfg"
is "$?" 0 "$n cancels sent"

[ -s "$AUDIT.1" ]; ok $? "the audit log was rotated to audit.log.1"
size1=$(stat -c %s "$AUDIT.1")
[ "$size1" -le 1048576 ]; ok $? "audit.log.1 is within audit-log-size ($size1 bytes)"
is "$(cat "$AUDIT.1" "$AUDIT" | grep -c '"method":"DELETE"')" "$n" "no line lost across the rotation"
is "$(head -1 "$AUDIT.1" | grep -o '"path":"[^"]*"')" '"path":"/v1/jobs/nx-1"' "the oldest line is in audit.log.1"
is "$(tail -1 "$AUDIT" | grep -o '"path":"[^"]*"')" "\"path\":\"/v1/jobs/nx-$n\"" "the newest in audit.log"
is "$(stat -c %a "$AUDIT" "$AUDIT.1" | sort -u)" 600 "both are 0600"
out=$(curl -s -H "Authorization: Bearer $OPS" "${POOL_API[c1]}/v1/audit?limit=$n")
is "$(echo "$out" | grep -o '"method":"DELETE"' | wc -l)" "$n" "GET /v1/audit reads across both files"
stop_daemon c1; is "$?" 0 "coordinator exits 0"
done_testing
