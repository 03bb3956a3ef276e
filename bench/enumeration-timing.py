#!/usr/bin/env python3
"""Timing of the branches an attacker could tell apart: is an address registered?

    cargo build -p auth-accounts [--release]
    python3 bench/enumeration-timing.py [path/to/auth-accounts] [samples]

Starts the service in embedded mode (SQLite, temp dir, rate limits off, BCRYPT_COST=10 unless set),
registers two accounts (one with a password of at most 72 bytes, which bcrypt takes as is, and one
with a longer one, which is pre-hashed), then times, alternating so drift hits every branch alike:

- reset-password for a registered and for an unknown address;
- login with a wrong password over 72 bytes for each account and for an unknown address.

Prints median, p10 and p90 per branch and the difference of medians. Standard library only.
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/debug/auth-accounts"
SAMPLES = int(sys.argv[2]) if len(sys.argv) > 2 else 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(base, path, body):
    req = urllib.request.Request(f"{base}/{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status = r.status
            r.read()
    except urllib.error.HTTPError as e:
        status = e.code
        e.read()
    return status, time.perf_counter() - started


def register(base, mail_dir, email, password):
    assert post(base, "verify-email", {"email": email})[0] == 200
    deadline = time.time() + 10
    while True:
        for path in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
            text = path.read_text(errors="replace").replace("=\n", "").replace("=3D", "=")
            if email.split("@")[0] in text:
                m = re.search(r"token=([A-Za-z0-9_-]{20,})", text)
                if m:
                    body = {"email": email, "token": m.group(1), "password": password,
                            "name": "Bench", "country": "Russia", "tokenDelivery": "body"}
                    status, _ = post(base, "complete-registration", body)
                    assert status == 200, status
                    return
        assert time.time() < deadline, f"no verification email for {email}"
        time.sleep(0.1)


def summary(name, values):
    values = sorted(values)
    q = statistics.quantiles(values, n=10)
    return name, statistics.median(values), q[0], q[-1]


def report(title, branches):
    print(f"\n{title} ({len(next(iter(branches.values())))} samples each)")
    print(f"{'branch':<34} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8}")
    rows = [summary(name, v) for name, v in branches.items()]
    for name, med, p10, p90 in rows:
        print(f"{name:<34} {med * 1000:>10.3f} {p10 * 1000:>8.3f} {p90 * 1000:>8.3f}")
    medians = [r[1] for r in rows]
    print(f"{'max difference of medians':<34} {(max(medians) - min(medians)) * 1000:>10.3f}")


def main():
    work = Path(tempfile.mkdtemp(prefix="auth-timing-"))
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DATA_DIR=str(work),
               RATE_LIMIT_ENABLED="false", LOG_LEVEL="warn",
               BCRYPT_COST=os.environ.get("BCRYPT_COST", "10"))
    server = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(work / "server.log", "w"))
    base = f"http://127.0.0.1:{port}/api/v1/auth"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health/live", timeout=1).read()
                break
            except OSError:
                assert time.time() < deadline, (work / "server.log").read_text()
                time.sleep(0.2)
        mail = work / "mail"
        register(base, mail, "plain@example.com", "Short-Password-123")
        register(base, mail, "long@example.com", "L" * 90 + "-123")

        resets = {"reset, registered": [], "reset, unknown": []}
        for i in range(SAMPLES):
            for name, email in [("reset, registered", "plain@example.com"),
                                ("reset, unknown", f"nobody{i}@example.com")]:
                status, took = post(base, "reset-password", {"email": email})
                assert status == 200, status
                resets[name].append(took)
        report("reset-password", resets)

        long_wrong = "W" * 100
        logins = {"login >72 B, plain-hash account": [], "login >72 B, pre-hashed account": [],
                  "login >72 B, unknown address": []}
        for _ in range(max(SAMPLES // 10, 10)):
            for name, email in [("login >72 B, plain-hash account", "plain@example.com"),
                                ("login >72 B, pre-hashed account", "long@example.com"),
                                ("login >72 B, unknown address", "nobody@example.com")]:
                status, took = post(base, "login", {"email": email, "password": long_wrong,
                                                    "tokenDelivery": "body"})
                assert status == 401, status
                logins[name].append(took)
        report("login with a wrong password over 72 bytes", logins)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


main()
