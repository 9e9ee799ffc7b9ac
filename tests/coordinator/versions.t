#!/usr/bin/env bash
# Version skew (README "Versions and upgrades").  Daemons of the previous
# release are played by this build under the test switch
# GPUPOOL_FAULT_PROTOCOLS=gpupool/2: they speak only gpupool/2, send no
# "versions" in HELLO and no WELCOME, and register no release or schema, as
# that release did.  A pool of previous-release coordinators with an agent
# of each release runs jobs; the coordinators roll (standby upgraded first,
# then the leader resigns) without losing a job or moving a placement; the
# agent of this release then speaks gpupool/3 while the old one keeps
# gpupool/2 and its jobs; the store schema stays 1 until the last agent is
# upgraded, then rises to 2; agents outside the policy are refused at HELLO
# with a clear error on both sides.
. "$(dirname "$0")/../lib.sh"

PREV=gpupool/2
run() { "$@" >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?; out=$(cat "$T_TMP/out"); err=$(cat "$T_TMP/err"); }
cli() { "$GP_BUILD/gpupool" --api "${POOL_API[c1]},${POOL_API[c2]}" "$@"; }
submit() { echo "$1" | cli submit - >/dev/null; }
sleeper() { submit "{\"id\": \"$1\", \"devices\": 1, \"uuids\": [\"$2\"], \"command\": [\"sleep\", \"600\"]}"; }
pid_of() { awk '{print $2}' "$T_TMP"/"$2".state/jobs/"$1".r*/pid 2>/dev/null | head -1; }
# "job node create-revision" of every allocation: the placements
placements() {
    etcdctl_ get /gpupool/alloc/ --prefix -w json | python3 -c '
import base64, json, sys
for kv in json.load(sys.stdin).get("kvs", []):
    k = base64.b64decode(kv["key"]).decode().split("/")
    print(k[-1], k[-2], kv["create_revision"])' | sort
}
running() { [ "$(cli -o json get "$1" | tr -d ' \n' | grep -o '"state":"[a-z]*"' | head -1)" = '"state":"running"' ]; }
schema_is() { cli regions | grep -q "^store schema $1\$"; }
logs_have() { grep -Eq -- "$2" "$T_TMP/$1.log"; }
migrated() { logs_have c1 'store schema raised from=1 to=2' || logs_have c2 'store schema raised from=1 to=2'; }

etcd_start 1 || bail_out "etcd did not start"
GPUPOOL_FAULT_PROTOCOLS=$PREV pool_coordinator c1 r1 || bail_out "c1 did not start"
GPUPOOL_FAULT_PROTOCOLS=$PREV pool_coordinator c2 r1 || bail_out "c2 did not start"
GPUPOOL_FAULT_PROTOCOLS=$PREV pool_agent old r1 1 2xA10:24576 || bail_out "old did not start"
pool_agent new r1 1 2xA10:24576 || bail_out "new did not start"

# --- previous-release coordinators, an agent of each release
sleeper o1 GPU-old-0000-0
sleeper n1 GPU-new-0000-0
wait_for 20 running o1 && wait_for 20 running n1
ok $? "coordinators of the previous release run jobs on agents of both releases"
! logs_have new 'speaks gpupool/3'; ok $? "the new agent heard no WELCOME: it speaks gpupool/2 to them"
is "$(cli regions | grep '^r1 ' | grep -o '[^ ]*$')" "-" "regions: neither coordinator says its release (the previous one did not)"
before=$(placements)
is "$(grep -c . <<<"$before")" 2 "two placements"
opid=$(pid_of o1 old)
npid=$(pid_of n1 new)

