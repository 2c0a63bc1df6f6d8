"""The Train tab in a real browser: start a very short generator run from the page, watch
it, cancel and resume it, find it again after a reload. Playwright with Debian's
Chromium, headless; the served app writes into a temporary runs directory (FPX_RUNS)."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.test_explorer_app import free_port, serve, stop, wait_for_page
from tests.test_explorer_ui import CHROMIUM, IGNORED_CONSOLE, app_tracebacks

pytestmark = [pytest.mark.ui, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")
STATUS = re.compile(r"(starting|running|finished|interrupted|failed): step (\d+) / (\d+)")


@pytest.fixture(scope="module")
def train_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_ui")
    old = os.environ.get("FPX_RUNS")
    os.environ["FPX_RUNS"] = str(root / "runs")
    port, log = free_port(), root / "panel.log"
    proc = serve(port, log)
    try:
        wait_for_page(proc, port, log)
        yield f"http://127.0.0.1:{port}/app", root / "runs"
    finally:
        stop(proc)
        if old is None:
            os.environ.pop("FPX_RUNS", None)
        else:
            os.environ["FPX_RUNS"] = old
    errors = app_tracebacks(log.read_text())
    assert not errors, "\n\n".join(errors)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield b
        b.close()


def open_train_tab(page, url: str | None, errors: list[str]) -> None:
    """Open the page at ``url`` (``None``: the page as it is) on its Train tab."""
    if url is not None:
        page.goto(url, wait_until="networkidle", timeout=120_000)
    page.get_by_text("Train", exact=True).first.click()
    page.locator(".fpx-train-start").first.wait_for(timeout=60_000)
    page.wait_for_timeout(500)


def text(page, css: str) -> str:
    """What a Panel pane shows (its text lives in the element's shadow root)."""
    return page.locator(css).first.evaluate(
        "e => (e.shadowRoot ? e.shadowRoot.textContent : '') + e.textContent")


def status(page) -> tuple[str, int, int] | None:
    text_ = text(page, ".fpx-train-status")
    m = STATUS.search(text_)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def wait_until(page, check, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        page.wait_for_timeout(300)
    raise AssertionError(f"no {what} within {timeout} s; status: "
                         f"{text(page, '.fpx-train-status')}")


def checkpoints_shown(page) -> int:
    m = re.search(r"checkpoint \d+ of (\d+)",
                  text(page, ".fpx-train-checkpoint"))
    return int(m.group(1)) if m else 0


def watched_page(browser):
    """A new page and the list its console errors and warnings (and page errors) land in."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    errors = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") and not any(s in m.text
                                                          for s in IGNORED_CONSOLE) else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def test_start_watch_cancel_resume_reload(browser, train_url):
    url, runs = train_url
    page, errors = watched_page(browser)
    open_train_tab(page, url, errors)
    # bad input first: a message in the page, no run
    page.get_by_label("Steps", exact=True).fill("many")
    page.get_by_label("Steps", exact=True).press("Enter")
    page.locator(".fpx-train-start button").click()
    page.locator(".fpx-train-message").get_by_text("whole number").wait_for(timeout=30_000)
    assert "No run yet" in text(page, ".fpx-train-status")
    assert not list(runs.glob("*/run.json"))  # (other tabs keep caches under FPX_RUNS)
    # a short generator run: 400 steps of 4 images, a checkpoint every 4 steps (cancelled)
    for label, value in (("Steps", "400"), ("Batch size", "4"), ("Checkpoints", "100")):
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_label(label, exact=True).press("Enter")
    page.wait_for_timeout(500)
    page.locator(".fpx-train-start button").click()
    wait_until(page, lambda: (st := status(page)) and st[0] == "running" and st[1] > 0,
               "progress")
    first = status(page)[1]
    wait_until(page, lambda: status(page)[1] > first, "progress advancing")
    wait_until(page, lambda: checkpoints_shown(page) >= 2, "two checkpoints in the slider")
    assert page.locator(".fpx-train-slider").first.is_visible()
    page.locator(".fpx-train-cancel button").click()
    wait_until(page, lambda: status(page)[0] == "interrupted", "an interrupted run")
    stopped = status(page)[1]
    assert stopped < 400
    page.locator(".fpx-train-resume button").click()
    wait_until(page, lambda: (st := status(page))[0] == "running" and st[1] > stopped,
               "the resumed run advancing")
    (name,) = [p.parent.name for p in runs.glob("*/run.json")]
    # a reload finds the run (read back from the runs directory)
    page.reload(wait_until="networkidle", timeout=120_000)
    page.get_by_text("Train", exact=True).first.click()
    page.locator(".fpx-train-status").first.wait_for(timeout=60_000)
    wait_until(page, lambda: status(page) is not None and status(page)[1] >= stopped,
               "the run after a reload")
    assert name in page.locator(".fpx-train-runs select").first.inner_text()
    page.locator(".fpx-train-cancel button").click()
    wait_until(page, lambda: status(page)[0] in ("interrupted", "finished"), "the end")
    page.close()
    assert not errors, errors


def select(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).select_option(label=option)
    page.wait_for_timeout(300)


def test_live_lab_design_and_a_used_run_in_the_zoo_tab(browser, train_url):
    url, runs = train_url
    page, errors = watched_page(browser)
    page.goto(url, wait_until="networkidle", timeout=120_000)
    # the design set now in this session's Spectrum Lab is what "Lab design" trains
    page.get_by_label("Upsampling", exact=True).first.wait_for(timeout=60_000)
    select(page, "Upsampling", "Nearest")
    open_train_tab(page, url=None, errors=errors)
    select(page, "What to train", "Spectrum Lab design")
    chosen = "e => e.options[e.selectedIndex].textContent"
    assert page.get_by_label("Lab design", exact=True).evaluate(chosen) == \
        "This session's Spectrum Lab"
    wait_until(page, lambda: "lab_gan_nearest_batch_relu" in
               page.locator(".fpx-train-command textarea").input_value(), "the live design")
    # a short zoo run to its end, then "Use this run": it joins the Zoo tab's entries
    select(page, "What to train", "Zoo entry")
    for label, value in (("Steps", "4"), ("Batch size", "4"), ("Checkpoints", "2")):
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_label(label, exact=True).press("Enter")
    page.wait_for_timeout(500)
    page.locator(".fpx-train-start button").click()
    wait_until(page, lambda: (st := status(page)) and st[0] == "finished", "a finished run",
               timeout=300)
    page.locator(".fpx-train-use button").click()
    wait_until(page, lambda: "· used" in text(page, ".fpx-train-status"),
               "the run's Zoo entry", timeout=300)
    name = page.locator(".fpx-train-runs select").first.input_value()
    page.locator(".bk-tab", has_text="Zoo").first.click()
    page.locator(".fpx-zoo-entry canvas").first.wait_for(timeout=60_000)
    label = f"your run: {name}"
    entry = page.locator("#sidebar").get_by_label("Zoo entry", exact=True)
    wait_until(page, lambda: label in entry.inner_text(), "the run in the Zoo tab", 30)
    entry.select_option(label=label)
    wait_until(page, lambda: label in text(page, ".fpx-zoo-readout"), "its readout", 60)
    page.close()
    assert not errors, errors
