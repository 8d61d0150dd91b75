from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from plantmesh.logs import NOISY_LOGGERS, RepeatFilter, setup_logging


def record(name: str, message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_repeat_filter_drops_repeats_of_library_messages_only() -> None:
    repeats = RepeatFilter(window_s=300)
    assert repeats.filter(record("aiokafka", "Unable connect"))
    assert not repeats.filter(record("aiokafka", "Unable connect"))
    assert repeats.filter(record("aiokafka", "another message"))
    assert repeats.filter(record("aiokafka", "Unable connect", logging.WARNING))
    assert repeats.filter(record("aiokafka.consumer.fetcher", "Unable connect"))
    assert not repeats.filter(record("aiokafka.consumer.fetcher", "Unable connect"))
    assert repeats.filter(record("alerting.service", "same"))
    assert repeats.filter(record("alerting.service", "same"))
    # A prefix matches whole logger names only.
    assert repeats.filter(record("aiokafkaesque", "same"))
    assert repeats.filter(record("aiokafkaesque", "same"))


def test_repeat_filter_covers_every_noisy_library() -> None:
    repeats = RepeatFilter()
    assert set(NOISY_LOGGERS) == {"aiokafka", "paho", "asyncua", "pymodbus"}
    for name in ("aiokafka.conn", "paho.mqtt", "asyncua.client.client", "pymodbus.logging"):
        assert repeats.filter(record(name, "lost connection"))
        assert not repeats.filter(record(name, "lost connection")), name


def test_repeat_filter_lets_each_distinct_message_through_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("t.noisy")
    noisy = RepeatFilter(prefixes=("t.noisy",), window_s=600)
    logger.addFilter(noisy)
    try:
        with caplog.at_level(logging.INFO, logger="t.noisy"):
            for _ in range(5):
                logger.error("Unable connect to %s", "127.0.0.1:1")
            logger.error("Unable connect to %s", "127.0.0.1:2")
    finally:
        logger.removeFilter(noisy)
    assert [r.getMessage() for r in caplog.records] == [
        "Unable connect to 127.0.0.1:1",
        "Unable connect to 127.0.0.1:2",
    ]


def test_repeat_filter_lets_a_message_through_again_after_its_window() -> None:
    again = RepeatFilter(window_s=0)
    assert again.filter(record("aiokafka", "down"))
    assert again.filter(record("aiokafka", "down"))
    once = RepeatFilter(window_s=600)
    assert once.filter(record("aiokafka", "down"))
    assert not once.filter(record("aiokafka", "down"))


def test_repeat_filter_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    repeats = RepeatFilter(window_s=600, max_keys=3)
    for n in range(1000):
        assert repeats.filter(record("paho.mqtt", f"message {n}"))
    assert len(repeats._last) == 3
    assert not repeats.filter(record("paho.mqtt", "message 999"))  # still remembered
    assert repeats.filter(record("paho.mqtt", "message 0"))  # forgotten long ago


def test_repeat_filter_passes_records_whose_arguments_do_not_format() -> None:
    broken = logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "%d", ("x",), None)
    assert RepeatFilter().filter(broken)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in (*NOISY_LOGGERS, "kafka", "urllib3")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_lets_library_repeats_through_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("info", "text")
    for _ in range(5):
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1")
        logging.getLogger("paho.mqtt").warning("failed to receive on socket")
        logging.getLogger("ingest.bridge").warning("our own line")
    lines = capsys.readouterr().err.splitlines()
    assert sum("Unable connect to node with id 1" in line for line in lines) == 1
    assert sum("failed to receive on socket" in line for line in lines) == 1
    assert sum("our own line" in line for line in lines) == 5


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("warning", "json")
    logging.getLogger("alerting.service").info("not shown")
    logging.getLogger("alerting.service").warning("shown %d", 1, extra={"topic": "x"})
    [line] = capsys.readouterr().err.splitlines()
    assert '"msg": "shown 1"' in line
    assert '"topic": "x"' in line
