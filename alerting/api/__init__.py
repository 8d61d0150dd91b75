"""The HTTP API (FastAPI): alarms listed, shown with their evidence and timeline, and acted on by
people whose token's role and plant scope allow it."""
