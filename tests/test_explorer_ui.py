"""The served dashboard in a real browser: Playwright driving Debian's Chromium, headless.

Run alone with ``pytest -m ui``. Chromium comes from the system (``.ci/run`` installs the
Debian package); Playwright never downloads a browser.
"""

import shutil
import time

import pytest

from tests.test_explorer_app import free_port, serve, stop, wait_for_page

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
        stop(proc)
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
    """One browser tab on the lab, with the few moves the tests need. ``errors`` collects
    the page's console errors *and warnings* and uncaught exceptions; ``requests`` every
    URL the page asked for."""

    def __init__(self, browser, url, viewport=(1400, 1300)):
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.errors, self.requests = [], []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url, wait_until="networkidle", timeout=120_000)
        self.page.locator(".fpx-generated canvas").first.wait_for(timeout=60_000)
        self.page.wait_for_timeout(500)

    def _console(self, msg):
        if msg.type in ("error", "warning") and not any(s in msg.text
                                                        for s in IGNORED_CONSOLE):
            self.errors.append(f"{msg.type}: {msg.text}")

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


def test_a_20_mb_spec_upload_is_refused_in_the_page_which_stays_connected(lab, tmp_path):
    import json

    spec_box = lab.page.locator(".fpx-spec-load input[type=file]").first
    huge = tmp_path / "huge-spec.json"
    huge.write_text(json.dumps({"pad": "x" * (20 * 2**20)}))
    spec_box.set_input_files(str(huge))
    sync_api.expect(lab.page.locator(".fpx-spec-load").get_by_text(
        "File is too large", exact=True)).to_be_visible(timeout=20_000)
    before = lab.shot()
    lab.choose("Activation", "tanh")  # still connected: the server answers
    lab.wait_changed(before)
    # and the loader still takes a spec: an empty file is said, a good one applied
    (tmp_path / "empty.json").write_text("")
    lab.page.locator(".fpx-spec-load input[type=file]").first.set_input_files(
        str(tmp_path / "empty.json"))
    lab.wait_text(".fpx-message", "cannot load spec")
    from explorer.state import LabState
    good = tmp_path / "nearest.json"
    good.write_text(LabState(upsampling="nearest", blocks=1).spec_json())
    lab.page.locator(".fpx-spec-load input[type=file]").first.set_input_files(str(good))
    chosen = "e => e.options[e.selectedIndex].textContent"
    select = lab.page.get_by_label("Upsampling", exact=True)
    for _ in range(300):
        if select.evaluate(chosen) == "Nearest":
            break
        lab.page.wait_for_timeout(100)
    assert select.evaluate(chosen) == "Nearest"
    assert lab.errors == []


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
    # three (un)squeeze levels from 4x4: the lattice test finds the design's period 8
    lab.wait_text(".fpx-zoo-readout table", "8 (reference: none)")
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


# --- what a user sees: any screen, offline, no noise -------------------------------------

# Sizes of every Bokeh plot's frame, found through BokehJS's own views, keyed by the
# figure's css class (fpx-generated, fpx-real, ...); plots not shown measure 0.
FRAMES_JS = """() => {
  const out = {}, seen = new Set();
  function walk(v) {
    if (!v || seen.has(v)) return;
    seen.add(v);
    if (v.frame && v.model && v.model.css_classes.length)
      out[v.model.css_classes.join(' ')] = [v.frame.bbox.width, v.frame.bbox.height];
    for (const c of (v.child_views || [])) walk(c);
  }
  for (const k in Bokeh.index) walk(Bokeh.index[k]);
  return out;
}"""

# Everything that scrolls sideways: the page itself, or any element (shadow roots
# included) whose content is wider than its box and may scroll.
SIDEWAYS_JS = """() => {
  const bad = [];
  const d = document.documentElement;
  if (d.scrollWidth > d.clientWidth) bad.push(['page', d.scrollWidth, d.clientWidth]);
  function walk(root) {
    for (const el of root.querySelectorAll('*')) {
      const o = getComputedStyle(el).overflowX;
      if ((o === 'auto' || o === 'scroll') && el.scrollWidth > el.clientWidth + 1)
        bad.push([el.tagName + '.' + el.className, el.scrollWidth, el.clientWidth]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  }
  walk(document);
  return bad;
}"""

LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "http://localhost", "ws://localhost",
         "data:", "blob:")
SPECTRA = ("fpx-generated", "fpx-real", "fpx-difference", "fpx-profiles")
ZOO_SPECTRA = ("fpx-zoo-entry", "fpx-zoo-reference", "fpx-zoo-difference",
               "fpx-zoo-profiles")


def open_zoo(page) -> None:
    page.page.locator(".bk-tab", has_text="Zoo").first.click()
    page.page.locator(".fpx-zoo-entry canvas").first.wait_for(timeout=60_000)
    page.page.wait_for_timeout(1000)


