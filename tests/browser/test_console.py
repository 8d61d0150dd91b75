"""The web console in a real browser (chromium) against a real server and PostgreSQL: logging
in, a new alert arriving on the board without a reload, acknowledging and seeing the timeline
grow, a refused step's reason, plant scope (a plant-a operator never sees plant-b and is refused
its alert page), a network incident with its members, and an accessibility check (axe-core) of
every page, and the scorecards telling three plants' habits apart. Screenshots of the alert,
incident and scorecard pages go to the artifacts folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from alerting.api.roles import Role
from tests.browser.console_server import PHONE, Console
from tests.browser.scenes import alert, network_incident, three_habits
from tests.support.alarms import alert_event

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


PERIOD = "since=2026-12-04T07:59:00Z&until=2026-12-04T09:00:00Z"
"""Around the test clock's start (tests.support.alarms.T0)."""


def _expect(target: Any) -> Any:
    from playwright.sync_api import expect

    return expect(target)


def login(context: BrowserContext, console: Console, token: str) -> Page:
    page = context.new_page()
    page.goto(f"{console.base}/console/alerts")
    _expect(page).to_have_url(f"{console.base}/console/login?next=/console/alerts")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    _expect(page).to_have_url(f"{console.base}/console/alerts")
    return page


def row(page: Page, alarm_id: str) -> Any:
    return page.locator(f'tr[data-alarm-id="{alarm_id}"]')


