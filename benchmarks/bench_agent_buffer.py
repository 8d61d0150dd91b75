"""The edge agent's disk buffer: how fast it stores and drains batches, next to plain SQLite.

    .venv/bin/python benchmarks/bench_agent_buffer.py [--quick] [--dir DIR]

Store: `put` of 20 batches of ~2 KB at a time (one publish interval of a gateway with 20
machines), each `put` durable (WAL, synchronous=FULL). Our buffer commits twice per put (the
count of batches about to be written first, so a write cut by a crash is counted on the next
start); the reference is plain SQLite with one INSERT transaction per put and the same pragmas.
Drain: read 100, acknowledge them, make the acknowledgements durable (what the publisher does
per window while a backlog goes out), against plain SELECT + DELETE in one transaction.
The memory buffer is shown for scale. Run it on the gateway's own storage (--dir) for figures
that mean something there: an SD card's fsync costs far more than a server SSD's.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.buffer import BatchBuffer, MemoryBatchBuffer, NewBatch
from edge_agent.disk_buffer import DiskBatchBuffer

PER_PUT = 20
PAYLOAD = b"x" * 2048


def batches(start: int) -> list[NewBatch]:
    return [NewBatch("s", start + i, "t", PAYLOAD, 20) for i in range(PER_PUT)]


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    began = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - began


def store(buffer: BatchBuffer, puts: int) -> int:
    for i in range(puts):
        buffer.put(batches(i * PER_PUT))
    return puts * PER_PUT


def drain(buffer: BatchBuffer) -> int:
    done = 0
    cursor = 0
    while chunk := buffer.read(cursor, 100):
        for batch in chunk:
            buffer.ack(batch.id)
        cursor = chunk[-1].id
        buffer.sync()
        done += len(chunk)
    return done


def raw_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE batch (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT, seq INTEGER,"
        " topic TEXT, payload BLOB, readings INTEGER, created_at REAL)"
    )
    return db


def raw_store(db: sqlite3.Connection, puts: int) -> int:
    for i in range(puts):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO batch (session_id, seq, topic, payload, readings, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (b.session_id, b.seq, b.topic, b.payload, b.readings, b.created_at)
                for b in batches(i)
            ],
        )
        db.execute("COMMIT")
    return puts * PER_PUT


def raw_drain(db: sqlite3.Connection) -> int:
    done = 0
    cursor = 0
    while rows := db.execute(
        "SELECT id, payload FROM batch WHERE id > ? ORDER BY id LIMIT 100", (cursor,)
    ).fetchall():
        cursor = rows[-1][0]
        db.execute("BEGIN")
        db.executemany("DELETE FROM batch WHERE id = ?", [(r[0],) for r in rows])
        db.execute("COMMIT")
        done += len(rows)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer puts (a quick check)")
    parser.add_argument("--dir", help="where the files go (default: a temporary directory)")
    args = parser.parse_args()
    puts = 50 if args.quick else 500
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours = DiskBatchBuffer(Path(tmp) / "ours.sqlite", 10**7, 1 << 34)
        raw = raw_db(Path(tmp) / "raw.sqlite")
        memory = MemoryBatchBuffer(10**7, 1 << 34)
        rows = [
            (
                "store (put of 20)",
                timed(lambda: store(ours, puts)),
                timed(lambda: raw_store(raw, puts)),
            ),
            ("drain (100 per ack)", timed(lambda: drain(ours)), timed(lambda: raw_drain(raw))),
        ]
        mem_store = timed(lambda: store(memory, puts))
        mem_drain = timed(lambda: drain(memory))
        ours.close()
        raw.close()
    print(f"disk buffer, {PER_PUT} batches of {len(PAYLOAD)} B per put, {puts} puts")
    print(f"{'operation':<22}{'ours batches/s':>16}{'raw SQLite':>14}{'memory buffer':>16}")
    for (name, (n, t), (rn, rt)), (mn, mt) in zip(rows, (mem_store, mem_drain), strict=True):
        print(f"{name:<22}{n / t:>16,.0f}{rn / rt:>14,.0f}{mn / mt:>16,.0f}")
    n, t = rows[0][1]
    print(f"durable puts/s (ours): {puts / t:,.0f}  ->  {n * len(PAYLOAD) / t / 1e6:.1f} MB/s")


if __name__ == "__main__":
    main()
