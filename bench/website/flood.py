#!/usr/bin/env python3
"""What a flood of anonymous page views from one address does to a running `leadscore serve`:
its resident memory (VmRSS) and its data directory before and after, and how many leads it
stored. Sends 100,000 page views (by default) of 100,000 different anonymous visitors from 127.0.0.1 with a
browser key, in batches of 500 as Segment's browser library batches them, twice: with the
service's default limits, and with the rate limits lifted so that only the cap on new anonymous
leads per address bounds it.

    cargo build --release -p leadscore
    python3 bench/website/flood.py [target/release/leadscore]

`BATCHES=2000` sends ten times as many (1,000,000), to see that memory does not grow with them.
"""

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

BATCHES = int(os.environ.get("BATCHES", "200"))
BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/leadscore"
SITE = "https://www.example.com"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
MODEL = '[scores.activity]\nrules = [{ name = "views", event = "page_view", points = 1 }]\n'


def key(data, *args):
    out = subprocess.run([BINARY, "keys", "create", "--data", data, "--workspace", "acme", *args],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def size(data):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(data) for f in files)


def run(label, extra):
    with tempfile.TemporaryDirectory() as data:
        admin = key(data, "--scope", "admin")
        browser = key(data, "--scope", "browser", "--origin", SITE)
        server = subprocess.Popen([BINARY, "serve", "--listen", "127.0.0.1:0", "--data", data, *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            address = None
            for line in server.stdout:
                if line.startswith("leadscore listening on http://"):
                    address = line.strip().removeprefix("leadscore listening on http://")
                    break
            host, port = address.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port))
            connection.request("POST", "/api/models", MODEL, {"Authorization": f"Bearer {admin}"})
            assert connection.getresponse().read() is not None
            time.sleep(0.5)
            rss_before, size_before = rss_kb(server.pid), size(data)
            statuses = {}
            accepted = 0
            started = time.time()
            for request in range(BATCHES):
                batch = [{"type": "page", "anonymousId": f"flood-{request}-{i}", "messageId": f"flood-{request}-{i}",
                          "properties": {"url": f"{SITE}/"}} for i in range(500)]
                body = json.dumps({"writeKey": browser, "batch": batch})
                connection.request("POST", "/v1/b", body,
                                   {"Origin": SITE, "Content-Type": "text/plain", "User-Agent": CHROME})
                answer = connection.getresponse()
                text = answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                if answer.status == 200:
                    accepted += sum(1 for item in json.loads(text)["items"] if item["status"] == "accepted")
            elapsed = time.time() - started
            time.sleep(1)
            rss_after, size_after = rss_kb(server.pid), size(data)
            print(f"{label}: {elapsed:.1f} s; requests by status {statuses}; page views stored: {accepted}; "
                  f"RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB; "
                  f"data directory {size_before:,} -> {size_after:,} bytes")
        finally:
            server.kill()
            server.wait()


run("default limits", [])
unlimited = "1000000000"
run("rate limits lifted, 100 new anonymous leads per address and hour",
    ["--browser-key-rate", unlimited, "--browser-key-burst", unlimited, "--browser-address-rate", unlimited,
     "--browser-address-burst", unlimited, "--anonymous-per-address-per-hour", "100"])
