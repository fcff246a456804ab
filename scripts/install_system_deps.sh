#!/usr/bin/env bash
# Installs the Debian packages the tests need (Chromium for the browser test, ShellCheck for
# the shell scripts, a C compiler for the engine's kernels), only when they are missing.
# Arguments name other packages to install instead (`make kernels`: only the compiler).
set -euo pipefail

if [ $# -gt 0 ]; then
  packages=("$@")
else
  packages=(chromium shellcheck gcc libc6-dev)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_system_deps: no apt-get here; install ${missing[*]} yourself" >&2
  exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
