#!/usr/bin/env bash
# Soak: a pool whose etcd has a small backend quota takes a steady stream of
# short jobs, more than that quota could hold without the bounded store
# (compaction, retention of ended jobs), and must never fill it; every job
# submitted is placed and recorded; the daemons' memory and descriptors do
# not grow.  Then the store is forced full (NOSPACE): the pool refuses
# submissions, barely writes, and resumes by itself within seconds of the
# documented recovery.
#
# SOAK_JOBS sets the length (default 4,000 at SOAK_RATE 100 jobs/s, about
# 16 MiB of writes against a 6 MiB quota, in `make test`; `make soak` runs
# 200,000).  It prints:
#   bench: soak_jobs N                 jobs submitted and ended
#   bench: soak_db_max_mib X           largest backend seen (quota: SOAK_QUOTA_MIB)
#   bench: soak_nospace_alarms N       want 0
#   bench: soak_rss_growth_pct X       each daemon's RSS, last tenth of the run against
#                                      the second (the first is warm-up), the worst daemon
#   bench: soak_fd_growth N            open descriptors, measured the same way
#   bench: soak_jobs_stranded N        submitted jobs still pending at the end
#   bench: nospace_recovery_s X        alarm disarmed -> a new job placed
#   bench: nospace_writes_per_s X      etcd writes refused per daemon per second while full
. "$(dirname "$0")/../lib.sh"

jobs=${SOAK_JOBS:-4000}
rate=${SOAK_RATE:-100}          # jobs per second offered
quota_mib=${SOAK_QUOTA_MIB:-6}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    rmdir "$T_TMP" && T_TMP=$(mktemp -d /dev/shm/gpupool-soak.XXXXXX) || bail_out "mktemp"
fi
ETCD_EXTRA_ARGS=(--quota-backend-bytes $((quota_mib << 20)))
etcd_start 1 || bail_out "etcd did not start"
pool_coordinator c1 r1 --lease-ttl 5s --job-retention 2s --compaction-retention 2s ||
    bail_out "c1 did not start"
