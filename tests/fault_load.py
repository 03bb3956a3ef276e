"""Load for scripts/fault-test: concurrent user flows against accounts replicas while processes are
killed, reading links from the SMTP sink's folder. Standard library only.

    python fault_load.py --urls URL1,URL2 --mail-dir DIR --duration S --workers W --state FILE
    python fault_load.py --urls URL1,URL2 --verify FILE

Each flow: verify-email, complete-registration (session S0), login S1 + 2 refreshes + logout,
login S2 + 2 refreshes, reset-password + complete-reset (ends S0 and S2), login S3 + 2 refreshes.
Workers start flows until S seconds have passed, then finish the ones they are in, and write every
session's last refresh token and what it should be (`live`: S3; `dead`: the others) to FILE.
`--verify` then checks each: a live one still refreshes, a dead one never does.

A request that fails is retried as a client would: on a connection error (a replica killed or
restarting), on 503 (the database away: `Retry-After`), on 429. A retried request may have been
done the first time (its answer was lost): a retried complete-registration or complete-reset that
finds its token used, or a retried logout that finds the session gone, is resolved the way a
client would (sign in; treat as done), and counted. Prints one JSON line of counts; exits non-zero
on any 500, any flow that could not finish, or (in --verify) any session lost or resurrected.
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
PASSWORD = "fault-test-password"
NEW_PASSWORD = "fault-test-password-2"


def count(key, n=1):
    with LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + n


class Gone(Exception):
    """A 401 on a retry: the first attempt may have done it."""


def call(urls, path, body=None, bearer=None, deadline_s=120):
    """POST (or GET) to a random replica, retrying what a client retries; returns (status, body).
    Raises Gone for a 401 that follows a failed attempt (the lost-answer case)."""
    data = None if body is None else json.dumps(body).encode()
    deadline = time.time() + deadline_s
    retried = False
    while True:
        base = random.choice(urls) + "/api/v1/auth"
        req = urllib.request.Request(base + path, data=data,
                                     method="POST" if data is not None else "GET")
        req.add_header("Content-Type", "application/json")
        if bearer:
            req.add_header("Authorization", "Bearer " + bearer)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                count(f"http_{resp.status}")
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            count(f"http_{err.code}")
            payload = err.read()
            if err.code in (429, 503):
                time.sleep(min(float(err.headers.get("Retry-After", "1")), 2.0))
            elif err.code == 401 and retried:
                raise Gone(path)
            else:
                return err.code, json.loads(payload) if payload else None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            count("connection_errors")
            time.sleep(0.3)
        retried = True
        if time.time() > deadline:
            raise RuntimeError(f"{path}: no answer within {deadline_s} s")


def token_from_sink(mail_dir, address, kind, seen, timeout):
    """The token of a mail of `kind` (`registration` or `reset-password`) to `address` that is
    not in `seen` (a retried request sends a second mail: either token works)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name in sorted(os.listdir(mail_dir)):
            if not name.endswith(".eml") or name in seen:
                continue
            try:
                with open(os.path.join(mail_dir, name), "rb") as f:
                    msg = email.message_from_binary_file(f, policy=email.policy.default)
            except OSError:
                continue
            if msg["To"] != address:
                continue
            text = msg.get_body(preferencelist=("plain",)).get_content()
            m = re.search(rf"/auth/{kind}\?token=([A-Za-z0-9_-]{{43}})", text)
            if m:
                seen.add(name)
                return m.group(1)
        time.sleep(0.3)
    raise RuntimeError(f"no {kind} email for {address}")


def login(urls, address, password):
    status, body = call(urls, "/login",
                        {"email": address, "password": password, "tokenDelivery": "body"})
    assert status == 200, ("login", status, body)
    count("logins")
    return body["refresh_token"], body["access_token"]


def refresh(urls, tokens, times):
    refresh_token, access = tokens
    for _ in range(times):
        try:
            status, body = call(urls, "/refresh", {"refreshToken": refresh_token})
        except Gone:
            # The rotation committed and its answer was lost, past the reuse grace window: the
            # session is revoked (reuse detection). Never expected within the 10-s grace.
            count("sessions_lost_to_a_lost_answer")
            raise
        assert status == 200, ("refresh", status, body)
        count("refreshes")
        refresh_token, access = body["refresh_token"], body["access_token"]
    return refresh_token, access


