"""plantmesh: shared contracts, configuration and command line for every plantmesh service."""

__version__ = "0.1.0"