pool_agent a1 r1 20 8xA100:81920 --lease-ttl 5s --usage-interval 5s || bail_out "a1 did not start"
API=${POOL_API[c1]}
db_mib() { etcdctl_ endpoint status -w json | grep -o '"dbSize":[0-9]*' | cut -d: -f2 | awk '{printf "%.1f", $1 / 1048576}'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
nfd() { ls "/proc/$1/fd" | wc -l; }
pids="$(daemon_pid c1) $(daemon_pid a1)"

# The stream: arrays of 50 half-second jobs, four requests in flight, paced
# at about SOAK_RATE jobs a second.
: >"$T_TMP/samples"
t0=$(date +%s)
db_max=0 sent=0 batch=50 k=0 inflight=()
while [ "$sent" -lt "$jobs" ]; do
    body="["
    for ((i = 0; i < batch && sent + i < jobs; i++)); do
        body+="{\"id\": \"s-$((sent + i))\", \"devices\": 1, \"mem_mib\": 1024, \"compute_percent\": 5, \"duration_s\": 0.5},"
    done
    body="${body%,}]"
    curl -s -m 30 -o /dev/null -H "Authorization: Bearer $GPUPOOL_TOKEN" --data-binary "$body" "$API/v1/jobs" &
    inflight+=($!)
    sent=$((sent + i)); k=$((k + 1))
    if [ $((k % 4)) = 0 ]; then
        wait "${inflight[@]}"; inflight=()
        # a sample: time, db size, each daemon's RSS and descriptors
        echo "$(date +%s) $(db_mib) $(for p in $pids; do echo "$(rss_kib "$p") $(nfd "$p")"; done | tr '\n' ' ')" >>"$T_TMP/samples"
        sleep "$(awk -v r="$rate" -v n=$((4 * batch)) 'BEGIN { printf "%.2f", n / r }')"
    fi
done
[ ${#inflight[@]} = 0 ] || wait "${inflight[@]}"
ended() {
    [ "$(gpupool_ c1 ls -q --state pending | grep -c .)" = 0 ] &&
    [ "$(etcdctl_ get /gpupool/alloc/ --prefix --keys-only | grep -c .)" = 0 ]
}
wait_for 120 ended; ok $? "all $jobs jobs were placed and have ended"
secs=$(( $(date +%s) - t0 ))
alarms=$(etcdctl_ alarm list | grep -c NOSPACE)
is "$alarms" 0 "the store never filled ($quota_mib MiB quota)"
n_jobs=$(etcdctl_ get /gpupool/jobs/ --prefix --keys-only | grep -c .)
diag "after ${secs}s: $n_jobs job records left in etcd (retention 2 s), backend $(db_mib) MiB"
stranded=$(gpupool_ c1 ls -q --state pending | grep -c .)
is "$stranded" 0 "no submitted job is stranded"
db_max=$(awk '{ if ($2 > m) m = $2 } END { printf "%.1f", m }' "$T_TMP/samples")
ok "$(awk -v m="$db_max" -v q="$quota_mib" 'BEGIN { exit !(m < q) }'; echo $?)" "the backend stayed under its quota (largest $db_max MiB)"
# Growth: the last tenth of the samples against the second tenth (the first
# is the daemons warming up: caches, etcd connections), the worst daemon.
growth() { # FIELD_PARITY (0: RSS, 1: descriptors) FORMAT
    awk -v par="$1" -v fmt="$2" '{ n++; for (i = 3; i <= NF; i++) v[n, i] = $i; nf = NF }
        END { t = int(n / 10); if (t < 1) t = 1; worst = 0
              for (i = 3 + par; i <= nf; i += 2) { a = 0; b = 0
                  for (r = 1; r <= t; r++) { a += v[t + r, i]; b += v[n - r + 1, i] }
                  g = fmt == "pct" ? (b - a) * 100 / a : (b - a) / t
                  if (g > worst) worst = g }
              printf fmt == "pct" ? "%.1f" : "%d", worst }' "$T_TMP/samples"
}
rss_growth=$(growth 0 pct)
fd_growth=$(growth 1 count)

# Forced full: more than the quota written.
etcd_fill /filler/
like "$(etcdctl_ alarm list)" NOSPACE "the store is forced full"
echo '{"id": "nospace-1", "devices": 1, "mem_mib": 1024}' | gpupool_ c1 submit - >/dev/null 2>&1
metric_sum() { # sum of a metric's series on each daemon's /metrics
    local m=$1 url s=0 v
    for url in "$API/metrics" "http://127.0.0.1:$(sed -n 's/.*metrics=\([0-9]*\).*/\1/p' "$T_TMP/a1.log" | head -1)/metrics"; do
        v=$(curl -s "$url" | awk -v m="$m" 'index($1, m) == 1 && /kind="nospace"/ { s += $2 } END { print s + 0 }')
        s=$((s + ${v%.*}))
    done
    echo "$s"
}
w0=$(metric_sum gpupool_); sleep 10; w1=$(metric_sum gpupool_)
writes=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", (b - a) / 10 / 2 }')
etcd_recover_nospace /filler/
healed=$(date +%s%N)
placed() { echo '{"id": "after-nospace", "devices": 1, "mem_mib": 1024}' | gpupool_ c1 submit - >/dev/null 2>&1
           [ "$(job_state c1 after-nospace)" = running ]; }
wait_for 60 placed; ok $? "after the documented recovery a new job is stored and placed"
rec=$(awk -v ns=$(( $(date +%s%N) - healed )) 'BEGIN { printf "%.1f", ns / 1e9 }')

echo "bench: soak_jobs $jobs"
echo "bench: soak_db_max_mib $db_max"
echo "bench: soak_nospace_alarms $alarms"
echo "bench: soak_rss_growth_pct $rss_growth"
echo "bench: soak_fd_growth $fd_growth"
echo "bench: soak_jobs_stranded $stranded"
echo "bench: nospace_recovery_s $rec"
echo "bench: nospace_writes_per_s $writes"
echo "# $jobs jobs of 0.5 s in ${secs} s; etcd quota $quota_mib MiB; job-retention 2 s, compaction-retention 2 s"
stop_daemon a1; is "$?" 0 "the agent exits 0"
stop_daemon c1; is "$?" 0 "the coordinator exits 0"
done_testing
