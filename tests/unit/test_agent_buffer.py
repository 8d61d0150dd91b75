"""The BatchBuffer contract, run against both implementations, then what only the disk buffer
promises: restarts, torn writes, unreadable files."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.buffer import BatchBuffer, MemoryBatchBuffer, NewBatch
from edge_agent.disk_buffer import BufferUnavailableError, DiskBatchBuffer
from tests.support.agent import offline_config, offline_modbus, offline_settings

MakeBuffer = Callable[..., BatchBuffer]


def batch(seq: int, size: int = 1, session: str = "s", age_s: float = 0.0) -> NewBatch:
    return NewBatch(
        session_id=session,
        seq=seq,
        topic=f"t/{seq}",
        payload=b"x" * size,
        readings=1,
        created_at=time.time() - age_s,
    )


@pytest.fixture(params=["memory", "disk"])
def make_buffer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeBuffer]:
    made: list[BatchBuffer] = []

    def make(max_batches: int = 100, max_bytes: int = 10_000, max_age_s: float | None = None):  # type: ignore[no-untyped-def]
        buffer: BatchBuffer
        if request.param == "memory":
            buffer = MemoryBatchBuffer(max_batches, max_bytes, max_age_s)
        else:
            path = tmp_path / f"b{len(made)}.sqlite"
            buffer = DiskBatchBuffer(path, max_batches, max_bytes, max_age_s)
        made.append(buffer)
        return buffer

    yield make
    for buffer in made:
        buffer.close()


def seqs(buffer: BatchBuffer, after: int = 0, limit: int = 1000) -> list[int]:
    return [b.seq for b in buffer.read(after, limit)]


def test_reads_in_put_order_after_a_cursor_and_forgets_acked(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer()
    assert buffer.oldest_age_s() is None
    assert buffer.put([batch(i) for i in range(5)]) == 0
    first = buffer.read(0, 2)
    assert [b.seq for b in first] == [0, 1]
    assert [b.topic for b in first] == ["t/0", "t/1"]
    assert seqs(buffer, after=first[-1].id) == [2, 3, 4]
    assert buffer.ack(first[0].id)
    assert not buffer.ack(first[0].id)  # twice: no longer held
    assert not buffer.ack(12345)
    assert seqs(buffer) == [1, 2, 3, 4]
    assert len(buffer) == 4
    assert buffer.bytes == 4
    buffer.sync()
    assert seqs(buffer) == [1, 2, 3, 4]
    assert buffer.drops.total == 0
    age = buffer.oldest_age_s()
    assert age is not None
    assert 0 <= age < 60


def test_reads_skip_acked_batches_not_yet_synced(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer()
    buffer.put([batch(i) for i in range(10)])
    held = buffer.read(0, 10)
    for b in held[:3] + held[5:7]:  # acked out of order, before and after a cursor
        assert buffer.ack(b.id)
    assert seqs(buffer, limit=3) == [3, 4, 7]
    assert seqs(buffer, after=held[2].id, limit=3) == [3, 4, 7]
    assert seqs(buffer, after=held[4].id, limit=2) == [7, 8]
    assert seqs(buffer, after=held[4].id) == [7, 8, 9]
    buffer.sync()
    assert seqs(buffer) == [3, 4, 7, 8, 9]


def test_ids_keep_growing_after_the_buffer_ran_empty(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer()
    buffer.put([batch(0)])
    [only] = buffer.read(0, 10)
    assert buffer.ack(only.id)
    buffer.sync()
    buffer.put([batch(1)])
    # The publisher's cursor is at the first id: the new batch must come after it.
    assert seqs(buffer, after=only.id) == [1]


def test_full_buffer_drops_the_oldest_and_counts(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_batches=3)
    assert buffer.put([batch(i) for i in range(3)]) == 0
    [b0] = buffer.read(0, 1)
    assert buffer.put([batch(3), batch(4)]) == 2
    assert seqs(buffer) == [2, 3, 4]
    assert buffer.drops.full == 2
    assert not buffer.ack(b0.id)  # dropped while it was in flight: its late ack is ignored


def test_bounded_by_bytes_and_the_newest_batch_is_always_kept(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_bytes=10)
    buffer.put([batch(0, size=4), batch(1, size=4)])
    assert buffer.put([batch(2, size=4)]) == 1  # 12 bytes would not fit
    assert buffer.bytes == 8
    assert buffer.put([batch(3, size=50)]) == 2
    assert seqs(buffer) == [3]
    assert buffer.drops.full == 3


def test_batches_past_the_age_limit_expire(make_buffer: MakeBuffer) -> None:
    buffer = make_buffer(max_age_s=60)
    buffer.put([batch(0, age_s=120), batch(1, age_s=90), batch(2)])
    assert buffer.expire() == 2
    assert seqs(buffer) == [2]
    assert buffer.drops.expired == 2
    assert make_buffer().expire() == 0  # no age limit


def test_memory_buffer_rejects_zero_limits() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryBatchBuffer(0)


# --- only the disk buffer -------------------------------------------------------------------
def disk(path: Path, max_batches: int = 1000) -> DiskBatchBuffer:
    return DiskBatchBuffer(path, max_batches, 10_000_000, None)


def test_unacknowledged_batches_survive_a_restart_with_their_session(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    first = disk(path)
    first.put([batch(i, session="old") for i in range(4)])
    held = first.read(0, 10)
    first.ack(held[0].id)
    first.sync()
    first.ack(held[1].id)  # acknowledged but not yet synced: sent again after a crash
    first._db.close()  # as if killed: no close(), no sync()
    second = disk(path)
    kept = second.read(0, 10)
    assert [(b.session_id, b.seq) for b in kept] == [("old", 1), ("old", 2), ("old", 3)]
    assert kept[0].payload == held[1].payload
    assert second.drops.total == 0
    second.put([batch(0, session="new")])
    assert [(b.session_id, b.seq) for b in second.read(kept[-1].id, 10)] == [("new", 0)]
    second.close()
    assert path.exists()  # not empty: kept for the next start


def test_clean_close_of_an_empty_buffer_removes_its_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "b.sqlite"
    buffer = disk(path)
    buffer.put([batch(0)])
    [only] = buffer.read(0, 1)
    buffer.ack(only.id)
    buffer.close()
    assert list(path.parent.iterdir()) == []


def test_a_second_agent_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    first = disk(path)
    try:
        with pytest.raises(BufferUnavailableError, match="in use by another process"):
            disk(path)
    finally:
        first.close()


def test_a_write_cut_between_its_two_commits_is_counted_on_the_next_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.sqlite"
    buffer = disk(path)
    buffer.put([batch(0)])
    # The first commit (how many batches are coming) happened, the second never did.
    with buffer._transaction():
        buffer._set_counter("writing", 3)
    buffer._db.close()
    again = disk(path)
    assert again.drops.torn == 3
    assert seqs(again) == [0]
    again.close()
    assert disk(path).drops.torn == 0  # counted once


def test_a_torn_wal_frame_leaves_the_committed_batches_readable(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = disk(path)
    for i in range(10):
        buffer.put([batch(i, size=3000)])
    # The files as a power cut leaves them: copied while open, the WAL not checkpointed.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(path, crashed / path.name)
    shutil.copy(f"{path}-wal", crashed / f"{path.name}-wal")
    buffer.close()
    wal = crashed / f"{path.name}-wal"
    with wal.open("r+b") as f:
        f.truncate(wal.stat().st_size - 2000)  # the last commit's frames cut in the middle
    again = disk(crashed / path.name)
    kept = seqs(again)
    assert kept == list(range(len(kept)))  # a prefix, in order, no holes
    assert 8 <= len(kept) <= 9
    again.put([batch(100)])
    assert seqs(again)[-1] == 100
    again.close()


def test_an_unreadable_file_is_moved_aside_and_a_new_buffer_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "b.sqlite"
    buffer = disk(path)
    buffer.put([batch(i, size=5000) for i in range(20)])
    buffer.close()
    with path.open("r+b") as f:  # the main file cut mid-page, its header scribbled over
        f.truncate(path.stat().st_size // 2 + 100)
        f.seek(0)
        f.write(b"garbage" * 20)
    again = disk(path)
    assert len(again) == 0
    again.put([batch(0)])
    assert seqs(again) == [0]
    again.close()
    assert any(p.name.startswith("b.sqlite.corrupt-") for p in tmp_path.iterdir())
    assert "moved aside" in caplog.text


def test_the_file_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    buffer = disk(tmp_path / "b.sqlite")
    try:
        assert buffer._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert buffer._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        buffer.close()


def test_sqlite_file_readable_by_a_plain_client_after_close(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = disk(path)
    buffer.put([batch(i, session="s1") for i in range(3)])
    buffer.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT session_id, seq FROM batch ORDER BY id").fetchall()
    assert rows == [("s1", 0), ("s1", 1), ("s1", 2)]


WRITER = """
import sys
from edge_agent.buffer import NewBatch
from edge_agent.disk_buffer import DiskBatchBuffer
buffer = DiskBatchBuffer(sys.argv[1], 1_000_000, 1 << 30)
seq = 0
while True:
    buffer.put([NewBatch("s", seq + i, "t", b"x" * 2000, 1) for i in range(5)])
    seq += 5
    print(seq, flush=True)
