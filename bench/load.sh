#!/usr/bin/env bash
# Load benchmark of a release build of dynabill, driven by wrk.
#
#   bench/load.sh                 # both backends: sqlite, then postgres
#   bench/load.sh sqlite          # one backend (sqlite | postgres)
#   BENCH_DURATION=60 BENCH_CONNECTIONS=64 bench/load.sh sqlite
#
# For each backend: a fresh database, a fresh server, BENCH_SEED accounts created
# through the API, then three fixed-duration runs (each after a warm-up):
# get-by-ExtID, list-100, create-account. Every response is checked (HTTP 200 and
# METHOD_STATUS 1), the account count is checked after the create run, and the
# server's memory and CPU are sampled. A markdown report is printed and written to
# bench/out/<timestamp>-<backend>.md (logs beside it). See bench/README.md.
#
# Knobs (environment):
#   BENCH_DURATION     seconds per measured run              (default 20)
#   BENCH_WARMUP       seconds of warm-up before each run    (default 3)
#   BENCH_CONNECTIONS  concurrent connections                (default 32)
#   BENCH_THREADS      wrk threads                           (default 1)
#   BENCH_SEED         accounts created before the runs      (default 10000)
#   BENCH_SCENARIOS    which runs, in order (default "get list rest-get rest-list create rest-create")
#   BENCH_PORT         port the server listens on            (default 18080)
#   BENCH_PG_URL       PostgreSQL server, no database part   (default postgres://postgres@127.0.0.1:5432)
#   BENCH_PG_DB        benchmark database, dropped and recreated each run (default dynabill_bench)
#   BENCH_PG_PARAMS    query string added to the server's PostgreSQL URL, e.g. sslmode=disable
#   BENCH_PG_VACUUM    1 (default): VACUUM ANALYZE the seeded database, as autovacuum would
#                      have by then (this machine's cluster runs with autovacuum=off); 0: don't
#   BENCH_BIN          a dynabill binary to use; skips the build
#   BENCH_LABEL        a note for the report's header (what the binary is)
#   BENCH_OUT          where reports go                      (default bench/out)
#   BENCH_LOG          the server's DYNABILL_LOG             (default warn)
#   BENCH_KEEP_DB=1    keep the benchmark database afterwards
#   BENCH_WAIT_QUIET   1 (default): before each run, wait until the machine is under
#                      10% busy (BENCH_QUIET_TIMEOUT s at most, default 600); 0: don't
#
# On a machine shared with builds or test runs, run it as root under
# `nice -n -15 bench/load.sh`: the server, wrk and the client then take the cores
# first (PostgreSQL's own processes are not covered).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
SEED=${BENCH_SEED:-10000}
SCENARIOS=${BENCH_SCENARIOS:-get list rest-get rest-list create rest-create}
PORT=${BENCH_PORT:-18080}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${BENCH_PG_DB:-dynabill_bench}
PG_PARAMS=${BENCH_PG_PARAMS:-}
PG_VACUUM=${BENCH_PG_VACUUM:-1}
OUT=${BENCH_OUT:-$HERE/out}
SERVER_LOG_LEVEL=${BENCH_LOG:-warn}
LUA="$HERE/wrk/dynabill.lua"
CLIENT="$HERE/client.py"
ADDR="127.0.0.1:$PORT"

if [ "$#" -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
for b in "${BACKENDS[@]}"; do
  case "$b" in sqlite | postgres) ;; *) echo "unknown backend '$b' (sqlite | postgres)" >&2; exit 2 ;; esac
done
if [ "$THREADS" -gt "$CONNECTIONS" ]; then
  echo "BENCH_THREADS ($THREADS) must not exceed BENCH_CONNECTIONS ($CONNECTIONS)" >&2; exit 2
fi

