"""The restart-safe batch buffer: one SQLite file in WAL mode with synchronous=FULL.

Why SQLite rather than a hand-written segment log: every commit is atomic and checksummed in the
write-ahead log, so a kill -9 or a power cut in the middle of a write leaves the last committed
state (a torn WAL frame is ignored on the next open), and the module ships with Python. A segment
log would need its own framing, checksums, directory fsyncs and compaction to get the same.

Durability and cost: `put` commits twice (two fsyncs per publish interval, whatever the number of
batches). The first commit records how many batches are about to be written; the second writes
them and clears that number. A crash in between leaves the number behind, so the next start
counts exactly those batches as lost (`drops.torn`) instead of losing them silently.
Acknowledgements are applied in memory at once and made durable by `sync()` (each publish
interval): after a crash a few acknowledged batches may be sent again, never fewer.

A file SQLite cannot read (a damaged SD card, a file truncated by hand) is moved aside as
`<name>.corrupt-<time>` and a new buffer starts, so the agent keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from edge_agent.buffer import BufferDrops, BufferedBatch, NewBatch
from edge_agent.config import AgentConfig
from edge_agent.errors import AgentError
from plantmesh.resilience import ErrorLog

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids only grow, so order is creation
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    readings INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = "id, session_id, seq, topic, payload, readings, created_at"
_CHUNK = 500  # ids per DELETE statement (SQLite limits bound parameters)


class BufferUnavailableError(AgentError):
    """The buffer file cannot be opened (in use by another agent, no permission): fatal."""


def default_state_dir() -> Path:
    """$STATE_DIRECTORY (systemd's StateDirectory=, /var/lib/plantmesh in our unit), else
    /var/lib/plantmesh for root, else $XDG_STATE_HOME/plantmesh (~/.local/state/plantmesh)."""
    if state := os.environ.get("STATE_DIRECTORY"):
        return Path(state.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/plantmesh")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(xdg) / "plantmesh"


def buffer_path(config: AgentConfig) -> Path:
    """The configured file, or one per namespace and gateway in the default state dir."""
    if config.buffer.path is not None:
        return Path(config.buffer.path)
    prefix = f"{config.namespace}." if config.namespace else ""
    return default_state_dir() / f"agent-buffer-{prefix}{config.gateway_id}.sqlite"


class DiskBatchBuffer:
    persistent = True

    def __init__(
        self,
        path: Path | str,
        max_batches: int,
        max_bytes: int,
        max_age_s: float | None = None,
    ) -> None:
        if max_batches < 1 or max_bytes < 1:
            raise ValueError("max_batches and max_bytes must be at least 1")
        self.path = Path(path)
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.drops = BufferDrops()
        self._pending_acks: set[int] = set()
        # Payload sizes of batches handed out by read() and not yet acked or deleted: an ack
        # then needs no query (one per batch, hundreds a second on a busy gateway).
        self._read_sizes: dict[int, int] = {}
        self._errors = ErrorLog(log, f"buffer {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open()
        count, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM batch"
        ).fetchone()
        self._count: int = count
        self._bytes: int = size
        self._recover_torn_write()

    # --- opening ----------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise BufferUnavailableError(
                    f"buffer {self.path} is in use by another process (one agent per file)"
                ) from None
            raise BufferUnavailableError(f"cannot open buffer {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error(
                "buffer %s is unreadable (%s): moved aside to %s, starting an empty buffer; "
                "the batches it held are lost",
                self.path,
                exc,
                aside,
            )
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.rename(Path(f"{aside}{suffix}"))
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None, check_same_thread=False)
        try:
            # EXCLUSIVE: a second agent on the same file fails at once instead of interleaving.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            row = db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _recover_torn_write(self) -> None:
        torn = self._counter("writing")
        if torn:
            self.drops.torn += torn
            log.warning(
                "buffer %s: %d batches were being written when the agent last died; "
                "they are lost (counted as dropped)",
                self.path,
                torn,
            )
            with self._transaction():
                self._set_counter("writing", 0)

    # --- the BatchBuffer protocol -----------------------------------------------------------
    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, batches: Sequence[NewBatch]) -> int:
        if not batches:
            return 0
        try:
            with self._transaction():
                self._set_counter("writing", len(batches))
                self._delete_pending_acks()
            self._pending_acks.clear()
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO batch (session_id, seq, topic, payload, readings, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (b.session_id, b.seq, b.topic, b.payload, b.readings, b.created_at)
                        for b in batches
                    ],
                )
                self._count += len(batches)
                self._bytes += sum(len(b.payload) for b in batches)
                dropped = self._trim()
                self._set_counter("writing", 0)
        except sqlite3.Error as exc:
            # Disk full or failing: these batches are lost, counted; the agent keeps going.
            with contextlib.suppress(sqlite3.Error), self._transaction():
                self._set_counter("writing", 0)  # counted here, not again as torn
            self._reload_totals()
            self.drops.failed += len(batches)
            log.error("buffer %s: cannot write %d batches: %s", self.path, len(batches), exc)
            return len(batches)
        self.drops.full += dropped
        return dropped

    def read(self, after_id: int, limit: int) -> list[BufferedBatch]:
        found: list[BufferedBatch] = []
        while len(found) < limit:
            # Acked but not yet deleted rows are skipped; ask for enough more to cover those
            # ahead, and no more: a thousand pending acks behind the cursor would otherwise
            # fetch a thousand payloads for nothing on every refill of the in-flight window.
            skipped = sum(1 for batch_id in self._pending_acks if batch_id > after_id)
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM batch WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit - len(found) + skipped),
            ).fetchall()
            if not rows:
                break
            for row in rows:
                if row[0] not in self._pending_acks and len(found) < limit:
                    batch = _batch(row)
                    self._read_sizes[batch.id] = len(batch.payload)
                    found.append(batch)
            after_id = rows[-1][0]
        return found

    def ack(self, batch_id: int) -> bool:
        if batch_id in self._pending_acks:
            return False
        size = self._read_sizes.pop(batch_id, None)
        if size is None:
            row = self._db.execute(
                "SELECT length(payload) FROM batch WHERE id = ?", (batch_id,)
            ).fetchone()
            if row is None:
                return False
            size = row[0]
        self._pending_acks.add(batch_id)
        self._count -= 1
        self._bytes -= size
        return True

    def expire(self) -> int:
        if self.max_age_s is None:
            return 0
        cutoff = time.time() - self.max_age_s
        expired = 0
        with self._transaction():
            while True:
                old = [
                    (batch_id, size)
                    for batch_id, created, size in self._oldest(_CHUNK)
                    if created < cutoff
                ]
                if not old:
                    break
                self._delete([batch_id for batch_id, _ in old])
                expired += len(old)
                if len(old) < _CHUNK:
                    break
        self.drops.expired += expired
        return expired

    def sync(self) -> None:
        if not self._pending_acks:
            return
        try:
            with self._transaction():
                self._delete_pending_acks()
        except sqlite3.Error as exc:
            # Kept pending (in memory) and tried again next time; a crash before that only
            # means these batches are sent once more.
            self._errors.once(
                "sync", "buffer %s: cannot store acknowledgements: %s", self.path, exc
            )
            return
        self._pending_acks.clear()
        self._errors.succeeded()

    def oldest_age_s(self) -> float | None:
        for _, created, _ in self._oldest(1):
            return max(0.0, round(time.time() - created, 3))
        return None

    def close(self) -> None:
        """Make acknowledgements durable and close the file; an empty buffer's file is removed
        (nothing to keep, and no leftovers for gateways that run once)."""
        try:
            self.sync()
            empty = self._count == 0
        finally:
            self._db.close()
        if empty:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def __len__(self) -> int:
        return self._count

    # --- helpers ----------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counter WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def _set_counter(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counter (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _oldest(self, limit: int) -> Iterator[tuple[int, float, int]]:
        """(id, created_at, size) of the oldest unacknowledged batches."""
        rows = self._db.execute(
            "SELECT id, created_at, length(payload) FROM batch ORDER BY id LIMIT ?",
            (limit + len(self._pending_acks),),
        ).fetchall()
        yielded = 0
        for batch_id, created, size in rows:
            if batch_id in self._pending_acks:
                continue
            if yielded == limit:
                return
            yielded += 1
            yield batch_id, created, size

    def _trim(self) -> int:
        """Drop the oldest batches while over a limit, always keeping the newest one."""
        dropped = 0
        while self._count > 1 and (self._count > self.max_batches or self._bytes > self.max_bytes):
            excess = max(1, self._count - self.max_batches)
            victims = []
            for batch_id, _, _ in self._oldest(min(excess, _CHUNK)):
                victims.append(batch_id)
            if not victims:
                break
            self._delete(victims)
            dropped += len(victims)
        return dropped

    def _delete(self, ids: list[int]) -> None:
        for batch_id in ids:
            self._read_sizes.pop(batch_id, None)
        count, size = self._sizes(ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            self._db.execute(f"DELETE FROM batch WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        self._count -= count
        self._bytes -= size

    def _sizes(self, ids: list[int]) -> tuple[int, int]:
        """How many of `ids` are stored, and their payload bytes."""
        count = size = 0
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            n, b = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM batch "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchone()
            count += n
            size += b
        return count, size

    def _delete_pending_acks(self) -> None:
        ids = sorted(self._pending_acks)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            self._db.execute(f"DELETE FROM batch WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def _reload_totals(self) -> None:
        count, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM batch"
        ).fetchone()
        pending_count, pending_size = self._sizes(sorted(self._pending_acks))
        self._count = count - pending_count
        self._bytes = size - pending_size


def _batch(row: tuple[int, str, int, str, bytes, int, float]) -> BufferedBatch:
    batch_id, session_id, seq, topic, payload, readings, created_at = row
    return BufferedBatch(
        session_id=session_id,
        seq=seq,
        topic=topic,
        payload=bytes(payload),
        readings=readings,
        created_at=created_at,
        id=batch_id,
    )
