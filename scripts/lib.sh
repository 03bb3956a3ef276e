# Shared by scripts/test and scripts/fault-test: start throwaway servers on loopback.
# Each start_* function registers its own cleanup; call `cleanup_all` on exit.

CLEANUPS=()
cleanup_all() {
  local i
  for ((i=${#CLEANUPS[@]}-1; i>=0; i--)); do eval "${CLEANUPS[$i]}" || true; done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# start_postgres: sets PGPORT, PGDIR and PG_ADMIN_URL.
start_postgres() {
  local pgbin
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGDIR=$(mktemp -d /tmp/auth-pg.XXXXXX)
  PGPORT=$(free_port)
  [ "$(id -u)" -eq 0 ] && chown postgres "$PGDIR"
  as_pg "$pgbin/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  CLEANUPS+=("as_pg '$pgbin/pg_ctl' -D '$PGDIR/data' -m immediate stop >/dev/null 2>&1; rm -rf '$PGDIR'")
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
}