def test_a_new_alert_arrives_and_a_cleared_one_changes_without_a_reload(
    context: BrowserContext, console: Console
) -> None:
    console.call(console.store.record(alert("a1")))
    page = login(context, console, console.token("hq", Role.HQ, "*"))
    _expect(page.get_by_role("heading", level=1)).to_have_text("Active alerts")
    _expect(row(page, "a1")).to_be_visible()
    _expect(page.locator("#live-status")).to_contain_text("Live")
    page.evaluate("window.notReloaded = true")

    console.call(console.store.record(alert("b7", plant="plant-b", machine="press-02")))
    _expect(row(page, "b7")).to_be_visible()
    _expect(page.locator('section[data-plant="plant-b"] h2')).to_contain_text("1 alert")
    console.call(console.store.record(alert_event("a1", "cleared", at=30)))
    _expect(row(page, "a1")).to_have_attribute("data-state", "returned_unacknowledged")
    _expect(page.locator("#total")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True


def test_acknowledging_shows_in_the_timeline_and_a_refused_step_says_why(
    context: BrowserContext, console: Console, artifacts: Path
) -> None:
    console.call(console.store.record(alert("a1")))
    page = login(context, console, console.token("ops-a", Role.OPERATOR, "plant-a"))
    row(page, "a1").get_by_role("link").click()
    _expect(page).to_have_url(f"{console.base}/console/alerts/a1")
    _expect(page.locator("svg.chart polyline.series")).to_have_count(1)
    _expect(page.locator("svg.chart line.guide.limit")).to_have_count(1)
    _expect(page.get_by_role("button", name="Resolve")).to_have_count(0)  # not an operator's
    other = context.new_page()  # the same alert open in a second tab
    other.goto(f"{console.base}/console/alerts/a1")

    page.get_by_label("Comment (optional)").fill("on my way")
    page.get_by_role("button", name="Acknowledge").click()
    last = page.locator("table.timeline tbody tr").last
    _expect(last).to_have_attribute("data-action", "acknowledge")
    _expect(last).to_contain_text("user:ops-a")
    _expect(last).to_contain_text("on my way")
    _expect(page.locator("#alert-state")).to_have_text("active acknowledged")
    _expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    other.get_by_role("button", name="Acknowledge").click()
    _expect(other.get_by_role("alert")).to_have_text("Not done: already acknowledged")

    page.get_by_label("Reason for shelving").fill("sensor being replaced")
    page.get_by_label("For how long").select_option("30")
    page.get_by_role("button", name="Shelve").click()
    _expect(page.locator("table.timeline tbody tr").last).to_have_attribute("data-action", "shelve")
    _expect(page.get_by_role("button", name="Unshelve")).to_be_visible()
    page.screenshot(path=str(artifacts / "console-alert-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts / "console-alert-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the alert page scrolls sideways on a phone ({width} px)"


def test_an_operator_of_plant_a_never_sees_plant_b(
    context: BrowserContext, console: Console
) -> None:
    console.call(console.store.record(alert("a1")))
    console.call(console.store.record(alert("b1", plant="plant-b")))
    page = login(context, console, console.token("ops-a", Role.OPERATOR, "plant-a"))
    _expect(row(page, "a1")).to_be_visible()
    _expect(page.locator('section[data-plant="plant-b"]')).to_have_count(0)
    console.call(console.store.record(alert("b2", plant="plant-b", machine="mill-09")))
    console.call(console.store.record(alert("a2", machine="mill-02")))
    _expect(row(page, "a2")).to_be_visible()  # the stream has sent both changes by now
    _expect(row(page, "b2")).to_have_count(0)
    _expect(row(page, "b1")).to_have_count(0)

    answer = page.goto(f"{console.base}/console/alerts/b1")
    assert answer is not None
    assert answer.status == 403
    _expect(page.get_by_role("alert")).to_contain_text("plant-b is outside this token's plants")


def test_an_incident_shows_its_members_across_plants(
    browser: Browser, context: BrowserContext, console: Console, artifacts: Path
) -> None:
    incident = console.call(network_incident(console.store))
    page = login(context, console, console.token("hq", Role.HQ, "*"))
    page.get_by_role("link", name="Incidents").click()
    _expect(page.get_by_role("heading", level=1)).to_have_text("Network incidents")
    page.locator(f'tr[data-incident-id="{incident}"]').get_by_role("link").click()
    members = page.locator("table.members tbody tr")
    _expect(members).to_have_count(2)
    _expect(page.locator('tr[data-member-plant="plant-a"] a')).to_have_attribute(
        "href", "/console/alerts/na1"
    )
    _expect(page.locator('tr[data-member-plant="plant-b"] a')).to_have_count(1)
    _expect(page.locator(".explanation")).to_contain_text("2 of")
    page.screenshot(path=str(artifacts / "console-incident-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts / "console-incident-phone.png"), full_page=True)
    page.locator('tr[data-member-plant="plant-b"] a').click()
    _expect(page).to_have_url(f"{console.base}/console/alerts/nb1")

    operator = login(
        browser.new_context(), console, console.token("ops-a", Role.OPERATOR, "plant-a")
    )
    try:
        operator.goto(f"{console.base}/console/incidents/{incident}")
        _expect(operator.locator("table.members tbody tr")).to_have_count(2)
        _expect(operator.locator('tr[data-member-plant="plant-a"] a')).to_have_count(1)
        _expect(operator.locator('tr[data-member-plant="plant-b"] a')).to_have_count(0)
    finally:
        operator.context.close()


SERIOUS = ("serious", "critical")


def _axe(page: Page, script: Path) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(script))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    return [v for v in result["violations"] if v["impact"] in SERIOUS]


def test_every_page_passes_an_accessibility_check(
    browser: Browser, console: Console, axe_script: Path
) -> None:
    console.call(console.store.record(alert("a1")))
    incident = console.call(network_incident(console.store))
    context = browser.new_context(bypass_csp=True)  # axe is injected as a script of its own
    try:
        page = context.new_page()
        page.goto(f"{console.base}/console/login")
        found = {"login": _axe(page, axe_script)}
        page.get_by_label("API token").fill(console.token("lead", Role.PLANT_MANAGER, "*"))
        page.get_by_role("button", name="Log in").click()
        _expect(row(page, "a1")).to_be_visible()
        pages = {
            "alerts": "/console/alerts",
            "alert": "/console/alerts/a1",
            "incidents": "/console/incidents",
            "incident": f"/console/incidents/{incident}",
            "machine": "/console/machines/plant-a/mill-01",
            "refused": "/console/alerts/nope",
            "scorecards": f"/console/scorecards?{PERIOD}",
            "backtest": "/console/backtest",
        }
        for name, path in pages.items():
            page.goto(f"{console.base}{path}")
            _expect(page.get_by_role("heading", level=1)).to_be_visible()
            found[name] = _axe(page, axe_script)
        page.set_viewport_size(PHONE)
        page.goto(f"{console.base}/console/alerts/a1")
        found["alert (phone)"] = _axe(page, axe_script)
    finally:
        context.close()
    said = {
        name: [(v["id"], v["impact"], len(v["nodes"])) for v in violations]
        for name, violations in found.items()
        if violations
    }
    assert not said, f"serious or critical accessibility violations: {said}"
    assert len(found) == 10  # every page was checked


def test_a_scorecard_tells_the_plants_habits_apart(
    browser: Browser, context: BrowserContext, console: Console, artifacts: Path
) -> None:
    console.call(three_habits(console.store))
    page = login(context, console, console.token("hq", Role.HQ, "*"))
    page.get_by_role("link", name="Scorecards").click()
    _expect(page.get_by_role("heading", level=1)).to_have_text("Scorecards")
    page.goto(f"{console.base}/console/scorecards?{PERIOD}")
    headers = page.locator("table.scorecard thead th")
    _expect(headers).to_have_text(["Figure", "plant-a", "plant-b", "plant-c"])
    tta = page.locator('tr[data-figure="tta_p50"] td')
    _expect(tta).to_have_text(["27 s worst", "3 s", "-"])
    _expect(page.locator('tr[data-figure="shelvings"] td.worst')).to_have_text("1 worst")
    _expect(page.locator('tr[data-figure="escalated"] td').first).to_have_text("100% worst")
    _expect(page.locator("section.card table.trend")).to_have_count(3)
    page.screenshot(path=str(artifacts / "console-scorecard-desktop.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    assert download.value.suggested_filename.startswith("scorecards-")

    operator = login(
        browser.new_context(), console, console.token("ops-a", Role.OPERATOR, "plant-a")
    )
    try:
        operator.goto(f"{console.base}/console/scorecards?{PERIOD}")
        _expect(operator.locator("table.scorecard thead th")).to_have_text(["Figure", "plant-a"])
    finally:
        operator.context.close()
