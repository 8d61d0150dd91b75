"""The asset registry and unit conversion: every plant's tags as canonical signals and units."""
