"""Helpers shared by the test modules (no tests here): real servers and how to wait on them,
Kafka, Modbus and OPC UA helpers, the agent and ingest in-process, and the contract test classes
every Source and every EventSink implementation runs. A test module imports from here, never
from another test module (tests/unit/test_test_layout.py checks it)."""
