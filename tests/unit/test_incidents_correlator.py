"""The correlator on a timeline (event time, a controllable clock for closing): member alerts
from several plants open exactly one incident; decoys (another issue type, another class,
outside the window, two machines in one plant) open none; members join, clear, the incident
closes after its hold and reopens within the window; replays change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerting.catalogue import load_catalogue
from alerting.incidents.correlator import Change, ChangeKind, Correlator, incident_id
from alerting.incidents.policy import CorrelationConfig, load_correlation
from plantmesh.config import ConfigError
from plantmesh.contracts import AlertEvent, AlertEventKind, AssetPath, Evidence, Severity

T0 = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


def event(
    alert_id: str,
    plant: str,
    machine: str,
    minute: float,
    kind: str = "raised",
    *,
    issue_type: str = "vibration-instability",
    machine_class: str | None = "cnc_mill",
    severity: Severity = Severity.HIGH,
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        kind=AlertEventKind(kind),
        issue_type=issue_type,
        rule="vibration-growing",
        rule_version="abc",
        machine_class=machine_class,
        asset=AssetPath.parse(f"{plant}/milling/line1/{machine}"),
        signal="vibration_rms",
        severity=severity,
        at=T0 + timedelta(minutes=minute),
        evidence=Evidence(summary=f"{machine} swinging", condition="growth"),
    )


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


@pytest.fixture
def correlator() -> Correlator:
    config = CorrelationConfig.model_validate(
        {
            "version": "t",
            "default": {"min_plants": 2, "min_machines": 2, "window_s": 1800, "hold_s": 600},
            "issue_types": {"comms-loss": None},
        }
    )
    return Correlator(config)


def kinds(changes: list[Change]) -> list[str]:
    return [c.kind.value for c in changes]


def test_the_second_plant_opens_one_incident_and_the_third_joins(correlator: Correlator) -> None:
    assert correlator.on_event(event("a1", "plant-a", "mill-03", 1)) == []
    [opened] = correlator.on_event(event("b1", "plant-b", "mill-01", 4))
    assert opened.kind is ChangeKind.OPENED
    assert opened.incident.plants == ["plant-a", "plant-b"]
    assert opened.incident.id == incident_id("cnc_mill", "vibration-instability", "a1")
    [joined] = correlator.on_event(event("c1", "plant-c", "mill-02", 7))
    assert (joined.kind, joined.new_plant) == (ChangeKind.JOINED, True)
    assert joined.incident.plants == ["plant-a", "plant-b", "plant-c"]
    [again] = correlator.on_event(event("c2", "plant-c", "mill-03", 8))
    assert (again.kind, again.new_plant) == (ChangeKind.JOINED, False)
    assert len(list(correlator.open_incidents())) == 1


@pytest.mark.parametrize(
    "decoy",
    [
        event("b1", "plant-b", "mill-01", 4, issue_type="bearing-overtemperature"),
        event("b1", "plant-b", "press-01", 4, machine_class="hydraulic_press"),
        event("b1", "plant-b", "mill-01", 40),  # outside the 30 min window
        event("b1", "plant-a", "mill-01", 4),  # a second machine, but in the same plant
        event("b1", "plant-b", "mill-01", 4, machine_class=None),  # no class: not comparable
    ],
    ids=["other-issue", "other-class", "outside-window", "same-plant", "no-class"],
)
def test_decoys_open_nothing(correlator: Correlator, decoy: AlertEvent) -> None:
    assert correlator.on_event(event("a1", "plant-a", "mill-03", 1)) == []
    assert correlator.on_event(decoy) == []
    assert list(correlator.open_incidents()) == []


def test_an_issue_type_without_policy_never_correlates(correlator: Correlator) -> None:
    for n, plant in enumerate(["plant-a", "plant-b", "plant-c"]):
        assert correlator.on_event(event(f"x{n}", plant, "gw", n, issue_type="comms-loss")) == []


def test_members_clear_then_it_closes_after_the_hold_and_reopens_within_the_window(
    correlator: Correlator,
) -> None:
    correlator.on_event(event("a1", "plant-a", "mill-03", 1))
    correlator.on_event(event("b1", "plant-b", "mill-01", 4))
    assert kinds(correlator.on_event(event("a1", "plant-a", "mill-03", 10, "cleared"))) == [
        "member_cleared"
    ]
    assert correlator.advance(at(30)) == []  # plant-b still active
    correlator.on_event(event("b1", "plant-b", "mill-01", 12, "cleared"))
    assert correlator.advance(at(21)) == []  # quiet for 9 of the 10 min hold
    [closed] = correlator.advance(at(22))
    assert closed.kind is ChangeKind.CLOSED
    assert list(correlator.open_incidents()) == []
    [reopened] = correlator.on_event(event("c1", "plant-c", "mill-02", 40))
    assert reopened.kind is ChangeKind.REOPENED
    assert reopened.incident.id == closed.incident.id
    assert reopened.incident.plants == ["plant-a", "plant-b", "plant-c"]


def test_a_recurrence_after_the_window_is_a_new_story(correlator: Correlator) -> None:
    correlator.on_event(event("a1", "plant-a", "mill-03", 1))
    correlator.on_event(event("b1", "plant-b", "mill-01", 4))
    correlator.on_event(event("a1", "plant-a", "mill-03", 5, "cleared"))
    correlator.on_event(event("b1", "plant-b", "mill-01", 5, "cleared"))
    correlator.advance(at(15))
    correlator.advance(at(60))  # 45 min after closing: past the window
    assert correlator.on_event(event("c1", "plant-c", "mill-02", 61)) == []
    [opened] = correlator.on_event(event("a2", "plant-a", "mill-01", 62))
    assert opened.kind is ChangeKind.OPENED
    assert opened.incident.id == incident_id("cnc_mill", "vibration-instability", "c1")


def test_a_machine_raising_again_keeps_its_place(correlator: Correlator) -> None:
    correlator.on_event(event("a1", "plant-a", "mill-03", 1))
    correlator.on_event(event("b1", "plant-b", "mill-01", 4))
    correlator.on_event(event("a1", "plant-a", "mill-03", 5, "cleared"))
    [again] = correlator.on_event(event("a2", "plant-a", "mill-03", 6))
    member = again.incident.members["plant-a/milling/line1/mill-03"]
    assert member.alert_ids == ("a1", "a2")
    assert member.active
    assert member.raised_at == at(1)
    assert len(again.incident.members) == 2


def test_replayed_events_change_nothing(correlator: Correlator) -> None:
    history = [
        event("a1", "plant-a", "mill-03", 1),
        event("b1", "plant-b", "mill-01", 4),
        event("a1", "plant-a", "mill-03", 5, "cleared"),
    ]
    first = [c.kind for e in history for c in correlator.on_event(e)]
    assert first == [ChangeKind.OPENED, ChangeKind.MEMBER_CLEARED]
    assert [c for e in history for c in correlator.on_event(e)] == []


def test_the_incident_takes_its_most_severe_member(correlator: Correlator) -> None:
    correlator.on_event(event("a1", "plant-a", "mill-03", 1, severity=Severity.MEDIUM))
    [opened] = correlator.on_event(event("b1", "plant-b", "mill-01", 2, severity=Severity.CRITICAL))
    assert opened.incident.severity is Severity.CRITICAL


def test_policy_refuses_fewer_machines_than_plants() -> None:
    with pytest.raises(ValueError, match="min_machines"):
        CorrelationConfig.model_validate(
            {"version": "t", "default": {"min_plants": 3, "min_machines": 2}}
        )


def test_a_policy_naming_an_issue_type_the_catalogue_lacks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "correlation.yaml"
    path.write_text('version: "1"\nissue_types: {comms_loss: null, vibration-instability: {}}\n')
    with pytest.raises(ConfigError, match="comms_loss"):
        load_correlation(path, load_catalogue().issue_types)
    sample = Path(__file__).resolve().parents[2] / "deploy" / "alerting" / "correlation.yaml"
    assert load_correlation(sample, load_catalogue().issue_types).for_issue("comms-loss") is None


def test_late_data_correlates_as_it_happened_and_is_forgotten_once_silent(
    correlator: Correlator,
) -> None:
    """A backlog replayed eight hours late: the window is measured on event time while events
    keep coming, and on the clock once the pattern has been silent for a window."""
    wall = at(8 * 60)
    correlator.on_event(event("a1", "plant-a", "mill-03", 1), arrived=wall)
    assert correlator.advance(wall + timedelta(seconds=1)) == []
    [opened] = correlator.on_event(event("b1", "plant-b", "mill-01", 20), arrived=wall)
    assert opened.kind is ChangeKind.OPENED
    correlator.on_event(event("a1", "plant-a", "mill-03", 21, "cleared"), arrived=wall)
    correlator.on_event(event("b1", "plant-b", "mill-01", 22, "cleared"), arrived=wall)
    assert correlator.advance(wall + timedelta(minutes=5)) == []  # silent 5 of the 10 min hold
    [closed] = correlator.advance(wall + timedelta(minutes=10))
    assert closed.kind is ChangeKind.CLOSED
    assert closed.at == at(32)  # closed as of the pattern's own time: its last clear + hold
    later = event("c1", "plant-c", "mill-02", 70)  # 38 min after closing: not a reopening
    assert correlator.on_event(later, arrived=wall + timedelta(hours=1)) == []
    correlator.advance(wall + timedelta(hours=2))  # silent for a window: forgotten
    assert correlator.groups == {}
