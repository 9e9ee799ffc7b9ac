#!/usr/bin/python3
"""pyagent - a gpupool/3 node agent written from README.md's "Protocol
reference" alone: Python 3, pyzmq (Debian's python3-zmq), and etcd's JSON
gateway through urllib.  It is the conformance check of that reference:
tests/protocol/conformance.t runs it against a real coordinator.

It hosts two nodes, <name>-a and <name>-b, each with two devices, on one
lease and one ZeroMQ routing id (<name>).  It registers them, says HELLO to
every coordinator of its region, bids on calls for bids with a proposal
that follows the fit rules, runs the jobs whose allocations appear under
alloc/<node>/ (polled), reports them running and ended in fenced
transactions, stops a job whose allocation is deleted, and holds a job
(SIGSTOP) while its allocation says "suspended".

With --bad-proposal PREFIX, its proposals for jobs whose id starts with
PREFIX ask four times the device's memory: the coordinator must reject them.

One line per event on stdout ("event key=value ..."), for the test to
follow.
"""
import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import zmq

VERSION = b"gpupool/3"
DEVICE_MIB = 16384
FINAL = ("succeeded", "failed", "cancelled", "lost")


def log(event, **kv):
    fields = " ".join("%s=%s" % (k, v) for k, v in kv.items())
    print(("%s %s" % (event, fields)).strip(), flush=True)


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    return base64.b64decode(s)


def prefix_end(prefix):
    p = bytearray(prefix.encode())
    p[-1] += 1
    return bytes(p)


class Etcd:
    """The few calls of etcd's v3 JSON gateway the agent needs."""

    def __init__(self, url):
        self.url = url.rstrip("/")

    def call(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
        # a streaming endpoint (keep-alive) answers {"result": {...}}
        first = text.strip().split("\n")[0]
        return json.loads(first) if first else {}

    def range_prefix(self, prefix):
        r = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return [(unb64(kv["key"]).decode(), unb64(kv.get("value", "")).decode(),
                 int(kv.get("create_revision", 0)), int(kv.get("mod_revision", 0)))
                for kv in r.get("kvs", [])]

    def get(self, key):
        r = self.call("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        if not kvs:
            return None, 0
        return unb64(kvs[0].get("value", "")).decode(), int(kvs[0].get("mod_revision", 0))

    def put(self, key, value, lease=0):
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        self.call("/v3/kv/put", body)

    def grant(self, ttl):
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease):
        r = self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(r.get("result", r).get("TTL", 0))

    def txn(self, compare, success):
        r = self.call("/v3/kv/txn", {"compare": compare, "success": success})
        return bool(r.get("succeeded", False))


def cmp_create(key, rev):
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": str(rev)}


def cmp_mod(key, rev):
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(rev)}


def set_state(rec, state, node, reason):
    """A state change: state, reason, updated_ms, node, and a history entry
    (the last 32 kept)."""
    now = int(time.time() * 1000)
    rec["state"] = state
    rec["reason"] = reason
    rec["updated_ms"] = now
    if node is not None:
        if node:
            rec["node"] = node
        else:
            rec.pop("node", None)
    hist = rec.setdefault("history", [])
    hist.append({"state": state, "node": node if node is not None else rec.get("node", ""),
                 "reason": reason, "at_ms": now})
    del hist[:-32]


