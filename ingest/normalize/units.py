"""Unit conversion for the normalizer. The unit table lives in plantmesh.units, shared with the
config checks of alerting (which may not import ingest)."""

from __future__ import annotations

from plantmesh.units import KNOWN_UNITS, UNITS, Conversion, Unit, UnitError, conversion, lookup

__all__ = ["KNOWN_UNITS", "UNITS", "Conversion", "Unit", "UnitError", "conversion", "lookup"]
