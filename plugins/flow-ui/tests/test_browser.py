"""What a person sees in a real (headless, offline) chromium: runs → run → task → artifact."""

from __future__ import annotations

import re

import pytest

from .conftest import held_run, wait_for


def _shot(page, tmp_path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_click_from_runs_to_an_artifact(ui, runs, browser_page, tmp_path):
    page = browser_page.page
    page.goto(ui.url + "/")
    assert page.locator("h1").inner_text() == "Runs"
    _shot(page, tmp_path, "runs")

    browser_page.requests.clear()
    page.click(f"text=ShapesFlow/{runs['shapes']}")
    page.wait_for_url(re.compile(rf"/flows/ShapesFlow/{runs['shapes']}$"))
    page.wait_for_load_state("load")
    # One request for the page whatever its number of tasks, besides its CSS and script.
    assert [u for u in browser_page.requests if "/static/" not in u] == [ui.url + f"/flows/ShapesFlow/{runs['shapes']}"]
    each = page.locator('svg.dag g.step[data-step="each"]')
    assert each.get_attribute("data-done") == "3" and "✓ 3" in each.text_content()
    assert page.locator("svg.timeline g.attempt").count() == 10
    _shot(page, tmp_path, "run")

    page.click('#step-end ul.tasks a')
    page.wait_for_url(re.compile(r"/end/\d+$"))
    assert page.locator(".log .line", has_text="the shapes are done").is_visible()
    assert page.locator('tr.artifact[data-name="picture"] img').is_visible()
    assert "'layers': [64, 32]" in page.locator('tr.artifact[data-name="config"] .preview').inner_text()
    # A DataFrame's head, as a table with its columns.
    frame = page.locator('tr.artifact[data-name="scores"] .preview table')
    assert frame.locator("th", has_text="model").is_visible() and frame.locator("th", has_text="accuracy").is_visible()
    assert frame.locator("td", has_text="forest").is_visible()
    # The step's @card, in its sandboxed frame, as the browser draws it.
    assert page.frame_locator("iframe.card-frame").get_by_role("heading", name="The shapes are done").is_visible()
    _shot(page, tmp_path, "task")

    page.fill(".log-search", "nothing like this")
    assert not page.locator(".log .line", has_text="the shapes are done").is_visible()
    page.fill(".log-search", "shapes")
    assert page.locator(".log .line mark", has_text="shapes").first.is_visible()

    page.click('tr.artifact[data-name="matrix"] a')
    page.wait_for_url(re.compile(r"/matrix$"))
    assert "shape (3, 4), dtype float32" in page.locator("div.preview").inner_text()
    _shot(page, tmp_path, "artifact")
    assert browser_page.blocked == []


def test_the_failed_step_is_drawn_in_the_failed_colour(ui, runs, browser_page, tmp_path):
    page = browser_page.page
    page.goto(ui.url + f"/flows/BrokenFlow/{runs['broken']}")
    failed = page.locator('svg.dag g.step[data-step="explode"] rect')
    done = page.locator('svg.dag g.step[data-step="start"] rect')
    assert failed.evaluate("r => getComputedStyle(r).stroke") == "rgb(198, 40, 40)"
    assert done.evaluate("r => getComputedStyle(r).stroke") == "rgb(46, 125, 50)"
    _shot(page, tmp_path, "failed-run")

    page.click('#step-explode ul.tasks li.failed a')
    assert "ValueError" in page.locator("section.exception").inner_text()
    assert page.locator("table.attempts tr.attempt").count() == 2
    # The first attempt, from the attempts table: its own logs and exception.
    page.click('table.attempts tr[data-attempt="0"] a')
    page.wait_for_url(re.compile(r"\?attempt=0$"))
    assert page.locator("h1 .attempt-shown").inner_text() == "attempt 0"
    assert page.locator('table.attempts tr.shown').get_attribute("data-attempt") == "0"
    assert page.locator(".log .line", has_text="about to fail").is_visible()
    assert "the answer is not 41" in page.locator("section.exception").inner_text()
    # ...and the second, from its bar on the run's timeline.
    page.goto(ui.url + f"/flows/BrokenFlow/{runs['broken']}")
    page.locator('svg.timeline a[href$="?attempt=1"] g[data-step="explode"] rect').click()
    page.wait_for_url(re.compile(r"/explode/\d+\?attempt=1$"))
    assert page.locator("h1 .attempt-shown").inner_text() == "attempt 1"
    assert browser_page.blocked == []


def test_offline_page_blocks_and_records_outside_requests(browser_page):
    """(The UI's own pages could not even try: their Content-Security-Policy allows only 'self'.)"""
    from playwright.sync_api import Error

    with pytest.raises(Error):
        browser_page.page.goto("http://example.invalid/x")
    assert browser_page.blocked == ["http://example.invalid/x"]


def test_a_running_run_updates_in_place(ui_env, ui, browser_page, tmp_path):
    release = tmp_path / "release"
    with held_run(ui_env, ui, release) as held:
        wait_for(lambda: any(s["name"] == "hold" and s["counts"]["running"]
                             for s in ui.json(f"/api/flows/{held['pathspec']}")["steps"]), what="the hold step")
        page = browser_page.page
        page.goto(ui.url + f"/flows/{held['pathspec']}")
        page.evaluate("window.notReloaded = true")
        assert page.locator("table.facts .status").inner_text() == "running"
        assert page.locator('svg.dag g.step[data-step="hold"]').get_attribute("class") == "step running"
        # The run recorded its graph: the step no task reached yet is drawn, waiting.
        assert page.locator('svg.dag g.step[data-step="end"]').get_attribute("class") == "step waiting"
        _shot(page, tmp_path, "running")
        release.write_text("go")
        page.locator("table.facts .status", has_text="succeeded").wait_for(timeout=60_000)
        assert page.evaluate("window.notReloaded") is True  # swapped in place, not reloaded
        assert page.locator('svg.dag g.step[data-step="end"]').get_attribute("class") == "step done"
        assert browser_page.blocked == []


def test_a_running_tasks_output_appears_without_a_reload(ui_env, ui, browser_page, tmp_path):
    release = tmp_path / "release"
    with held_run(ui_env, ui, release) as held:
        hold = wait_for(lambda: next((t["pathspec"] for t in ui.json(f"/api/flows/{held['pathspec']}")["tasks"]
                                      if t["step"] == "hold" and t["state"] == "running"), None), what="the hold task")
        page = browser_page.page
        page.goto(ui.url + f"/flows/{hold}")
        page.evaluate("window.notReloaded = true")
        page.locator(".log .line", has_text="holding until released").wait_for(timeout=60_000)
        assert page.locator(".log .line", has_text="heard the signal").count() == 0
        page.fill(".log-search", "signal")
        (tmp_path / "release.speak").write_text("speak")
        # The task prints, saves its output, and the page swaps it in: the search still applies.
        page.locator(".log .line mark", has_text="signal").wait_for(timeout=60_000)
        assert not page.locator(".log .line", has_text="holding until released").is_visible()
        assert page.evaluate("window.notReloaded") is True
        _shot(page, tmp_path, "live-log")
        release.write_text("go")
        page.locator("h1 .status", has_text="succeeded").wait_for(timeout=60_000)
        assert browser_page.blocked == []