def logout(urls, tokens):
    try:
        status, body = call(urls, "/logout", {}, bearer=tokens[1])
        assert status == 200, ("logout", status, body)
    except Gone:
        count("logout_answer_lost_then_done")
    count("logouts")


def user_flow(urls, mail_dir, i, mail_timeout):
    address = f"fault{i}-{random.randrange(1 << 30)}@example.com"
    seen = set()
    status, _ = call(urls, "/verify-email", {"email": address})
    assert status == 200, status
    token = token_from_sink(mail_dir, address, "registration", seen, mail_timeout)
    try:
        status, body = call(urls, "/complete-registration", {
            "email": address, "token": token, "password": PASSWORD,
            "name": f"User {i}", "country": "Nowhere", "tokenDelivery": "body"})
        assert status == 200, ("complete-registration", status, body)
        s0 = (body["refresh_token"], body["access_token"])
    except Gone:
        count("registration_answer_lost_then_signed_in")
        s0 = login(urls, address, PASSWORD)
    count("registrations")
    s1 = refresh(urls, login(urls, address, PASSWORD), 2)
    logout(urls, s1)
    s2 = refresh(urls, login(urls, address, PASSWORD), 2)
    status, _ = call(urls, "/reset-password", {"email": address})
    assert status == 200, status
    token = token_from_sink(mail_dir, address, "reset-password", seen, mail_timeout)
    try:
        status, body = call(urls, "/complete-reset",
                            {"email": address, "token": token, "newPassword": NEW_PASSWORD})
        assert status == 200, ("complete-reset", status, body)
    except Gone:
        count("reset_answer_lost_then_done")
    count("password_resets")
    s3 = refresh(urls, login(urls, address, NEW_PASSWORD), 2)
    return [
        {"user": address, "name": "S0", "refresh": s0[0], "expect": "dead"},
        {"user": address, "name": "S1", "refresh": s1[0], "expect": "dead"},
        {"user": address, "name": "S2", "refresh": s2[0], "expect": "dead"},
        {"user": address, "name": "S3", "refresh": s3[0], "expect": "live"},
    ]


def verify(urls, state_file):
    with open(state_file) as f:
        sessions = json.load(f)
    lost, resurrected = [], []
    for s in sessions:
        status, _ = call(urls, "/refresh", {"refreshToken": s["refresh"]})
        if s["expect"] == "live" and status != 200:
            lost.append((s["user"], s["name"], status))
        if s["expect"] == "dead" and status != 401:
            resurrected.append((s["user"], s["name"], status))
    result = {"sessions": len(sessions),
              "live": sum(1 for s in sessions if s["expect"] == "live"),
              "dead": sum(1 for s in sessions if s["expect"] == "dead"),
              "lost": len(lost), "resurrected": len(resurrected)}
    print(json.dumps(result, sort_keys=True))
    for item in (lost + resurrected)[:5]:
        print("session:", item, file=sys.stderr)
    sys.exit(1 if lost or resurrected else 0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--urls", required=True)
    p.add_argument("--mail-dir")
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--mail-timeout", type=float, default=240)
    p.add_argument("--state")
    p.add_argument("--verify")
    a = p.parse_args()
    urls = a.urls.split(",")
    if a.verify:
        return verify(urls, a.verify)
    errors, sessions = [], []
    started = time.time()
    counter = iter(range(1 << 30))

    def worker():
        while time.time() - started < a.duration:
            with LOCK:
                i = next(counter)
            try:
                result = user_flow(urls, a.mail_dir, i, a.mail_timeout)
                with LOCK:
                    sessions.extend(result)
                count("flows")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                count("flow_errors")

    threads = [threading.Thread(target=worker) for _ in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    COUNTS["seconds"] = round(time.time() - started, 1)
    if a.state:
        with open(a.state, "w") as f:
            json.dump(sessions, f)
    print(json.dumps(COUNTS, sort_keys=True))
    for e in errors[:5]:
        print("error:", e, file=sys.stderr)
    server_errors = sum(v for k, v in COUNTS.items() if k == "http_500")
    sys.exit(1 if errors or server_errors else 0)


if __name__ == "__main__":
    main()
