"""RFC 3339 text to nanoseconds without datetimes: the instant pydantic (the contract) reads, or
None for any form it does not know (and then the contract decides)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from ingest.line_protocol import timestamp_ns
from ingest.timestamps import rfc3339_ns
from plantmesh.contracts.common import AwareDatetime

CONTRACT: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=zones | st.just(UTC)
)


def contract_ns(text: object) -> int | None:
    try:
        return timestamp_ns(CONTRACT.validate_json(f'"{text}"'))
    except ValidationError:
        return None


@settings(max_examples=300)
@given(moments, st.sampled_from(["auto", "milliseconds", "seconds", "microseconds"]))
def test_the_gateway_forms_give_the_contracts_instant(moment: datetime, spec: str) -> None:
    text = moment.isoformat(timespec=spec).replace("+00:00", "Z")
    assert rfc3339_ns(text) == contract_ns(text) is not None


def test_a_few_digits_of_fraction_and_offsets() -> None:
    assert rfc3339_ns("1970-01-01T00:00:00.5Z") == 500_000_000
    assert rfc3339_ns("1970-01-01T01:00:00.000001+01:00") == 1_000
    assert rfc3339_ns("1969-12-31T23:59:59-00:30") == 1_799 * 10**9


@settings(max_examples=500)
@given(
    st.from_regex(
        "[0-9\uff12]{4}-[0-9]{1,2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9\uff11]{0,8})?"
        r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?",
        fullmatch=True,
    )
    | st.text(max_size=30)
)
def test_whatever_it_reads_the_contract_reads_the_same(text: str) -> None:
    ns = rfc3339_ns(text)
    if ns is not None:
        assert ns == contract_ns(text)


def test_anything_but_text_is_left_to_the_contract() -> None:
    assert rfc3339_ns(1_767_225_600) is None
    assert rfc3339_ns(None) is None
