"""The alerting benchmark's fleet: 500 machines of 5 classes with a healthy process's trends,
and the rule catalogue the engine is measured with (20 rules a class, every rule type)."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from plantmesh.contracts import AssetPath, Quality, Reading, ReadingBatch
from plantmesh.contracts.readings import STATUS_BAD_SENSOR_FAILURE

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# --- the fleet ---------------------------------------------------------------------------------
# signal: (unit, nominal, process wander sigma, sensor noise sigma, AR coefficient of the wander)
SIGNALS: dict[str, tuple[str | None, float, float, float, float]] = {
    "bearing_temp": ("degC", 62.0, 0.02, 0.1, 0.999),
    "motor_temp": ("degC", 70.0, 0.02, 0.1, 0.999),
    "vibration_rms": ("mm/s", 1.6, 0.005, 0.05, 0.99),
    "pressure": ("bar", 150.0, 0.05, 0.8, 0.98),
    "flow": ("m3/h", 40.0, 0.02, 0.5, 0.98),
    "motor_current": ("A", 55.0, 0.05, 0.6, 0.98),
    "speed": ("rpm", 1480.0, 0.2, 2.0, 0.98),
    "oil_level": ("%", 80.0, 0.01, 0.2, 0.999),
}
"""The process wanders slowly (stationary sigma = wander / sqrt(1 - AR^2), about half the sensor
noise) and the sensor adds white noise: what a healthy machine's trend looks like."""
STATE_SIGNALS = ("running", "mode")  # bool and text: together 10 signals per machine
CLASSES = {"press": 1.0, "compressor": 1.15, "pump": 0.85, "conveyor": 0.7, "mixer": 1.3}
"""Machine classes and the factor of their nominal values."""
BAD_QUALITY_P = 2e-5  # share of readings with a Bad status (a sensor glitch)
STOP_P = 1 / 1800  # chance a running machine stops in a given second (for 60-300 s)
MODE_P = 1 / 3600  # chance the mode changes in a given second


def class_rules(cls: str, factor: float) -> list[dict[str, Any]]:
    """20 rules for one machine class: every rule type, several of them more than once."""
    running = {"signal": "running", "equals": True}

    def nominal(signal: str) -> float:
        return SIGNALS[signal][1] * factor

    def rule(name: str, type_: str, issue: str, signal: str, **keys: Any) -> dict[str, Any]:
        return {
            "name": f"{cls}-{name}",
            "type": type_,
            "issue_type": issue,
            "signal": signal,
            "machine_classes": [cls],
            **keys,
        }

    over, drift, frozen = "bearing-overtemperature", "process-drift", "frozen-sensor"
    return [
        rule("bearing-hot", "threshold", over, "bearing_temp", above=nominal("bearing_temp") + 25,
             deadband=3.0, on_delay_s=10.0, gate=running),
        rule("bearing-trip", "threshold", over, "bearing_temp", above=nominal("bearing_temp") + 40,
             deadband=5.0, on_delay_s=0.0, severity="critical"),
        rule("motor-hot", "threshold", over, "motor_temp", above=nominal("motor_temp") + 30,
             deadband=3.0, on_delay_s=5.0),
        rule("pressure-low", "threshold", "pressure-loss", "pressure",
             below=nominal("pressure") * 0.8, deadband=5.0, on_delay_s=5.0, gate=running),
        rule("current-high", "threshold", "unplanned-stop", "motor_current",
             above=nominal("motor_current") * 1.4, deadband=2.0, on_delay_s=3.0),
        rule("bearing-heating", "rate_of_change", over, "bearing_temp", window_s=60.0,
             per="minute", rising_above=3.0, deadband=0.5, on_delay_s=10.0),
        rule("pressure-bleed", "rate_of_change", "pressure-loss", "pressure", window_s=10.0,
             per="second", falling_below=-2.0, on_delay_s=2.0, gate=running),
        rule("pressure-frozen", "flatline", frozen, "pressure", for_s=60.0, epsilon=0.01,
             gate=running),
        rule("flow-frozen", "flatline", frozen, "flow", for_s=60.0, epsilon=0.01, gate=running),
        rule("machine-silent", "stale", "comms-loss", "running", for_s=30.0, scope="machine",
             signals=["bearing_temp", "pressure", "speed"]),
        rule("vibration-silent", "stale", "comms-loss", "vibration_rms", for_s=20.0),
        rule("vibration-zone", "vibration_zone", "vibration-instability", "vibration_rms",
             zones={cls: {"b": 2.3, "c": 4.5, "d": 7.1}, "default": {"b": 1.4, "c": 2.8, "d": 4.5}},
             deadband=0.3, on_delay_s=5.0, gate=running),
        rule("pressure-spc", "spc", drift, "pressure", learn_s=120.0, on_delay_s=10.0, gate=running),
        rule("flow-spc", "spc", drift, "flow", learn_s=120.0, on_delay_s=10.0, gate=running),
        rule("current-spc", "spc", drift, "motor_current", learn_s=120.0, western_electric=[1, 2],
             on_delay_s=5.0, gate=running),
        rule("pressure-swing", "oscillation", "vibration-instability", "pressure", window_s=10.0,
             min_amplitude=nominal("pressure") * 0.1, gate=running),
        rule("speed-swing", "oscillation", "vibration-instability", "speed", window_s=10.0,
             measure="std", min_amplitude=50.0, gate=running),
        rule("running-flapping", "state_flapping", "state-flapping", "running",
             min_transitions=6, window_s=600.0),
        rule("mode-flapping", "state_flapping", "state-flapping", "mode", min_transitions=6,
             window_s=600.0),
        rule("bearing-sensor", "bad_quality", "sensor-fault", "bearing_temp", for_s=10.0),
    ]  # fmt: skip


