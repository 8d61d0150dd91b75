"""The demo's plants compared: the scorecard table as `plantmesh scorecard` prints it, and
whether it tells the responders' habits apart (plantmesh/demo/responders.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from typing import Any

from plantmesh.demo.alarm_story import Api, ApiError
from plantmesh.demo.responders import FAST_PLANT, SHELVING_PLANT, SLOW_PLANT


def scorecard_text(api: Api, token: str, since: datetime) -> str:
    """The side-by-side table, from the command a user would type."""
    made = subprocess.run(
        [sys.executable, "-m", "plantmesh.cli", "scorecard", "--api", api.url,
         "--since", since.isoformat()],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "PLANTMESH_API_TOKEN": token},
    )  # fmt: skip
    if made.returncode != 0:
        raise ApiError(f"plantmesh scorecard: {made.stderr.strip() or made.stdout.strip()}")
    return made.stdout


def scorecards(api: Api, token: str, since: datetime) -> dict[str, dict[str, Any]]:
    """plant -> its scorecard, as the API gives it."""
    answer = api.call(token, "GET", f"/api/v1/scorecards?since={_q(since)}")
    return {card["plant"]: card for card in answer["plants"]}


def _q(when: datetime) -> str:
    return when.isoformat().replace("+", "%2B")


def scorecard_verdict(cards: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """What the table shows of each plant's habit, and what it failed to show."""
    shown: list[str] = []
    problems: list[str] = []
    fast, slow, shelving = (cards.get(p) for p in (FAST_PLANT, SLOW_PLANT, SHELVING_PLANT))
    if fast is None or slow is None or shelving is None:
        return shown, [f"the scorecards lack a plant: got {sorted(cards)}"]
    if _lt(fast["tta_p50_s"], slow["tta_p50_s"]):
        shown.append(
            f"{FAST_PLANT} acknowledges fastest: p50 {fast['tta_p50_s']:.0f} s against "
            f"{SLOW_PLANT}'s {slow['tta_p50_s']:.0f} s"
        )
    else:
        problems.append(f"{FAST_PLANT} did not acknowledge faster than {SLOW_PLANT}")
    if (slow["escalated_pct"] or 0) > (fast["escalated_pct"] or 0):
        shown.append(
            f"{SLOW_PLANT} lets its alarms reach level 2: {slow['escalated_pct']:.0f} % "
            f"escalated, {slow['acked_in_time_pct'] or 0:.0f} % acknowledged in time"
        )
    else:
        problems.append(f"{SLOW_PLANT}'s scorecard shows no more escalation than {FAST_PLANT}'s")
    if shelving["shelvings"] > max(fast["shelvings"], slow["shelvings"]):
        shown.append(
            f"{SHELVING_PLANT} shelves instead of answering: {shelving['shelvings']} shelving(s), "
            f"{shelving['shelved_s']:.0f} s shelved"
        )
    else:
        problems.append(f"{SHELVING_PLANT}'s scorecard shows no more shelving than the others")
    return shown, problems


def _lt(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a < b
