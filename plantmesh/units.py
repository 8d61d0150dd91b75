"""The engineering units plantmesh knows, and conversion between them: each unit is an affine map
onto its dimension's base unit (`base = value * scale + offset`), so any two units of one
dimension convert into each other. Shared: the ingest normalizer converts with it and refuses
readings in other units (ingest.normalize.units re-exports it); the config checks of ingest and
alerting (plantmesh.registry_check) name the units agents publish that are not here.

The table is small on purpose: plants use a handful of engineering units, and every unit added
here is one the asset registry can name. Aliases cover the spellings PLC tags actually carry.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnitError(ValueError):
    """An unknown unit, or two units of different dimensions."""


@dataclass(frozen=True)
class Unit:
    name: str
    dimension: str
    scale: float
    offset: float = 0.0


_UNITS: tuple[tuple[tuple[str, ...], str, float, float], ...] = (
    # temperature, base degC
    (("degC", "°C", "C", "celsius"), "temperature", 1.0, 0.0),
    (("degF", "°F", "F", "fahrenheit"), "temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    (("K", "kelvin"), "temperature", 1.0, -273.15),
    # pressure, base bar
    (("bar",), "pressure", 1.0, 0.0),
    (("mbar",), "pressure", 1e-3, 0.0),
    (("psi",), "pressure", 0.0689475729317831, 0.0),
    (("kPa",), "pressure", 0.01, 0.0),
    (("MPa",), "pressure", 10.0, 0.0),
    (("Pa",), "pressure", 1e-5, 0.0),
    # velocity (vibration), base mm/s
    (("mm/s",), "velocity", 1.0, 0.0),
    (("in/s", "ips"), "velocity", 25.4, 0.0),
    (("m/s",), "velocity", 1000.0, 0.0),
    # length, base mm
    (("mm",), "length", 1.0, 0.0),
    (("um", "µm"), "length", 1e-3, 0.0),
    (("in",), "length", 25.4, 0.0),
    (("mil",), "length", 0.0254, 0.0),
    # flow, base l/min
    (("l/min", "L/min"), "flow", 1.0, 0.0),
    (("m3/h",), "flow", 1000.0 / 60.0, 0.0),
    (("gpm",), "flow", 3.785411784, 0.0),
    # rotational speed, base rpm
    (("rpm",), "rotation", 1.0, 0.0),
    (("Hz",), "rotation", 60.0, 0.0),
    # mass, base kg
    (("kg",), "mass", 1.0, 0.0),
    (("lb",), "mass", 0.45359237, 0.0),
    # power, base kW
    (("kW",), "power", 1.0, 0.0),
    (("W",), "power", 1e-3, 0.0),
    (("hp",), "power", 0.745699872, 0.0),
    # Below: the rest of what plant PLCs report. Each is a unit the writer accepts on a reading
    # (anything else is `unknown_unit`: `unit` is a tag, so free text would multiply series).
    (("m",), "length", 1000.0, 0.0),
    (("cm",), "length", 10.0, 0.0),
    (("m/min",), "velocity", 1000.0 / 60.0, 0.0),
    (("l/s", "L/s"), "flow", 60.0, 0.0),
    (("m3/min",), "flow", 1000.0, 0.0),
    (("g",), "mass", 1e-3, 0.0),
    (("t",), "mass", 1000.0, 0.0),
    (("MW",), "power", 1000.0, 0.0),
    (("kWh",), "energy", 1.0, 0.0),
    (("Wh",), "energy", 1e-3, 0.0),
    (("MWh",), "energy", 1000.0, 0.0),
    (("kJ",), "energy", 1.0 / 3600.0, 0.0),
    (("MJ",), "energy", 1000.0 / 3600.0, 0.0),
    (("A",), "current", 1.0, 0.0),
    (("mA",), "current", 1e-3, 0.0),
    (("V",), "voltage", 1.0, 0.0),
    (("mV",), "voltage", 1e-3, 0.0),
    (("kV",), "voltage", 1000.0, 0.0),
    (("kVA",), "apparent_power", 1.0, 0.0),
    (("kvar",), "reactive_power", 1.0, 0.0),
    (("N",), "force", 1.0, 0.0),
    (("kN",), "force", 1000.0, 0.0),
    (("Nm",), "torque", 1.0, 0.0),
    (("kNm",), "torque", 1000.0, 0.0),
    (("s",), "time", 1.0, 0.0),
    (("ms",), "time", 1e-3, 0.0),
    (("min",), "time", 60.0, 0.0),
    (("h",), "time", 3600.0, 0.0),
    (("%",), "ratio", 1.0, 0.0),
    (("ppm",), "ratio", 1e-4, 0.0),
    (("1",), "count", 1.0, 0.0),
    (("parts", "pcs"), "count", 1.0, 0.0),
    (("spm",), "stroke_rate", 1.0, 0.0),
    (("m/s2", "m/s²"), "acceleration", 1.0, 0.0),
    (("g0",), "acceleration", 9.80665, 0.0),
    (("dB",), "level", 1.0, 0.0),
    (("dBA", "dB(A)"), "sound_level", 1.0, 0.0),
    (("lux",), "illuminance", 1.0, 0.0),
    (("pH",), "acidity", 1.0, 0.0),
    (("%RH",), "humidity", 1.0, 0.0),
    (("uS/cm", "µS/cm"), "conductivity", 1.0, 0.0),
)

UNITS: dict[str, Unit] = {
    alias: Unit(names[0], dimension, scale, offset)
    for names, dimension, scale, offset in _UNITS
    for alias in names
}


KNOWN_UNITS: frozenset[str] = frozenset(UNITS)
"""Every unit a reading may carry (canonical names and aliases)."""


def lookup(name: str) -> Unit:
    try:
        return UNITS[name]
    except KeyError:
        raise UnitError(f"unknown unit {name!r}; known: {', '.join(sorted(UNITS))}") from None


@dataclass(frozen=True)
class Conversion:
    """`target = value * scale + offset`; identity when both units are the same."""

    source: str
    target: str
    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    def __call__(self, value: float) -> float:
        return value * self.scale + self.offset


def conversion(source: str, target: str) -> Conversion:
    """The conversion from `source` to `target` (canonical names in the result)."""
    a, b = lookup(source), lookup(target)
    if a.dimension != b.dimension:
        raise UnitError(f"cannot convert {source!r} ({a.dimension}) to {target!r} ({b.dimension})")
    if a.name == b.name:
        return Conversion(a.name, b.name)
    # source -> base -> target: (v*sa + oa - ob) / sb
    return Conversion(a.name, b.name, a.scale / b.scale, (a.offset - b.offset) / b.scale)
