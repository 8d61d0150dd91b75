"""plantmesh simulators: simulated plants serving OPC UA and Modbus TCP."""
