#!/usr/bin/python3
"""tests/bench/ui_consoles.py - open web consoles, as the console's own
script behaves (coordinator/ui/app.js): each asks for its page's data every
second with If-None-Match over one kept-alive connection.

  ui_consoles.py API TOKEN consoles N SECONDS
      N consoles for SECONDS; their pages in turn: the overview, the nodes
      page (its first 100 nodes), the queue (active jobs).  Prints
      "requests", "modified" (200s), "not_modified" (304s), "errors",
      "bytes".
  ui_consoles.py API TOKEN latency N
      N times: submit a job (POST /v1/jobs), then poll the queue page's
      data as a console does (every second, from a random phase) until
      the job is in it.  Prints "p50_ms", "max_ms": from the submission's
      answer to the console's first sight of the job.
"""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

PAGES = ["/ui/api/overview", "/ui/api/nodes", "/ui/api/jobs?state=active"]


class Console:
    def __init__(self, api, token):
        u = urllib.parse.urlsplit(api)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn = None
        self.etags = {}

    def get(self, path):
        """(status, body) of one poll of path, with its last ETag."""
        headers = {"Authorization": "Bearer " + self.token}
        if path in self.etags:
            headers["If-None-Match"] = self.etags[path]
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request("GET", path, headers=headers)
                r = self.conn.getresponse()
                body = r.read()
                if r.status == 200 and r.getheader("ETag"):
                    self.etags[path] = r.getheader("ETag")
                return r.status, body
            except (OSError, http.client.HTTPException):
                self.conn = None   # the server closed a kept-alive connection: once more
                if attempt:
                    raise


def consoles(api, token, n, seconds):
    stats = {"requests": 0, "modified": 0, "not_modified": 0, "errors": 0, "bytes": 0}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run(i):
        c = Console(api, token)
        page = PAGES[i % len(PAGES)]
        time.sleep(random.random())   # consoles are not opened in step
        nxt = time.monotonic()
        while time.monotonic() < end:
            try:
                status, body = c.get(page)
            except (OSError, http.client.HTTPException):
                status, body = 0, b""
            with lock:
                stats["requests"] += 1
                stats["bytes"] += len(body)
                if status == 200:
                    stats["modified"] += 1
                elif status == 304:
                    stats["not_modified"] += 1
                else:
                    stats["errors"] += 1
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.monotonic()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, v in stats.items():
        print(k, v)
    return 0 if stats["errors"] == 0 and stats["requests"] > 0 else 1


def latency(api, token, n):
    c = Console(api, token)
    sub = Console(api, token)
    lat = []
    for i in range(n):
        job = "ui-latency-%d-%d" % (int(time.time()), i)
        c.get("/ui/api/jobs?state=active")   # the console is open and current
        body = json.dumps({"id": job, "devices": 1, "mem_mib": 8192, "compute_percent": 10,
                           "duration_s": 3600, "owner": "bench"})
        sub.conn = sub.conn or http.client.HTTPConnection(sub.host, sub.port, timeout=30)
        sub.conn.request("POST", "/v1/jobs", body=body,
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
        r = sub.conn.getresponse()
        r.read()
        if r.status != 201:
            print("submission of %s: HTTP %d" % (job, r.status), file=sys.stderr)
            return 1
        t0 = time.monotonic()
        time.sleep(random.random())   # where the console is in its second
        needle = ('"id":"%s"' % job).encode()
        while True:
            status, page = c.get("/ui/api/jobs?state=active")
            if status == 200 and needle in page:
                break
            if time.monotonic() - t0 > 60:
                print("%s never appeared" % job, file=sys.stderr)
                return 1
            time.sleep(1.0)
        lat.append((time.monotonic() - t0) * 1000)
    lat.sort()
    print("p50_ms %.0f" % lat[len(lat) // 2])
    print("max_ms %.0f" % lat[-1])
    return 0


def main():
    api, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "consoles":
        return consoles(api, token, int(sys.argv[4]), float(sys.argv[5]))
    if mode == "latency":
        return latency(api, token, int(sys.argv[4]))
    print("usage: ui_consoles.py API TOKEN consoles N SECONDS | latency N", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main())