log() { printf '[load.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- tools --------------------------------------------------------------------

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_tools() {
  if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
  fi
  local need=(python3 curl)
  for b in "${BACKENDS[@]}"; do [ "$b" = postgres ] && need+=(psql); done
  for t in "${need[@]}"; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
  done
}

build() {
  if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
    BUILT_FROM="Binary: \`$BIN\` (given by BENCH_BIN${BENCH_LABEL:+: $BENCH_LABEL})."
  else
    BUILT_FROM="Release build of commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo ' plus uncommitted changes')${BENCH_LABEL:+ ($BENCH_LABEL)}."
    log "building the release binary (cargo build --release -p dynabill)"
    (cd "$ROOT" && cargo build --release -p dynabill --quiet)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/dynabill"
  fi
  [ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
}

# --- process measurements -------------------------------------------------------

# VmRSS / VmHWM of a process, in kB (no fork: read /proc directly).
proc_mem_kb() { # pid field
  local k v _
  while read -r k v _; do
    if [ "$k" = "$2:" ]; then echo "$v"; return; fi
  done <"/proc/$1/status"
  echo 0
}

# utime+stime of a process, in clock ticks.
proc_cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) } # drop "pid (comm) "; fields now start at 3 (state)
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

# busy and total ticks of the whole machine, from /proc/stat's first line.
machine_ticks() {
  local _cpu user nice system idle iowait irq softirq steal _rest
  read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# CPU ticks of every PostgreSQL process working for the benchmark database: its
# client backends (their title names the database) and the cluster's own workers
# (checkpointer, WAL writer...; no client address in their title). Backends of other
# databases are left out. Prints "pid ticks" lines.
pg_ticks() {
  local d pid title comm
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    read -r comm 2>/dev/null <"$d/comm" || continue
    [ "$comm" = postgres ] || continue
    title=$(tr "\\0" " " 2>/dev/null <"$d/cmdline") || continue
    case "$title" in
      *" $PG_DB "*) ;;
      *"("* | *"[local]"*) continue ;;
    esac
    echo "$pid $(proc_cpu_ticks "$pid" 2>/dev/null || echo 0)"
  done
}

# Ticks PostgreSQL spent between two pg_ticks snapshots (files $1, $2).
pg_ticks_delta() {
  awk 'NR == FNR { before[$1] = $2; next } { d += $2 - (($1 in before) ? before[$1] : 0) } END { print d + 0 }' "$1" "$2"
}

# Waits (up to BENCH_QUIET_TIMEOUT s) until the machine is quiet: under 10% busy over
# a second. On a shared machine a build or test run steals the cores from the run.
wait_quiet() {
  [ "${BENCH_WAIT_QUIET:-1}" = 1 ] || return 0
  local waited=0 m0 m1 b0 t0 b1 t1 busy
  while :; do
    m0=$(machine_ticks); sleep 1; m1=$(machine_ticks)
    read -r b0 t0 <<<"$m0"; read -r b1 t1 <<<"$m1"
    busy=$(( 100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1) ))
    [ "$busy" -lt 10 ] && break
    if [ "$waited" -ge "${BENCH_QUIET_TIMEOUT:-600}" ]; then
      log "machine still ${busy}% busy after ${waited}s; measuring anyway"
      break
    fi
    [ $((waited % 30)) = 0 ] && log "machine ${busy}% busy with the server idle; waiting for it to quieten (BENCH_WAIT_QUIET=0 to skip)"
    waited=$((waited + 1))
  done
}

# Samples the server's VmRSS every 0.25 s into $1 (the highest value seen).
rss_sampler() { # outfile
  local max=0 v
  echo 0 >"$1"
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    v=$(proc_mem_kb "$SERVER_PID" VmRSS)
    if [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$1"; fi
    sleep 0.25
  done
}

mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

# --- the server -------------------------------------------------------------------

SERVER_PID=""
SAMPLER_PID=""

stop_server() {
  if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""; fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start_server() { # url rundir
  local url=$1 dir=$2
  if port_in_use; then echo "something already listens on $ADDR; set BENCH_PORT" >&2; exit 1; fi
  DYNABILL_LOG=$SERVER_LOG_LEVEL "$BIN" serve --database-url "$url" --listen "$ADDR" \
    --secret-key-file "$dir/dynabill.key" >"$dir/credentials.json" 2>"$dir/server.log" &
  SERVER_PID=$!
  local i
  for i in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; echo "the server exited during start-up" >&2; exit 1; }
    if [ -s "$dir/credentials.json" ] && curl -fsS "http://$ADDR/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  [ "$i" -lt 300 ] || { echo "the server did not come up within 30 s" >&2; exit 1; }
  eval "$(python3 - "$dir/credentials.json" <<'EOF'
import json, shlex, sys
c = json.loads(open(sys.argv[1]).readline())
for k, v in (("BENCH_APPKEY", "AppKey"), ("BENCH_USER", "UserName"), ("BENCH_TOKEN", "AccessToken")):
    print(f"export {k}={shlex.quote(c[v])}")
EOF
)"
  export BENCH_ADDR=$ADDR
}