def catalogue_rules() -> list[dict[str, Any]]:
    return [r for cls, factor in CLASSES.items() for r in class_rules(cls, factor)]


@dataclass
class Machine:
    asset: AssetPath
    cls: str
    nominal: dict[str, float]
    wander: dict[str, float]
    running: bool = True
    stopped_until: int = 0
    mode: str = "auto"


class Fleet:
    """Machines with a seeded walk per signal; `second(t)` is one batch per machine."""

    def __init__(self, machines: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self._seqs: dict[str, int] = {}
        classes = list(CLASSES)
        self.machines = []
        for i in range(machines):
            cls = classes[i % len(classes)]
            asset = AssetPath(plant=f"plant-{i % 4}", area="area1", line=f"line{i % 10}",
                              machine=f"{cls}-{i:04d}")  # fmt: skip
            nominal = {s: spec[1] * CLASSES[cls] for s, spec in SIGNALS.items()}
            self.machines.append(Machine(asset, cls, nominal, dict.fromkeys(SIGNALS, 0.0)))

    def readings(self, m: Machine, t: int, ts: datetime) -> list[Reading]:
        rng = self.rng
        if m.running and rng.random() < STOP_P:
            m.running, m.stopped_until = False, t + rng.randint(60, 300)
        elif not m.running and t >= m.stopped_until:
            m.running = True
        if rng.random() < MODE_P:
            m.mode = "manual" if m.mode == "auto" else "auto"
        out = []
        for name, (unit, _, wander_sigma, noise, ar) in SIGNALS.items():
            m.wander[name] = ar * m.wander[name] + rng.gauss(0.0, wander_sigma)
            value = m.nominal[name] + m.wander[name] + rng.gauss(0.0, noise)
            if not m.running and name in ("speed", "motor_current"):
                value = 0.0
            out.append(self._reading(m.asset, name, round(value, 3), unit, ts))
        out.append(self._reading(m.asset, "running", m.running, None, ts))
        out.append(self._reading(m.asset, "mode", m.mode, None, ts))
        return out

    def _reading(
        self, asset: AssetPath, signal: str, value: Any, unit: str | None, ts: datetime
    ) -> Reading:
        # model_construct: the same objects decoding gives, without paying validation here.
        keys: dict[str, Any] = {}
        if self.rng.random() < BAD_QUALITY_P:
            keys = {"quality": Quality.BAD, "status_code": STATUS_BAD_SENSOR_FAILURE}
        return Reading.model_construct(
            asset=asset, signal=signal, value=value, unit=unit, source_ts=ts, gateway_ts=ts, **keys
        )

    def second(self, t: int, start: datetime = T0) -> list[tuple[Machine, ReadingBatch]]:
        """One batch per machine; sequence numbers run per gateway (one per plant), as an
        agent numbers its batches (the engine skips a batch whose number it saw before)."""
        ts = start + timedelta(seconds=t)
        out = []
        for m in self.machines:
            gateway = f"gw-{m.asset.plant}"
            seq = self._seqs[gateway] = self._seqs.get(gateway, -1) + 1
            batch = ReadingBatch.model_construct(
                gateway_id=gateway, session_id="s1", seq=seq, sent_at=ts,
                readings=self.readings(m, t, ts),
            )  # fmt: skip
            out.append((m, batch))
        return out
