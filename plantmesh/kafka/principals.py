"""Who may do what in Kafka: each service is a principal of its own (`User:bridge`,
`User:writer`, `User:alerting`) with ACLs for exactly the topics it reads, writes and creates,
and for its own consumer groups.

- Topics are LITERAL names of one namespace (`Topics(namespace)`): a PREFIXED pattern on
  `<namespace>.` would hand a service every topic of the namespace.
- Consumer groups are PREFIXED: services derive group ids from the configured one
  (`<group>-ledger`, `<group>-rekey`), and a namespaced deployment configures its own.
- CREATE on every topic a service uses: each service creates the topics it needs at start
  (`kafka_topics.create`, with the layout it needs, e.g. compacted state topics), since the
  broker's auto-creation is off. A topic that exists already is never created again.
- READ and WRITE imply DESCRIBE (metadata, offsets); an idempotent producer needs no cluster
  ACL (Kafka 3+).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from plantmesh.kafka.acls import Acl, Operation, PatternType, ResourceType, principal
from plantmesh.topics import DEFAULT_TOPICS, Topics

BRIDGE = "bridge"
WRITER = "writer"
ALERTING = "alerting"
SERVICES = (BRIDGE, WRITER, ALERTING)

DEFAULT_GROUPS: Mapping[str, tuple[str, ...]] = {
    BRIDGE: (),
    WRITER: ("plantmesh-writer",),
    ALERTING: ("plantmesh-alerting", "plantmesh-incidents", "plantmesh-alarms"),
}
"""The services' default group ids: ingest's writer.group_id (the ledger adds `-ledger`),
alerting's group_id, the incidents stage's group_id (its re-keying adds `-rekey`) and the alarm
service's group_id. plantmesh imports no service, so they are repeated here (a unit test
compares)."""

READ = frozenset({Operation.READ})
WRITE = frozenset({Operation.WRITE})
READ_WRITE = READ | WRITE


def topic_access(service: str, topics: Topics = DEFAULT_TOPICS) -> dict[str, frozenset[Operation]]:
    """What `service` does with each topic it uses (CREATE not included)."""
    t = topics
    if service == BRIDGE:
        return {t.telemetry_raw: WRITE, t.gateway_status: WRITE, t.telemetry_dlq: WRITE}
    if service == WRITER:
        return {
            t.telemetry_raw: READ,
            t.telemetry_normalized: WRITE,
            t.telemetry_dlq: WRITE,
            t.telemetry_completeness: WRITE,
            # The completeness ledger's input and its compacted state, read back at start.
            t.telemetry_sequences: READ_WRITE,
            t.ingest_ledger: READ_WRITE,
        }
    if service == ALERTING:
        inputs = (t.telemetry_normalized, t.gateway_status, t.telemetry_completeness)
        # Alert events are written by the engine and the alarm service, read by the alarm
        # service and the incidents stage; the rest are alerting's own topics.
        own = (
            t.alert_events,
            t.alerting_state,
            t.alerting_commands,
            t.alerts_by_class,
            t.incident_events,
            t.incidents_state,
        )
        return {**dict.fromkeys(inputs, READ), **dict.fromkeys(own, READ_WRITE)}
    raise ValueError(f"no Kafka principal for service {service!r}: expected one of {SERVICES}")


def topic_acls(
    user: str, names: Iterable[str], operations: Iterable[Operation], *, prefixed: bool = False
) -> list[Acl]:
    """`operations` on each topic of `names` (names or, with `prefixed`, name prefixes)."""
    pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
    ops = sorted(set(operations))
    return [Acl(principal(user), ResourceType.TOPIC, n, pattern, op) for n in names for op in ops]


def group_acls(user: str, groups: Iterable[str]) -> list[Acl]:
    """READ (join, fetch and commit offsets) on every group id starting with one of `groups`."""
    return [
        Acl(principal(user), ResourceType.GROUP, g, PatternType.PREFIXED, Operation.READ)
        for g in groups
    ]


def service_acls(
    service: str,
    topics: Topics = DEFAULT_TOPICS,
    groups: Iterable[str] | None = None,
    user: str | None = None,
) -> list[Acl]:
    """Every ACL `service` needs in the namespace of `topics`, for principal `User:<user>`
    (default: the service's name); `groups`: its group ids (default: DEFAULT_GROUPS)."""
    who = user or service
    acls: list[Acl] = []
    for name, operations in topic_access(service, topics).items():
        acls += topic_acls(who, [name], operations | {Operation.CREATE})
    acls += group_acls(who, DEFAULT_GROUPS[service] if groups is None else groups)
    return sorted(acls)
