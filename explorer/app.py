"""The fpx dashboard: ``panel serve explorer/app.py``.

Template only; each tab is a Viewer in ``explorer.views`` over a state object in
``explorer`` and declares itself there (``TAB``, found by ``explorer.views.tabs``).
Nothing is computed at import: each browser session builds its own state when it opens.
"""

import holoviews as hv
import panel as pn
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE

from explorer.views import tabs as find_tabs

pn.extension("filedropper")
hv.extension("bokeh")
# HoloViews sizes plots by frame_width/frame_height, which Bokeh's validator does not see.
silence(FIXED_SIZING_MODE, True)

ABOUT = """
Generators leave fingerprints in the spectra of their images: upsampling by *s* puts a
grid of peaks at *k/s* cycles/pixel (Nyquist = 0.5), normalization and activations
reshape the radial profile. Flip a block and watch the **detected** peaks (circles)
against the peaks **predicted** by `core.theory` (crosses). Real images: crops of the
photos bundled with scikit-image and scikit-learn, an upload, or a server folder.
The **Zoo** tab shows the spectra of small real generators trained by fpx.
"""


def create_app() -> pn.template.BaseTemplate:
    found = find_tabs()
    views = [tab.view() for tab in found]
    for view in views:  # a tab may read its siblings (the Train tab: the lab's design)
        getattr(view, "connect", lambda views: None)(views)
    tabs = pn.Tabs(*((tab.title, view) for tab, view in zip(found, views)), dynamic=True,
                   sizing_mode="stretch_width")
    # Each tab owns its controls: the sidebar shows the open tab's, and only those.
    controls = pn.Column(views[0].controls, sizing_mode="stretch_width", margin=0)
    tabs.param.watch(lambda e: setattr(controls, "objects", [views[e.new].controls]),
                     "active")
    return pn.template.BootstrapTemplate(
        title="fpx: generative-model fingerprints in the frequency domain",
        sidebar=[controls, pn.pane.Markdown(ABOUT)],
        main=[tabs],
        sidebar_width=300,
    )


if pn.state.served:
    create_app().servable()
