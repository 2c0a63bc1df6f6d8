"""The Embeddings, Attribute and Manifold tabs in a real browser (Playwright driving
Debian's Chromium, headless; ``pytest -m ui``).

The server runs with its own runs folder. The zoo's embeddings are made once, in this
process, before the server starts (the same cache the tabs read), so the browser tests
measure the pages, not a cold embedding.
"""

from __future__ import annotations

import os

import pytest

from tests.test_explorer_app import free_port, serve, wait_for_page
from tests.test_explorer_ui import CHROMIUM, Page, app_tracebacks, browser, sync_api  # noqa: F401

# The first test may embed the zoo (3400 images: about 40 s on 2 free cores, minutes on a
# loaded machine) before the server starts.
pytestmark = [pytest.mark.ui, pytest.mark.timeout(900)]

# Where the map's first point of a given model sits on the screen, through BokehJS's
# own views and scales (the figure is found by its css class).
POINT_JS = """(model) => {
  const seen = new Set();
  let found = null;
  function walk(v) {
    if (!v || seen.has(v) || found) return;
    seen.add(v);
    if (v.model && v.model.css_classes && v.model.css_classes.includes('fpx-emb-map')
        && v.frame) found = v;
    for (const c of (v.child_views || [])) walk(c);
  }
  for (const k in Bokeh.index) walk(Bokeh.index[k]);
  if (!found) return null;
  const r = found.model.renderers.find(r => r.data_source && r.data_source.data.model);
  const d = r.data_source.data;
  const i = d.model.findIndex(m => m === model);
  if (i < 0) return null;
  const sx = found.frame.x_scale.compute(d.x[i]), sy = found.frame.y_scale.compute(d.y[i]);
  const box = found.el.getBoundingClientRect();
  return [box.left + sx, box.top + sy, d.x.length];
}"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tests.test_explorer_embeddings import shared_runs

    return shared_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def zoo_ready(runs, tmp_path_factory):
    """The zoo and real photos embedded into ``runs`` (or why they cannot be)."""
    from explorer.image_sets import SHIPPED, cached_embeddings, extractor_choices, real_set, zoo_set
    from tests.test_explorer_embeddings import zoo_embeddable

    why = zoo_embeddable(tmp_path_factory.mktemp("probe"))
    if why is None:
        folder = extractor_choices()[SHIPPED]
        cached_embeddings(zoo_set(), folder, runs)
        cached_embeddings(real_set(), folder, runs)
    return why


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, runs, zoo_ready):
    port = free_port()
    log = tmp_path_factory.mktemp("ui-tabs") / "panel.log"
    saved = {k: os.environ.get(k) for k in ("FPX_RUNS", "FPX_DATA_ROOTS")}
    os.environ["FPX_RUNS"] = str(runs)
    os.environ["FPX_DATA_ROOTS"] = str(runs.parent)
    try:
        proc = serve(port, log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        wait_for_page(proc, port, log)
        yield f"http://127.0.0.1:{port}/app"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    errors = app_tracebacks(log.read_text())
    assert not errors, "\n\n".join(errors)


@pytest.fixture
def page(browser, app_url):  # noqa: F811
    p = Page(browser, app_url)
    yield p
    p.page.close()


def open_tab(page: Page, title: str) -> None:
    page.page.locator(".bk-tab", has_text=title).first.click()


def wait_map(page: Page, timeout: float = 180_000) -> None:
    page.wait_text(".fpx-emb-summary", "images of", timeout=timeout)


SELECT_JS = """(model) => {
  for (const k in Bokeh.index) {
    for (const m of Bokeh.index[k].model.document.all_models) {
      if (m.css_classes && m.css_classes.includes('fpx-emb-map')) {
        const r = m.renderers.find(r => r.data_source && r.data_source.data.model);
        const i = r.data_source.data.model.findIndex(v => v === model);
        r.data_source.selected.indices = [i];
        return i;
      }
    }
  }
  return -1;
}"""


def test_embeddings_map_colours_by_upsampling_and_a_click_shows_the_image(page, zoo_ready):
    if zoo_ready:
        pytest.skip(zoo_ready)
    open_tab(page, "Embeddings")
    wait_map(page)
    page.choose("Colour by", "upsampling")
    sync_api.expect(page.page.locator(".fpx-emb-map")).to_be_visible()
    page.page.wait_for_timeout(3000)  # the legend redrawn: the frame no longer moves
    where = page.page.evaluate(POINT_JS, "gan_nearest")
    assert where is not None and where[2] == 3400  # 12 entries x 200 + 1000 real crops
    page.page.mouse.click(where[0], where[1])
    # The pane's text sits in a shadow root: read through expect, which pierces it.
    try:
        page.wait_text(".fpx-emb-nearest", "nearest model", timeout=30_000)
    except AssertionError:  # the click missed the point: select it as a tap would
        assert page.page.evaluate(SELECT_JS, "gan_nearest") >= 0
        page.wait_text(".fpx-emb-nearest", "nearest model", timeout=60_000)
    page.wait_text(".fpx-emb-nearest", "lattice of its images")
    assert page.errors == []


def test_embeddings_features_switch_to_the_hybrid_fingerprint(page, zoo_ready, shipped_dim):
    """Features = hybrid redraws every view on the hybrid features (the summary says so)
    without embedding again, and back."""
    if zoo_ready:
        pytest.skip(zoo_ready)
    open_tab(page, "Embeddings")
    wait_map(page)
    page.wait_text(".fpx-emb-summary", f"{shipped_dim}-d embeddings")
    page.choose("Features", "hybrid")
    page.wait_text(".fpx-emb-summary", "100-d hybrid features", timeout=180_000)
    page.wait_text(".fpx-emb-summary", "3400 images of 13 models")
    page.choose("Features", "embedding")
    page.wait_text(".fpx-emb-summary", f"{shipped_dim}-d embeddings", timeout=60_000)
    assert page.errors == []


def test_attribute_reads_a_verdict_for_a_server_folder(page, zoo_ready, runs):
    if zoo_ready:
        pytest.skip(zoo_ready)
    from core.zoo.shipped import SHIPPED_ZOO

    open_tab(page, "Attribute")
    folder = runs.parent / "mystery"
    folder.mkdir(exist_ok=True)
    (folder / "mystery.png").write_bytes(
        (SHIPPED_ZOO / "samples" / "flow_glow" / "00150.png").read_bytes())
    box = page.page.get_by_label("Server folder", exact=True)
    box.fill(str(folder), timeout=90_000)
    box.press("Enter")
    page.wait_text(".fpx-att-verdict", "Verdict:", timeout=180_000)
    page.wait_text(".fpx-att-verdict", "mystery.png")
    page.wait_text(".fpx-att-verdict", "are accepted at")  # the measured false-accept rate
    assert page.errors == []


def expected_answers(runs, files) -> dict[str, str]:
    """What the Attribute state answers for each of ``files`` (path -> answer), computed
    here with the server's runs folder (the same cached gallery and threshold)."""
    from explorer.attribute import AttributeState

    s = AttributeState(runs=runs)
    s.uploads = [(f.name, f.read_bytes()) for f in files]
    return {v.name.split("_", 1)[1]: v.answer for v in s.attribute().verdicts}


