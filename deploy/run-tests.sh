#!/usr/bin/env bash
# The whole test suite: static checks, then unit, integration and end-to-end tests against the
# real local stack. Brings the stack up, and down again unless it was already running before.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# Peers written in other languages, for interoperability tests.
if ! command -v mbpoll >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing mbpoll (Debian) for Modbus interoperability tests"
    (apt-get install -y -qq mbpoll >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq mbpoll >/dev/null; })
  else
    echo "mbpoll missing: sudo apt-get install mbpoll" >&2
  fi
fi

# Debian's docker-compose validates deploy/compose/compose.yaml (`config` needs no engine; without
# recommends, so no Docker engine is installed with it).
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing docker-compose (Debian) for the compose file's checks"
    (apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; })
  else
    echo "docker-compose missing: sudo apt-get install --no-install-recommends docker-compose" >&2
  fi
fi

# Downloads and builds for the tests live where `plantmesh stack` keeps its own.
cache="${PLANTMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plantmesh}"

# node-opcua: a second OPC UA implementation (JavaScript), cached outside the repository.
node_opcua="${PLANTMESH_NODE_OPCUA:-$cache/node-opcua}"
if command -v npm >/dev/null 2>&1 && [ ! -d "$node_opcua/node_modules/node-opcua-client" ]; then
  echo "installing node-opcua-client (npm) for OPC UA interoperability tests"
  mkdir -p "$node_opcua"
  npm install --prefix "$node_opcua" --no-audit --no-fund --silent node-opcua-client@2 >/dev/null
fi
export PLANTMESH_NODE_OPCUA="$node_opcua"

# The web console's browser tests: Debian's chromium (driven by Playwright for Python; its own
# browser download is not used) and axe-core for accessibility checks, cached like node-opcua.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing chromium (Debian) for the console's browser tests"
    (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; })
  else
    echo "chromium missing: sudo apt-get install chromium" >&2
  fi
fi
axe_core="${PLANTMESH_AXE_CORE:-$cache/axe-core}"
if command -v npm >/dev/null 2>&1 && [ ! -f "$axe_core/node_modules/axe-core/axe.min.js" ]; then
  echo "installing axe-core (npm) for the console's accessibility checks"
  mkdir -p "$axe_core"
  npm install --prefix "$axe_core" --no-audit --no-fund --silent axe-core@4 >/dev/null
fi
export PLANTMESH_AXE_CORE="$axe_core"

echo "== static checks"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy

was_running=0
if $BIN/plantmesh stack status --quiet >/dev/null 2>&1; then was_running=1; fi
echo "== local stack"
$BIN/plantmesh stack up
eval "$($BIN/plantmesh stack env)"
status=0
# Helm for the chart's checks (tests/integration/test_helm_chart.py) is a Go build of minutes
# on an empty cache: start it now, on one core at the lowest priority, so it overlaps the
# first tests; those tests wait for it (a file lock) rather than build it again.
mkdir -p "$cache"
GOFLAGS="-p=1" setsid nice -n 19 $BIN/python -m plantmesh.stack.helm_build \
  >"$cache/helm-prebuild.log" 2>&1 &
helm_build=$!
echo "== tests"
export PLANTMESH_TEST_TIMEOUT_SCALE="${PLANTMESH_TEST_TIMEOUT_SCALE:-3}"
# The slowest tests are listed at the end: the suite must stay under 30 minutes.
$BIN/pytest --durations=25 "$@" || status=$?
kill -- "-$helm_build" 2>/dev/null || true  # its own process group: go and its compilers too
wait "$helm_build" 2>/dev/null || true
if [ "$was_running" = 0 ]; then
  $BIN/plantmesh stack down || true
fi
exit $status