"""


def test_kill_9_in_the_middle_of_writing_leaves_a_readable_buffer(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        for line in writer.stdout:  # kill it at full speed, wherever it is in a write
            if int(line) >= 200:
                break
    finally:
        writer.kill()
        writer.wait()
    again = disk(path)
    kept = seqs(again, limit=100_000)
    assert kept[:200] == list(range(200))  # every reported write is there
    assert kept == list(range(len(kept)))  # in order, no holes
    assert len(kept) % 5 == 0  # whole writes only
    assert again.drops.torn in (0, 5)  # a write cut between its commits is counted
    again.close()


def test_default_path_follows_systemd_root_or_the_users_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from edge_agent.disk_buffer import buffer_path

    settings = offline_config([offline_modbus("a")], namespace="ns")
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/state:/other")
    assert buffer_path(settings) == tmp_path / "state" / "agent-buffer-ns.gw.sqlite"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert buffer_path(settings).parent == Path("/var/lib/plantmesh")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert buffer_path(settings) == tmp_path / "plantmesh" / "agent-buffer-ns.gw.sqlite"
    explicit = offline_config([offline_modbus("a")], buffer={"path": "/data/b.sqlite"})
    assert buffer_path(explicit) == Path("/data/b.sqlite")


def test_buffer_path_in_the_config_file_is_relative_to_it(tmp_path: Path) -> None:
    import json

    from edge_agent.config import load_agent_config

    path = tmp_path / "agent.yaml"
    path.write_text(
        json.dumps(offline_settings([offline_modbus("a")], buffer={"path": "data/b.sqlite"}))
    )
    assert load_agent_config(path).buffer.path == str(tmp_path / "data" / "b.sqlite")


def test_a_full_disk_drops_the_write_counts_it_and_keeps_the_buffer_usable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.sqlite"
    buffer = disk(path)
    buffer.put([batch(0)])
    pages = buffer._db.execute("PRAGMA page_count").fetchone()[0]
    buffer._db.execute(f"PRAGMA max_page_count={pages + 2}")  # as good as a full disk
    assert buffer.put([batch(i, size=20_000) for i in range(1, 4)]) == 3
    assert buffer.drops.failed == 3
    assert seqs(buffer) == [0]
    assert len(buffer) == 1
    assert buffer.bytes == 1
    buffer.close()
    again = disk(path)
    assert again.drops.torn == 0  # counted once, as failed, not again on the next start
    assert seqs(again) == [0]
    again.close()


def test_agent_run_on_a_buffer_in_use_exits_with_a_clear_error(tmp_path: Path) -> None:
    import json

    path = tmp_path / "agent.yaml"
    path.write_text(
        json.dumps(offline_settings([offline_modbus("a")], buffer={"path": "b.sqlite"}))
    )
    held = disk(tmp_path / "b.sqlite")  # another agent has it
    try:
        result = subprocess.run(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        held.close()
    assert result.returncode == 1
    assert "in use by another process" in result.stderr
    assert "Traceback" not in result.stderr
