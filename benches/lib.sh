# Shared by the benchmarks (benches/*.sh), sourced after their settings: the repository root, the kustodian to measure, a scratch folder removed
# on exit together with the server the script starts, a free port, timing and the result table.
#
# A script sets `server_pid` once its server runs, writes its input to "$input", and defines
# `requests` (how many requests the server has logged so far) before calling `measure`.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Exits 2 naming the tool when `$1` is not on PATH (`$2`: how to install it).
need() { command -v "$1" >/dev/null || { echo "$1 not found${2:+: $2}" >&2; exit 2; }; }

# KUSTODIAN: the binary to measure; by default a release build of this checkout, brought up to
# date here (cargo does nothing when it is).
release_kustodian() {
  if [ -z "${KUSTODIAN:-}" ]; then
    echo "building kustodian (cargo build --release)..." >&2
    (cd "$root" && cargo build --release --quiet --bin kustodian)
    KUSTODIAN="$root/target/release/kustodian"
  fi
  [ -x "$KUSTODIAN" ] || { echo "$KUSTODIAN is not executable" >&2; exit 2; }
}

# work: a scratch folder, removed on exit after the server (server_pid) is stopped.
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
scratch() {
  work=$(mktemp -d)
  trap cleanup EXIT
}

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The first port from $1 on, stepping by $2 (default 1), where neither it nor the $2 - 1 ports
# after it are in use.
free_port() {
  local port=$1 step=${2:-1} i busy
  while :; do
    busy=0
    for i in $(seq 0 $((step - 1))); do
      if in_use $((port + i)); then busy=1; fi
    done
    [ "$busy" = 0 ] && break
    port=$((port + step))
  done
  echo "$port"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Runs "$@" RUNS times; prints "best_ms requests_of_last_run". COLD=1 empties the token cache
# ("$work/cache") before each run.
measure() {
  local best="" reqs=0 before t0 t1
  for _ in $(seq 1 "$RUNS"); do
    [ "${COLD:-0}" = 1 ] && rm -rf "$work/cache"
    before=$(requests)
    t0=$(now_ms)
    "$@"
    t1=$(now_ms)
    reqs=$(( $(requests) - before ))
    if [ -z "$best" ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)); fi
  done
  echo "$best $reqs"
}

# kustodian renders "$input" into "$work/out.yaml", with extra arguments "$@".
render() { "$KUSTODIAN" render - "$@" < "$input" > "$work/out.yaml"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }

# The table's title line ($1) and column heads; rows are set against base_reqs and base_ms.
table() {
  echo
  echo "$1"
  printf '%-46s %9s %10s %12s %12s\n' "" requests wall_ms "req ratio" "time ratio"
}
row() { printf '%-46s %9s %10s %12s %12s\n' "$1" "$2" "$3" "$(ratio "$2" "$base_reqs")" "$(ratio "$3" "$base_ms")"; }
