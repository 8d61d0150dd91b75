"""`python -m edge_agent ...` as a child process, for tests of the agent's commands."""

from __future__ import annotations

import asyncio
import sys

from tests.support.waiting import SCALE


async def agent_command(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python -m edge_agent ARGS`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout * SCALE)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
