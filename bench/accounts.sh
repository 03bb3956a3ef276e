#!/usr/bin/env bash
# Benchmarks the accounts API on loopback and prints a table. Not a test: numbers depend on the
# machine. Release build; PostgreSQL with its default durability (fsync on) and SQLite.
#
#   bench/accounts.sh                    # ~10 minutes on 2 cores, builds included
#   DURATION=5 DBS=postgres bench/accounts.sh
#   PROFILE=1 bench/accounts.sh          # + perf profiles of each max run (server on 2 cores):
#                                        #   top symbols by self time (Debian linux-perf)
#
# For each database and for the server on 1 core and on 2 (taskset), each scenario is measured:
#   max      closed loop (32 connections; login: 4) for DURATION seconds: the throughput ceiling
#   50%, 90% open loop at that fraction of the max (auth-accounts/examples/loadgen.rs: each
#            request's latency counts from its scheduled start, no coordinated omission)
# Scenarios: login (BCRYPT_COST 12, the default: hash-bound), refresh (rotation, 2000 sessions
# refreshed in turn), GET /me, GET /gateway-verify (the old gateway's check). During the login storm
# at 90%, GET /health/live is probed at 20/s: its p99 shows whether the event loop stalls behind
# the hashing. Server CPU per request is utime+stime of the server over the run / requests.
# The load generator shares the machine: with the server on 1 core it has the other one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
trap cleanup_all EXIT
DURATION=${DURATION:-8}
DBS=${DBS:-"postgres sqlite"}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
PY=python3
cargo build -q --release -p auth-accounts --bin auth-accounts --example loadgen
TARGET="${CARGO_TARGET_DIR:-$PWD/target}/release"
BIN="$TARGET/auth-accounts"
LOADGEN="$TARGET/examples/loadgen"
WORK=$(mktemp -d /tmp/auth-bench.XXXXXX)
CLEANUPS+=("rm -rf '$WORK'")
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
say() { printf '== %s\n' "$*" >&2; }

cpu_of() { awk -v t="$CLK_TCK" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

start_pg_durable() { # PostgreSQL with fsync on (the tests' start_postgres turns it off)
  local pgbin; pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGDIR=$(mktemp -d /tmp/auth-bench-pg.XXXXXX); PGPORT=$(free_port)
  [ "$(id -u)" -eq 0 ] && chown postgres "$PGDIR"
  as_pg "$pgbin/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  CLEANUPS+=("as_pg '$pgbin/pg_ctl' -D '$PGDIR/data' -m fast stop >/dev/null 2>&1; rm -rf '$PGDIR'")
}

start_server() { # start_server CPUS DB_URL BCRYPT_COST
  PORT=$(free_port)
  env -i PATH="$PATH" HOME="$HOME" ENV=dev HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="$2" \
    DATA_DIR="$WORK/data" MAIL_DIR="$WORK/mail" FRONTEND_URL=http://localhost:3000 \
    JWT_PRIVATE_KEY_PATH="$WORK/private.pem" JWT_PUBLIC_KEY_PATH="$WORK/public.pem" \
    RATE_LIMIT_ENABLED=false BCRYPT_COST="$3" DB_POOL_SIZE=20 LOG_LEVEL=error \
    taskset -c "$1" "$BIN" >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v1/auth/health/live" 2>/dev/null && return; sleep 0.1; done
  echo "the server did not start" >&2; tail -20 "$WORK/server.log" >&2; exit 1
}
stop_server() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }

# Registers a user (the verification mail is read from MAIL_DIR), prints nothing.
register() { # register EMAIL
  "$PY" - "http://127.0.0.1:$PORT/api/v1/auth" "$WORK/mail" "$1" <<'EOF'
import json, os, re, sys, time, urllib.request
base, mail_dir, email = sys.argv[1:4]
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read() or b"null")
post("/verify-email", {"email": email})
for _ in range(200):
    for name in sorted(os.listdir(mail_dir)) if os.path.isdir(mail_dir) else []:
        raw = open(os.path.join(mail_dir, name)).read() if name.endswith(".eml") else ""
        m = re.search(r"token=([A-Za-z0-9_-]{43})", raw)
        if f"To: {email}" in raw and m:
            post("/complete-registration", {"email": email, "token": m.group(1), "password": "bench-password-1",
                 "name": "Bench", "country": "Nowhere", "tokenDelivery": "body"})
            sys.exit(0)
    time.sleep(0.05)
sys.exit("no verification mail")
EOF
}

# Opens N sessions for EMAIL; writes their refresh tokens to FILE and one access token to FILE.access.
sessions() { # sessions EMAIL N FILE
  "$PY" - "http://127.0.0.1:$PORT/api/v1/auth" "$1" "$2" "$3" <<'EOF'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, email, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def login(_):
    body = json.dumps({"email": email, "password": "bench-password-1", "tokenDelivery": "body"}).encode()
    req = urllib.request.Request(base + "/login", body, {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())
with ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(login, range(n)))
# The first session is for the access-token checks; the others are refreshed in turn.
open(out, "w").write("\n".join(a["refresh_token"] for a in answers[1:]) + "\n")
open(out + ".access", "w").write(answers[0]["access_token"])
EOF
}

run() { # run NAME URL METHOD MODE [loadgen args...]: one measured run, appends a result row
  local name=$1 url=$2 method=$3 mode=$4; shift 4
  local before after out
  before=$(cpu_of "$SERVER")
  out=$("$LOADGEN" "$url" "$method" "$DURATION" "$mode" "$@")
  after=$(cpu_of "$SERVER")
  "$PY" -c '
import json, sys
r = json.loads(sys.argv[1]); cpu = float(sys.argv[3]) - float(sys.argv[2])
ok = sum(v for k, v in r["statuses"].items() if k.startswith("2"))
bad = {k: v for k, v in r["statuses"].items() if not k.startswith("2")}
print("\t".join(map(str, [sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], round(r["rate"], 1),
      r["p50_ms"], r["p99_ms"], r["p999_ms"], round(cpu / max(ok, 1) * 1e6), json.dumps(bad)])))
