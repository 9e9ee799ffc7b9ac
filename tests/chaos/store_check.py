#!/usr/bin/env python3
"""store_check.py - the pool's invariants, read from etcd by etcdctl alone.

    etcdctl get PREFIX --prefix -w json | store_check.py PREFIX ACKED [--settled]

Independent of gpupool's own code: it parses etcdctl's JSON output with the
standard library, with its own arithmetic.  Always checked (safety):
  - no device is over-committed: allocated memory <= memory x oversub,
    compute <= 100 %, a whole-device allocation alone on its device;
  - every acknowledged job (one id per line in ACKED) is stored.
With --settled (consistency and liveness, once a fault has healed):
  - every placed/running/suspended job has exactly one allocation, on its
    node, and that node exists;
  - every allocation has a job record that says it is there, or that is
    pending (the commit writes the allocation alone: a pending record with
    an allocation is placed);
  - no acknowledged job is still pending without an allocation.
Prints "store_check: ..." with counts and one line per violation; exits 1
on any violation, 2 when the input cannot be read.
"""
import base64
import json
import sys


def main():
    if len(sys.argv) < 3:
        print("usage: store_check.py PREFIX ACKED [--settled]", file=sys.stderr)
        return 2
    prefix, acked_file = sys.argv[1], sys.argv[2]
    settled = "--settled" in sys.argv[3:]
    try:
        kvs = json.load(sys.stdin).get("kvs", [])
        with open(acked_file) as f:
            acked = sorted({line.strip() for line in f if line.strip()})
    except (OSError, ValueError) as e:
        print(f"store_check: cannot read the store or {acked_file}: {e}", file=sys.stderr)
        return 2
    nodes, allocs, jobs = {}, {}, {}
    for kv in kvs:
        key = base64.b64decode(kv["key"]).decode()[len(prefix):]
        try:
            value = json.loads(base64.b64decode(kv.get("value", "")) or b"null")
        except ValueError:
            value = None
        part = key.split("/")
        if part[0] == "nodes" and len(part) == 3:
            nodes[part[2]] = value
        elif part[0] == "alloc" and len(part) == 3:
            allocs[(part[1], part[2])] = value
        elif part[0] == "jobs" and len(part) == 2:
            jobs[part[1]] = value
    bad = []
    # Devices: what every allocation takes of them.
    use = {}
    for (node, job), al in allocs.items():
        n = nodes.get(node)
        if al is None:
            bad.append(f"allocation {node}/{job} is not JSON")
            continue
        if n is None:
            continue   # a vanished node: its allocation awaits release
        devs = {d.get("uuid"): d for d in n.get("devices", [])}
        for d in al.get("devices", []):
            dev = devs.get(d.get("uuid"))
            if dev is None:
                bad.append(f"allocation {node}/{job} names device {d.get('uuid')} the node lacks")
                continue
            u = use.setdefault(d["uuid"], {"mem": 0, "cpt": 0.0, "whole": 0, "n": 0,
                                           "cap": dev.get("mem_mib", 0) * max(n.get("oversub", 1) or 1, 1)})
            u["n"] += 1
            if d.get("whole"):
                u["whole"] += 1
                u["mem"] += dev.get("mem_mib", 0)
                u["cpt"] += 100
            else:
                u["mem"] += d.get("mem_mib", 0)
                u["cpt"] += d.get("compute_percent", 0)
    for uuid, u in sorted(use.items()):
        if u["mem"] > u["cap"]:
            bad.append(f"device {uuid}: {u['mem']} MiB allocated of {u['cap']:.0f}")
        if u["cpt"] > 100.0001:
            bad.append(f"device {uuid}: {u['cpt']:.1f}% compute allocated")
        if u["whole"] and u["n"] > 1:
            bad.append(f"device {uuid}: a whole-device allocation shares it")
    for j in acked:
        if j not in jobs:
            bad.append(f"acknowledged job {j} is not stored")
    # A pending record with an allocation is placed (the commit writes the
    # allocation alone); the record says so once the agent reports.
    placed = {job for (node, job) in allocs}
    pending = [j for j in acked
               if (jobs.get(j) or {}).get("state") == "pending" and j not in placed]
    if settled:
        per_job = {}
        for (node, job) in allocs:
            per_job.setdefault(job, []).append(node)
        for job, where in sorted(per_job.items()):
            rec = jobs.get(job)
            if len(where) > 1:
                bad.append(f"job {job} has {len(where)} allocations: {' '.join(where)}")
            if rec is None:
                bad.append(f"allocation of {job} on {where[0]} has no job record")
            elif rec.get("state") == "pending":
                pass
            elif rec.get("state") not in ("placed", "running", "suspended") or rec.get("node") != where[0]:
                bad.append(f"allocation of {job} on {where[0]}: its record says {rec.get('state')} on {rec.get('node')}")
        for job, rec in sorted(jobs.items()):
            if rec and rec.get("state") in ("placed", "running", "suspended"):
                if job not in per_job:
                    bad.append(f"job {job} is {rec.get('state')} without an allocation")
                elif rec.get("node") not in nodes:
                    bad.append(f"job {job} is {rec.get('state')} on {rec.get('node')}, which is gone")
        for j in pending:
            bad.append(f"acknowledged job {j} is still pending: {(jobs.get(j) or {}).get('reason', '')}")
    print(f"store_check: nodes={len(nodes)} allocations={len(allocs)} jobs={len(jobs)} "
          f"acknowledged={len(acked)} pending={len(pending)} violations={len(bad)}")
    for b in bad[:50]:
        print(f"violation: {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
