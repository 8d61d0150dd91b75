"""The one error type of the local stack: what went wrong, in words a user can act on."""

from __future__ import annotations


class StackError(Exception):
    """Provisioning, starting, checking or stopping a local server failed."""
