from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingest.line_protocol import (
    MEASUREMENT,
    LineProtocolError,
    batch_to_lines,
    escape_key,
    escape_measurement,
    format_field_value,
    format_line,
    quote_string,
    reading_fields,
    reading_to_line,
    timestamp_ns,
)
from plantmesh.contracts import STATUS_BAD_SENSOR_FAILURE, AssetPath, Quality, Reading, ReadingBatch

ASSET = AssetPath(plant="p1", area="press", line="l2", machine="m7")
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_NS = 1772366400_123456000


def reading(value: float | bool | str | None, **changes: object) -> Reading:
    fields: dict[str, object] = {
        "asset": ASSET,
        "signal": "temp",
        "value": value,
        "unit": "degC",
        "source_ts": T0,
        "gateway_ts": T0 + timedelta(seconds=1),
    }
    fields.update(changes)
    return Reading.model_validate(fields)


# --- escaping ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("cpu", "cpu"), ("a,b", r"a\,b"), ("a b", r"a\ b"), ("a=b", "a=b"), ('a"b', 'a"b')],
)
def test_measurement_escapes_commas_and_spaces_only(raw: str, escaped: str) -> None:
    assert escape_measurement(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", r"a\,b"),
        ("a=b", r"a\=b"),
        ("a b", r"a\ b"),
        ("m/s, =x", r"m/s\,\ \=x"),
        ('say "hi"', r'say\ "hi"'),
        (r"C:\dir", r"C:\dir"),  # a backslash before an ordinary character stays literal
    ],
)
def test_keys_and_tag_values_escape_commas_equals_spaces(raw: str, escaped: str) -> None:
    assert escape_key(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("ok", '"ok"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ('\\"', r'"\\\""'),
        ("a, b=c", '"a, b=c"'),  # commas, equals and spaces need nothing inside quotes
        ("two\nlines", '"two\nlines"'),
    ],
)
def test_string_fields_escape_quotes_and_backslashes(raw: str, quoted: str) -> None:
    assert quote_string(raw) == quoted


@pytest.mark.parametrize(
    "bad", ["", "line\nbreak", "cr\rhere", "ends\\", "before\\,comma", "before\\ space", "x\\=y"]
)
def test_values_line_protocol_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(LineProtocolError):
        escape_key(bad)


def test_measurement_with_line_break_is_refused() -> None:
    with pytest.raises(LineProtocolError):
        escape_measurement("a\nb")


