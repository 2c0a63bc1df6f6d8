"""The served dashboard in a real browser: Playwright driving Debian's Chromium, headless.

Run alone with ``pytest -m ui``. Chromium comes from the system (``.ci/run`` installs the
Debian package); Playwright never downloads a browser.
"""

import shutil
import time

import pytest

from tests.test_explorer_app import free_port, serve, wait_for_page

pytestmark = pytest.mark.ui
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
# Chromium's own chatter about the software GL driver is not the page's.
IGNORED_CONSOLE = ("GL Driver Message", "WebGL")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "panel.log"
    proc = serve(port, log)
    try:
        wait_for_page(proc, port, log)
        yield f"http://127.0.0.1:{port}/app"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    errors = app_tracebacks(log.read_text())
    assert not errors, "\n\n".join(errors)


def app_tracebacks(log: str) -> list[str]:
    """Tracebacks in the server log, except tornado's about writing to a websocket that a
    closing browser tab had already shut (noise of closing pages, not the app's)."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [b for b in blocks if "WebSocketClosedError" not in b and "StreamClosedError" not in b]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Page:
    """One browser tab on the lab, with the few moves the tests need."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1300})
        self.errors = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="networkidle", timeout=120_000)
        self.page.locator(".fpx-generated canvas").first.wait_for(timeout=60_000)
        self.page.wait_for_timeout(500)

    def _console(self, msg):
        if msg.type == "error" and not any(s in msg.text for s in IGNORED_CONSOLE):
            self.errors.append(msg.text)

    def shot(self, css=".fpx-generated") -> bytes:
        return self.page.locator(css).first.screenshot()

    def choose(self, label: str, option: str) -> None:
        self.page.get_by_label(label, exact=True).select_option(label=option)

    def readout(self) -> str:
        return self.page.locator(".fpx-readout table").inner_text()

    def wait_changed(self, before: bytes, css=".fpx-generated", timeout=30.0) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.shot(css) != before:
                return time.perf_counter() - t0
            self.page.wait_for_timeout(100)
        raise AssertionError(f"{css} did not change within {timeout} s")

    def wait_text(self, css: str, text: str, timeout=30_000) -> None:
        sync_api.expect(self.page.locator(css).first).to_contain_text(text, timeout=timeout)


@pytest.fixture
def lab(browser, app_url):
    page = Page(browser, app_url)
    yield page
    page.page.close()


def test_page_loads_without_console_errors(lab):
    assert "Estimated upsampling factor" in lab.readout()
    assert lab.errors == []


def test_nearest_upsampling_changes_the_spectrum_image(lab):
    before = lab.shot()
    lab.choose("Upsampling", "Nearest")
    lab.wait_changed(before)
    assert lab.errors == []


def test_checkerboard_preset_shows_detected_factor_2(lab):
    lab.choose("Presets", "Checkerboard k3 s2")
    lab.wait_text(".fpx-readout table", "2 (design: 2)")
    row = lab.page.locator(".fpx-readout tr", has_text="Estimated upsampling factor")
    assert "2 (design: 2)" in row.inner_text()


def test_non_image_upload_shows_a_message_and_the_app_keeps_working(lab, tmp_path):
    lab.choose("Image source", "Uploaded image")
    bogus = tmp_path / "holiday.png"
    bogus.write_text("this is text, not a picture")
    lab.page.locator("input[type=file]").first.set_input_files(str(bogus))
    lab.wait_text(".fpx-message", "upload refused")
    before = lab.shot()
    lab.choose("Upsampling", "Pixel shuffle")
    lab.wait_changed(before)
    assert lab.errors == []


def test_huge_upload_is_stopped_in_the_page(lab, tmp_path):
    lab.choose("Image source", "Uploaded image")
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (26 * 2**20))
    lab.page.locator("input[type=file]").first.set_input_files(str(huge))
    message = lab.page.get_by_text("File is too large", exact=True)
    sync_api.expect(message).to_be_visible(timeout=20_000)
    before = lab.shot()
    lab.choose("Activation", "tanh")
    lab.wait_changed(before)


def test_missing_folder_gives_a_message(lab, tmp_path):
    lab.choose("Image source", "Folder on server")
    box = lab.page.get_by_label("Folder path", exact=True)
    box.fill(str(tmp_path / "nowhere"))
    box.press("Enter")
    lab.wait_text(".fpx-message", "no such folder")
    box.fill(str(tmp_path))
    box.press("Enter")
    lab.wait_text(".fpx-message", "holds no image files")


def test_pin_shows_a_and_b_side_by_side(lab):
    lab.page.get_by_role("button", name="Pin current as A").click()
    lab.choose("Upsampling", "Bilinear")
    lab.wait_text(".fpx-compare-caption", "B (current): 2x bilinear s2")
    lab.wait_text(".fpx-compare-caption", "A: 2x transposed k4 s2")


def test_zoo_tab_shows_an_entry_and_follows_the_choice(lab):
    lab.page.locator(".bk-tab", has_text="Zoo").first.click()
    lab.wait_text(".fpx-zoo-readout table", "gan_tconv")
    before = lab.shot(".fpx-zoo-entry")
    lab.choose("Zoo entry", "flow_glow")
    lab.wait_text(".fpx-zoo-readout table", "2 (reference: none)")  # the squeeze's grid
    lab.wait_changed(before, css=".fpx-zoo-entry")
    assert lab.errors == []


@pytest.mark.slow
def test_ten_sessions_at_once_all_update(browser, app_url):
    pages = [Page(browser, app_url) for _ in range(10)]
    try:
        befores = [p.shot() for p in pages]
        for p in pages:
            p.choose("Upsampling", "Zero insertion")
        for p, before in zip(pages, befores):
            p.wait_changed(before, timeout=60)
            assert p.errors == []
    finally:
        for p in pages:
            p.page.close()
