"""Plants side by side: one row per figure, one column per plant, the worst of each row
marked; as text for the terminal, as CSV for a spreadsheet, as rows for the console."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerting.scorecards.formulas import PlantScorecard


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    higher_is_worse: bool
    value: Callable[[PlantScorecard], float | None]
    unit: str = ""


def _field(name: str) -> Callable[[PlantScorecard], float | None]:
    def value(card: PlantScorecard) -> float | None:
        found = getattr(card, name)
        return None if found is None else float(found)

    return value


def _priority(band: str) -> Callable[[PlantScorecard], float | None]:
    return lambda card: card.priority_pct.get(band) if card.alarms else None


FIGURES: tuple[Figure, ...] = (
    Figure("alarms", "alarms", True, _field("alarms")),
    Figure("per_hour", "per position per hour (~6 ok)", True, _field("alarms_per_position_hour")),
    Figure(
        "per_10min", "per position per 10 min (~1 ok)", True, _field("alarms_per_position_10min")
    ),
    Figure("peak_10min", "peak in 10 min (flood: 10+)", True, _field("peak_10min")),
    Figure("flood", "time in flood", True, _field("flood_time_pct"), "%"),
    Figure("chattering", "chattering series", True, _field("chattering_series")),
    Figure("chattering_pct", "alarms from chattering", True, _field("chattering_alarms_pct"), "%"),
    Figure("stale", "stale alarms (active > 24 h)", True, _field("stale_alarms")),
    Figure("low", "priority low (target 80)", False, _priority("low"), "%"),
    Figure("medium", "priority medium (target 15)", True, _priority("medium"), "%"),
    Figure("high", "priority high+critical (target 5)", True, _priority("high"), "%"),
    Figure("deviation", "off 80/15/5", True, _field("priority_deviation_pts"), " pts"),
    Figure("bad_actors", "alarms from top 10 bad actors", True, _field("bad_actor_pct"), "%"),
    Figure("tta_p50", "time to acknowledge p50", True, _field("tta_p50_s"), " s"),
    Figure("tta_p90", "time to acknowledge p90", True, _field("tta_p90_s"), " s"),
    Figure("ttr_p50", "time to resolve p50", True, _field("ttr_p50_s"), " s"),
    Figure("ttr_p90", "time to resolve p90", True, _field("ttr_p90_s"), " s"),
    Figure("in_time", "acknowledged within policy time", False, _field("acked_in_time_pct"), "%"),
    Figure("escalated", "escalated past first level", True, _field("escalated_pct"), "%"),
    Figure("shelvings", "shelvings", True, _field("shelvings")),
    Figure("shelved", "time shelved", True, _field("shelved_s"), " s"),
    Figure("completeness", "data completeness", False, _field("completeness_pct"), "%"),
)


@dataclass(frozen=True, slots=True)
class Row:
    figure: Figure
    values: list[float | None]
    worst: list[bool]


def rows(cards: Sequence[PlantScorecard]) -> list[Row]:
    """Every figure across the plants; the worst marked where plants differ on it."""
    made = []
    for figure in FIGURES:
        values = [figure.value(card) for card in cards]
        known = [v for v in values if v is not None]
        worst_value = (max if figure.higher_is_worse else min)(known) if known else None
        differ = len(known) >= 2 and len(set(known)) > 1
        worst = [differ and v is not None and v == worst_value for v in values]
        made.append(Row(figure, values, worst))
    return made


def cell(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.0f}" if value == int(value) else f"{value:.4g}"
    return f"{text}{unit}"


def text_table(cards: Sequence[PlantScorecard]) -> str:
    """Aligned text; `*` marks the worst plant of a row."""
    header = ["figure", *(c.plant for c in cards)]
    body = [
        [
            row.figure.label,
            *(
                cell(v, row.figure.unit) + (" *" if bad else "")
                for v, bad in zip(row.values, row.worst, strict=True)
            ),
        ]
        for row in rows(cards)
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            text.ljust(width) if i == 0 else text.rjust(width)
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [header, *body]
    ]
    lines.append("* worst of the row")
    return "\n".join(lines)


def csv_text(cards: Sequence[PlantScorecard]) -> str:
    """One row per figure, a value and a worst flag per plant: for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["figure", "key", "unit", *(h for c in cards for h in (c.plant, f"{c.plant} worst"))]
    )
    for row in rows(cards):
        cells: list[str] = []
        for value, bad in zip(row.values, row.worst, strict=True):
            cells += ["" if value is None else repr(value), "yes" if bad else ""]
        writer.writerow([row.figure.label, row.figure.key, row.figure.unit.strip(), *cells])
    return out.getvalue()
