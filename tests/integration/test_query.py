"""`plantmesh query` against the stack's real InfluxDB: a database of the test's own holding a
good, an uncertain, a text and a Bad reading (stored, as the writer stores it, without a value
field), and the completeness ledger's figures of two gateways; each question in each format, in
InfluxQL and in Flux, options before and after the question, and the hints after no data."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from plantmesh.cli import main
from plantmesh.influxql import auth_headers, env_token, query
from plantmesh.query.formats import rfc3339

pytestmark = pytest.mark.integration

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
NOW = time.time_ns() // 1000 * 1000  # microseconds, as readings carry
S = 1_000_000_000
BAD = 0x808B0000  # BadWaitingForInitialData
UNCERTAIN = 0x40940000
TEMP = "readings,area=a,line=l,machine=m1,plant=p1,signal=temp,unit=degC"
LINES = [
    f'{TEMP} value=21.5,status_code=0i,quality="good" {NOW - 30 * S}',
    f'{TEMP} status_code={BAD}i,quality="bad" {NOW - 10 * S}',  # the newest: no value
    "readings,area=a,line=l,machine=m1,plant=p1,signal=rpm,unit=rpm "
    f'value=0.30000000000000004,status_code={UNCERTAIN}i,quality="uncertain" {NOW - 20 * S}',
    "readings,area=a,line=l,machine=m1,plant=p1,signal=mode "
    f'value_str="run, \\"auto\\"",status_code=0i,quality="good" {NOW - 20 * S}',
    "completeness,gateway=gw-a,plant=p1 batches_expected=6i,batches_received=5i,"
    f"batches_missing=1i,duplicates=2i,open_gaps=1i,readings_received=50i {NOW - 7200 * S}",
    "completeness,gateway=gw-b,plant=p1 batches_expected=4i,batches_received=4i,"
    f"batches_missing=0i,duplicates=0i,open_gaps=0i,readings_received=40i {NOW - 7100 * S}",
]


@pytest.fixture(scope="module")
def database(influx_url: str) -> Iterator[str]:
    name = f"tq{uuid.uuid4().hex[:10]}"
    query(influx_url, name, f'CREATE DATABASE "{name}"')
    url = f"{influx_url}/write?{urllib.parse.urlencode({'db': name, 'precision': 'ns'})}"
    request = urllib.request.Request(
        url, data="\n".join(LINES).encode(), method="POST", headers=auth_headers(env_token())
    )
    with opener.open(request, timeout=10) as response:
        assert response.status == 204
    yield name
    query(influx_url, name, f'DROP DATABASE "{name}"')


def ask(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["query", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("language", [[], ["--flux"]])
def test_last_shows_the_bad_point_text_and_quality_in_every_format(
    influx_url: str, database: str, language: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--url", influx_url, *language]
    code, out, err = ask(capsys, "last", "--db", database, *common, "--format", "csv")
    assert code == 0, err
    rows = {r["signal"]: r for r in csv.DictReader(io.StringIO(out))}
    assert list(rows) == ["mode", "rpm", "temp"]
    assert rows["temp"] == {
        "plant": "p1", "machine": "m1", "signal": "temp", "time": rfc3339(NOW - 10 * S),
        "value": "", "unit": "degC", "quality": "bad", "status_code": "0x808B0000",
    }  # fmt: skip
    assert rows["rpm"]["value"] == "0.30000000000000004"  # exact, not rounded
    assert (rows["rpm"]["quality"], rows["rpm"]["status_code"]) == ("uncertain", "0x40940000")
    assert (rows["mode"]["value"], rows["mode"]["status_code"]) == ('run, "auto"', "")

    code, out, _ = ask(capsys, *common, "--db", database, "--format", "json", "last")
    assert code == 0
    objects = {o["signal"]: o for o in json.loads(out)}
    assert objects["temp"]["value"] is None
    assert objects["rpm"]["value"] == 0.30000000000000004
    assert objects["mode"]["value"] == 'run, "auto"'

    code, out, _ = ask(capsys, *common, "--db", database, "last", "--signal", "temp")
    header, row = out.splitlines()
    assert header.split() == [
        "plant", "machine", "signal", "time", "value", "unit", "quality", "status_code",
    ]  # fmt: skip
    assert row.split() == ["p1", "m1", "temp", rfc3339(NOW - 10 * S), "degC", "bad", "0x808B0000"]
    assert "21.5" not in out  # the older number is not shown as if it were current


@pytest.mark.parametrize("language", [[], ["--flux"]])
def test_series_raw_and_downsampled_carry_quality(
    influx_url: str, database: str, language: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--url", influx_url, "--db", database, *language]
    code, out, err = ask(capsys, *common, "series", "--signal", "temp", "--format", "csv")
    assert code == 0, err
    good, bad = csv.DictReader(io.StringIO(out))
    assert (good["value"], good["quality"], good["status_code"]) == ("21.5", "good", "")
    assert (bad["value"], bad["quality"], bad["status_code"]) == ("", "bad", "0x808B0000")

    code, out, err = ask(capsys, "series", "--signal", "temp", "--every", "1h", *common, "--json")
    assert code == 0, err
    windows = json.loads(out)
    assert sum(w["points"] for w in windows) == 2
    assert sum(w["bad"] for w in windows) == 1
    assert {w["mean"] for w in windows if w["mean"] is not None} == {21.5}
    assert "bad" in {w["quality"] for w in windows}


@pytest.mark.parametrize("language", [[], ["--flux"]])
def test_completeness_per_gateway_with_the_times_the_ledger_wrote(
    influx_url: str, database: str, language: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--url", influx_url, "--db", database, *language]
    code, out, err = ask(capsys, "completeness", *common)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "plant", "gateway", "time", "expected", "received", "received_ratio", "missing",
        "duplicates", "open_gaps",
    ]  # fmt: skip
    assert lines[1].split() == ["p1", "gw-a", rfc3339(NOW - 7200 * S), "6", "5", "0.8333", "1",
                                "2", "1"]  # fmt: skip
    assert lines[2].split() == ["p1", "gw-b", rfc3339(NOW - 7100 * S), "4", "4", "1.0", "0",
                                "0", "0"]  # fmt: skip
    assert lines[3].split() == ["p1", "(all)", rfc3339(NOW - 7100 * S), "10", "9", "0.9", "1",
                                "2", "1"]  # fmt: skip
    assert "1970" not in out
    code, out, _ = ask(capsys, "completeness", "--since", "1h", *common, "--format", "json")
    assert json.loads(out) == []  # the figures are two hours old


def test_no_data_says_what_was_asked_and_what_exists(
    influx_url: str, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ask(capsys, "last", "--url", influx_url, "--db", database, "--plant", "p9")
    assert (code, out) == (0, "(no data)\n")
    assert (
        f"hint: no data in database '{database}', measurement 'readings', where plant = 'p9'"
        in (err)
    )
    assert "hint: no plant 'p9'; there are: p1" in err

    missing = f"{database}x"
    code, out, err = ask(capsys, "last", "--url", influx_url, "--db", missing, "--format", "csv")
    assert code == 1
    assert f"hint: database '{missing}' does not exist" in err
    assert database in err.split("databases you may read:")[1]  # the one that does

    code, out, err = ask(capsys, "--url", influx_url, "--db", database, "influxql",
                         "SELECT * FROM readings WHERE time < 0", "--format", "csv")  # fmt: skip
    assert (code, out) == (0, "\n")  # no columns at all: an empty header
    assert f"hint: no rows from database '{database}'" in err
