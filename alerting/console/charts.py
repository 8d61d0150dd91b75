"""Charts as inline SVG, drawn server-side: an alert's evidence (its input window with the limit,
zone or SPC band the rule decided against) and a machine's recent series. No JavaScript and no
chart library: the page stays small, works without scripts and prints.

Pure: `evidence_chart` and `series_chart` take data and return SVG markup; `guides_of` reads
what each rule type puts in its evidence parameters (alerting/rules/*)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
_ids = itertools.count(1)

Point = tuple[datetime, float]


@dataclass(frozen=True, slots=True)
class Guide:
    """A horizontal line (`low` only) or a shaded band (`low` and `high`) with its label."""

    label: str
    low: float
    high: float | None = None
    kind: str = "limit"
    """limit, clear, zone, band or centre: the CSS class it is drawn with."""


def _number(params: Mapping[str, Any], name: str) -> float | None:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _threshold(params: Mapping[str, Any]) -> list[Guide]:
    limit = _number(params, "threshold")
    if limit is None:
        return []
    above = params.get("direction", "above") == "above"
    guides = [Guide(f"limit ({'above' if above else 'below'}) {limit:g}", limit)]
    deadband = _number(params, "deadband")
    if deadband:
        clear = limit - deadband if above else limit + deadband
        guides.append(Guide(f"clears at {clear:g}", clear, kind="clear"))
    return guides


def _zones(params: Mapping[str, Any]) -> list[Guide]:
    b, c, d = (_number(params, f"boundary_{n}") for n in ("a_b", "b_c", "c_d"))
    if b is None or c is None or d is None:
        return []
    return [
        Guide(f"zone B {b:g}-{c:g}", b, c, kind="zone-b"),
        Guide(f"zone C {c:g}-{d:g}", c, d, kind="zone-c"),
        Guide(f"zone D above {d:g}", d, kind="limit"),
    ]


def _spc(params: Mapping[str, Any]) -> list[Guide]:
    centre, sigma = _number(params, "baseline_centre"), _number(params, "baseline_sigma")
    if centre is None or sigma is None:
        return []
    low, high = centre - 3 * sigma, centre + 3 * sigma
    return [
        Guide(f"control limits ± 3 sigma {low:.4g}-{high:.4g}", low, high, kind="band"),
        Guide(f"baseline centre {centre:.4g}", centre, kind="centre"),
    ]


def _flatline(params: Mapping[str, Any]) -> list[Guide]:
    frozen, epsilon = _number(params, "frozen_value"), _number(params, "epsilon")
    if frozen is None:
        return []
    if not epsilon:
        return [Guide(f"frozen at {frozen:g}", frozen, kind="centre")]
    return [Guide(f"frozen {frozen:g} ± {epsilon:g}", frozen - epsilon, frozen + epsilon, "band")]


def guides_of(params: Mapping[str, Any]) -> list[Guide]:
    """The limit, zones or band an evidence's parameters describe (none for other rules)."""
    for reader in (_threshold, _zones, _spc, _flatline):
        found = reader(params)
        if found:
            return found
    return []


