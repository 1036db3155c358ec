#!/usr/bin/env bash
# Installs what ampscaler's tests, demo and benchmarks need on a fresh Debian machine: Debian's
# prometheus package (the real server the tests query) and a virtualenv with the library
# (editable). Profile "dev" (default) adds the development tools and a separate aws-sam-cli venv;
# profile "demo" installs only what `make demo` runs, so a first demo starts sooner. Safe to run again.
#   usage: scripts/bootstrap.sh [VENV] [dev|demo]
set -euo pipefail
venv="${1:-.venv}"
profile="${2:-dev}"
case "$profile" in
  dev|demo) ;;
  *) echo "bootstrap: unknown profile '$profile' (dev or demo)" >&2; exit 2 ;;
esac
export PYENV_VERSION="${PYENV_VERSION:-3.11.7:3.12.1:3.13.0}"

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# docs/decide.md's replay recipe uses jq; tests/integration/test_docs_recipes.py runs it.
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
if ((${#need_apt[@]})); then
  echo "bootstrap: installing ${need_apt[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # --no-install-recommends: the server binary is all the tests need, not the web console.
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian package starts a system service on :9090 where an init system exists; the
  # suite runs its own instances on free ports, so a stray one is only noise.
  command -v systemctl >/dev/null 2>&1 && $sudo_cmd systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# Lambda runs python3.13; develop on the same version when pyenv (or the system) has it.
py=""
for cand in python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    py="$cand"; break
  fi
done
[ -n "$py" ] || { echo "bootstrap: need Python >= 3.11 (3.13 preferred)" >&2; exit 1; }

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[$profile]"
# aws-sam-cli pins its own versions of boto3/jsonschema; keep it in a venv of its own so it
# never changes what the tests import. Only the tests (sam validate, sam build) need it.
if [ "$profile" = dev ] && [ ! -x "$venv-sam/bin/sam" ]; then
  "$py" -m venv "$venv-sam"
  "$venv-sam/bin/python" -m pip install -q --upgrade pip
  "$venv-sam/bin/python" -m pip install -q 'aws-sam-cli==1.170.0'
fi
echo "bootstrap: ready ($("$venv/bin/python" --version), $(command -v prometheus))" >&2
