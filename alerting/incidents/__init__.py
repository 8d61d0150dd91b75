"""Network incidents: the same issue on the same machine class in several plants, seen once."""