fresh_database() { # backend rundir -> prints the URL
  case "$1" in
    sqlite)
      rm -f "$2/bench.db" "$2/bench.db-wal" "$2/bench.db-shm"
      echo "sqlite://$2/bench.db"
      ;;
    postgres)
      psql "$PG_URL/postgres" -qAt -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
      echo "$PG_URL/$PG_DB${PG_PARAMS:+?$PG_PARAMS}"
      ;;
  esac
}

drop_database() { # backend rundir
  [ "${BENCH_KEEP_DB:-0}" = 1 ] && return
  case "$1" in
    sqlite) rm -f "$2/bench.db" "$2/bench.db-wal" "$2/bench.db-shm" ;;
    postgres) psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null || true ;;
  esac
}

# --- one wrk run -------------------------------------------------------------------

# Runs wrk for $2 seconds in scenario $1 (args $3...); leaves its output in $WRK_OUT.
wrk_run() { # seconds mode [arg]
  local seconds=$1
  shift
  WRK_OUT=$(mktemp)
  /usr/bin/time -f "WRKCPU %U %S" -o "$WRK_OUT.time" \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${seconds}s" --timeout 10s \
    -H "AppKey: $BENCH_APPKEY" -H "UserName: $BENCH_USER" -H "AccessToken: $BENCH_TOKEN" \
    -H "Content-Type: application/json" \
    -s "$LUA" "http://$ADDR/api/dynamicapi" -- "$@" >"$WRK_OUT" 2>&1 || {
    cat "$WRK_OUT" >&2; echo "wrk failed" >&2; exit 1; }
  cat "$WRK_OUT.time" >>"$WRK_OUT"
  rm -f "$WRK_OUT.time"
}

# The value of key=value field $2 on wrk's RESULT line in file $1.
field() { { grep "^RESULT " "$1" || true; } | tr " " "\n" | sed -n "s/^$2=//p"; }

