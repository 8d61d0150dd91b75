"""An OPC UA source's readings as JSON (edge_agent.reading_json): the pieces of every signal,
kept across sessions, and what each data value the server sends becomes.

A Good Double, what most PLC variables are, takes the short way (a float's JSON between fixed
pieces); every other value goes through the rules of opcua_values: Bad means no value, a Float is
its shortest decimal, an integer beyond 2**53 is Bad (out of range), an Uncertain value without
one carries the last value.
"""

from __future__ import annotations

from collections.abc import Callable

from asyncua import ua

from edge_agent.reading_json import (
    MachineJson,
    SignalJson,
    float_json,
    good_tail,
    timestamp_json,
)
from edge_agent.sources.opcua_browse import Binding
from edge_agent.sources.opcua_values import inexact, to_value
from plantmesh.contracts import STATUS_BAD_OUT_OF_RANGE, AssetPath, Quality

_DOUBLE = ua.VariantType.Double


class ReadingTexts:
    def __init__(self, fail: Callable[[str, str], None]) -> None:
        self._fail = fail
        """Counts and logs (once per kind) a value no reading can carry."""
        self._machines: dict[str, MachineJson] = {}
        self._signals: dict[tuple[str, str, str | None], SignalJson] = {}
        self._last_values: dict[SignalJson, float | bool | str] = {}
        self._last_ts: tuple[object, str] = (None, "")

    def signal(self, asset: AssetPath, signal: str, unit: str | None) -> SignalJson:
        key = (asset.key, signal, unit)
        found = self._signals.get(key)
        if found is None:
            machine = self._machines.get(asset.key)
            if machine is None:
                machine = self._machines[asset.key] = MachineJson(asset)
            found = self._signals[key] = machine.signal(signal, unit)
        return found

    def _timestamp(self, data_value: ua.DataValue, gateway_ts: str) -> str:
        ts = data_value.SourceTimestamp or data_value.ServerTimestamp
        if ts is None:
            return gateway_ts
        last, text = self._last_ts
        if ts != last:  # a server often stamps a whole scan alike
            text = timestamp_json(ts)
            self._last_ts = (ts, text)
        return text

    def text(
        self, binding: Binding, signal: SignalJson, data_value: ua.DataValue, gateway_ts: str
    ) -> str | None:
        variant = data_value.Value
        raw = variant.Value if variant is not None else None
        status = data_value.StatusCode.value if data_value.StatusCode is not None else 0
        source_ts = self._timestamp(data_value, gateway_ts)
        if (
            status == 0
            and type(raw) is float
            and raw - raw == 0.0  # finite
            and variant is not None
            and variant.VariantType is _DOUBLE
        ):
            self._last_values[signal] = raw
            return signal.good(float_json(raw), good_tail(source_ts, gateway_ts))
        value = to_value(raw, variant.VariantType if variant is not None else None)
        if value is None and raw is not None:
            what = f"value of {binding.asset.key}/{binding.signal}"
            reason = inexact(raw)
            if reason is None:
                self._fail(
                    what,
                    f"unsupported value {type(raw).__name__} (readings carry numbers, booleans, text)",
                )
                return None
            self._fail(what, reason)
            status = STATUS_BAD_OUT_OF_RANGE
        quality = Quality.from_status_code(status)
        if quality is Quality.BAD:
            # Bad means no value: what the server sent beside the status (0, "") is a
            # placeholder, no measurement (plantmesh.contracts.readings).
            value = None
        elif value is None:
            if quality is Quality.GOOD:
                return None
            # Uncertain without a value: publish the status with the last value, not silence.
            value = self._last_values.get(signal, "")
        if value is not None:
            self._last_values[signal] = value
        return signal.reading(value, status, source_ts, gateway_ts)
