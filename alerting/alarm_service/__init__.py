"""The alarm service: detection's events in, the ISA-18.2 lifecycle, escalation, notifications,
the audit trail and the HTTP API (`plantmesh alerting alarms --config F`)."""
