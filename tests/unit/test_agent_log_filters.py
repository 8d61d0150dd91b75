"""Quiet logs for expected events: the filter that demotes asyncua's and pymodbus' messages
about a PLC restart to debug (and leaves their other messages alone), the sources' one line per
lost and per recovered connection, and `agent run` installing the filter."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError
from pymodbus.exceptions import ConnectionException, ModbusIOException, ParameterException
from pymodbus.logging import Log

from edge_agent import cli
from edge_agent.log_filters import (
    EXPECTED,
    ExpectedNoiseFilter,
    quiet_expected_library_logs,
)
from edge_agent.sources.connection_log import ConnectionLog, connection_trouble
from tests.support.agent import offline_modbus, offline_settings

CLIENT = "asyncua.client.client"
SESSION = "asyncua.client.ua_session.UaSession"
PYMODBUS = "pymodbus.logging"
FILTERED = sorted({rule.logger for rule in EXPECTED})


@pytest.fixture
def quiet() -> Iterator[None]:
    """The agent's filters installed; every touched logger's filters and level restored after."""
    names = [*FILTERED, "asyncua.server.server", "asyncua", "pymodbus"]
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).filters))
        for name in names
    }
    quiet_expected_library_logs()
    for name in FILTERED:  # whatever other tests set (tests/support/opcua quiets asyncua)
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for name, (level, filters) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.filters[:] = filters


def ua_error(code: int) -> UaStatusCodeError:
    return UaStatusCodeError(code)  # type: ignore[no-untyped-call]


def crashed(error: BaseException) -> None:
    """What asyncua's publish loop does when a publish request fails."""
    try:
        raise error
    except type(error):
        logging.getLogger(SESSION).exception("Publish iteration crashed; retrying in 1s")


def levels(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records]


@pytest.mark.usefixtures("quiet")
def test_expected_messages_are_demoted_to_debug_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger(CLIENT).warning(
        "Requested session timeout to be %dms, got %dms instead", 3600000, 600000
    )
    crashed(ConnectionError("Connection is closed"))
    crashed(ua_error(StatusCodes.BadSessionClosed))
    logging.getLogger(SESSION).warning("close_session was called but connection is closed")
    assert [level for level, _ in levels(caplog)] == ["DEBUG"] * 4
    assert levels(caplog)[0][1] == "Requested session timeout to be 3600000ms, got 600000ms instead"
    publish = caplog.records[1]
    assert publish.exc_info is not None
    assert isinstance(publish.exc_info[1], ConnectionError)  # the traceback is kept, at debug


@pytest.mark.usefixtures("quiet")
def test_demoted_messages_are_dropped_unless_their_logger_has_debug_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # root and caplog's handler: only the logger's level decides
    logging.getLogger("asyncua").setLevel(logging.WARNING)  # as plantmesh.logs.setup_logging
    logging.getLogger(CLIENT).warning("Requested session timeout to be %dms", 1)
    crashed(ConnectionResetError("reset by peer"))
    assert caplog.records == []


@pytest.mark.usefixtures("quiet")
def test_unexpected_library_errors_and_warnings_still_show(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    crashed(TypeError("a bug in a callback"))  # same message, but not connection trouble
    crashed(ua_error(StatusCodes.BadUserAccessDenied))
    logging.getLogger(CLIENT).warning("Revised values returned differ from subscription values")
    logging.getLogger(SESSION).error("Publish iteration crashed; retrying in 1s")  # no exception
    # Expected text on a logger the filter is not on (the server side) is not touched.
    logging.getLogger("asyncua.server.server").warning("Requested session timeout to be 1ms")
    assert [level for level, _ in levels(caplog)] == [
        "ERROR",
        "ERROR",
        "WARNING",
        "ERROR",
        "WARNING",
    ]
    assert caplog.records[0].exc_info is not None
    assert isinstance(caplog.records[0].exc_info[1], TypeError)


@pytest.mark.usefixtures("quiet")
def test_pymodbus_retries_and_their_repeat_marker_are_demoted_its_other_errors_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    refused = OSError(111, "Connect call failed ('127.0.0.1', 5020)")
    for _ in range(3):  # through pymodbus' own Log: the second one is its "Repeating...."
        Log.warning("Failed to connect {}", refused)  # type: ignore[no-untyped-call]
    for _ in range(2):
        Log.error("Invalid Modbus protocol id: {}", 7)  # type: ignore[no-untyped-call]
    # pymodbus appends its transaction trace to an error once a client has run in this process,
    # and then repeats it rather than saying "Repeating....": compare first lines.
    messages = [(level, text.splitlines()[0]) for level, text in levels(caplog)]
    assert messages[0] == ("ERROR", "Invalid Modbus protocol id: 7")
    assert len(messages) >= 2  # the second error shows too, as itself or as the repeat marker
    assert all(level == "ERROR" for level, _ in messages)
    assert not any("Failed to connect" in text for _, text in messages)


def test_one_filter_per_logger_however_often_installed(quiet: None) -> None:
    quiet_expected_library_logs()
    quiet_expected_library_logs()
    for name in FILTERED:
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, ExpectedNoiseFilter)]
        assert len(filters) == 1, name
    assert {rule.logger for rule in filters[0].expected} == {name}