def test_attribute_reads_a_verdict_for_dropped_images(page, zoo_ready, runs, tmp_path):
    """Two PNGs dropped on the upload area as a user's drop gives them (FilePond's file
    input): a held-back zoo sample is attributed to its entry, a real photo is unknown."""
    if zoo_ready:
        pytest.skip(zoo_ready)
    from core.zoo.shipped import SHIPPED_ZOO

    files = []
    for src, name in ((SHIPPED_ZOO / "samples" / "flow_glow" / "00150.png", "glow-150.png"),
                      (SHIPPED_ZOO / "real" / "00010.png", "photo-10.png")):
        files.append(tmp_path / name)
        files[-1].write_bytes(src.read_bytes())
    expected = expected_answers(runs, files)
    assert expected == {"glow-150.png": "flow_glow", "photo-10.png": "unknown"}
    open_tab(page, "Attribute")
    page.page.locator(".fpx-att-upload input[type=file]").first.set_input_files(
        [str(f) for f in files], timeout=90_000)
    # one answer per finished upload: wait for the one that holds both images
    for name, answer in expected.items():
        row = page.page.locator(".fpx-att-verdict tr", has_text=name)
        sync_api.expect(row).to_contain_text(answer, timeout=180_000)
    page.wait_text(".fpx-att-verdict", "Verdict: flow_glow (1 of 2 images)")
    page.wait_text(".fpx-att-verdict", "are accepted at")
    page.page.locator(".fpx-att-images canvas").first.wait_for(timeout=30_000)
    sync_api.expect(page.page.locator(".fpx-att-upload .filepond--item")).to_have_count(2)
    if os.environ.get("FPX_UI_SHOTS"):  # a look at the page: FPX_UI_SHOTS=folder
        page.page.wait_for_timeout(1500)
        page.page.screenshot(path=os.path.join(os.environ["FPX_UI_SHOTS"],
                                               "attribute-drop.png"), full_page=True)
    # the photo taken out of the drop area: the answer is the zoo sample's alone
    page.page.locator(".fpx-att-upload .filepond--item", has_text="photo-10.png").locator(
        ".filepond--action-revert-item-processing").click()
    page.wait_text(".fpx-att-verdict", "Verdict: flow_glow (1 of 1 image)", timeout=120_000)
    assert page.errors == []


