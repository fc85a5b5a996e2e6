#!/usr/bin/env bash
# scripts/setup.sh — installs what rlvr builds and tests with, when it is missing:
# Debian packages (compilers' libraries: cJSON, OpenBLAS, libuv, PCRE2, utf8proc, GMP,
# OpenMPI) and, with --python, the PyPI reference oracles used by the parity tests
# (torch, transformers, safetensors, tokenizers). Safe to run again; does nothing
# when everything is present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libopenblas-openmp-dev libuv1-dev libpcre2-dev
      libutf8proc-dev libgmp-dev libopenmpi-dev openmpi-bin python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--python" ]; then
  # Optional: the live comparisons against transformers run only when these import.
  python3 -c "import torch, transformers, safetensors, tokenizers" 2>/dev/null ||
    pip install -q torch transformers safetensors tokenizers numpy ||
    echo "setup: PyPI oracles not installed; live parity checks will be skipped"
fi
