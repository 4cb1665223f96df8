#!/usr/bin/env python3
"""Small, dependency-free API client for bench/load.sh (standard library only).

    client.py seed  N [CONCURRENCY]  create accounts S1..SN (every answer checked)
    client.py count                  print the tenant's account count (TOTAL_COUNT)
    client.py check N                fetch one seeded account and a 100-row page, and
                                     fail unless both answer METHOD_STATUS 1 as expected

The server address and credentials come from the environment: BENCH_ADDR
(host:port) and BENCH_APPKEY, BENCH_USER, BENCH_TOKEN.
"""

import http.client
import json
import os
import sys
import threading


def headers():
    return {
        "AppKey": os.environ["BENCH_APPKEY"],
        "UserName": os.environ["BENCH_USER"],
        "AccessToken": os.environ["BENCH_TOKEN"],
        "Content-Type": "application/json",
    }


def connect():
    host, port = os.environ["BENCH_ADDR"].rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def call(conn, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers())
    resp = conn.getresponse()
    raw = resp.read()
    try:
        doc = json.loads(raw)
    except ValueError:
        raise SystemExit(f"{method} {path}: HTTP {resp.status}, not JSON: {raw[:200]!r}")
    if resp.status != 200 or doc.get("METHOD_STATUS") != 1:
        raise SystemExit(f"{method} {path}: HTTP {resp.status}: {raw[:300]!r}")
    return doc


def account(n):
    return {
        "api_code": 10,
        "entity_code": 69,
        "ExtID": f"S{n}",
        "AccountName": f"Seed account {n}",
        "AccountType": 1 + n % 2,
        "AccountStatus": 1,
        "Email": f"billing{n}@seed.example.com",
        "City": "Springfield",
        "Country": "US",
    }


def seed(total, concurrency):
    next_n = iter(range(1, total + 1))
    lock = threading.Lock()
    failures = []

    def worker():
        conn = connect()
        while True:
            with lock:
                n = next(next_n, None)
            if n is None or failures:
                return
            try:
                call(conn, "POST", "/api/dynamicapi", account(n))
            except BaseException as e:  # SystemExit included: report, stop everyone
                failures.append(str(e))
                return

    workers = [threading.Thread(target=worker) for _ in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise SystemExit(f"seeding failed: {failures[0]}")


def count():
    doc = call(connect(), "GET", "/api/dynamicapi?api_code=3&entity_code=69&PageSize=1")
    return doc["TOTAL_COUNT"]


def check(seeded):
    conn = connect()
    n = max(1, seeded // 2)
    doc = call(conn, "GET", f"/api/dynamicapi?api_code=3&entity_code=69&ExtID=S{n}")
    rows = doc.get("DATA") or []
    if len(rows) != 1 or rows[0].get("ExtID") != f"S{n}":
        raise SystemExit(f"get S{n}: unexpected DATA {json.dumps(rows)[:300]}")
    doc = call(conn, "GET", "/api/dynamicapi?api_code=3&entity_code=69&PageSize=100")
    rows = doc.get("DATA") or []
    want = min(100, seeded)
    if len(rows) != want:
        raise SystemExit(f"list: {len(rows)} rows, expected {want}")
    print(f"ok: get S{n} found it; list answered {len(rows)} rows of TOTAL_COUNT {doc.get('TOTAL_COUNT')}")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "seed":
        seed(int(argv[2]), int(argv[3]) if len(argv) > 3 else 8)
    elif cmd == "count":
        print(count())
    elif cmd == "check":
        check(int(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
