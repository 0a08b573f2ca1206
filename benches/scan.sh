#!/usr/bin/env bash
# Benchmark: `kustodian scan` on a generated GitOps-like tree, next to the read-and-match floor
# (`rg -l 'kind:\s*Secret'`), detect-secrets, and gitleaks when one is on PATH, in the same run.
#
#   benches/scan.sh                     # 20,000 manifests, 3 timed runs each
#   N=5000 RUNS=5 benches/scan.sh
#   KEEP=1 benches/scan.sh              # keep the generated tree (path printed at the end)
#
# The tree: apps/<app>/<env>/ folders with Deployments, Services, ConfigMaps, multi-document files,
# JSON manifests and kustomization.yaml files; about 4% of the files are Secrets of every kind:
# plaintext `data`, plaintext `stringData`, a plaintext Secret inside a `kind: List`, a Helm
# template with a literal value (all four must be found), and `<path:...>` references,
# SOPS-encrypted Secrets, SealedSecrets and Helm templates with templated values (all must pass).
#
# Prints wall time (hyperfine when present, else a `date +%s%N` loop), the ratio to rg, and peak
# memory (GNU time's "Maximum resident set size"); checks that kustodian's JSON findings name
# exactly the planted plaintext files; then times `kustodian scan --staged` on a 10-file commit in
# a git repository holding the whole tree, and `kustodian scan --range HEAD` over that history
# (beside `gitleaks git` when gitleaks is on PATH).
#
# Needs: bash, python3, git, rg (apt-get install ripgrep), GNU time at /usr/bin/time (apt-get install
# time), cargo (a release build is made here; KUSTODIAN=path overrides it). Optional: hyperfine,
# detect-secrets (pip install detect-secrets; .venv/bin/detect-secrets is used when present), gitleaks.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
N=${N:-20000}
RUNS=${RUNS:-3}

die() { echo "benches/scan.sh: $*" >&2; exit 2; }
need python3
need git
need rg "apt-get install ripgrep (or cargo install ripgrep)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found: apt-get install time"
release_kustodian

DETECT_SECRETS=${DETECT_SECRETS:-$(command -v detect-secrets || true)}
[ -n "$DETECT_SECRETS" ] || { [ -x "$root/.venv/bin/detect-secrets" ] && DETECT_SECRETS="$root/.venv/bin/detect-secrets"; } || true
GITLEAKS=$(command -v gitleaks || true)
HYPERFINE=$(command -v hyperfine || true)

work="$(mktemp -d "${TMPDIR:-/tmp}/kustodian-bench.XXXXXX")"
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; fi
tree="$work/tree"

echo "generating $N manifests in $tree..." >&2
python3 - "$tree" "$N" "$work/planted.txt" <<'PY'
import base64, os, random, sys
tree, n, planted_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(42)
def token(k=24):
    return "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(k))
def b64(s): return base64.b64encode(s.encode()).decode()
def enc(): return f"ENC[AES256_GCM,data:{b64(token(16))},iv:{b64(token(32))[:43]}=,tag:{b64(token(16))[:22]}==,type:str]"
SOPS_META = """sops:
    age:
        - recipient: age1ee3ndl2843lthg089sljemwxz4c84llrueuypt33w74t2tw0aexqfku9jv
          enc: |
              -----BEGIN AGE ENCRYPTED FILE-----
              YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBqSnNwdzVldkRhOUNUckxq
              -----END AGE ENCRYPTED FILE-----
    lastmodified: "2026-11-28T17:15:23Z"
    mac: {mac}
    encrypted_regex: ^(data|stringData)$
    version: "3.11.0"
"""
def deployment(name, ns):
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app.kubernetes.io/name: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      containers:
        - name: app
          image: registry.example.com/{name}:1.{rnd.randint(0,99)}.{rnd.randint(0,99)}
          ports:
            - containerPort: 8080
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {name}-db
                  key: password
            - name: LOG_LEVEL
              value: info
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: 500m, memory: 256Mi}}
"""
def service(name, ns):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    - port: 80
      targetPort: 8080
"""
def configmap(name, ns):
    lines = "".join(f"  key{i}: value-{token(8)}\n" for i in range(8))
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n  namespace: {ns}\ndata:\n{lines}"
def secret_head(name, ns, kind="Secret", api="v1"):
    return f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\ntype: Opaque\n"
# Secret kinds: (generator, planted-plaintext?)
def s_data(name, ns):      return secret_head(name, ns) + f"data:\n  password: {b64(token())}\n  username: {b64('app')}\n", True
def s_string(name, ns):    return secret_head(name, ns) + f"stringData:\n  password: {token()}\n", True
def s_list(name, ns):      return ("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: cm\n    data:\n      a: b\n"
                                   f"  - apiVersion: v1\n    kind: Secret\n    metadata:\n      name: {name}\n    data:\n      token: {b64(token())}\n"), True
