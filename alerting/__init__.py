"""plantmesh alerting: rules over the normalized stream, alert events with evidence."""
