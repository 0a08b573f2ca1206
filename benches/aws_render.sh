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

REFS=${REFS:-200}
SECRETS=${SECRETS:-20}
DOCS=${DOCS:-10}
RUNS=${RUNS:-3}
per_doc=$(( (REFS + DOCS - 1) / DOCS ))
source "$(dirname "$0")/lib.sh"

venv="$root/.venv/bin"
[ -x "$venv/moto_server" ] || venv="$(dirname "$(command -v moto_server || echo /nonexistent/x)")"
[ -x "$venv/moto_server" ] || { echo "moto_server not found: pip install 'moto[server]'" >&2; exit 2; }
need curl
release_kustodian
scratch

port=$(free_port "${PORT:-18520}")
addr="http://127.0.0.1:$port"
"$venv/moto_server" -H 127.0.0.1 -p "$port" >"$work/server.log" 2>&1 &
server_pid=$!
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
base() { curl -sf -K "$baseline"; }

render # warm up and check that it works
grep -q 'k0: "\?user-0' "$work/out.yaml" || { echo "render output is wrong" >&2; cat "$work/out.yaml" >&2; exit 1; }

read -r par_ms par_reqs < <(measure render)
read -r seq_ms seq_reqs < <(measure render --concurrency 1)
read -r base_ms base_reqs < <(measure base)

table "aws render: $DOCS documents, $n placeholders, $SECRETS distinct secrets (moto server, best of $RUNS)"
row "kustodian (8 in flight)" "$par_reqs" "$par_ms"
row "kustodian --concurrency 1" "$seq_reqs" "$seq_ms"
row "baseline: 1 request per placeholder, in turn" "$base_reqs" "$base_ms"