def s_helm_lit(name, ns):  return ("{{- if .Values.enabled }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ include \"app.fullname\" . }}-creds\n"
                                   f"type: Opaque\ndata:\n  password: {b64(token())}\n  token: {{{{ .Values.token | b64enc | quote }}}}\n{{{{- end }}}}\n"), True
def s_ref(name, ns):       return secret_head(name, ns) + f"stringData:\n  password: <path:secret/data/{ns}/{name}#password>\n  url: postgres://app:<path:secret/data/{ns}/{name}#password>@db/app\n", False
def s_sops(name, ns):      return secret_head(name, ns).replace("  ", "    ") + f"stringData:\n    password: {enc()}\n    username: {enc()}\n" + SOPS_META.format(mac=enc()), False
def s_sealed(name, ns):    return (f"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
                                   f"  encryptedData:\n    password: {b64(token(180))}\n  template:\n    type: Opaque\n"), False
def s_helm_safe(name, ns): return ("{{- if .Values.secret.create }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ include \"app.fullname\" . }}\n"
                                   "type: Opaque\ndata:\n  password: {{ required \"set password\" .Values.password | b64enc | quote }}\n{{- end }}\n"), False
secret_kinds = [s_data, s_string, s_list, s_helm_lit, s_ref, s_sops, s_sealed, s_helm_safe]
planted, count, i = [], 0, 0
envs = ["dev", "staging", "prod"]
os.makedirs(tree, exist_ok=True)
while count < n:
    app = f"app{i:04d}"; i += 1
    for env in envs:
        if count >= n: break
        d = os.path.join(tree, "apps", app, env); os.makedirs(d, exist_ok=True)
        ns = f"{app}-{env}"
        files = {
            "deployment.yaml": deployment(app, ns),
            "service.yaml": service(app, ns),
            "configmap.yaml": configmap(app, ns),
            "all.yaml": deployment(app + "-worker", ns) + "---\n" + service(app + "-worker", ns) + "---\n" + configmap(app + "-worker", ns),
            "ingress.json": '{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "%s", "namespace": "%s"}, "spec": {"rules": [{"host": "%s.example.com"}]}}\n' % (app, ns, app),
        }
        names = list(files)
        # about 4% of files are Secrets: one in every 25
        if rnd.random() < 0.2:
            k = secret_kinds[(count // 5) % len(secret_kinds)]
            body, plain = k(f"{app}-db", ns)
            fname = "templates/secret.yaml" if k in (s_helm_lit, s_helm_safe) else "secret.yaml"
            files[fname] = body; names.append(fname)
            if plain:
                planted.append(os.path.relpath(os.path.join(d, fname), tree))
        files["kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + "".join(f"  - {f}\n" for f in names if not f.startswith("templates/"))
        for fname, body in files.items():
            if count >= n: break
            p = os.path.join(d, fname); os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f: f.write(body)
            count += 1
with open(planted_path, "w") as f:
    f.write("".join(p + "\n" for p in sorted(planted)))
PY
files=$(find "$tree" -type f | wc -l)
secrets=$(rg -l 'kind:\s*(Secret|SealedSecret)|kind": "Secret' "$tree" | wc -l)
planted=$(wc -l < "$work/planted.txt")
echo "tree: $files files, $(du -sh "$tree" | cut -f1), $secrets Secret/SealedSecret files, $planted with planted plaintext"

# --- correctness: kustodian must name exactly the planted plaintext files --------------------------
set +e
"$KUSTODIAN" scan --format json "$tree" > "$work/findings.json"
rc=$?
set -e
[ "$rc" -eq 1 ] || die "kustodian scan exited $rc (expected 1: findings)"
python3 - "$work/findings.json" "$work/planted.txt" "$tree" <<'PY'
import json, os, sys
findings = json.load(open(sys.argv[1]))["findings"]
planted = {l.strip() for l in open(sys.argv[2]) if l.strip()}
tree = sys.argv[3]
def norm(p):
    p = p if os.path.isabs(p) else p
    for pre in (tree + "/", tree.lstrip("/") + "/"):
        if p.startswith(pre): p = p[len(pre):]
    return p
found = {norm(f["path"]) for f in findings}
# paths may be reported relative to a repository root above the tree; match on suffix
found = {next((q for q in planted if p.endswith(q)), p) for p in found}
missed, extra = planted - found, found - planted
print(f"kustodian: {len(findings)} findings in {len(found)} files; planted plaintext files: {len(planted)}; "
      f"missed: {len(missed)}; unexpected: {len(extra)}")
for p in sorted(missed)[:5]: print(f"  missed: {p}")
for p in sorted(extra)[:5]: print(f"  unexpected: {p}")
sys.exit(1 if missed or extra else 0)
PY

# --- wall time ------------------------------------------------------------------------------------
names=(kustodian rg)
cmds=("$KUSTODIAN scan --format json $tree"
      "rg -l 'kind:\\s*Secret' $tree")
if [ -n "$DETECT_SECRETS" ]; then
  names+=(detect-secrets); cmds+=("$DETECT_SECRETS scan --all-files $tree")
else
  echo "detect-secrets not found (pip install detect-secrets): not timed" >&2
fi
if [ -n "$GITLEAKS" ]; then
  if "$GITLEAKS" dir --help >/dev/null 2>&1; then gl="$GITLEAKS dir --no-banner --exit-code 0 --report-path $work/gitleaks-report.json $tree"
  else gl="$GITLEAKS detect --no-git --no-banner --exit-code 0 --report-path $work/gitleaks-report.json -s $tree"; fi
  names+=(gitleaks); cmds+=("$gl")
else
  echo "gitleaks not on PATH: not timed" >&2
fi

declare -A mean
time_cmd() { # name cmd runs [warmup] -> mean seconds in ${mean[name]}
  local name=$1 cmd=$2 runs=$3 warmup=${4:-1}
  if [ -n "$HYPERFINE" ]; then
    "$HYPERFINE" -N --style none --ignore-failure --warmup "$warmup" --runs "$runs" --export-json "$work/$name.json" "$cmd" >/dev/null 2>&1 \
      || die "hyperfine failed on: $cmd"
    mean[$name]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$work/$name.json")
  else
    [ "$warmup" -eq 0 ] || bash -c "$cmd" >/dev/null 2>&1 || true # warm-up
    local total=0 t0 t1
    for _ in $(seq "$runs"); do
      t0=$(date +%s%N); bash -c "$cmd" >/dev/null 2>&1 || true; t1=$(date +%s%N)
      total=$((total + t1 - t0))
    done
    mean[$name]=$(python3 -c "print($total / $runs / 1e9)")
  fi
}
peak_kb() { # cmd -> peak RSS in KiB
  { /usr/bin/time -v bash -c "exec $1" 2>&1 >/dev/null || true; } | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}'
}

echo
echo "timing ($( [ -n "$HYPERFINE" ] && echo hyperfine || echo 'date loop'), $RUNS runs after 1 warm-up (detect-secrets: 1 run); $(nproc) cores):"
printf '%-16s %10s %10s %12s\n' tool "wall (ms)" "vs rg" "peak RSS"
for i in "${!names[@]}"; do
  if [ "${names[$i]}" = detect-secrets ]; then
    time_cmd "${names[$i]}" "${cmds[$i]}" 1 0 # minutes per run at 20,000 files: one cold run
  else
    time_cmd "${names[$i]}" "${cmds[$i]}" "$RUNS"
  fi
done
for i in "${!names[@]}"; do
  n=${names[$i]}
  kb=$(peak_kb "${cmds[$i]}")
  python3 -c "import sys; m=float(sys.argv[2]); r=float(sys.argv[3]); print(f'{sys.argv[1]:<16} {m*1000:10.0f} {m/r:9.2f}x {int(sys.argv[4])/1024:9.1f} MiB')" \
    "$n" "${mean[$n]}" "${mean[rg]}" "$kb"
done

# --- --staged on a 10-file commit -----------------------------------------------------------------
echo
echo "staged: git repository of the whole tree, 10 new files staged..." >&2
(
  cd "$tree"
  git init -q -b main . && git -c user.name=b -c user.email=b@b add -A && git -c user.name=b -c user.email=b@b commit -q -m tree --no-verify
  for k in $(seq 10); do
    mkdir -p apps/new
    sed "s/name: app0000/name: new$k/" apps/app0000/dev/deployment.yaml > "apps/new/deploy$k.yaml"
  done
  git add apps/new
)
pushd "$tree" >/dev/null
time_cmd staged "$KUSTODIAN scan --staged" 20
kb=$(peak_kb "$KUSTODIAN scan --staged")
popd >/dev/null
python3 -c "import sys; print(f'kustodian scan --staged, 10-file commit in a {sys.argv[3]}-file repo: {float(sys.argv[1])*1000:.1f} ms, peak RSS {int(sys.argv[2])/1024:.1f} MiB')" "${mean[staged]}" "$kb" "$files"
# --- history: every blob of every commit ------------------------------------------------------------
pushd "$tree" >/dev/null
git -c user.name=b -c user.email=b@b commit -q -m new --no-verify
time_cmd history "$KUSTODIAN scan --range HEAD --format json" 5
hist_gl=""
if [ -n "$GITLEAKS" ]; then
  time_cmd gitleaks_git "$GITLEAKS git --no-banner --exit-code 0 --report-path $work/gitleaks-git.json ." 3
  hist_gl=$(python3 -c "import sys; print(f', gitleaks git: {float(sys.argv[1])*1000:.0f} ms')" "${mean[gitleaks_git]}")
fi
popd >/dev/null
python3 -c "import sys; print(f'kustodian scan --range HEAD, whole history ({sys.argv[2]} files in 2 commits): {float(sys.argv[1])*1000:.0f} ms{sys.argv[3]}')" "${mean[history]}" "$files" "$hist_gl"
[ -n "${KEEP:-}" ] && echo "tree kept at $tree"
exit 0
