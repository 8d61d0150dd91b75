#!/usr/bin/env bash
# Install the plantmesh edge agent on a gateway (Debian, Ubuntu, Raspberry Pi OS), as root:
#
#   sudo deploy/systemd/install-agent.sh                  # plantmesh[edge] from this checkout
#   sudo deploy/systemd/install-agent.sh "./dist/plantmesh-0.1.0-py3-none-any.whl[edge]"
#
# What it does, each step skipped when already done (running it again upgrades the package):
#   - a system user `plantmesh` (no login, no home);
#   - a virtualenv in /opt/plantmesh/venv with plantmesh[edge] (no cloud-side libraries);
#   - /etc/plantmesh/agent.yaml from deploy/agent/sample.yaml if there is none (never overwritten);
#   - the systemd unit plantmesh-agent.service (Type=notify, watchdog, restart always), enabled.
# The agent is started only when the config existed already; a fresh sample must be edited first.
set -euo pipefail

PREFIX=/opt/plantmesh
ETC=/etc/plantmesh
UNIT=/etc/systemd/system/plantmesh-agent.service
HERE=$(cd "$(dirname "$0")" && pwd)
SPEC=${1:-"$(cd "$HERE/../.." && pwd)[edge]"}
SAMPLE=$HERE/../agent/sample.yaml

if [ "$(id -u)" != 0 ]; then
  echo "install-agent: run as root (sudo $0)" >&2
  exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install-agent: Python 3.11 or newer is needed (python3 is $(python3 -V 2>&1))" >&2
  exit 1
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "install-agent: installing python3-venv"
  apt-get install -y -qq python3-venv
fi

if ! id plantmesh >/dev/null 2>&1; then
  echo "install-agent: creating system user plantmesh"
  useradd --system --user-group --home-dir /var/lib/plantmesh --no-create-home \
    --shell /usr/sbin/nologin plantmesh
fi

if [ ! -x "$PREFIX/venv/bin/python" ]; then
  echo "install-agent: creating $PREFIX/venv"
  install -d -m 0755 "$PREFIX"
  python3 -m venv "$PREFIX/venv"
fi
echo "install-agent: installing $SPEC"
"$PREFIX/venv/bin/python" -m pip install --quiet --upgrade pip
"$PREFIX/venv/bin/python" -m pip install --quiet --upgrade "$SPEC"

install -d -m 0750 -o root -g plantmesh "$ETC"
fresh=0
if [ ! -e "$ETC/agent.yaml" ]; then
  install -m 0640 -o root -g plantmesh "$SAMPLE" "$ETC/agent.yaml"
  fresh=1
  echo "install-agent: wrote $ETC/agent.yaml from the sample"
fi

install -m 0644 "$HERE/plantmesh-agent.service" "$UNIT"
systemctl daemon-reload
systemctl enable plantmesh-agent.service

if [ "$fresh" = 1 ]; then
  echo "install-agent: edit $ETC/agent.yaml (gateway_id, plant, mqtt, sources), check it with"
  echo "  $PREFIX/venv/bin/plantmesh agent check-config --config $ETC/agent.yaml"
  echo "then: systemctl start plantmesh-agent"
elif "$PREFIX/venv/bin/plantmesh" agent check-config --config "$ETC/agent.yaml" >/dev/null; then
  systemctl restart plantmesh-agent.service
  echo "install-agent: plantmesh-agent restarted (journalctl -u plantmesh-agent -f)"
else
  echo "install-agent: $ETC/agent.yaml is not valid (see above); the agent was not restarted" >&2
  exit 1
fi
