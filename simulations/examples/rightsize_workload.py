#!/usr/bin/env python3
"""Writes rightsize.jsonl: a week of a GPU pool's runs with what each really used.

Stated assumptions (the example's, not measurements):
- The pool: 16 nodes of 8 x A100 80 GB (rightsize_nodes.jsonl).
- Teams ask for slices the way they asked for whole GPUs before pooling: most
  ask for a whole device's memory and compute, some for half; few measure.
- What a run uses depends on its kind of job, and varies little between runs
  of one job (the same model, the same batch size):
    inference services   ask 80 GiB, 100%; use 6-20 GiB (per service), 8-25%
                         compute; each run (a deployment) 4-12 h, all week
    notebooks            ask 40 GiB, 50%; use 3-10 GiB, 2-8%; 2-8 h in working
                         hours
    fine-tuning          ask 80 GiB, 100%; use 60-74 GiB, 85-95%; 6-24 h
    CI and tests         ask 24 GiB, 30%; use 2-6 GiB, 5-15%; 10-30 min, one
                         after the other
  Run-to-run noise: memory x lognormal(sigma 0.06), compute x lognormal(0.15),
  never above the request.
Deterministic (seed 20).  python3 rightsize_workload.py > rightsize.jsonl
"""
import math
import random

rnd = random.Random(20)
WEEK = 7 * 24 * 3600
lines = []

def run(cid, team, arrival, duration, req_mem, req_cpt, use_mem, use_cpt):
    use_mem = min(req_mem, int(use_mem * math.exp(rnd.gauss(0, 0.06))))
    use_cpt = min(req_cpt, round(use_cpt * math.exp(rnd.gauss(0, 0.15)), 1))
    lines.append((arrival, '{"id": "%s", "team": "%s", "devices": 1, "mem_mib": %d, '
                  '"compute_percent": %d, "arrival": %d, "duration": %d, '
                  '"use": {"mem_mib": %d, "compute_percent": %.1f}}'
                  % (cid, team, req_mem, req_cpt, arrival, duration, use_mem, use_cpt)))

def serial(name, team, n_svc, replicas, dur_h, req, use_mem_gib, use_cpt, hours=None):
    for s in range(n_svc):
        base_mem = rnd.uniform(*use_mem_gib) * 1024
        base_cpt = rnd.uniform(*use_cpt)
        k = 0
        for r in range(replicas):
            t = rnd.uniform(0, 3600)
            while t < WEEK:
                d = rnd.uniform(*dur_h) * 3600
                if hours is None or hours[0] <= (t % 86400) / 3600 < hours[1]:
                    k += 1
                    run("%s%d-%d" % (name, s, k), team, t, d, req[0], req[1], base_mem, base_cpt)
                    t += d + rnd.uniform(60, 900)
                else:
                    t += 1800

serial("svc", "search", 14, 2, (4, 12), (81920, 100), (6, 20), (8, 25))
serial("nb", "research", 16, 1, (2, 8), (40960, 50), (3, 10), (2, 8), hours=(8, 20))
serial("ft", "foundation", 4, 1, (6, 24), (81920, 100), (60, 74), (85, 95))
serial("ci", "platform", 10, 1, (10 / 60, 30 / 60), (24576, 30), (2, 6), (5, 15))

print(__doc__.strip().replace("\n", "\n# ").join(["# ", ""]))
for _, l in sorted(lines):
    print(l)
