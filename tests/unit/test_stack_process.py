"""Pid files and process identity: the stack signals only processes that are provably its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantmesh.stack.errors import StackError
from plantmesh.stack.process import (
    Identity,
    PidFile,
    alive,
    find_running,
    port_free,
    read_cmdline,
    read_from,
    stop,
    tail,
)
from tests.support.waiting import wait_for

PYTHON = os.path.basename(sys.executable)


def test_identity_needs_the_executable_and_our_config_as_a_whole_argument() -> None:
    kafka = Identity("java", "/s/kafka/server.properties", also=("kafka.Kafka",))
    assert kafka.matches(["/usr/bin/java", "-Xmx1g", "kafka.Kafka", "/s/kafka/server.properties"])
    assert not kafka.matches(["/usr/bin/java", "kafka.Kafka", "/other/kafka/server.properties"])
    assert not kafka.matches(["/usr/bin/java", "kafka.Kafka", "/s/kafka/server.properties.bak"])
    assert not kafka.matches(["/usr/bin/java", "Other", "/s/kafka/server.properties"])
    assert not kafka.matches(["/bin/vi", "kafka.Kafka", "/s/kafka/server.properties"])
    assert not kafka.matches([])


def test_pid_file_round_trip_and_garbage(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "x" / "x.pid")
    assert pid_file.read() is None
    pid_file.write(1234)
    assert pid_file.read() == 1234
    for junk in ["", "abc", "-5", "0"]:
        pid_file.path.write_text(junk)
        assert pid_file.read() is None
    pid_file.remove()
    assert not pid_file.path.exists()


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Identity]]:
    """A child whose command line carries a config path, like our servers'."""
    marker = str(tmp_path / "fake.conf")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    wait_for(lambda: marker in (read_cmdline(child.pid) or []), 10, "the child to exec")
    yield child, Identity(PYTHON, marker)
    child.kill()
    child.wait()


def test_find_running_verifies_the_pid_file(
    tmp_path: Path, sleeper: tuple[subprocess.Popen[bytes], Identity]
) -> None:
    child, identity = sleeper
    pid_file = PidFile(tmp_path / "fake.pid")
    pid_file.write(child.pid)
    assert find_running(pid_file, identity) == child.pid
    # A pid file naming another process (here: this test runner) is not believed; the scan
    # of /proc still finds the real one.
    pid_file.write(os.getpid())
    assert find_running(pid_file, identity) == child.pid
    assert find_running(pid_file, Identity(PYTHON, str(tmp_path / "other.conf"))) is None


def test_stop_refuses_what_is_not_ours_and_stops_what_is(
    sleeper: tuple[subprocess.Popen[bytes], Identity],
) -> None:
    child, identity = sleeper
    with pytest.raises(StackError, match=f"pid {child.pid} is not our"):
        stop(child.pid, Identity(PYTHON, "/not/our.conf"), timeout=1)
    assert child.poll() is None
    assert stop(child.pid, identity, timeout=5)
    assert child.wait(timeout=5) == -15  # SIGTERM was enough
    assert not alive(child.pid)


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_free(port)
    assert port_free(port)


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    assert tail(log, 3).splitlines() == ["line 9997", "line 9998", "line 9999"]
    assert tail(tmp_path / "missing.log") == ""


def test_read_from_counts_a_rolled_over_log_as_all_new(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("old line\n" * 100)
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write("Kafka Server started\n")
    assert read_from(log, offset) == "Kafka Server started\n"
    log.write_text("after the roll-over: Kafka Server started\n")  # a fresh, shorter file
    assert read_from(log, offset) == "after the roll-over: Kafka Server started\n"
    assert read_from(tmp_path / "missing.log", 0) == ""
