"""The browser tier: the web console served by uvicorn on 127.0.0.1 (a free port) in a thread
of its own, over a migrated PostgreSQL alarm database, driven by Debian's chromium through
Playwright for Python (its own browser download is not used). Tests skip, saying why, only when
chromium (or Playwright, or axe-core for the accessibility checks) is missing.

- PLANTMESH_CHROMIUM: the browser (default /usr/bin/chromium);
- PLANTMESH_AXE_CORE: where `npm install axe-core` went (deploy/run-tests.sh sets it);
- PLANTMESH_ARTIFACTS: where screenshots go (default build/test-artifacts, git-ignored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.console_server import (
    ARTIFACTS,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    WAIT_MS,
    Console,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext


@pytest.fixture
def console(database_url: str) -> Iterator[Console]:
    made = Console(database_url)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"chromium missing at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("playwright missing: pip install playwright (the dev extra)")
    # Module-scoped: sync Playwright holds an event loop of its own in this thread while it
    # runs, so it must be gone before any asyncio test of another module starts.
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport=DESKTOP)
    made.set_default_timeout(WAIT_MS)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def axe_script() -> Path:
    script = AXE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        pytest.skip(f"axe-core missing at {script}: npm install --prefix {AXE} axe-core@4")
    return script


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
