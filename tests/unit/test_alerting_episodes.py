"""The shared episode life of every rule, on a timeline (times in seconds of source time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting.rules.episodes import Episodes, Phase, Subject
from plantmesh.contracts import AssetPath

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUBJECT = Subject(AssetPath.parse("plant-a/area/line/mill-01"), "vibration", "cnc_mill")


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def run(episodes: Episodes, timeline: list[tuple[float, bool]]) -> list[tuple[str, float]]:
    out = []
    for t, holds in timeline:
        found = episodes.observe("k", at(t), holds, SUBJECT)
        if found is not None:
            out.append(("raised" if found.raised else "cleared", (found.at - T0).total_seconds()))
    return out


def test_on_delay_and_off_delay_complete_on_readings() -> None:
    episodes = Episodes("r", on_delay_s=5, off_delay_s=3)
    timeline = [(0, True), (4, True), (5, True), (6, False), (7, True), (8, False), (11, False)]
    assert run(episodes, timeline) == [("raised", 5), ("cleared", 11)]


def test_a_short_excursion_raises_nothing() -> None:
    episodes = Episodes("r", on_delay_s=5)
    assert run(episodes, [(0, True), (3, True), (4, False), (20, False)]) == []
    assert episodes.get("k") is None


def test_report_by_exception_raises_on_the_watermark_at_crossing_plus_delay() -> None:
    episodes = Episodes("r", on_delay_s=5, off_delay_s=2)
    assert run(episodes, [(10, True)]) == []
    assert list(episodes.tick(at(14.9))) == []
    (raised,) = episodes.tick(at(30))
    assert raised.raised
    assert raised.at == at(15)
    assert list(episodes.tick(at(40))) == []  # raised once
    assert run(episodes, [(50, False)]) == []
    (cleared,) = episodes.tick(at(60))
    assert not cleared.raised
    assert cleared.at == at(52)
    assert cleared.episode.alert_id == raised.episode.alert_id


def test_zero_delays_raise_and_clear_on_the_reading() -> None:
    episodes = Episodes("r")
    assert run(episodes, [(1, True), (2, True), (3, False), (4, True)]) == [
        ("raised", 1),
        ("cleared", 3),
        ("raised", 4),
    ]
    assert episodes.active("k")


def test_end_clears_a_raised_episode_and_forgets_a_pending_one() -> None:
    episodes = Episodes("r", on_delay_s=10)
    run(episodes, [(0, True)])
    assert episodes.end("k", at(1)) is None
    run(episodes, [(2, True), (12, True)])
    episode = episodes.get("k")
    assert episode is not None
    assert episode.phase is Phase.RAISED
    ended = episodes.end("k", at(13))
    assert ended is not None
    assert not ended.raised
    assert episodes.get("k") is None


def test_the_alert_id_is_the_same_on_a_replay() -> None:
    first, second = Episodes("r", on_delay_s=1), Episodes("r", on_delay_s=1)
    ids = []
    for episodes in (first, second):
        run(episodes, [(0, True), (1, True)])
        episode = episodes.get("k")
        assert episode is not None
        ids.append(episode.alert_id)
    assert ids[0] == ids[1]