@pytest.mark.parametrize("size", [(1024, 768), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_page_fits_the_screen_with_square_spectra(browser, app_url, size):
    page = Page(browser, app_url, viewport=size)
    try:
        for tab, spectra in (("lab", SPECTRA), ("zoo", ZOO_SPECTRA)):
            if tab == "zoo":
                open_zoo(page)
            assert page.page.evaluate(SIDEWAYS_JS) == [], tab
            frames = page.page.evaluate(FRAMES_JS)
            for key in spectra:
                w, h = frames[key]
                assert w == h and w >= 200, f"{tab}: {key} frame {w}x{h} is not square"
        assert page.errors == []
    finally:
        page.page.close()


def test_each_tab_shows_its_own_controls_only(lab):
    sidebar = lab.page.locator("#sidebar")
    sync_api.expect(sidebar.get_by_label("Upsampling", exact=True)).to_have_count(1)
    sync_api.expect(sidebar.get_by_label("Zoo entry", exact=True)).to_have_count(0)
    open_zoo(lab)
    sync_api.expect(sidebar.get_by_label("Zoo entry", exact=True)).to_have_count(1)
    sync_api.expect(sidebar.get_by_label("Upsampling", exact=True)).to_have_count(0)
    sync_api.expect(lab.page.get_by_label("Residual", exact=True)).to_have_count(1)


def test_refused_upload_does_not_say_complete(lab, tmp_path):
    lab.choose("Image source", "Uploaded image")
    bogus = tmp_path / "not-a-picture.png"
    bogus.write_text("this is text, not a picture")
    lab.page.locator("input[type=file]").first.set_input_files(str(bogus))
    lab.wait_text(".fpx-message", "upload refused")
    lab.page.wait_for_timeout(1500)  # the drop box would have finished its animation
    sync_api.expect(lab.page.get_by_text("Upload complete")).to_have_count(0)
    sync_api.expect(lab.page.locator(".filepond--item")).to_have_count(0)  # an empty box
    assert lab.errors == []


def test_uploaded_file_name_is_shown_whole(lab, tmp_path):
    from PIL import Image

    lab.choose("Image source", "Uploaded image")
    name = "a-rather-long-holiday-photo-name-from-the-beach-2024.png"
    Image.new("RGB", (300, 300), (120, 80, 40)).save(tmp_path / name)
    lab.page.locator("input[type=file]").first.set_input_files(str(tmp_path / name))
    shown = lab.page.locator(".fpx-upload-name")
    sync_api.expect(shown).to_contain_text(name, timeout=60_000)
    text = shown.get_by_text(name)
    assert text.evaluate("e => e.scrollWidth <= e.clientWidth + 1")


def _change_every_control(page) -> int:
    """Move every control of both tabs once, each after the server has answered the one
    before (the readout is rewritten with each computation); returns how many moved."""
    p, moved = page.page, 0
    readout = ".fpx-readout"

    def act(do, wait=True):
        nonlocal moved
        stamp = p.locator(f"{readout} small").first  # "... computed in N ms"
        before = stamp.inner_text()
        do()
        moved += 1
        if wait:  # a cached answer may repeat its stamp: then go on after a while
            try:
                sync_api.expect(stamp).not_to_have_text(before, timeout=60_000)
            except AssertionError:
                pass

    for label, option in [("Presets", "Checkerboard k3 s2"), ("Upsampling", "Pixel shuffle"),
                          ("Scale factor", "4"), ("Normalization", "instance"),
                          ("Activation", "tanh"), ("Order", "pre"), ("Residual", "blur"),
                          ("Window", "hann"), ("Crop size", "64")]:
        act(lambda label=label, option=option: page.choose(label, option))
    act(lambda: page.choose("Image source", "Folder on server"), wait=False)
    box = p.get_by_label("Folder path", exact=True)
    box.fill("/nowhere", timeout=90_000)  # shown once the server has taken the choice
    box.press("Enter")
    page.wait_text(".fpx-message", "/nowhere", timeout=90_000)
    act(lambda: page.choose("Image source", "Bundled photos"))
    act(lambda: page.choose("Upsampling", "Transposed conv"))
    for handle in range(p.locator(".noUi-handle").count()):  # kernel, up-blocks, seed
        def nudge(i=handle):
            p.locator(".noUi-handle").nth(i).focus()
            p.keyboard.press("ArrowLeft" if i == 1 else "ArrowRight")
        act(nudge)
    act(lambda: p.get_by_text("Show predicted peaks", exact=True).click(), wait=False)
    act(lambda: p.get_by_role("button", name="Pin current as A").click(), wait=False)
    page.wait_text(".fpx-compare-caption", "A:", timeout=90_000)
    act(lambda: page.choose("Activation", "relu"))
    act(lambda: p.get_by_role("button", name="Clear A").click(), wait=False)
    open_zoo(page)
    readout = ".fpx-zoo-readout"
    for label, option in [("Zoo entry", "flow_glow"), ("Compare with", "gan_tconv"),
                          ("Residual", "median")]:
        act(lambda label=label, option=option: page.choose(label, option))
    p.locator(".bk-tab", has_text="Spectrum Lab").first.click()
    p.locator(".fpx-generated canvas").first.wait_for(timeout=60_000)
    return moved


def test_a_session_over_every_control_stays_on_this_machine_and_quiet(browser, app_url):
    page = Page(browser, app_url, viewport=(1280, 900))
    try:
        assert _change_every_control(page) >= 18
        page.page.wait_for_timeout(2000)
        foreign = sorted({u for u in page.requests if not u.startswith(LOCAL)})
        assert foreign == [], f"requests that leave the machine: {foreign}"
        assert page.errors == []
    finally:
        page.page.close()


def test_readout_keeps_its_cell_borders_and_explains_unseen_predictions(lab):
    lab.choose("Upsampling", "Nearest")
    lab.wait_text(".fpx-readout", "nulled", timeout=90_000)
    cell = lab.page.locator(".fpx-readout td").first
    assert cell.evaluate("e => parseFloat(getComputedStyle(e).borderTopWidth)") >= 1
    lab.wait_text(".fpx-readout", "random weights")
    assert lab.errors == []