def test_attribute_says_when_a_dropped_file_is_not_an_image(page, tmp_path):
    open_tab(page, "Attribute")
    bogus = tmp_path / "holiday.png"
    bogus.write_text("this is text, not a picture")
    page.page.locator(".fpx-att-upload input[type=file]").first.set_input_files(
        str(bogus), timeout=90_000)
    page.wait_text(".fpx-att-message", "holiday.png: not a usable image", timeout=120_000)
    # a file that does not even claim to be an image stops in the drop area itself
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    page.page.locator(".fpx-att-upload input[type=file]").first.set_input_files(str(notes))
    sync_api.expect(page.page.locator(".fpx-att-upload .filepond--file-status-main",
                                      has_text="File is of invalid type")).to_be_visible(
        timeout=20_000)
    assert page.errors == []


def test_attribute_says_when_a_folder_holds_no_usable_image(page, runs):
    open_tab(page, "Attribute")
    folder = runs.parent / "bogus"
    folder.mkdir(exist_ok=True)
    (folder / "notes.png").write_text("not pixels")
    box = page.page.get_by_label("Server folder", exact=True)
    box.fill(str(folder), timeout=90_000)
    box.press("Enter")
    page.wait_text(".fpx-att-message", "no usable image", timeout=120_000)
    assert page.errors == []


def test_manifold_opens_an_artifact(page):
    open_tab(page, "Manifold")
    page.wait_text(".fpx-man-caption", "distance to its nearest real image", timeout=180_000)
    page.page.locator(".fpx-man-artifact canvas").first.wait_for(timeout=30_000)
    # the model list arrives from the worker thread; another model shows its artifact
    select = page.page.get_by_label("Model", exact=True)
    sync_api.expect(select.locator("option")).not_to_have_count(0, timeout=30_000)
    names = select.locator("option").all_inner_texts()
    other = next(n for n in names if n not in (select.input_value(), "real"))
    select.select_option(label=other)
    page.wait_text(".fpx-man-caption", other, timeout=60_000)
    assert page.errors == []


def test_five_sessions_on_embeddings_all_update(browser, app_url, zoo_ready):  # noqa: F811
    if zoo_ready:
        pytest.skip(zoo_ready)
    pages = [Page(browser, app_url) for _ in range(5)]
    try:
        for p in pages:
            open_tab(p, "Embeddings")
        for p in pages:  # five sessions share two loaded cores: each draws 3400 points
            wait_map(p, timeout=480_000)
        befores = [p.shot(".fpx-emb-map") for p in pages]
        for p in pages:
            p.choose("Colour by", "family")
        for p, before in zip(pages, befores):
            p.wait_changed(before, css=".fpx-emb-map", timeout=60)
            assert p.errors == []
    finally:
        for p in pages:
            p.page.close()
