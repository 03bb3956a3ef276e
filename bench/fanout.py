"""Revocation fan-out driver for bench/fanout (which starts PostgreSQL and Redis and builds).

Starts two accounts replicas (A takes the logouts, B feeds the stream-mode edges), then per mode
(stream, redis): N edges, a logout storm at a fixed rate (open loop: each logout is sent at its
scheduled time by a pool of workers, whatever the previous ones took), and reads each edge's
"revocation applied" log lines to compute how long each revocation took to reach each edge.
"""

import argparse
import base64
import datetime
import http.client
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

PREFIX = "/api/v1/auth"
USERS = itertools.count()
PASSWORD = "correct-horse-battery"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_http(url, timeout=30, process=None, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            text = open(log).read()[-2000:] if log else ""
            sys.exit(f"bench/fanout: {url}: the process exited with {process.returncode}\n{text}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench/fanout: {url} not ready within {timeout} s")


def post(port, path, body, bearer=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    conn.request("POST", PREFIX + path, json.dumps(body), headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else None)


class Accounts:
    def __init__(self, name, args, extra=None):
        self.port = free_port()
        env = {
            "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "ENV": "dev",
            "HOST": "127.0.0.1", "PORT": str(self.port), "DATABASE_URL": args.database,
            "DATA_DIR": f"{args.work}/data", "MAIL_DIR": f"{args.work}/mail",
            "JWT_PRIVATE_KEY_PATH": f"{args.work}/certs/private.pem",
            "JWT_PUBLIC_KEY_PATH": f"{args.work}/certs/public.pem",
            "FRONTEND_URL": "http://localhost:3000", "RATE_LIMIT_ENABLED": "false",
            "BCRYPT_COST": "4", "REDIS_URL": args.redis, "HOSTNAME": name, "LOG_LEVEL": "warn",
            "DB_POOL_SIZE": "20",
        }
        env.update(extra or {})
        self.log = open(f"{args.work}/{name}.log", "w")
        self.process = subprocess.Popen([args.accounts], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}{PREFIX}/health/ready", process=self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Edge:
    def __init__(self, index, mode, args, feed_port):
        self.admin = free_port()
        self.log_path = f"{args.work}/edge-{mode}-{index}.log"
        env = {
            "PATH": os.environ["PATH"], "LOG_FORMAT": "json",
            "RUST_LOG": "auth_edge::revocations=debug,warn",
            "AUTH_EDGE_LISTEN": f"127.0.0.1:{free_port()}",
            "AUTH_EDGE_ADMIN_LISTEN": f"127.0.0.1:{self.admin}",
            "AUTH_EDGE_THREADS": "1",
            "AUTH_EDGE_JWKS_URL": f"http://127.0.0.1:{feed_port}{PREFIX}/.well-known/jwks.json",
        }
        if mode == "stream":
            env["AUTH_EDGE_REVOCATIONS_URL"] = (
                f"http://127.0.0.1:{feed_port}{PREFIX}/revocations/stream")
        else:
            env["REDIS_URL"] = args.redis
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([args.edge, "forward-auth"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def ready(self):
        wait_http(f"http://127.0.0.1:{self.admin}/readyz", process=self.process,
                  log=self.log_path)


    def connected(self):
        with open(self.log_path) as f:
            text = f.read()
        return "revocation stream connected" in text or "subscription ready" in text

    def applied(self):
        """sid -> unix time the edge applied it."""
        out = {}
        with open(self.log_path) as f:
            for line in f:
                if "revocation applied" not in line:
                    continue
                record = json.loads(line)
                at = datetime.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                out[record["sid"]] = at.timestamp()
        return out

    def stop(self):
        self.process.terminate()
        self.process.wait()
        self.log.close()



def start_edge(index, mode, args, feed_port):
    """An edge that is ready; started again on other ports when a port it picked was taken
    meanwhile (free ports are picked before the edge binds them)."""
    for _ in range(3):
        edge = Edge(index, mode, args, feed_port)
        try:
            edge.ready()
            return edge
        except SystemExit:
            if edge.process.poll() is None or "Address already in use" not in open(edge.log_path).read():
                raise
    sys.exit(f"bench/fanout: edge {index} could not bind")


def sessions(port, count):
    """`count` live sessions (one user per 100 sessions): (session_id, access token)."""
    out = []
    user = None
    for i in range(count):
        if i % 100 == 0:
            user = f"fanout-{os.getpid()}-{next(USERS)}@example.com"
            register(port, user)
        status, body = post(port, "/login",
                            {"email": user, "password": PASSWORD, "tokenDelivery": "body"})
        assert status == 200, (status, body)
        out.append((claims(body["access_token"])["sid"], body["access_token"]))
    return out


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def register(port, email):
    status, _ = post(port, "/verify-email", {"email": email})
    assert status == 200, status
    mail_dir = f"{ARGS.work}/mail"
    deadline = time.time() + 20
    while time.time() < deadline:
        for name in os.listdir(mail_dir) if os.path.isdir(mail_dir) else []:
            if not name.endswith(".eml"):
                continue  # a mail being written
            with open(os.path.join(mail_dir, name)) as f:
                raw = f.read()
            match = re.search(r"[?&]token=([A-Za-z0-9_\-]+)", raw)
            if f"To: {email}" in raw and match:
                token = match.group(1)
                body = {"email": email, "token": token, "password": PASSWORD, "name": "Fan Out",
                        "country": "Russia", "tokenDelivery": "body"}
                status, answer = post(port, "/complete-registration", body)
                assert status == 200, (status, answer)
                return
        time.sleep(0.05)
    sys.exit(f"bench/fanout: no verification mail for {email}")


def storm(port, victims, rate):
    """Logs each victim out at its scheduled time (open loop); returns sid -> answered at."""
    answered = {}
    lock = threading.Lock()
    start = time.time() + 0.5
    schedule = [(start + i / rate, sid, token) for i, (sid, token) in enumerate(victims)]
    late = []

    def worker(items):
        for at, sid, token in items:
            pause = at - time.time()
            if pause > 0:
                time.sleep(pause)
            else:
                late.append(-pause)
            status, _ = post(port, "/logout", {}, bearer=token)
            done = time.time()
            assert status == 200, status
            with lock:
                answered[sid] = done

    workers = 16
    threads = [threading.Thread(target=worker, args=(schedule[w::workers],))
               for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(answered.values()) - start
    return answered, len(answered) / elapsed if elapsed > 0 else 0.0, late


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_mode(mode, args, a, b, redis_pid):
    feed = b.port
    edges = [start_edge(i, mode, args, feed) for i in range(args.edges)]
    deadline = time.time() + 30
    while not all(e.connected() for e in edges):
        if time.time() > deadline:
            sys.exit(f"bench/fanout: {mode}: edges not connected within 30 s")
        time.sleep(0.1)
    victims = sessions(a.port, int(args.rate * args.seconds))
    time.sleep(1)
    pids = {"accounts": [a.process.pid, b.process.pid], "redis": [redis_pid],
            "edges": [e.process.pid for e in edges]}
    before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
    answered, achieved, late = storm(a.port, victims, args.rate)
    time.sleep(1.5)
    after = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
    lags, missed = [], 0
    for edge in edges:
        applied = edge.applied()
        for sid, t0 in answered.items():
            if sid in applied:
                lags.append((applied[sid] - t0) * 1000)
            else:
                missed += 1
    cut = run_cut(mode, args, a, feed) if args.cut else None
    for edge in edges:
        edge.stop()
    row = {
        "mode": mode, "edges": args.edges, "logouts": len(answered),
        "rate": achieved, "p50": percentile(lags, 0.5), "p99": percentile(lags, 0.99),
        "max": max(lags), "min": min(lags), "missed": missed,
        "late_sends": len([x for x in late if x > 0.01]),
        "cpu_accounts": (after["accounts"] - before["accounts"]) / len(answered) * 1e3,
        "cpu_redis": (after["redis"] - before["redis"]) / len(answered) * 1e3,
        "cpu_edges": (after["edges"] - before["edges"]) / len(answered) / args.edges * 1e3,
        "cut": cut,
    }
    return row


def run_cut(mode, args, a, feed):
    """One edge whose link goes silent past its idle timeout (45 s) while logouts continue: it
    must reconnect and get the missed revocations from the snapshot."""
    proxy_port = free_port()
    stop = threading.Event()
    frozen = threading.Event()

    def pump(src, dst):
        try:
            while not stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if not frozen.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def serve():
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", proxy_port))
        listener.listen()
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            upstream = socket.create_connection(("127.0.0.1", feed))
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    if mode != "stream":
        return None  # the Redis client's keep-alive is Redis's business; cut the stream only
    edge = start_edge("cut", mode, args, proxy_port)
    while not edge.connected():
        time.sleep(0.1)
    with open(edge.log_path) as f:
        connects_before = f.read().count("revocation stream connected")
    frozen.set()
    cut_at = time.time()
    victims = sessions(a.port, 20)
    answered, _, _ = storm(a.port, victims, 10)
    # Silent past the edge's 45-s idle timeout: it gives the link up and keeps trying (its attempts
    # are silenced too) until the link is back.
    time.sleep(max(0.0, cut_at + 50 - time.time()))
    frozen.clear()
    back_at = time.time()
    reconnected = None
    deadline = time.time() + 90
    while time.time() < deadline:
        with open(edge.log_path) as f:
            text = f.read()
        if text.count("revocation stream connected") > connects_before:
            reconnected = time.time()
            break
        time.sleep(0.2)
    # The snapshot holds every revocation within the horizon, so the ones made during the cut.
    known = 0
    if reconnected:
        last = [line for line in text.splitlines() if "revocation stream connected" in line][-1]
        known = json.loads(last).get("revocations", 0)
    stop.set()
    edge.stop()
    return {"silent_s": back_at - cut_at, "reconnected": bool(reconnected),
            "caught_up_s": (reconnected or time.time()) - back_at,
            "revoked_during_cut": len(answered), "snapshot_size": known}


def main():
    global ARGS
    p = argparse.ArgumentParser()
    for name in ("accounts", "edge", "database", "redis", "work"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--redis-pid", type=int, required=True)
    p.add_argument("--edges", type=int, default=50)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--cut", type=int, default=0)
    args = ARGS = p.parse_args()
    a = Accounts("accounts-a", args)
    b = Accounts("accounts-b", args)
    rows = []
    try:
        for mode in ("stream", "redis"):
            rows.append(run_mode(mode, args, a, b, args.redis_pid))
    finally:
        a.stop()
        b.stop()
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    print(f"\nrevocation fan-out: commit {commit}, {os.cpu_count()} cores, debug build, "
          f"PostgreSQL, logouts at replica A, stream edges fed by replica B")
    print(f"{'mode':<7} {'edges':>5} {'logouts':>7} {'rate/s':>7} {'lag p50':>8} {'p99':>8} "
          f"{'max':>8} {'missed':>6} {'accounts ms/logout':>18} {'redis ms/logout':>15} "
          f"{'edge ms/logout':>14}")
    for r in rows:
        print(f"{r['mode']:<7} {r['edges']:>5} {r['logouts']:>7} {r['rate']:>7.1f} "
              f"{r['p50']:>6.1f}ms {r['p99']:>6.1f}ms {r['max']:>6.1f}ms {r['missed']:>6} "
              f"{r['cpu_accounts']:>18.3f} {r['cpu_redis']:>15.3f} {r['cpu_edges']:>14.4f}")
    for r in rows:
        if r["cut"]:
            c = r["cut"]
            print(f"cut-off edge ({r['mode']}): link silent {c['silent_s']:.1f} s (idle timeout "
                  f"45 s); reconnected: {c['reconnected']}, {c['caught_up_s']:.1f} s after the link "
                  f"was back, with a snapshot of {c['snapshot_size']} revocations; "
                  f"{c['revoked_during_cut']} were revoked during the cut")
    print("(lag: the edge's log time of applying the revocation minus the time replica A answered "
          "the logout; CPU: utime+stime over the storm divided by logouts, edges per edge)")
    bad = [r for r in rows if r["missed"]]
    if bad:
        sys.exit(f"bench/fanout: revocations missed: {[(r['mode'], r['missed']) for r in bad]}")


if __name__ == "__main__":
    main()