def points_of(evidence: Mapping[str, Any]) -> list[Point]:
    """The evidence's points as (time, value), skipping any that do not parse."""
    out: list[Point] = []
    for item in evidence.get("points") or []:
        try:
            ts = datetime.fromisoformat(str(item["ts"]).replace("Z", "+00:00"))
            out.append((ts if ts.tzinfo else ts.replace(tzinfo=UTC), float(item["value"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _clock(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%H:%M:%S")


class _Frame:
    """Data coordinates to SVG coordinates."""

    def __init__(self, points: Sequence[Point], extra: Sequence[float]) -> None:
        self.t0 = min(ts for ts, _ in points).timestamp()
        self.t1 = max(ts for ts, _ in points).timestamp()
        self.y0, self.y1 = _range([v for _, v in points] + list(extra))

    def x(self, ts: datetime) -> float:
        span = self.t1 - self.t0
        share = 0.5 if span == 0 else (ts.timestamp() - self.t0) / span
        return round(LEFT + share * (WIDTH - LEFT - RIGHT), 2)

    def y(self, value: float) -> float:
        share = (value - self.y0) / (self.y1 - self.y0)
        share = min(1.0, max(0.0, share))
        return round(HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM), 2)


def _label_y(y: float, kind: str) -> float:
    """Above a limit, below the line where it clears (so the two labels never overlap)."""
    if kind == "limit":
        return max(y - 4, TOP + 10)
    return min(y + 14, HEIGHT - BOTTOM - 4)


def _guide_svg(frame: _Frame, guide: Guide) -> list[str]:
    label = escape(guide.label)
    if guide.high is None:
        y = frame.y(guide.low)
        return [
            f'<line class="guide {guide.kind}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y}" y2="{y}"><title>{label}</title></line>',
            f'<text class="guide-label" x="{WIDTH - RIGHT - 4}" y="{_label_y(y, guide.kind)}" '
            f'text-anchor="end">{label}</text>',
        ]
    top, bottom = frame.y(guide.high), frame.y(guide.low)
    return [
        f'<rect class="band {guide.kind}" x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{round(bottom - top, 2)}"><title>{label}</title></rect>',
        f'<text class="guide-label" x="{LEFT + 4}" y="{top + 12}">{label}</text>',
    ]


def _axes(frame: _Frame, points: Sequence[Point], unit: str) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" '
        f'y2="{HEIGHT - BOTTOM}"/>',
    ]
    for value in (frame.y0, (frame.y0 + frame.y1) / 2, frame.y1):
        y = frame.y(value)
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{value:.4g}</text>'
        )
    first, last = points[0][0], points[-1][0]
    parts.append(f'<text class="tick" x="{LEFT}" y="{HEIGHT - 12}">{_clock(first)}</text>')
    parts.append(
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">'
        f"{_clock(last)} UTC</text>"
    )
    if unit:
        parts.append(f'<text class="tick" x="4" y="{TOP + 4}">{escape(unit)}</text>')
    return parts


def _svg(title: str, description: str, body: Sequence[str]) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-{n}-t chart-{n}-d" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-{n}-t">{escape(title)}</title>'
        f'<desc id="chart-{n}-d">{escape(description)}</desc>{"".join(body)}</svg>'
    )


def line_chart(
    points: Sequence[Point], title: str, guides: Sequence[Guide] = (), unit: str = ""
) -> Markup:
    """Points as a line with their guides; a note instead of a chart when there are none."""
    if not points:
        return _svg(
            title,
            "no points to draw",
            [f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
             "no points recorded</text>"],
        )  # fmt: skip
    ordered = sorted(points, key=lambda p: p[0])
    bounds = [g.low for g in guides] + [g.high for g in guides if g.high is not None]
    frame = _Frame(ordered, bounds)
    body = [part for guide in guides for part in _guide_svg(frame, guide)]
    body += _axes(frame, ordered, unit)
    path = " ".join(f"{frame.x(ts)},{frame.y(v)}" for ts, v in ordered)
    body.append(f'<polyline class="series" points="{path}"/>')
    if len(ordered) <= 60:
        body += [
            f'<circle class="dot" cx="{frame.x(ts)}" cy="{frame.y(v)}" r="2.5"/>'
            for ts, v in ordered
        ]
    low, high = min(v for _, v in ordered), max(v for _, v in ordered)
    said = f"{len(ordered)} points from {_clock(ordered[0][0])} to {_clock(ordered[-1][0])} UTC"
    said += f", values {low:.4g} to {high:.4g}"
    if guides:
        said += "; " + "; ".join(g.label for g in guides)
    return _svg(title, said, body)


def evidence_chart(evidence: Mapping[str, Any], title: str, unit: str = "") -> Markup:
    """An alert's evidence: its point window and the limit, zones or band of its rule."""
    params = evidence.get("parameters") or {}
    return line_chart(points_of(evidence), title, guides_of(params), unit)


def series_chart(points: Sequence[Point], title: str, unit: str = "") -> Markup:
    return line_chart(points, title, (), unit)
