"""Load for scripts/fault-test: concurrent registrations, logins and refreshes against accounts
replicas, reading verification links from the SMTP sink's folder. Standard library only.

    python fault_load.py --urls URL1,URL2 --mail-dir DIR --duration S --workers W

Workers start new user flows until S seconds have passed, then finish the flows they are in.

Prints one JSON line with counts at the end; exits non-zero if a request got a 5xx.
"""
import argparse
import email
import email.policy
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request

COUNTS = {}
LOCK = threading.Lock()


def count(key, n=1):
    with LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + n


def call(base, path, body=None, bearer=None, attempts=60):
    """POST/GET with retries on connection errors and 429 (limits are per replica)."""
    data = None if body is None else json.dumps(body).encode()
    for _ in range(attempts):
        req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
        req.add_header("Content-Type", "application/json")
        if bearer:
            req.add_header("Authorization", "Bearer " + bearer)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                count(f"http_{resp.status}")
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            count(f"http_{err.code}")
            if err.code == 429:
                time.sleep(float(err.headers.get("Retry-After", "1")))
                continue
            payload = err.read()
            return err.code, json.loads(payload) if payload else None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            count("connection_errors")
            time.sleep(0.5)
    raise RuntimeError(f"{path}: gave up")


def token_from_sink(mail_dir, address, timeout):
    """Waits for a verification email to `address` in the sink and returns its token."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name in sorted(os.listdir(mail_dir)):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(mail_dir, name), "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            if msg["To"] != address:
                continue
            text = msg.get_body(preferencelist=("plain",)).get_content()
            m = re.search(r"token=([A-Za-z0-9_-]{43})", text)
            if m:
                return m.group(1)
        time.sleep(0.5)
    raise RuntimeError(f"no verification email for {address}")


def user_flow(urls, mail_dir, i, mail_timeout):
    base = random.choice(urls) + "/api/v1/auth"
    address = f"fault{i}-{random.randrange(1 << 30)}@example.com"
    status, _ = call(base, "/verify-email", {"email": address})
    assert status == 200, status
    token = token_from_sink(mail_dir, address, mail_timeout)
    base = random.choice(urls) + "/api/v1/auth"
    status, body = call(base, "/complete-registration", {
        "email": address, "token": token, "password": "fault-test-password",
        "name": f"User {i}", "country": "Nowhere", "tokenDelivery": "body"})
    assert status == 200, (status, body)
    count("registrations")
    for _ in range(2):
        base = random.choice(urls) + "/api/v1/auth"
        status, body = call(base, "/login", {"email": address, "password": "fault-test-password", "tokenDelivery": "body"})
        assert status == 200, (status, body)
        count("logins")
        refresh = body["refresh_token"]
        access = body["access_token"]
        for _ in range(3):
            base = random.choice(urls) + "/api/v1/auth"
            status, body = call(base, "/refresh", {"refreshToken": refresh})
            assert status == 200, (status, body)
            count("refreshes")
            refresh, access = body["refresh_token"], body["access_token"]
        status, _ = call(base, "/logout", {}, bearer=access)
        assert status == 200
        count("logouts")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--urls", required=True)
    p.add_argument("--mail-dir", required=True)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--mail-timeout", type=float, default=240)
    a = p.parse_args()
    urls = a.urls.split(",")
    errors = []
    started = time.time()
    counter = iter(range(1 << 30))

    def worker():
        while time.time() - started < a.duration:
            with LOCK:
                i = next(counter)
            try:
                user_flow(urls, a.mail_dir, i, a.mail_timeout)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                count("flow_errors")

    threads = [threading.Thread(target=worker) for _ in range(a.workers)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    COUNTS["seconds"] = round(time.time() - start, 1)
    print(json.dumps(COUNTS, sort_keys=True))
    for e in errors[:5]:
        print("error:", e, file=sys.stderr)
    server_errors = sum(v for k, v in COUNTS.items() if k.startswith("http_5"))
    sys.exit(1 if errors or server_errors else 0)


if __name__ == "__main__":
    main()
