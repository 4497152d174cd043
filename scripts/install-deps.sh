#!/usr/bin/env bash
# Installs the system tools the test suite and the checks use, when they are missing:
# openssl (interop tests), jq and curl (demo contract, examples). Idempotent; needs root or sudo
# on a Debian-like system. Rust tooling (cargo-nextest, cargo-deny) is handled by its callers.
set -euo pipefail
missing=()
for tool in openssl jq curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