# --- the roll: the standby first, then the leader resigns
leader=$(pool_leader r1)
standby=c2; [ "$leader" = c2 ] && standby=c1
stop_daemon "$standby"
pool_coordinator "$standby" r1 || bail_out "$standby did not restart"
wait_for 10 logs_have "$standby" 'agent speaks gpupool/3 agent=new'
ok $? "the upgraded standby speaks gpupool/3 with the new agent"
wait_for 10 logs_have "$standby" 'agent speaks gpupool/2 agent=old'
ok $? "...and gpupool/2 with the old one"
stop_daemon "$leader"
is "$?" 0 "the old leader resigns (SIGTERM, exit 0)"
wait_for 10 bash -c "[ \"\$(ETCDCTL_API=3 etcdctl --endpoints '$ETCD_ENDPOINTS' get /gpupool/leader/r1 --print-value-only)\" = $standby ]"
ok $? "the upgraded standby leads"
pool_coordinator "$leader" r1 || bail_out "$leader did not restart"
sleeper o2 GPU-old-0000-1
sleeper n2 GPU-new-0000-1
wait_for 20 running o2 && wait_for 20 running n2
ok $? "after the roll, jobs are placed on both agents"
is "$(placements | grep -v '^[on]2 ')" "$before" "no placement moved or was lost (same allocations, same revisions)"
running o1 && running n1; ok $? "the jobs placed before the roll still run"
is "$(pid_of o1 old) $(pid_of n1 new)" "$opid $npid" "...the same processes"
wait_for 10 logs_have new 'speaks gpupool/3'; ok $? "the new agent now speaks gpupool/3 (WELCOME)"
like "$(cli regions | grep '^r1 ')" ' 0\.2\.0$' "regions shows the coordinators' release"
run cli nodes
like "$(grep '^old-0000 ' <<<"$out")" ' Ready +- *$' "nodes: the old agent's release is unknown (-)"
like "$(grep '^new-0000 ' <<<"$out")" ' Ready +0\.2\.0 *$' "nodes: the new agent's release"

# --- schema 1 while an agent of the previous release runs
schema_is 1; ok $? "the store schema stays 1 while an agent cannot read 2"
run cli submit - <<<'{"id": "graceful", "devices": 1, "grace_s": 5}'
is "$rc" 65 "a schema-2 field (grace_s) is refused meanwhile"
like "$err" 'grace_s: the pool stores schema 1' "...saying why"

# --- the last agent upgraded: schema 2
stop_daemon old
pool_agent old r1 1 2xA10:24576 || bail_out "old did not restart upgraded"
wait_for 20 schema_is 2; ok $? "with every daemon upgraded the leader raises the schema to 2"
wait_for 10 migrated; ok $? "...and says so"
is "$(pid_of o1 old)" "$opid" "the upgraded agent adopted its job (same process)"
running o1; ok $? "...which still runs"
run cli submit - <<<'{"id": "graceful", "devices": 1, "grace_s": 5}'
is "$rc" 0 "grace_s is accepted at schema 2"

# --- outside the policy: refused at HELLO, both sides say why
GPUPOOL_FAULT_PROTOCOLS=gpupool/1 pool_agent ancient r1 1 1xA10:24576 || bail_out "ancient did not start"
wait_for 10 logs_have ancient 'refused by coordinator=c[12]: agent ancient speaks gpupool/1; coordinator c[12] \(gpupool 0\.2\.0\) speaks gpupool/3 and gpupool/2'
ok $? "an agent of gpupool/1 is told why it is refused"
wait_for 10 logs_have "$standby" 'agent refused: agent ancient speaks gpupool/1'
ok $? "...and the coordinator logs it"
like "$(curl -s "${POOL_API[$standby]}/metrics" | grep 'protocol_errors_total{what="version"}')" ' [1-9][0-9]*$' \
    "...and counts it"
sleeper a1 GPU-ancient-0000-0
wait_for 10 bash -c "'$GP_BUILD/gpupool' --api '${POOL_API[$standby]}' get a1 | grep -q 'no agent answers'"
ok $? "a refused agent's node gets no job"
GPUPOOL_FAULT_PROTOCOLS=$PREV pool_agent stale r1 1 1xA10:24576 || bail_out "stale did not start"
wait_for 10 logs_have "$standby" 'agent refused: agent stale speaks only gpupool/2, of a release that cannot read the store.s schema 2'
ok $? "at schema 2 an agent of the previous release is refused"
pool_check >"$T_TMP/check.out"; is "$?" 0 "pool invariants hold"
done_testing
