"""The rolling upgrade and the rollback of docs/upgrading.md, with two real auth-accounts binaries.

    upgrade_test.py PREVIOUS_BIN NEW_BIN DATABASE_URL|sqlite

1. The previous release starts on an empty database (its own schema), a user registers and logs in.
2. `NEW_BIN migrate` applies the new release's migrations while the previous release serves.
3. The previous release keeps working on the migrated schema (refresh, login, register, logout):
   an older binary tolerates migrations it does not know. (Its `check` command may still flag them:
   releases before 0005_event_trace did; the new one's `check` notes them and passes.)
4. The new release starts beside it (`MIGRATE_ON_START=false`, as the production overlay runs it):
   sessions, access tokens and refresh tokens cross between the two in both directions, and a
   logout at one is a logout at the other.
5. Rollback: the new release stops; the previous one still serves every session.

Both run their relays (mail to a folder); the mails of both are read to register. Exits non-zero,
with both services' logs, on the first broken promise.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PREFIX = "/api/v1/auth"
PASSWORD = "correct-horse-battery"
FRONTEND = "http://localhost:3000"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, name, binary, work, database_url, extra=None):
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.log_path = os.path.join(work, f"{name}.log")
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "ENV": "dev",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATA_DIR": os.path.join(work, "data"),
            "MAIL_DIR": os.path.join(work, "mail"),
            "DATABASE_URL": database_url,
            "JWT_PRIVATE_KEY_PATH": os.path.join(work, "certs", "private.pem"),
            "JWT_PUBLIC_KEY_PATH": os.path.join(work, "certs", "public.pem"),
            "FRONTEND_URL": FRONTEND,
            "RATE_LIMIT_ENABLED": "false",
            "BCRYPT_COST": "4",
            "HOSTNAME": name,
            "LOG_LEVEL": "info",
        }
        env.update(extra or {})
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            if self.process.poll() is not None:
                fail(f"{name} exited with {self.process.returncode} at start")
            try:
                status, _ = self.call("GET", "/health/ready")
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                fail(f"{name} not ready within 30 s")
            time.sleep(0.1)

    def call(self, method, path, body=None, bearer=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else None
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


SERVICES = []


def fail(message):
    print(f"upgrade-test: FAILED: {message}", file=sys.stderr)
    for service in SERVICES:
        service.stop()
        print(f"--- {service.name} log ---", file=sys.stderr)
        with open(service.log_path) as f:
            print(f.read()[-6000:], file=sys.stderr)
    sys.exit(1)


def expect(service, method, path, status, body=None, bearer=None, what=""):
    got, answer = service.call(method, path, body, bearer)
    if got != status:
        fail(f"{service.name}: {method} {path} ({what}): {got}, expected {status}: {answer}")
    return answer


def mail_token(work, email, after):
    """The token of the newest mail to `email` written after `after` (either relay may send it)."""
    mail_dir = os.path.join(work, "mail")
    deadline = time.time() + 20
    while time.time() < deadline:
        newest = None
        for name in os.listdir(mail_dir) if os.path.isdir(mail_dir) else []:
            path = os.path.join(mail_dir, name)
            if not name.endswith(".eml") or os.path.getmtime(path) < after:
                continue
            with open(path) as f:
                raw = f.read()
            if re.search(rf"^To: {re.escape(email)}\s*$", raw, re.M):
                match = re.search(r"[?&]token=([A-Za-z0-9_\-]+)", raw)
                if match and (newest is None or os.path.getmtime(path) > newest[0]):
                    newest = (os.path.getmtime(path), match.group(1))
        if newest:
            return newest[1]
        time.sleep(0.1)
    fail(f"no mail with a token to {email}")


def register(service, work, email):
    started = time.time() - 1
    expect(service, "POST", "/verify-email", 200, {"email": email}, what="verify-email")
    token = mail_token(work, email, started)
    body = {"email": email, "token": token, "password": PASSWORD, "name": "Upgrade Test",
            "country": "Russia", "tokenDelivery": "body"}
    return expect(service, "POST", "/complete-registration", 200, body, what="complete-registration")


def login(service, email):
    body = {"email": email, "password": PASSWORD, "tokenDelivery": "body"}
    return expect(service, "POST", "/login", 200, body, what="login")


def refresh(service, tokens, what):
    answer = expect(service, "POST", "/refresh", 200, {"refreshToken": tokens["refresh_token"]},
                    what=what)
    return answer


def main():
    previous_bin, new_bin, database = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="auth-upgrade-")
    database_url = f"sqlite://{work}/auth.db" if database == "sqlite" else database
    kind = "SQLite" if database == "sqlite" else "PostgreSQL"
    steps = 0

    previous = Service("previous", previous_bin, work, database_url)
    SERVICES.append(previous)
    alice = f"alice-{os.getpid()}@example.com"
    a = register(previous, work, alice)
    a = refresh(previous, a, "a refresh before the upgrade")
    steps += 1

    # 2. The new release's migrations, with the previous release serving.
    migrate = subprocess.run(
        [new_bin, "migrate"], capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": database_url,
             "DATA_DIR": os.path.join(work, "data"), "FRONTEND_URL": FRONTEND})
    if migrate.returncode != 0:
        fail(f"migrate: exit {migrate.returncode}: {migrate.stdout}{migrate.stderr}")
    applied = re.search(r"migrations: (\d+) applied", migrate.stdout)
    if not applied or int(applied.group(1)) < 1:
        fail(f"migrate applied nothing (is the newest migration new?): {migrate.stdout}{migrate.stderr}")
    steps += 1

    # 3. The previous release on the new schema.
    a = refresh(previous, a, "previous release, new schema")
    expect(previous, "GET", "/me", 200, bearer=a["access_token"], what="me")
    bob = f"bob-{os.getpid()}@example.com"
    b = register(previous, work, bob)
    b2 = login(previous, bob)
    expect(previous, "POST", "/logout", 200, {}, bearer=b2["access_token"], what="logout")
    expect(previous, "POST", "/refresh", 401, {"refreshToken": b2["refresh_token"]},
           what="a logged-out session")
    steps += 1

    # 4. Both releases side by side on one database.
    new = Service("new", new_bin, work, database_url, {"MIGRATE_ON_START": "false"})
    SERVICES.append(new)
    a = refresh(new, a, "a previous-release session refreshed by the new release")
    expect(new, "GET", "/me", 200, bearer=a["access_token"], what="me at new")
    expect(previous, "GET", "/me", 200, bearer=a["access_token"], what="new's token at previous")
    a = refresh(previous, a, "and back at the previous release")
    carol = f"carol-{os.getpid()}@example.com"
    c = register(new, work, carol)
    c = refresh(previous, c, "a new-release session refreshed by the previous release")
    expect(new, "GET", "/sessions", 200, bearer=c["access_token"], what="sessions at new")
    expect(previous, "GET", "/sessions", 200, bearer=c["access_token"], what="sessions at previous")
    a2 = login(new, alice)
    expect(previous, "POST", "/logout", 200, {}, bearer=a2["access_token"], what="logout at previous")
    expect(new, "POST", "/refresh", 401, {"refreshToken": a2["refresh_token"]},
           what="logged out at the previous release, refreshed at the new")
    b3 = login(previous, bob)
    expect(new, "POST", "/logout", 200, {}, bearer=b3["access_token"], what="logout at new")
    expect(previous, "POST", "/refresh", 401, {"refreshToken": b3["refresh_token"]},
           what="logged out at the new release, refreshed at the previous")
    steps += 1

    # 5. Rollback.
    new.stop()
    SERVICES.remove(new)
    a = refresh(previous, a, "after the rollback")
    c = refresh(previous, c, "a new-release session after the rollback")
    expect(previous, "GET", "/me", 200, bearer=c["access_token"], what="me after the rollback")
    steps += 1

    previous.stop()
    print(f"upgrade-test: {kind}: {steps} steps passed (previous release on the new schema, "
          f"both side by side, rollback)")
    shutil.rmtree(work, ignore_errors=True)  # kept (with the logs) when a step failed


if __name__ == "__main__":
    try:
        main()
    finally:
        for service in SERVICES:
            service.stop()
