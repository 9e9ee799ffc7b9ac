#!/usr/bin/env bash
# gpupool backup / restore-check, and a pool restored to an older point in
# time: a busy pool is backed up, runs more (new jobs start, one job is
# cancelled), is stopped, its etcd members are restored from the backup with
# etcd's own tool, and the pool starts again.  An independent check of the
# store (etcdctl + store_check.py) then finds nothing over-committed, no
# allocation without its job, every job acknowledged before the backup
# placed or ended; the jobs started after the backup (unknown to the
# restored store) are stopped; no job runs twice.
. "$(dirname "$0")/../lib.sh"

command -v python3 >/dev/null || bail_out "python3 is needed (Debian package python3)"
CHECK=$GP_ROOT/tests/chaos/store_check.py
etcd_start 3 || bail_out "etcd did not start"
pool_coordinator c1 r1 || bail_out "coordinator did not start"
# The agent restarted after the restore serves the same nodes (--name a1).
agent() { pool_agent "$1" r1 2 1xA10:24576 --state-dir "$T_TMP/agent.state" --name a1; }
agent a1 || bail_out "agent did not start"

# Each job's process is named after it (argv[0]) and this run, so that a job
# running twice would show as two processes of one name; jobs outlive their
# agent, so the test stops them itself at the end.
NAME=gpbk$$
trap 'rc=$?; pkill -f "^$NAME-"; (exit $rc); t_cleanup' EXIT
spec() { printf '"devices": 1, "mem_mib": 6144, "compute_percent": 20, "command": ["bash", "-c", "exec -a %s-%s sleep 600"]' "$NAME" "$1"; }
submit() { local id=$1; pool_submit c1 "$T_TMP/$2" "$id" 1 1 "$(spec "$id-1")"; }
running() { [ "$(job_state c1 "$1")" = running ]; }
procs() { pgrep -c -f "^$NAME-$1 " || true; }
stopped() { [ "$(procs "$1")" = 0 ]; }
not_running() { local s; s=$(job_state c2 "$1"); [ -n "$s" ] && [ "$s" != running ]; }

for j in b1 b2 b3; do submit $j acked; done
pool_submit c1 "$T_TMP/acked" b4 1 1 '"devices": 1, "mem_mib": 1024, "command": ["true"]'
for j in b1-1 b2-1 b3-1; do wait_for 20 running $j; ok $? "$j runs before the backup"; done
wait_state c1 b4-1 succeeded 20; ok $? "b4-1 ended before the backup"

# ---------------------------------------------------------------- backup
snap=$T_TMP/pool.snap
"$GP_BUILD/gpupool" backup "$snap" --etcd-endpoints "${ETCD_CLIENT_URL[1]}" >"$T_TMP/backup.out" 2>&1
is "$?" 0 "gpupool backup exits 0" || diag_file "$T_TMP/backup.out"
like "$(cat "$T_TMP/backup.out")" 'pool.snap [0-9]+ bytes, revision [0-9]+.*, 4 jobs, 2 nodes' \
    "...and says what it saved"
