"""One correlator per input partition of alerts.by_class: the unit of state that moves between
incident-stage processes, checkpointed with the offset it has consumed up to.

A partition holds every key (`<machine class>/<issue type>`) hashed to it, so a correlator of
one partition sees all plants' alerts of its patterns. After a take-over it replays from its
checkpoint; closing by the wall clock waits until that replay has caught up with where the
partition ended at the take-over, so the replayed raises meet the incidents in the state they
met them in the first time (an incident quiet for its hold is not closed just before the raise
that kept it open is replayed)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from alerting.checkpoint import Checkpoint
from alerting.incidents.correlator import Correlator
from alerting.incidents.policy import CorrelationConfig


@dataclass
class Partition:
    partition: int
    topic: str
    correlator: Correlator
    offset: int = 0
    """The next offset to read: everything before it is in the correlator."""
    replay_to: int = 0
    """The partition's end offset when this process took it over."""
    dirty: bool = False
    """Changed since its last checkpoint."""
    checkpointed: float = field(default_factory=time.monotonic)
    """When its last checkpoint was taken (monotonic clock; at creation: restored or new)."""
    unsafe: bool = False
    """The correlator took in records whose updates are not published yet: it must not be
    checkpointed (the checkpoint would cover changes a crash then loses)."""

    @property
    def caught_up(self) -> bool:
        return self.offset >= self.replay_to

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.partition, self.correlator, {self.topic: self.offset})


def restore(checkpoint: Checkpoint, topic: str, policy: CorrelationConfig) -> Partition | None:
    """The partition as its checkpoint left it; None if the checkpoint does not hold a
    correlator of `topic` (then the partition starts afresh). The policy file read at this
    start decides from here on, not the one the checkpoint was taken under."""
    correlator = checkpoint.engine
    if not isinstance(correlator, Correlator) or topic not in checkpoint.offsets:
        return None
    correlator.config = policy
    return Partition(checkpoint.partition, topic, correlator, offset=checkpoint.offsets[topic])
