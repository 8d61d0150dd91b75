"""Hot reload without servers: what a config change restarts, noticing file changes, SIGHUP, and
a bad file that leaves the running config alone. (Sources and broker point at closed loopback
ports, tests/support/agent.py: they retry in the background, which is all these tests need.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, load_agent_config
from edge_agent.reload import FileWatch, diff
from edge_agent.tasks import cancel_and_wait
from tests.support.agent import offline_config, offline_modbus, offline_settings
from tests.support.waiting import async_wait_for

A, B = offline_modbus("a"), offline_modbus("b")


def test_only_changed_sources_restart() -> None:
    old = offline_config([A, B])
    new = offline_config([A, {**B, "timeout_s": 2.0}, offline_modbus("c")])
    change = diff(old, new)
    assert [s.name for s in change.start] == ["b", "c"]
    assert change.stop == ["b"]
    assert not change.publisher
    assert change.describe() == "restarting b; starting c"
    assert diff(old, offline_config([A, B])).empty


def test_removed_sources_stop_and_publisher_keys_restart_the_publisher() -> None:
    change = diff(offline_config([A, B]), offline_config([A], publish_interval_s=2.0))
    assert change.stop == ["b"]
    assert change.start == []
    assert change.publisher
    assert change.describe() == "stopping b; restarting the publisher"


def test_a_new_plant_restarts_every_source_and_buffer_changes_need_a_restart() -> None:
    new = offline_settings([A, B], plant="q")
    new["buffer"] = {"kind": "memory", "max_batches": 5}
    change = diff(offline_config([A, B]), AgentConfig.model_validate(new))
    assert sorted(change.stop) == ["a", "b"]
    assert change.publisher
    assert change.needs_restart == ["buffer"]


def test_file_watch_sees_content_changes_only(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch(path)
    assert not watch.changed()
    path.write_text("a: 1\n")  # rewritten, same bytes
    assert not watch.changed()
    path.write_text("a: 2\n")
    assert watch.changed()
    assert not watch.changed()
    path.unlink()  # being replaced: no change yet
    assert not watch.changed()


@asynccontextmanager
async def running(path: Path, handle_signals: bool = False) -> AsyncIterator[Agent]:
    agent = Agent(load_agent_config(path), config_path=path)
    task = asyncio.create_task(agent.run(handle_signals), name="reload-agent")
    try:
        await asyncio.wait_for(agent.started.wait(), 10)
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)


def write(path: Path, sources: list[dict[str, Any]], **extra: Any) -> None:
    path.write_text(json.dumps(offline_settings(sources, **extra)))


async def reloaded(agent: Agent, count: int) -> None:
    async def done() -> bool:
        return agent.reloads >= count

    await async_wait_for(done, 10, f"reload number {count}")


async def test_sighup_restarts_only_the_changed_source(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    write(path, [A, B])
    async with running(path, handle_signals=True) as agent:
        kept, changed = agent._sources["a"], agent._sources["b"]
        publisher = agent.publisher
        write(path, [A, {**B, "timeout_s": 2.0}])
        os.kill(os.getpid(), signal.SIGHUP)
        await reloaded(agent, 1)
        assert agent._sources["a"] is kept
        assert not any(task.done() for task in kept.tasks)  # a kept streaming
        assert agent._sources["b"] is not changed
        assert all(task.done() for task in changed.tasks)
        assert agent.publisher is publisher


async def test_a_changed_file_is_reloaded_and_the_publisher_keeps_the_session(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agent.yaml"
    write(path, [A], watch_config_s=0.05)
    async with running(path) as agent:
        old = agent.publisher
        old.batcher.next_seq = 7
        write(path, [A, B], watch_config_s=0.05, publish_interval_s=0.2)
        await reloaded(agent, 1)
        assert sorted(agent._sources) == ["a", "b"]
        assert agent.publisher is not old
        assert agent.publisher.session_id == agent.session_id
        assert agent.publisher.batcher.next_seq == 7  # the session's numbering goes on
        assert agent.publisher.healthy
        assert agent.config.publish_interval_s == 0.2


async def test_a_broken_file_keeps_the_running_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "agent.yaml"
    write(path, [A])
    async with running(path) as agent:
        before = agent._sources["a"]
        path.write_text("gateway_id: [not, a, name]\n")
        agent.reload()

        async def logged() -> bool:
            return "config reload failed" in caplog.text

        await async_wait_for(logged, 10, "the reload error")
        assert agent._sources["a"] is before
        assert agent.reloads == 0
        assert agent.config.gateway_id == "gw"


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    # What asyncio.wait_for does on Python 3.11 when the cancellation and the awaited call's
    # completion meet: the CancelledError is lost and the loop goes on.
    ignored = 0
    started = asyncio.Event()

    async def stubborn() -> None:
        nonlocal ignored
        started.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                ignored += 1
                if ignored == 1:
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await started.wait()
    await asyncio.wait_for(cancel_and_wait([task]), 10)
    assert task.cancelled()
    assert ignored == 2
