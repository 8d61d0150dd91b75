"""`plantmesh agent discover`: what a PLC nobody here wrote has to offer (an OPC UA address
space as a tree, a Modbus register range in every type and order), and an agent config fragment
for the variables or registers picked from it."""