def test_agent_run_installs_the_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: None
) -> None:
    for name in FILTERED:
        logging.getLogger(name).filters.clear()
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(offline_settings([offline_modbus("m")])))
    monkeypatch.setattr(cli, "run_service", lambda *_: 0)
    assert cli._run(argparse.Namespace(config=str(path))) == 0
    for name in FILTERED:
        assert any(isinstance(f, ExpectedNoiseFilter) for f in logging.getLogger(name).filters)


def test_connection_trouble_tells_a_lost_plc_from_a_refusal_or_a_bug() -> None:
    for lost in (
        ConnectionRefusedError(111, "refused"),
        ConnectionError("transport lost"),
        TimeoutError(),
        ConnectionException("no connection"),
        ModbusIOException("no response"),
        ua_error(StatusCodes.BadShutdown),
        ua_error(StatusCodes.BadSessionIdInvalid),
    ):
        assert connection_trouble(lost), lost
    for news in (
        ua_error(StatusCodes.BadUserAccessDenied),
        ua_error(StatusCodes.BadTooManySessions),
        ValueError("garbled"),
        ParameterException("bad"),
        None,
    ):
        assert not connection_trouble(news), news


def test_an_outage_is_one_warning_and_one_recovery_line(caplog: pytest.LogCaptureFixture) -> None:
    link = ConnectionLog(logging.getLogger("t.link"), "opcua source plc")
    with caplog.at_level(logging.INFO, logger="t.link"):
        link.connected()  # first connect: nothing to say
        assert link.failed(ConnectionError("transport lost"))
        for _ in range(5):
            assert not link.failed(ConnectionRefusedError(111, "refused"), step="connect")
        assert not link.failed(ConnectionError("transport lost"))
        # Not connection trouble: news even in the middle of an outage, once.
        assert link.failed(ua_error(StatusCodes.BadUserAccessDenied), step="connect")
        assert not link.failed(ua_error(StatusCodes.BadUserAccessDenied), step="connect")
        assert link.down
        assert link.connected(detail="6 variables subscribed")
        assert not link.connected()
    messages = levels(caplog)
    assert messages[0] == ("WARNING", "opcua source plc lost: ConnectionError: transport lost")
    assert messages[1][0] == "WARNING"
    assert messages[1][1].startswith("opcua source plc still down: connect: ")
    assert "BadUserAccessDenied" in messages[1][1]
    assert len(messages) == 3
    level, text = messages[2]
    assert level == "INFO"
    assert text.startswith("opcua source plc recovered after ")
    assert text.endswith(" s (6 variables subscribed)")
    assert not link.down


def test_tracebacks_of_connection_failures_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    link = ConnectionLog(logging.getLogger("t.link"), "modbus source m")
    with caplog.at_level(logging.DEBUG, logger="t.link"):
        for error in (ConnectionResetError(104, "reset"), TimeoutError("no answer")):
            try:
                raise error
            except OSError as exc:
                link.failed(exc, "unit 1 (pump)", step="poll")
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert with_traceback
    assert all(r.levelno == logging.DEBUG for r in with_traceback)
    assert [r.levelname for r in caplog.records if r.levelno >= logging.INFO] == ["WARNING"]


def test_a_source_with_many_connections_is_down_until_all_are_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = ConnectionLog(logging.getLogger("t.link"), "modbus source plc (10.0.0.1:502)")
    with caplog.at_level(logging.INFO, logger="t.link"):
        link.connected("unit 1 (pump)")
        link.connected("unit 2 (press)")
        link.failed("no connection", "unit 1 (pump)", step="connect")
        link.failed("no connection", "unit 2 (press)", step="connect")
        assert not link.connected("unit 1 (pump)")  # unit 2 is still away
        assert link.down
        assert link.connected("unit 2 (press)")
    messages = [m for _, m in levels(caplog)]
    assert len(messages) == 2
    assert messages[0] == (
        "modbus source plc (10.0.0.1:502) lost: unit 1 (pump): connect: no connection"
    )
    assert messages[1].startswith("modbus source plc (10.0.0.1:502) recovered after ")


def test_a_plc_that_was_never_reached_is_unreachable_then_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = ConnectionLog(logging.getLogger("t.link"), "opcua source plc")
    with caplog.at_level(logging.INFO, logger="t.link"):
        link.failed(ConnectionRefusedError(111, "refused"), step="connect")
        link.failed(ConnectionRefusedError(111, "refused"), step="connect")
        link.connected()
    messages = [m for _, m in levels(caplog)]
    assert (
        messages[0]
        == "opcua source plc unreachable: connect: ConnectionRefusedError: [Errno 111] refused"
    )
    assert messages[1].startswith("opcua source plc connected after ")
    assert len(messages) == 2