class Agent:
    def __init__(self, args):
        self.args = args
        self.etcd = Etcd(args.etcd)
        self.P = args.prefix
        self.region = args.region
        self.name = args.name
        self.nodes = {}
        for suffix in ("a", "b"):
            n = "%s-%s" % (self.name, suffix)
            self.nodes[n] = {
                "name": n, "region": self.region, "cloud": "py", "zone": self.region + "-z",
                "labels": {"agent": "python"}, "cpu_milli": 8000, "mem_mib": 32768,
                "oversub": 1, "healthy": True,
                "devices": [{"uuid": "PY-%s-%d" % (n, i), "model": "PYGPU", "vendor": "nvidia",
                             "mem_mib": DEVICE_MIB, "numa": 0, "links": [1 - i],
                             "healthy": True} for i in range(2)],
            }
        self.lease = 0
        self.next_keepalive = 0
        self.zctx = zmq.Context()
        self.peers = {}           # coordinator id -> (endpoint, socket)
        self.next_peers = 0
        self.next_hello = 0
        self.allocs = {}          # (node, job) -> {"alloc", "create_rev"}
        self.running = {}         # (node, job) -> {"proc", "create_rev", "reported"}
        self.stop = False

    # ---------------------------------------------------------- register
    def register(self):
        self.lease = self.etcd.grant(self.args.lease_ttl)
        for n, rec in self.nodes.items():
            self.etcd.put(self.P + "nodes/%s/%s" % (self.region, n), json.dumps(rec), self.lease)
            usage = {"devices": [{"uuid": d["uuid"], "free_mib": d["mem_mib"], "util": 0,
                                  "healthy": True} for d in rec["devices"]],
                     "slices": [], "at_ms": int(time.time() * 1000)}
            self.etcd.put(self.P + "usage/%s/%s" % (self.region, n), json.dumps(usage), self.lease)
        self.next_keepalive = time.monotonic() + self.args.lease_ttl / 3
        log("registered", nodes=",".join(self.nodes), lease=self.lease)

    def keepalive(self):
        if time.monotonic() < self.next_keepalive:
            return
        self.next_keepalive = time.monotonic() + self.args.lease_ttl / 3
        if self.etcd.keepalive(self.lease) <= 0:
            log("lease-lost")
            self.register()

    # ---------------------------------------------------------- coordinators
    def follow_coordinators(self):
        if time.monotonic() < self.next_peers:
            return
        self.next_peers = time.monotonic() + 1
        seen = set()
        for key, value, _, _ in self.etcd.range_prefix(self.P + "coordinators/%s/" % self.region):
            cid = key.rsplit("/", 1)[1]
            rec = json.loads(value)
            seen.add(cid)
            if cid in self.peers and self.peers[cid][0] == rec["bid"]:
                continue
            if cid in self.peers:
                self.peers.pop(cid)[1].close(0)
            s = self.zctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.ROUTING_ID, self.name.encode())
            s.connect(rec["bid"])
            self.peers[cid] = (rec["bid"], s)
            log("connected", coordinator=cid, endpoint=rec["bid"])
            self.hello(s)
        for cid in list(self.peers):
            if cid not in seen:
                self.peers.pop(cid)[1].close(0)

    def hello(self, sock):
        body = {"agent": self.name, "region": self.region, "version": "pyagent-1",
                "nodes": sorted(self.nodes)}
        sock.send_multipart([VERSION, b"HELLO", json.dumps(body).encode()])

    # ---------------------------------------------------------- bids
    def device_use(self, node):
        """Per device index: [mem_mib, compute_percent, whole, count] of the
        node's allocations in etcd."""
        use = [[0, 0.0, False, 0] for _ in self.nodes[node]["devices"]]
        host = [0, 0]
        for (n, _), a in self.allocs.items():
            if n != node:
                continue
            al = a["alloc"]
            host[0] += al.get("cpu_milli", 0)
            host[1] += al.get("host_mem_mib", 0)
            for d in al.get("devices", []):
                u = use[d["index"]]
                u[0] += d.get("mem_mib", 0)
                u[1] += d.get("compute_percent", 0)
                u[2] = u[2] or d.get("whole", False)
                u[3] += 1
        return use, host

    def bid(self, job, spec, node):
        if node not in self.nodes:
            return {"job": job, "node": node, "refused": "unknown node"}
        rec = self.nodes[node]
        use, host = self.device_use(node)
        ndev = spec.get("devices", 0)
        whole = spec.get("whole", False)
        cpu = spec.get("cpu_milli", 0)
        hmem = spec.get("host_mem_mib", 0)
        if host[0] + cpu > rec["cpu_milli"] or host[1] + hmem > rec["mem_mib"]:
            return {"job": job, "node": node, "refused": "no host CPU or memory"}
        comp = spec.get("compute_percent", 0)
        picked = []
        for i, d in enumerate(rec["devices"]):
            if len(picked) == ndev:
                break
            if not d["healthy"]:
                continue
            if spec.get("models") and d["model"] not in spec["models"]:
                continue
            if d["model"] in spec.get("exclude_models", []):
                continue
            if spec.get("uuids") and d["uuid"] not in spec["uuids"]:
                continue
            if d["uuid"] in spec.get("exclude_uuids", []):
                continue
            cap = d["mem_mib"] * rec.get("oversub", 1)
            u = use[i]
            if whole:
                if u[3] == 0:
                    picked.append({"uuid": d["uuid"], "index": i, "mem_mib": d["mem_mib"],
                                   "compute_percent": 100, "whole": True})
                continue
            if "mem_mib" in spec:
                mem = spec["mem_mib"]
            elif "mem_percent" in spec:
                permille = int(spec["mem_percent"] * 10 + 0.5)
                mem = max(1, permille * d["mem_mib"] // 1000)
            else:
                mem = d["mem_mib"]
            if u[2] or u[0] + mem > cap or u[1] + comp > 100:
                continue
            picked.append({"uuid": d["uuid"], "index": i, "mem_mib": mem,
                           "compute_percent": comp, "whole": False})
        if len(picked) < ndev:
            return {"job": job, "node": node, "refused": "does not fit"}
        if self.args.bad_proposal and job.startswith(self.args.bad_proposal):
            for p in picked:
                p["mem_mib"] = 4 * DEVICE_MIB
        free = sum(1 for u in use if u[3] == 0)
        alloc = {"job": job, "node": node, "priority": spec.get("priority", 0),
                 "cpu_milli": cpu, "host_mem_mib": hmem, "devices": picked}
        return {"job": job, "node": node, "score": free / len(use), "alloc": alloc}

    def on_cfb(self, sock, body):
        bids = []
        for entry in body["jobs"]:
            for node in entry["nodes"]:
                b = self.bid(entry["job"], entry["spec"], node)
                bids.append(b)
                if "refused" in b:
                    log("refused", job=b["job"], node=node, reason=b["refused"].replace(" ", "_"))
                else:
                    log("bid", job=b["job"], node=node, score=b["score"],
                        mem=",".join(str(d["mem_mib"]) for d in b["alloc"]["devices"]))
        reply = {"round": body["round"], "agent": self.name, "bids": bids}
        sock.send_multipart([VERSION, b"BIDS", json.dumps(reply).encode()])

    def receive(self, timeout_ms):
        poller = zmq.Poller()
        socks = [s for _, s in self.peers.values()]
        for s in socks:
            poller.register(s, zmq.POLLIN)
        if not socks:
            time.sleep(timeout_ms / 1000)
            return
        for s, _ in poller.poll(timeout_ms):
            frames = s.recv_multipart()
            if len(frames) != 3 or frames[0] != VERSION:
                log("dropped", frames=len(frames))
                continue
            kind, body = frames[1].decode(), json.loads(frames[2])
            if kind == "CFB":
                log("cfb", round=body["round"], jobs=",".join(e["job"] for e in body["jobs"]))
                self.on_cfb(s, body)
            elif kind == "AWARD":
                log("award", jobs=",".join(a["job"] for a in body["jobs"]))

    # ---------------------------------------------------------- running
    def poll_allocations(self):
        now = {}
        for n in self.nodes:
            for key, value, crev, _ in self.etcd.range_prefix(self.P + "alloc/%s/" % n):
                job = key.rsplit("/", 1)[1]
                now[(n, job)] = {"alloc": json.loads(value), "create_rev": crev}
        for k in list(self.running):
            r = self.running[k]
            if k not in now or now[k]["create_rev"] != r["create_rev"]:
                # cancelled, preempted, lost, released: stop, write nothing
                if r["proc"] and r["proc"].poll() is None:
                    r["proc"].send_signal(signal.SIGCONT)   # a held job takes SIGTERM
                    r["proc"].terminate()
                    try:
                        r["proc"].wait(5)
                    except subprocess.TimeoutExpired:
                        r["proc"].kill()
                        r["proc"].wait()
                log("stopped", job=k[1], node=k[0], pid=r["proc"].pid if r["proc"] else 0)
                del self.running[k]
        self.allocs = now
        for k, a in now.items():
            if k not in self.running:
                self.start(k, a)
            else:
                self.apply_suspended(k, a["alloc"].get("suspended", False))

    def apply_suspended(self, k, on):
        """The allocation's suspended flag: this agent has no shim to hold a
        job's kernel launches, so it holds the whole process (SIGSTOP), its
        memory in place, and lets it go on resume (SIGCONT)."""
        r = self.running[k]
        if r["proc"] is None or r["proc"].poll() is not None or r.get("suspended", False) == on:
            return
        os.kill(r["proc"].pid, signal.SIGSTOP if on else signal.SIGCONT)
        r["suspended"] = on
        log("suspended" if on else "resumed", job=k[1], node=k[0], pid=r["proc"].pid)

    def start(self, k, a):
        node, job = k
        jkey = self.P + "jobs/" + job
        text, mod = self.etcd.get(jkey)
        if text is None:
            return
        rec = json.loads(text)
        if rec["state"] in FINAL:
            return    # a cancel raced the commit: the leader releases it
        devs = ",".join("%d:%s:%s" % (d["index"], d["uuid"], d["mem_mib"])
                        for d in a["alloc"].get("devices", []))
        proc = None
        if rec.get("command"):
            env = dict(os.environ)
            for name, v in rec.get("env", {}).items():
                env[name] = v["secret"] if isinstance(v, dict) else v
            env["PYAGENT_DEVICES"] = devs
            proc = subprocess.Popen(rec["command"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        self.running[k] = {"proc": proc, "create_rev": a["create_rev"], "reported": False,
                           "started": time.monotonic(),
                           "duration": rec.get("duration_s", 0)}
        log("started", job=job, node=node, pid=proc.pid if proc else 0, devices=devs)
        self.report_running(k, rec, mod)

    def report_running(self, k, rec=None, mod=0):
        """The first report: placed (attempt counted) then running, fenced on
        the allocation's create revision and the record's mod revision; a
        refused one is tried again with the record read again."""
        node, job = k
        jkey = self.P + "jobs/" + job
        if rec is None:
            text, mod = self.etcd.get(jkey)
            if text is None:
                return
            rec = json.loads(text)
        if rec["state"] == "pending":
            rec["attempts"] = rec.get("attempts", 0) + 1
            set_state(rec, "placed", node, "attempt %d" % rec["attempts"])
        set_state(rec, "running", node, "started")
        akey = self.P + "alloc/%s/%s" % (node, job)
        ok = self.etcd.txn([cmp_create(akey, self.running[k]["create_rev"]), cmp_mod(jkey, mod)],
                           [{"request_put": {"key": b64(jkey), "value": b64(json.dumps(rec))}}])
        self.running[k]["reported"] = ok
        log("reported", job=job, state="running", ok=int(ok))

    def check_ends(self):
        for k in list(self.running):
            r = self.running[k]
            node, job = k
            if not r["reported"]:
                self.report_running(k)
                continue
            code = None
            if r["proc"] is not None:
                code = r["proc"].poll()
            elif r["duration"] and time.monotonic() - r["started"] >= r["duration"]:
                code = 0
            if code is None:
                continue
            if self.report_end(node, job, r, code):
                del self.running[k]

    def report_end(self, node, job, r, code):
        jkey = self.P + "jobs/" + job
        akey = self.P + "alloc/%s/%s" % (node, job)
        text, mod = self.etcd.get(jkey)
        if text is None:
            return True
        rec = json.loads(text)
        if code < 0:
            reason, rec["exit_code"] = "killed by signal %d" % -code, 128 - code
        else:
            reason, rec["exit_code"] = "exited with code %d" % code, code
        failed = code != 0
        set_state(rec, "failed" if failed else "succeeded", node, reason)
        policy = rec.get("restart", "never")
        if (policy == "always" or (policy == "on-failure" and failed)) and \
                rec.get("attempts", 0) <= rec.get("max_restarts", 3):
            set_state(rec, "pending", "", "%s; restarting (%s)" % (reason, policy))
            rec.setdefault("region", self.region)
        ok = self.etcd.txn([cmp_create(akey, r["create_rev"]), cmp_mod(jkey, mod)],
                           [{"request_put": {"key": b64(jkey), "value": b64(json.dumps(rec))}},
                            {"request_delete_range": {"key": b64(akey)}}])
        log("reported", job=job, state=rec["state"], ok=int(ok))
        return ok

    # ---------------------------------------------------------- loop
    def run(self):
        self.register()
        log("ready", name=self.name)
        while not self.stop:
            self.keepalive()
            self.follow_coordinators()
            if time.monotonic() >= self.next_hello:
                self.next_hello = time.monotonic() + self.args.heartbeat
                for _, s in self.peers.values():
                    self.hello(s)
            self.receive(100)
            self.poll_allocations()
            self.check_ends()
        for r in self.running.values():
            if r["proc"] and r["proc"].poll() is None:
                r["proc"].terminate()
        log("exit")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--etcd", required=True, help="an etcd client URL (http://host:port)")
    ap.add_argument("--prefix", default="/gpupool/")
    ap.add_argument("--region", required=True)
    ap.add_argument("--name", required=True, help="routing id and node name prefix")
    ap.add_argument("--lease-ttl", type=int, default=3)
    ap.add_argument("--heartbeat", type=float, default=0.5)
    ap.add_argument("--bad-proposal", default="", help="job id prefix: propose 4x the memory")
    args = ap.parse_args()
    agent = Agent(args)

    def on_term(*_):
        agent.stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
