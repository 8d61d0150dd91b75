"""plantmesh simulators: simulated plants serving OPC UA and Modbus TCP.

The public API (see simulators.runtime for an example):
    load_network(path) -> NetworkConfig            the network file, profiles loaded
    Simulation(network, speed=, seed=, start=, on_record=, on_records=, keep_records=)
        .serving()  .step()  .run(duration_s)  .endpoints()  .records  .timestamp(tick)
    ProductionRecord, read_records(path)           the log of served values
    signal_catalog(network)                        where each signal is served
"""

from simulators.catalog import CatalogEntry, signal_catalog
from simulators.errors import SimulatorError
from simulators.naming import NAMESPACE_URI, expanded_node_id, node_path, opcua_url
from simulators.network import NetworkConfig, load_network
from simulators.records import ProductionRecord, RecordWriter, read_records
from simulators.runtime import PlantEndpoints, Simulation

__all__ = [
    "NAMESPACE_URI",
    "CatalogEntry",
    "NetworkConfig",
    "PlantEndpoints",
    "ProductionRecord",
    "RecordWriter",
    "Simulation",
    "SimulatorError",
    "expanded_node_id",
    "load_network",
    "node_path",
    "opcua_url",
    "read_records",
    "signal_catalog",
]
