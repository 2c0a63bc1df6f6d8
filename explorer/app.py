"""The fpx dashboard: ``panel serve explorer/app.py``.

Template and tabs only; each tab is a Viewer in ``explorer.views``.
"""

import holoviews as hv
import panel as pn

from explorer.views.real_spectrum import RealSpectrumView

pn.extension(sizing_mode="stretch_width")
hv.extension("bokeh")

ABOUT = """
Spectra of the **bundled real photos** (scikit-image and scikit-learn samples, cut into
deterministic crops). Frequencies are in cycles/pixel (Nyquist = 0.5). Natural images
show a smooth power-law decay and no grid of peaks; generators with upsampling add one.
"""


def create_app() -> pn.template.BaseTemplate:
    view = RealSpectrumView()
    return pn.template.BootstrapTemplate(
        title="fpx: generative-model fingerprints in the frequency domain",
        sidebar=[pn.pane.Markdown("### Analysis"), view.controls, pn.pane.Markdown(ABOUT)],
        main=[pn.Tabs(("Real photos", view), dynamic=True)],
    )


create_app().servable()
