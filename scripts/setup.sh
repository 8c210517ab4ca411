#!/usr/bin/env bash
# Installs what gateway.hpp's build, examples and tests need on Debian 12, then the npm packages
# the interop tests use (pinned by package-lock.json). Run as root, or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(
  g++ meson ninja-build pkg-config   # compiler and build
  ccache                             # Meson uses it when present: an unchanged file is not compiled again
  libasio-dev libssl-dev             # standalone Asio, OpenSSL (SHA-1, base64, TLS)
  zlib1g-dev                         # permessage-deflate and gzip polling responses (GATEWAY_DEFLATE)
  nlohmann-json3-dev                 # JSON for the gateway's events
  libgtest-dev                       # GoogleTest
  libhiredis-dev redis-server        # the Redis client's RESP reader, and a real server for its tests
  nginx-light                        # a load balancer in front of two cluster instances (nginx tests)
  python3 python3-websockets         # the conformance suite and a third-party client
  python3-socketio python3-requests python3-websocket   # python-socketio and python-engineio (polling needs requests, WebSocket needs websocket-client)
  openssl                            # throwaway certificates for the interop tests
  chromium                           # a real browser's WebSocket, driven by playwright-core
  clang libclang-rt-14-dev llvm-14   # libFuzzer targets (llvm-symbolizer for their stack traces)
)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
npm ci --no-audit --no-fund --loglevel=error