# One scenario: warm-up, measured run with memory/CPU sampling, a table row.
scenario() { # name dir
  local name=$1 dir=$2 mode arg="" tag
  case "$name" in
    get) mode="get"; arg=$SEED ;;
    list) mode=list ;;
    create) mode=create; tag="c$(date +%s)" ;;
    rest-get) mode="rest-get"; arg=$SEED ;;
    rest-list) mode=rest-list ;;
    rest-create) mode=rest-create; tag="r$(date +%s)" ;;
    *) echo "unknown scenario $name" >&2; exit 2 ;;
  esac

  wait_quiet
  log "$BACKEND $name: warm-up ${WARMUP}s"
  case "$mode" in
    create | rest-create) wrk_run "$WARMUP" "$mode" "${tag}w" ;;
    *) wrk_run "$WARMUP" "$mode" "$arg" ;;
  esac
  mv "$WRK_OUT" "$dir/wrk-$name-warmup.txt"

  local before=0
  case "$mode" in create | rest-create) before=$(python3 "$CLIENT" count) ;; esac

  rss_sampler "$dir/rss-$name" &
  SAMPLER_PID=$!
  local cpu0 m0 cpu1 m1
  [ "$BACKEND" = postgres ] && pg_ticks >"$dir/pg-ticks-0"
  cpu0=$(proc_cpu_ticks "$SERVER_PID")
  m0=$(machine_ticks)
  log "$BACKEND $name: measuring ${DURATION}s, $CONNECTIONS connections, $THREADS wrk thread(s)"
  case "$mode" in
    create | rest-create) wrk_run "$DURATION" "$mode" "${tag}m" ;;
    *) wrk_run "$DURATION" "$mode" "$arg" ;;
  esac
  cpu1=$(proc_cpu_ticks "$SERVER_PID")
  m1=$(machine_ticks)
  local db_ticks=0
  if [ "$BACKEND" = postgres ]; then
    pg_ticks >"$dir/pg-ticks-1"
    db_ticks=$(pg_ticks_delta "$dir/pg-ticks-0" "$dir/pg-ticks-1")
    rm -f "$dir/pg-ticks-0" "$dir/pg-ticks-1"
  fi
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
  local out="$dir/wrk-$name.txt"
  mv "$WRK_OUT" "$out"

  local requests duration_us bad sockerr p50 p90 p99 max wrk_u wrk_s
  requests=$(field "$out" requests)
  [ -n "$requests" ] || { cat "$out" >&2; echo "no RESULT line from wrk" >&2; exit 1; }
  duration_us=$(field "$out" duration_us)
  bad=$(field "$out" bad)
  sockerr=$(($(field "$out" err_connect) + $(field "$out" err_read) + $(field "$out" err_write) + $(field "$out" err_timeout)))
  p50=$(field "$out" p50_us); p90=$(field "$out" p90_us); p99=$(field "$out" p99_us); max=$(field "$out" max_us)
  read -r _ wrk_u wrk_s < <(grep '^WRKCPU' "$out")

  local ok=$((requests - bad))
  local rps
  rps=$(awk -v n="$ok" -v us="$duration_us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
  RPS[$name]=$rps

  # CPU: the server's own, PostgreSQL's (for that backend), wrk's, and everything
  # else (kernel threads, other processes), as % of the whole machine (all cores).
  local busy0 total0 busy1 total1
  read -r busy0 total0 <<<"$m0"
  read -r busy1 total1 <<<"$m1"
  local cpu_line other
  cpu_line=$(awk -v s=$((cpu1 - cpu0)) -v db="$db_ticks" -v pg="$([ "$BACKEND" = postgres ] && echo 1 || echo 0)" \
    -v wu="$wrk_u" -v ws="$wrk_s" -v busy=$((busy1 - busy0)) \
    -v total=$((total1 - total0)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN {
      w = (wu + ws) * hz; o = busy - s - db - w; if (o < 0) o = 0; n = n ? n : 1;
      printf "%.0f | %s | %.0f / %s / %.0f / %.0f / %.0f | %.0f", s / hz * 1e6 / n,
        pg ? sprintf("%.0f", db / hz * 1e6 / n) : "in-process",
        100 * s / total, pg ? sprintf("%.0f", 100 * db / total) : "-", 100 * w / total,
        100 * o / total, 100 * (total - busy) / total, 100 * o / total }')
  other=${cpu_line##* | }
  cpu_line=${cpu_line% | *}
  if [ "$other" -gt 10 ]; then
    CHECKS+=("WARNING: $name: other processes took ${other}% of the machine during the run: its figures are low")
  fi

  local extra=""
  if [ "$mode" = create ] || [ "$mode" = rest-create ]; then
    local after added
    after=$(python3 "$CLIENT" count)
    added=$((after - before))
    # wrk stops with up to one request per connection in flight: the server may have
    # finished those without wrk counting them.
    if [ "$added" -lt "$ok" ] || [ "$added" -gt $((ok + CONNECTIONS)) ]; then
      CHECKS+=("FAIL: create run answered $ok successes but the account count grew by $added")
    else
      CHECKS+=("ok: create run: $ok successful answers, account count grew by $added ($before -> $after)")
    fi
    extra=" (+$added accounts)"
  fi
  if [ "$bad" -gt 0 ] || [ "$sockerr" -gt 0 ]; then
    CHECKS+=("FAIL: $name: $bad answers without HTTP 200/METHOD_STATUS 1, $sockerr socket errors/timeouts: $(grep '^BAD_SAMPLE' "$out" | cut -c1-300)")
  fi

  ROWS+=("| $name | $rps | $(awk -v u="$p50" 'BEGIN{printf "%.2f", u/1000}') | $(awk -v u="$p90" 'BEGIN{printf "%.2f", u/1000}') | $(awk -v u="$p99" 'BEGIN{printf "%.2f", u/1000}') | $(awk -v u="$max" 'BEGIN{printf "%.1f", u/1000}') | $requests | $bad / $sockerr$extra | $cpu_line | $(mb "$(cat "$dir/rss-$name")") |")
}

# --- one backend ---------------------------------------------------------------------

run_backend() {
  BACKEND=$1
  local stamp dir url
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  dir="$OUT/$stamp-$BACKEND"
  mkdir -p "$dir"
  declare -gA RPS=()
  ROWS=()
  CHECKS=()

  url=$(fresh_database "$BACKEND" "$dir")
  log "$BACKEND: fresh database $url; starting the server"
  start_server "$url" "$dir"
  sleep 2
  local idle_start idle_seeded
  idle_start=$(proc_mem_kb "$SERVER_PID" VmRSS)

  log "$BACKEND: seeding $SEED accounts through the API"
  local t0 t1
  t0=$(date +%s.%N)
  python3 "$CLIENT" seed "$SEED" 8
  t1=$(date +%s.%N)
  local seeded
  seeded=$(python3 "$CLIENT" count)
  [ "$seeded" = "$SEED" ] || { echo "seeded $SEED accounts but the server counts $seeded" >&2; exit 1; }
  if [ "$BACKEND" = postgres ] && [ "$PG_VACUUM" = 1 ]; then
    # Without statistics PostgreSQL plans the ExtID lookups as scans of all the
    # tenant's accounts, and the server's connections keep those plans: see README.
    psql "$PG_URL/$PG_DB" -qAt -c "VACUUM (ANALYZE)" >/dev/null
    CHECKS+=("note: VACUUM (ANALYZE) after seeding (stands in for autovacuum, off on this cluster: $(psql "$PG_URL/postgres" -qAt -c "SHOW autovacuum"))")
  fi
  CHECKS+=("ok: seeded $SEED accounts in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s; $(python3 "$CLIENT" check "$SEED")")
  # How busy is the machine while the server idles? Anything else running (a build,
  # a test suite) takes CPU from the runs and shows here and in the "other" column.
  local q0 q1 qb0 qt0 qb1 qt1
  q0=$(machine_ticks)
  sleep 2
  q1=$(machine_ticks)
  read -r qb0 qt0 <<<"$q0"
  read -r qb1 qt1 <<<"$q1"
  BACKGROUND_BUSY=$(awk -v b=$((qb1 - qb0)) -v t=$((qt1 - qt0)) 'BEGIN { printf "%.0f", 100 * b / (t ? t : 1) }')
  if [ "$BACKGROUND_BUSY" -gt 10 ]; then
    CHECKS+=("WARNING: the machine was ${BACKGROUND_BUSY}% busy with the server idle: something else is running, figures are low")
    log "WARNING: machine ${BACKGROUND_BUSY}% busy before load"
  fi
  idle_seeded=$(proc_mem_kb "$SERVER_PID" VmRSS)

  for s in $SCENARIOS; do scenario "$s" "$dir"; done

  sleep 3
  local after_rss hwm
  after_rss=$(proc_mem_kb "$SERVER_PID" VmRSS)
  hwm=$(proc_mem_kb "$SERVER_PID" VmHWM)
  local threads tls=""
  threads=$(ls "/proc/$SERVER_PID/task" | wc -l)
  if [ "$BACKEND" = postgres ]; then
    tls=$(psql "$PG_URL/postgres" -qAt -c "SELECT CASE WHEN bool_and(s.ssl) THEN 'TLS' WHEN bool_or(s.ssl) THEN 'partly TLS' ELSE 'plain TCP' END FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '$PG_DB' AND a.pid <> pg_backend_pid()")
    tls=" The server's PostgreSQL connections used ${tls:-?}${PG_PARAMS:+ (URL parameters: $PG_PARAMS)}."
  fi
  local dbsize=""
  if [ "$BACKEND" = sqlite ]; then
    dbsize=$(cd "$dir" && for f in bench.db bench.db-wal; do [ -e "$f" ] && printf '%s %s, ' "$f" "$(du -h "$f" | cut -f1)"; done; true)
  fi
  stop_server
  [ -s "$dir/server.log" ] && CHECKS+=("note: the server logged $(wc -l <"$dir/server.log") line(s) at level $SERVER_LOG_LEVEL: see server.log")
  if [ "$BACKEND" = postgres ]; then
    dbsize=$(psql "$PG_URL/postgres" -qAt -c "SELECT pg_size_pretty(pg_database_size('$PG_DB'))")
  fi
  drop_database "$BACKEND" "$dir"

  local target_lines=""
  if [ "$BACKEND" = sqlite ]; then
    target_lines=$(
      verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b) ? "met" : "MISSED" }'; }
      echo
      echo "Targets (SQLite): creates ≥ 5,000/s: ${RPS[create]:-n/a} → $(verdict "${RPS[create]:-0}" 5000);" \
        "get-by-ExtID ≥ 15,000/s: ${RPS[get]:-n/a} → $(verdict "${RPS[get]:-0}" 15000);" \
        "idle RSS < 30 MB: $(mb "$idle_start") MB → $(awk -v k="$idle_start" 'BEGIN { print (k < 30 * 1024) ? "met" : "MISSED" }')."
    )
  fi

  local pgconf=""
  if [ "$BACKEND" = postgres ]; then
    pgconf=" PostgreSQL $(psql "$PG_URL/postgres" -qAt -c "SELECT current_setting('server_version') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', shared_buffers=' || current_setting('shared_buffers')")."
  fi

  local report="$OUT/$stamp-$BACKEND.md"
  {
    echo "## dynabill load benchmark: $BACKEND, $stamp"
    echo
    echo "$BUILT_FROM" \
      "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem/{print $2}') GiB." \
      "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $THREADS thread(s), $CONNECTIONS connections, ${WARMUP}s warm-up + ${DURATION}s per run;" \
      "$SEED accounts seeded; niceness $(nice).$pgconf Load generator, server and database share the same cores."
    echo
    echo "| scenario | req/s (OK) | p50 ms | p90 ms | p99 ms | max ms | answers | failed / socket errors | server CPU µs/req | PostgreSQL CPU µs/req | CPU % server / PostgreSQL / wrk / other / idle | peak RSS MB |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "| memory | MB |"
    echo "|---|--:|"
    echo "| idle RSS after start-up (migrated, empty) | $(mb "$idle_start") |"
    echo "| idle RSS after seeding $SEED accounts | $(mb "$idle_seeded") |"
    echo "| RSS 3 s after the last run | $(mb "$after_rss") |"
    echo "| peak RSS (VmHWM) | $(mb "$hwm") |"
    echo
    echo "Server threads at the end: $threads. Database at the end (server still running): ${dbsize%, }. Machine busy with the server idle before the runs: ${BACKGROUND_BUSY}%.$tls"
    echo "$target_lines"
    echo
    echo "Checks:"
    printf -- '- %s\n' "${CHECKS[@]}"
    echo
    echo "Logs: \`${dir#"$ROOT"/}/\`"
  } | tee "$report"
  echo
  log "$BACKEND: report written to ${report#"$ROOT"/}"
  if printf '%s\n' "${CHECKS[@]}" | grep -q '^FAIL'; then FAILED=1; fi
}

# --- main ------------------------------------------------------------------------------

ensure_tools
build
mkdir -p "$OUT"
FAILED=0
for backend in "${BACKENDS[@]}"; do
  run_backend "$backend"
done
exit "$FAILED"
