"""An OPC UA client not written in Python reads the simulator: node-opcua (npm `node-opcua-client`).

Install it once outside the repository:
    mkdir -p ~/.cache/plantmesh/node-opcua && cd ~/.cache/plantmesh/node-opcua
    npm install node-opcua-client@2
(or point PLANTMESH_NODE_OPCUA at a folder holding its node_modules). Without it the test skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators import NetworkConfig, Simulation

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
NODE_OPCUA = Path(
    os.environ.get("PLANTMESH_NODE_OPCUA", Path.home() / ".cache" / "plantmesh" / "node-opcua")
)
PASSWORD = "node-pw"

# Reads each node's value, data type, status, source timestamp and engineering unit; prints JSON.
SCRIPT = r"""
const {OPCUAClient, AttributeIds, DataType, MessageSecurityMode, SecurityPolicy, UserTokenType}
  = require("node-opcua-client");
const [url, user, password, ...paths] = process.argv.slice(2);
(async () => {
  const client = OPCUAClient.create({endpointMustExist: false, connectionStrategy: {maxRetry: 0},
    securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None});
  await client.connect(url);
  const session = await client.createSession(
    {type: UserTokenType.UserName, userName: user, password: password});
  const ns = (await session.readNamespaceArray()).indexOf("urn:plantmesh:sim");
  const out = {};
  for (const path of paths) {
    const value = await session.read({nodeId: `ns=${ns};s=${path}`,
                                      attributeId: AttributeIds.Value});
    const browsed = await session.translateBrowsePath({
      startingNode: `ns=${ns};s=${path}`,
      relativePath: {elements: [{referenceTypeId: "i=46", isInverse: false,  // HasProperty
                                 includeSubtypes: true,
                                 targetName: {namespaceIndex: 0, name: "EngineeringUnits"}}]}});
    const units = await session.read({nodeId: browsed.targets[0].targetId,
                                      attributeId: AttributeIds.Value});
    out[path] = {value: value.value.value, type: DataType[value.value.dataType],
                 status: value.statusCode.name,
                 source: value.sourceTimestamp.toISOString(),
                 unit: units.value.value.displayName.text};
  }
  console.log(JSON.stringify(out));
  await session.close();
  await client.disconnect();
})().catch((err) => { console.error(String(err)); process.exit(1); });
"""


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    network = NetworkConfig.model_validate(
        {"plants": [{"id": "plant-n",
                     "opcua": {"port": 0, "anonymous": False, "users": {"reader": PASSWORD}},
                     "machines": [{"id": "pump-01", "area": "utilities", "line": "line1",
                                   "class": "centrifugal_pump", "protocol": "opcua"}]}]}
    )  # fmt: skip
    simulation = Simulation(network, start=START)
    async with simulation.serving():
        await simulation.step()
        yield simulation


async def test_node_opcua_reads_values_types_status_timestamps_and_units(
    sim: Simulation, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_OPCUA / "node_modules" / "node-opcua-client").is_dir():
        pytest.skip(f"node-opcua-client not installed in {NODE_OPCUA} (see this file's docstring)")
    script = tmp_path / "read.js"
    script.write_text(SCRIPT)
    records = {r.series_key: r for r in sim.records}  # the latest of each signal
    paths = [p for p in records if p.endswith(("bearing_temp", "flow", "energy", "state"))]
    url = sim.endpoints()["plant-n"].opcua_url
    assert url is not None
    process = await asyncio.create_subprocess_exec(
        node, str(script), url, "reader", PASSWORD, *paths,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(NODE_OPCUA / "node_modules")},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    # node-opcua logs its own warnings to stdout too: the result is the line of JSON.
    seen = json.loads(next(x for x in out.decode().splitlines() if x.startswith('{"')))
    assert set(seen) == set(paths)
    for path in paths:
        record = records[path]
        assert seen[path]["value"] == record.value, path
        assert seen[path]["type"] == "Double"
        assert seen[path]["status"] == "Good"
        assert seen[path]["source"] == record.source_ts.isoformat().replace("+00:00", ".000Z")
        assert seen[path]["unit"] == record.unit
