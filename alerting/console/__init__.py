"""The maintenance web console: server-rendered pages (Jinja2) with small vanilla scripts,
served by the alarm API's own server under /console (alerting.console.mount.install). Every
asset is served by plantmesh itself. Logging in takes an API token; roles, plant scope and the
actions are the API's own (alerting/api)."""