# --- field types ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (2.0, "2.0"),
        (-0.25, "-0.25"),
        (1e20, "1e+20"),
        (0.1 + 0.2, "0.30000000000000004"),
        (42, "42i"),
        (-7, "-7i"),
        (True, "true"),
        (False, "false"),
        ("x", '"x"'),
    ],
)
def test_field_value_types(value: float | int | bool | str, text: str) -> None:
    assert format_field_value(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(LineProtocolError):
        format_field_value(value)


def test_format_line_sorts_tags_and_leaves_out_empty_ones() -> None:
    line = format_line("m", {"z": "1", "a": "2", "empty": ""}, {"f": 1.0, "n": 3}, 99)
    assert line == "m,a=2,z=1 f=1.0,n=3i 99"


def test_format_line_escapes_every_part() -> None:
    line = format_line("my m,x", {"t k": "v=1,2"}, {"f,k": 'q"'}, 1)
    assert line == r'my\ m\,x,t\ k=v\=1\,2 f\,k="q\"" 1'


def test_a_point_needs_a_field() -> None:
    with pytest.raises(LineProtocolError):
        format_line("m", {}, {}, 1)


# --- timestamps -------------------------------------------------------------------------------
def test_timestamp_is_exact_nanoseconds() -> None:
    assert timestamp_ns(T0) == T0_NS
    assert timestamp_ns(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert timestamp_ns(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1000


def test_timestamp_honours_the_offset() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert timestamp_ns(plus_two) == T0_NS


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(LineProtocolError):
        timestamp_ns(datetime(2026, 1, 1))


# --- the readings schema ----------------------------------------------------------------------
def test_float_reading() -> None:
    assert reading_to_line(reading(21.5)) == (
        "readings,area=press,line=l2,machine=m7,plant=p1,signal=temp,unit=degC "
        f'value=21.5,status_code=0i,quality="good" {T0_NS}'
    )


@pytest.mark.parametrize(("flag", "number"), [(True, "1.0"), (False, "0.0")])
def test_bool_reading_becomes_one_or_zero_in_value(flag: bool, number: str) -> None:
    line = reading_to_line(reading(flag))
    assert f" value={number}," in line
    assert "value_str" not in line


def test_text_reading_goes_to_value_str() -> None:
    line = reading_to_line(reading('mode "auto"\\1'))
    assert r' value_str="mode \"auto\"\\1",' in line
    assert " value=" not in line


def test_integer_like_value_is_written_as_float() -> None:
    # The field's type must never change, or InfluxDB refuses later points of the series.
    assert " value=3.0," in reading_to_line(reading(3))


def test_status_code_quality_and_unit() -> None:
    line = reading_to_line(
        reading(1.0, status_code=STATUS_BAD_SENSOR_FAILURE, quality=Quality.BAD, unit="m/s per h")
    )
    assert r",unit=m/s\ per\ h " in line
    assert f"status_code={STATUS_BAD_SENSOR_FAILURE}i" in line
    assert 'quality="bad"' in line


@pytest.mark.parametrize("placeholder", [0.0, "", None])
def test_a_bad_reading_has_no_value_field(placeholder: float | str | None) -> None:
    # Bad means no value: the server's placeholder never becomes a number in a chart.
    line = reading_to_line(
        reading(placeholder, status_code=STATUS_BAD_SENSOR_FAILURE, quality=Quality.BAD)
    )
    fields = line.split(" ")[1]
    assert fields == f'status_code={STATUS_BAD_SENSOR_FAILURE}i,quality="bad"'


def test_an_uncertain_reading_keeps_its_value() -> None:
    line = reading_to_line(reading(4.5, status_code=0x40000000, quality=Quality.UNCERTAIN))
    assert line.split(" ")[1] == 'value=4.5,status_code=1073741824i,quality="uncertain"'


def test_reading_without_unit_has_no_unit_tag() -> None:
    assert "unit=" not in reading_to_line(reading(1.0, unit=None))


def test_unit_that_cannot_be_carried_is_refused() -> None:
    with pytest.raises(LineProtocolError):
        reading_to_line(reading(1.0, unit="odd\\"))


def test_batch_gives_one_line_per_reading() -> None:
    batch = ReadingBatch(
        gateway_id="gw",
        session_id="s1",
        seq=1,
        sent_at=T0,
        readings=[reading(1.0), reading(2.0, signal="speed"), reading(True, signal="running")],
    )
    lines = batch_to_lines(batch)
    assert [line.split(",signal=")[1].split(",")[0] for line in lines] == [
        "temp",
        "speed",
        "running",
    ]


@pytest.mark.parametrize(
    "sample",
    [
        reading(21.5),
        reading(True, unit=None),
        reading(False, status_code=STATUS_BAD_SENSOR_FAILURE, quality=Quality.BAD),
        reading(None, status_code=STATUS_BAD_SENSOR_FAILURE, quality=Quality.BAD),
        reading('a "quoted" \\ text', unit="m s,=x"),
        reading(-1e-7, quality=Quality.UNCERTAIN),
    ],
)
def test_fast_reading_path_matches_the_general_formatter(sample: Reading) -> None:
    tags = {
        "plant": sample.asset.plant,
        "area": sample.asset.area,
        "line": sample.asset.line,
        "machine": sample.asset.machine,
        "signal": sample.signal,
        "unit": sample.unit or "",
    }
    expected = format_line(
        MEASUREMENT, tags, reading_fields(sample), timestamp_ns(sample.source_ts)
    )
    assert reading_to_line(sample) == expected
