#!/usr/bin/env bash
# Installs the Debian packages the build needs, when missing. As root it installs them; otherwise
# it prints the one apt-get line to run and fails.
set -euo pipefail
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "missing Debian packages; run:"
    echo "  sudo apt-get install -y ${missing[*]}"
    exit 1
fi
