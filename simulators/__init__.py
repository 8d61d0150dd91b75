"""plantmesh simulators: simulated plants serving OPC UA and Modbus TCP.

The public API (see simulators.runtime for an example):
    load_network(path) -> NetworkConfig            the network file, profiles loaded
    load_scenario(path, network) -> ScenarioConfig  scripted events (deploy/demo/SCENARIOS.md)
    Simulation(network, speed=, seed=, start=, on_record=, on_records=, keep_records=,
               scenario=, on_truth=, clock=)   timestamps: wall clock, scenario x speed
        .serving()  .step()  .run(duration_s)  .endpoints()  .records  .truth  .timestamp(tick)
    ProductionRecord, read_records(path)           the log of served values
    TruthRecord, read_truth(path)                  the ground truth of injected events
    score(alerts, truth, grace), read_alerts(path) precision, recall, F1, latency per event kind
    signal_catalog(network)                        where each signal is served
"""

from simulators.catalog import CatalogEntry, signal_catalog
from simulators.errors import SimulatorError
from simulators.naming import NAMESPACE_URI, expanded_node_id, node_path, opcua_url
from simulators.network import NetworkConfig, load_network
from simulators.records import ProductionRecord, RecordWriter, read_records
from simulators.runtime import PlantEndpoints, Simulation
from simulators.scenario import ScenarioConfig, load_scenario
from simulators.scoring import Score, read_alerts, score
from simulators.truth import TruthRecord, read_truth

__all__ = [
    "NAMESPACE_URI",
    "CatalogEntry",
    "NetworkConfig",
    "PlantEndpoints",
    "ProductionRecord",
    "RecordWriter",
    "ScenarioConfig",
    "Score",
    "Simulation",
    "SimulatorError",
    "TruthRecord",
    "expanded_node_id",
    "load_network",
    "load_scenario",
    "node_path",
    "opcua_url",
    "read_alerts",
    "read_records",
    "read_truth",
    "score",
    "signal_catalog",
]
