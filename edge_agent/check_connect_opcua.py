"""The OPC UA part of `check-config --connect`: one session with the source's security and user
(build_client), the configured nodes and browse roots resolved as the agent resolves them
(opcua_browse), each variable's unit and, for percent deadbands, EURange, and one read of every
value."""

from __future__ import annotations

import asyncio
import contextlib

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from edge_agent.check_connect import Progress, Row, format_value
from edge_agent.config import OpcUaSourceConfig
from edge_agent.errors import BrowseError, SourceError
from edge_agent.sources.opcua_browse import (
    CHUNK,
    Binding,
    explicit_bindings,
    read_ranges,
    read_units,
    resolve_root,
    walk_root,
)
from edge_agent.sources.opcua_client import build_client
from edge_agent.sources.opcua_options import absolute_deadband, effective_options
from edge_agent.sources.opcua_values import to_value
from plantmesh.contracts import Quality
from plantmesh.resilience import describe

# What a status means for whoever wrote the config; other Bad statuses say `read failed`.
_STATUS_PROBLEMS = {
    StatusCodes.BadNodeIdUnknown: "node does not exist",
    StatusCodes.BadNodeIdInvalid: "not a valid node id",
    StatusCodes.BadAttributeIdInvalid: "not a variable",
    StatusCodes.BadNotReadable: "not readable",
    StatusCodes.BadUserAccessDenied: "not readable by this user",
}


def status_problem(code: int) -> str:
    """`node does not exist (BadNodeIdUnknown)`."""
    name = ua.StatusCode(ua.UInt32(code)).name
    return f"{_STATUS_PROBLEMS.get(code, 'read failed')} ({name})"


def connect_problem(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s (timed out)"
    if isinstance(exc, UaStatusCodeError) and exc.code is not None:
        return f"server refused the session ({ua.StatusCode(ua.UInt32(exc.code)).name})"
    if isinstance(exc, OSError):
        return f"cannot connect: {exc.strerror or exc}"
    return f"cannot connect: {describe(exc)}"


def _configured(source: OpcUaSourceConfig, problem: str) -> list[Row]:
    """A row per configured node and browse root, all with the same problem."""
    rows = [
        Row(source.name, f"{node.machine}/{node.signal}", node.address, problem=problem)
        for node in source.nodes
    ]
    rows += [
        Row(source.name, f"browse {root.root}", source.endpoint, problem=problem)
        for root in source.browse
    ]
    return rows


async def check_opcua(
    source: OpcUaSourceConfig, plant: str, timeout_s: float, progress: Progress
) -> list[Row]:
    # The agent's own client, with every request bounded by the check's timeout.
    config = source.model_copy(update={"request_timeout_s": timeout_s})
    client: Client | None = None
    try:
        async with asyncio.timeout(timeout_s * 3):
            client = await build_client(config)
            await client.connect()
    except (OSError, TimeoutError, UaError, SourceError, ValueError) as exc:
        progress.advance(len(source.nodes))
        if client is not None:
            await _close(client)
        return _configured(source, connect_problem(exc, timeout_s))
    try:  # each request is bounded by the timeout (request_timeout_s), not the whole walk
        return await _check_session(client, source, plant, progress)
    except (OSError, TimeoutError, UaError) as exc:
        return _configured(source, f"session lost while checking: {describe(exc)}")
    finally:
        await _close(client)


async def _check_session(
    client: Client, source: OpcUaSourceConfig, plant: str, progress: Progress
) -> list[Row]:
    rows: list[Row] = []
    bindings, unresolved = await explicit_bindings(client, source, plant)
    for item in unresolved:
        name = f"{item.asset.machine}/{item.signal}"
        problem = f"{status_problem(item.status).split(' (')[0]}: {item.reason}"
        rows.append(Row(source.name, name, item.address, problem=problem))
    progress.advance(len(unresolved))
    for root in source.browse:
        try:
            node = await resolve_root(client, root)
        except BrowseError as exc:
            rows.append(Row(source.name, f"browse {root.root}", root.root, problem=str(exc)))
            continue
        found = await walk_root(client, plant, node, effective_options(source, root), root)
        if not found:
            problem = "no variables at the levels below it (`plantmesh agent discover` shows them)"
            rows.append(Row(source.name, f"browse {root.root}", root.root, problem=problem))
        progress.add_total(len(found))
        bindings.extend(found)
    bindings = await read_ranges(client, await read_units(client, bindings))
    # Show a node as configured; a browse path also as the node id it resolved to.
    configured = {(n.machine, n.signal): n.address for n in source.nodes}
    for start in range(0, len(bindings), CHUNK):
        chunk = bindings[start : start + CHUNK]
        values = await client.read_attributes([b.node for b in chunk])
        for binding, value in zip(chunk, values, strict=True):
            address = resolved = binding.node.nodeid.to_string()
            given = configured.get((binding.asset.machine, binding.signal))
            if given is not None:
                address = f"{given} ({resolved})" if given.startswith("browse") else given
            rows.append(_row(source.name, binding, address, value))
        progress.advance(len(chunk))
    return rows


def _row(source: str, binding: Binding, address: str, data_value: ua.DataValue) -> Row:
    row = Row(source, f"{binding.asset.machine}/{binding.signal}", address)
    status = data_value.StatusCode.value if data_value.StatusCode is not None else 0
    row.quality = Quality.from_status_code(status).value
    variant = data_value.Value
    raw = variant.Value if variant is not None else None
    if variant is not None and raw is not None:
        row.type = variant.VariantType.name + ("[]" if isinstance(raw, list) else "")
    value = to_value(raw)
    if value is not None:
        row.value = format_value(value, binding.unit)
    if Quality.from_status_code(status) == Quality.BAD:
        row.problem = status_problem(status)
    elif raw is not None and value is None:
        row.problem = _unsupported(raw, row.type)
    elif absolute_deadband(binding.options, binding.eu_range) is None:
        row.problem = "percent deadband but the variable has no EURange"
    return row


def _unsupported(raw: object, type_name: str) -> str:
    if isinstance(raw, float):
        return "NaN or infinity (not published)"
    return f"type mismatch: {type_name} (readings carry numbers, booleans and text)"


async def _close(client: Client) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await client.disconnect()
