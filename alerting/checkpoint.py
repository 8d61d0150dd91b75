"""An engine's whole state as bytes, and back: what a checkpoint of the alerting service holds
for one input partition (see state_store.py for where it goes). The network-incident stage
checkpoints its correlators the same way, to a state topic of its own: a checkpoint holds
whatever engine its service keeps per partition.

Format: a magic line with the format version, then the zlib-compressed pickle of a
`Checkpoint` (the engine with its rules and their per-series state, and the input offsets it
has consumed up to). Pickle because rule state is many small, differently shaped objects
(episodes, windows, baselines) that change with every rule type: one generic, exact copy beats
nine hand-written encoders that drift. Loading is restricted: only classes of plantmesh's own
packages and a short list of standard containers and time types can be named by a checkpoint,
so a tampered state topic cannot make the service call anything else (the `Restricting
Globals` recipe of the pickle documentation). Still, only the alerting service should be
allowed to write its state topic."""

from __future__ import annotations

import io
import pickle
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

MAGIC = b"plantmesh-alerting-checkpoint/1\n"

_OWN_PACKAGES = ("alerting.", "plantmesh.")
_ALLOWED = {
    ("builtins", name)
    for name in ("set", "frozenset", "dict", "list", "tuple", "bytearray", "object", "slice")
} | {
    ("collections", "deque"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("datetime", "datetime"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("datetime", "date"),
    ("functools", "partial"),
    ("pydantic.main", "BaseModel"),
    ("pydantic_core._pydantic_core", "PydanticUndefinedType"),
    ("pydantic_core._pydantic_core", "TzInfo"),  # the tzinfo of times decoded from JSON
}


class CheckpointError(ValueError):
    """Bytes that are not a checkpoint this version can read."""


@dataclass
class Checkpoint:
    """One input partition's engine as of `offsets` (per input topic, the next offset to read:
    everything before it is in the engine's state). The engine: alerting.engine.Engine for the
    detection service, alerting.incidents.correlator.Correlator for the incident stage."""

    partition: int
    engine: Any
    offsets: dict[str, int] = field(default_factory=dict)
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """Wall-clock time of the checkpoint: alert events published after it may be published
    again by the replay after a crash, and are looked for from this time on."""


def _own(cls: type) -> bool:
    return cls.__module__.startswith(_OWN_PACKAGES)


def _safe_getattr(obj: object, name: str) -> object:
    """What pickle's `getattr(obj, name)` may do here: name a member of one of our enums, or a
    method of one of our objects (a rule's bound callback). An unrestricted getattr would reach
    any object from any class, through dunder attributes."""
    if isinstance(obj, type) and issubclass(obj, Enum) and _own(obj):
        if name in obj.__members__:
            return obj.__members__[name]
    elif not name.startswith("__") and _own(type(obj)) and callable(getattr(type(obj), name, None)):
        return getattr(obj, name)
    raise CheckpointError(f"a checkpoint may not name {type(obj).__name__}.{name}")


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("builtins", "getattr"):
            return _safe_getattr
        if module.startswith(_OWN_PACKAGES) or (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise CheckpointError(f"a checkpoint may not name {module}.{name}")


def pickled(checkpoint: Checkpoint) -> bytes:
    return pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)


def packed(raw: bytes) -> bytes:
    """A pickled checkpoint compressed (level 1: a fifth of the pickle's size, a fifth of
    level 3's time; zlib releases the GIL, so this may run in a thread)."""
    return MAGIC + zlib.compress(raw, 1)


def dump(checkpoint: Checkpoint) -> bytes:
    return packed(pickled(checkpoint))


def load(data: bytes) -> Checkpoint:
    """Raises CheckpointError for anything but a checkpoint of this format (the caller checks
    that its engine is of the kind it keeps)."""
    if not data.startswith(MAGIC):
        raise CheckpointError("not an alerting checkpoint of format 1")
    try:
        raw = zlib.decompress(data[len(MAGIC) :])
        checkpoint = _Restricted(io.BytesIO(raw)).load()
    except CheckpointError:
        raise
    except Exception as exc:  # a truncated or corrupt checkpoint: say so, start afresh
        raise CheckpointError(f"unreadable checkpoint: {type(exc).__name__}: {exc}") from exc
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointError(f"a checkpoint holds a {type(checkpoint).__name__}")
    return checkpoint
