"""Topic namespaces the test session used: `namespace` (tests/conftest.py) adds each one, and the
`kafka_bootstrap` fixture (tests/support/servers.py) deletes their topics when the session ends."""

from __future__ import annotations

NAMESPACES: set[str] = set()
