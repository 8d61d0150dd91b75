"""A belt conveyor: light motor load, counts the parts it carries past the line-end sensor."""

from __future__ import annotations

from simulators.machines.base import MachineModel


class Conveyor(MachineModel):
    machine_class = "conveyor"
    description = "belt conveyor"
    speed_unit = "m/min"
    nominal_speed = 30.0
    idle_speed_fraction = 0.2
    load_range = (0.5, 0.7)
    no_load_current = 3.0
    full_load_current = 11.0
    ambient_temp = 28.0
    temp_rise_full_load = 22.0
    bearing_tau_s = 100.0
    vibration_base = 0.6
    vibration_per_load = 0.6
    parts_per_hour = 1800.0