' "$out" "$before" "$after" "$DB" "$CPUS_LABEL" "$name" "$mode" >>"$RESULTS"
  MAX_RATE=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["rate"])' "$out")
}

# profile_start NAME / profile_stop: perf-samples the server during one run (PROFILE=1, 2 cores).
profile_start() {
  PERF_PID=""
  [ "${PROFILE:-0}" = 1 ] && [ "$CPUS" = 0,1 ] || return 0
  PERF_NAME="$DB-$1"
  perf record -q -F 499 -g -p "$SERVER" -o "$WORK/$PERF_NAME.perf" -- sleep "$DURATION" >/dev/null 2>&1 &
  PERF_PID=$!
}
profile_stop() {
  [ -n "${PERF_PID:-}" ] || return 0
  wait "$PERF_PID" 2>/dev/null || true
  perf report -q -i "$WORK/$PERF_NAME.perf" --no-children --sort dso,symbol --percent-limit 2 --stdio \
    2>/dev/null | grep -E '^ +[0-9]' | head -15 >"$WORK/$PERF_NAME.top" || true
  PROFILES+=("$PERF_NAME")
}
PROFILES=()

scenario() { # scenario NAME CONNECTIONS URL METHOD [loadgen args...]: max, then 50% and 90%
  local name=$1 conns=$2 url=$3 method=$4; shift 4
  say "$DB, $CPUS_LABEL: $name"
  profile_start "$name"
  run "$name" "$url" "$method" "max:$conns" "$@"
  profile_stop
  local max=$MAX_RATE
  for frac in 0.5 0.9; do
    run "$name" "$url" "$method" "$("$PY" -c "print(round($max * $frac, 1))")" "$@"
  done
}

for DB in $DBS; do
  if [ "$DB" = postgres ]; then
    start_pg_durable
    URL_DB="postgres://postgres@127.0.0.1:$PGPORT/postgres"
  else
    URL_DB="sqlite://$WORK/bench.db"
  fi
  for CPUS in 0 0,1; do
    [ "$CPUS" = 0,1 ] && [ "$NCPU" -lt 2 ] && continue
    CPUS_LABEL="$(( $(echo "$CPUS" | tr -cd , | wc -c) + 1 )) core(s)"
    # Refresh, /me and the gateway check: the hashing cost does not matter there (cost 4 to open
    # the 2000 sessions quickly).
    start_server "$CPUS" "$URL_DB" 4
    user="bench-$RANDOM-$DB-${CPUS/,/}@example.com"
    register "$user"
    sessions "$user" 2001 "$WORK/refresh"
    base="http://127.0.0.1:$PORT/api/v1/auth"
    scenario refresh 32 "$base/refresh" POST --refresh-chain "$WORK/refresh"
    scenario me 32 "$base/me" GET --bearer-file "$WORK/refresh.access"
    scenario gateway-verify 32 "$base/gateway-verify" GET --bearer-file "$WORK/refresh.access"
    stop_server
    # Login at the production hashing cost.
    start_server "$CPUS" "$URL_DB" 12
    user="bench-login-$RANDOM-$DB-${CPUS/,/}@example.com"
    register "$user"
    printf '{"email":"%s","password":"bench-password-1","tokenDelivery":"body"}' "$user" >"$WORK/login.json"
    base="http://127.0.0.1:$PORT/api/v1/auth"
    say "$DB, $CPUS_LABEL: login"
    profile_start login
    run login "$base/login" POST max:4 --body-file "$WORK/login.json"
    profile_stop
    max=$MAX_RATE
    run login "$base/login" POST "$("$PY" -c "print(round($max * 0.5, 2))")" --body-file "$WORK/login.json"
    # The event loop during the storm: /health/live probed beside the logins at 90%.
    "$LOADGEN" "$base/health/live" GET "$DURATION" 20 >"$WORK/live.json" &
    probe=$!
    run login "$base/login" POST "$("$PY" -c "print(round($max * 0.9, 2))")" --body-file "$WORK/login.json"
    wait "$probe"
    "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("\t".join(map(str, [sys.argv[2], sys.argv[3], "health/live during login 90%", "20", round(r["rate"], 1),
      r["p50_ms"], r["p99_ms"], r["p999_ms"], "-", json.dumps({k: v for k, v in r["statuses"].items() if k != "200"})])))
' "$WORK/live.json" "$DB" "$CPUS_LABEL" >>"$RESULTS"
    stop_server
  done
  rm -f "$WORK/bench.db"*
done

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
echo
echo "accounts benchmark: commit $commit, $NCPU cores, release build, ${DURATION}s per run"
printf '%-9s %-8s %-30s %-8s %9s %9s %9s %9s %10s  %s\n' db server scenario load "req/s" "p50 ms" "p99 ms" "p99.9 ms" "CPU us/req" "non-2xx"
while IFS=$'\t' read -r db cpus name mode rate p50 p99 p999 cpu bad; do
  printf '%-9s %-8s %-30s %-8s %9s %9s %9s %9s %10s  %s\n' "$db" "${cpus% core(s)}c" "$name" "$mode" "$rate" "$p50" "$p99" "$p999" "$cpu" "$bad"
done <"$RESULTS"
for name in "${PROFILES[@]}"; do
  printf '\nperf: %s (server on 2 cores, max load), self time by library and symbol (>= 2%%)\n' "$name"
  cat "$WORK/$name.top" 2>/dev/null || echo "  (no samples)"
done
