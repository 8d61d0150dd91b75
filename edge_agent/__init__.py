"""plantmesh edge agent: reads PLCs over OPC UA and Modbus and publishes reading batches to MQTT."""