[ -s "$snap" ] && [ -s "$snap.meta" ] && [ ! -e "$snap.tmp" ]
ok $? "the snapshot and its metadata are written, no temporary file left"
is "$(stat -c %a "$snap")" 600 "the snapshot is readable by its owner alone"
out=$("$GP_BUILD/gpupool" restore-check "$snap" 2>&1)
is "$?" 0 "restore-check accepts it"
like "$out" 'SHA-256 trailer matches' "...having checked etcd's digest"
like "$out" 'jobs by state .*running=3' "...and says what the pool held"
like "$out" 'succeeded=1' "...including ended jobs"
ETCDCTL_API=3 etcdctl snapshot status "$snap" >/dev/null 2>&1
ok $? "etcdctl snapshot status reads the file as an etcd snapshot"
"$GP_BUILD/gpupool" backup "$snap" --etcd-endpoints "$ETCD_ENDPOINTS" >/dev/null 2>&1
is "$?" 73 "a second backup to the same file is refused (73)"
cp "$snap" "$T_TMP/bad.snap"; cp "$snap.meta" "$T_TMP/bad.snap.meta"
printf 'X' | dd of="$T_TMP/bad.snap" bs=1 seek=3000 conv=notrunc 2>/dev/null
"$GP_BUILD/gpupool" restore-check "$T_TMP/bad.snap" >/dev/null 2>"$T_TMP/bad.err"
is "$?" 65 "a damaged snapshot fails restore-check (65)"
like "$(cat "$T_TMP/bad.err")" 'SHA-256 trailer does not match' "...saying why"
head -c 1000 "$snap" >"$T_TMP/short.snap"
"$GP_BUILD/gpupool" restore-check "$T_TMP/short.snap" >/dev/null 2>&1
is "$?" 65 "...as does a truncated one"
"$GP_BUILD/gpupool" backup "$T_TMP/nothing.snap" --etcd-endpoints http://127.0.0.1:1 >/dev/null 2>&1
is "$?" 69 "a backup from an unreachable etcd fails (69)"
[ ! -e "$T_TMP/nothing.snap" ] && [ ! -e "$T_TMP/nothing.snap.tmp" ]; ok $? "...leaving no file"

# ---------------------------------------------------------------- after the backup
for j in n1 n2; do submit $j later; done
for j in n1-1 n2-1; do wait_for 20 running $j; ok $? "$j starts after the backup"; done
gpupool_ c1 cancel b1-1 >/dev/null
wait_for 20 stopped b1-1; ok $? "b1-1 is cancelled after the backup"

# ---------------------------------------------------------------- restore
stop_daemon a1 TERM        # jobs keep running across an agent's stop
stop_daemon c1 TERM
etcd_stop
is "$(procs n1-1)$(procs b2-1)" 11 "the jobs outlive the stopped pool"
for i in 0 1 2; do
    rm -rf "$T_TMP/etcd$i"
    ETCDCTL_API=3 etcdctl snapshot restore "$snap" --name "m$i" --data-dir "$T_TMP/etcd$i" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-token "$ETCD_TOKEN" \
        --initial-advertise-peer-urls "${ETCD_PEER_URL[$i]}" >"$T_TMP/restore$i.out" 2>&1 ||
        bail_out "etcdctl snapshot restore failed: $(tail -1 "$T_TMP/restore$i.out")"
done
for i in 0 1 2; do etcd_member_start "$i"; done
wait_for 30 etcdctl_ endpoint health >/dev/null 2>&1 || bail_out "the restored etcd is not healthy"
ok 0 "etcd restarts from the restored snapshot"
pool_coordinator c2 r1 || bail_out "coordinator did not restart"
agent a2 || bail_out "agent did not restart"

# The jobs started after the backup are unknown to the restored store.
for j in n1-1 n2-1; do
    wait_for 30 stopped $j
    ok $? "$j, started after the backup and unknown to the restored store, is stopped"
done
# b1-1 was cancelled after the backup: the restored store says it runs, the
# agent knows it ended; the store catches up.
wait_for 60 not_running b1-1
ok $? "b1-1, ended after the backup, is no longer running in the store ($(job_state c2 b1-1))" ||
    diag "$(grep -h 'b1-1' "$T_TMP/a2.log" "$T_TMP/c2.log" | tail -20)"
is "$(procs b1-1)" 0 "...and is not started again for its restored allocation"
for j in b2-1 b3-1; do
    is "$(procs $j)" 1 "$j runs once, adopted across the restore"
    is "$(job_state c2 $j)" running "...and the store says it runs"
done
store() { etcdctl_ get /gpupool/ --prefix -w json; }
settled() { store | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled; }
wait_for 30 settled
out=$(store | python3 "$CHECK" /gpupool/ "$T_TMP/acked" --settled)
is "$?" 0 "the restored pool passes the independent check (nothing over-committed, no allocation without its job, every job acknowledged before the backup placed or ended)" ||
    diag "$out"
gone=$(for j in n1-1 n2-1; do etcdctl_ get "/gpupool/jobs/$j" --keys-only; done | grep -c .)
is "$gone" 0 "the jobs of after the backup are not in the restored store (they must be submitted again)"
done_testing
