#!/usr/bin/env bash
# Benchmark: `kustodian render` against AWS Secrets Manager as moto's server implements it, next
# to the way argocd-vault-plugin fetches (one GetSecretValue per placeholder, one after another),
# in the same run.
#
#   benches/aws_render.sh              # 200 placeholders over 20 secrets, 10 documents
#   REFS=1000 SECRETS=50 DOCS=50 RUNS=5 benches/aws_render.sh
#
# Needs: bash, curl >= 7.75 (--aws-sigv4), moto's server and boto3 (pip install 'moto[server]';
# .venv is used when present) and a release build of kustodian (built here when missing;
# KUSTODIAN=path overrides it). Requests are counted from moto's own request log.
#
# The baseline is curl signing and sending one GetSecretValue per placeholder, in turn: the
# requests argocd-vault-plugin's AWS backend makes, without any of its YAML work, so the
# wall-time ratio flatters the baseline.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
REFS=${REFS:-200}
SECRETS=${SECRETS:-20}
DOCS=${DOCS:-10}
RUNS=${RUNS:-3}
per_doc=$(( (REFS + DOCS - 1) / DOCS ))

venv="$root/.venv/bin"
[ -x "$venv/moto_server" ] || venv="$(dirname "$(command -v moto_server || echo /nonexistent/x)")"
[ -x "$venv/moto_server" ] || { echo "moto_server not found: pip install 'moto[server]'" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }
KUSTODIAN=${KUSTODIAN:-$root/target/release/kustodian}
if [ ! -x "$KUSTODIAN" ]; then
  echo "building kustodian (release)..." >&2
  (cd "$root" && cargo build --release --quiet)
fi

work=$(mktemp -d)
moto_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${PORT:-18520}
while in_use "$port"; do port=$((port + 1)); done
addr="http://127.0.0.1:$port"
"$venv/moto_server" -H 127.0.0.1 -p "$port" >"$work/server.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do in_use "$port" && break; sleep 0.1; done
in_use "$port" || { cat "$work/server.log" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="$addr" AVP_TYPE=awssecretsmanager KUSTODIAN_CACHE_DIR="$work/cache"
"$venv/python" - "$addr" "$SECRETS" <<'PY'
import sys, json, boto3
c = boto3.client("secretsmanager", endpoint_url=sys.argv[1], region_name="us-east-1")
for i in range(int(sys.argv[2])):
    c.create_secret(Name=f"bench/app{i}", SecretString=json.dumps({"user": f"user-{i}", "password": f"pass-{i}"}))
PY

# DOCS documents, REFS placeholders, SECRETS distinct secrets.
input="$work/input.yaml"
baseline="$work/curl.cfg"
: > "$input"
: > "$baseline"
n=0
for d in $(seq 0 $((DOCS - 1))); do
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s%d\nstringData:\n' "$d" >> "$input"
  for j in $(seq 0 $((per_doc - 1))); do
    [ "$n" -lt "$REFS" ] || break
    s=$(( (d * per_doc + j) % SECRETS ))
    key=$([ $((j % 2)) = 0 ] && echo user || echo password)
    printf '  k%d: <path:bench/app%d#%s>\n' "$j" "$s" "$key" >> "$input"
    [ "$n" = 0 ] || echo next >> "$baseline"
    cat >> "$baseline" <<CFG
url = "$addr/"
aws-sigv4 = "aws:amz:us-east-1:secretsmanager"
user = "AKIDBENCH:bench-secret"
header = "Content-Type: application/x-amz-json-1.1"
header = "X-Amz-Target: secretsmanager.GetSecretValue"
data = "{\"SecretId\":\"bench/app$s\"}"
output = "/dev/null"
CFG
    n=$((n + 1))
  done
done

requests() { grep -c '"POST / ' "$work/server.log" || true; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Runs "$@" RUNS times; prints "best_ms requests_of_last_run".
measure() {
  local best="" reqs=0 before t0 t1
  for _ in $(seq 1 "$RUNS"); do
    before=$(requests)
    t0=$(now_ms)
    "$@"
    t1=$(now_ms)
    reqs=$(( $(requests) - before ))
    if [ -z "$best" ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)); fi
  done
  echo "$best $reqs"
}

render() { "$KUSTODIAN" render - "$@" < "$input" > "$work/out.yaml"; }
base() { curl -sf -K "$baseline"; }

render # warm up and check that it works
grep -q 'k0: "\?user-0' "$work/out.yaml" || { echo "render output is wrong" >&2; cat "$work/out.yaml" >&2; exit 1; }

read -r par_ms par_reqs < <(measure render)
read -r seq_ms seq_reqs < <(measure render --concurrency 1)
read -r base_ms base_reqs < <(measure base)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }
echo
echo "aws render: $DOCS documents, $n placeholders, $SECRETS distinct secrets (moto server, best of $RUNS)"
printf '%-46s %9s %10s %12s %12s\n' "" requests wall_ms "req ratio" "time ratio"
row() { printf '%-46s %9s %10s %12s %12s\n' "$1" "$2" "$3" "$(ratio "$2" "$base_reqs")" "$(ratio "$3" "$base_ms")"; }
row "kustodian (8 in flight)" "$par_reqs" "$par_ms"
row "kustodian --concurrency 1" "$seq_reqs" "$seq_ms"
row "baseline: 1 request per placeholder, in turn" "$base_reqs" "$base_ms"
