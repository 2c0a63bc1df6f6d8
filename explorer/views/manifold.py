"""The Manifold tab: a generated sample, its nearest real image and the amplified
artifact between them (ManiFPT), the artifact's mean spectrum, and, on request, the
``fpx attribute`` table: classifiers trained on artifacts against raw images.
"""

from __future__ import annotations

import panel as pn
import param

from explorer.manifold_view_state import ATTRIBUTION_EPOCHS, ManifoldState
from explorer.views import Tab
from explorer.views.embedding_figures import MatrixFigure
from explorer.views.embeddings import status_row, when_shown
from explorer.views.figures import TABLE_CSS, CropFigure, SpectrumFigure
from explorer.views.session import dispatcher, in_session
from explorer.views.spectrum_lab import flow

TRIPLE_SIZE = 150


def attribution_markdown(report: dict | None) -> str:
    if not report:
        return (f"*Attribution not computed for these models and space: press* **Train "
                f"attribution** *(1 seed, {ATTRIBUTION_EPOCHS} epochs; minutes on a CPU).*")
    rows = ["| classifier on | accuracy | macro-F1 | Fisher ratio | train / test |",
            "|---|---|---|---|---|"]
    for kind in ("artifacts", "raw images"):
        r = report.get(kind)
        if r:
            rows.append(f"| {kind} | {r['accuracy_mean']:.3f} | {r['macro_f1_mean']:.3f} | "
                        f"{r['fisher_ratio']:.3f} | {r['n_train']} / {r['n_test']} |")
    return (f"**Attribution** in {report['space']} space ({report['epochs']} epochs, seeds "
            f"{report['seeds']}):\n\n" + "\n".join(rows))


class ManifoldView(pn.viewable.Viewer):
    """Controls in :attr:`controls`; triple, artifact spectrum, attribution in the viewer."""

    state = param.ClassSelector(class_=ManifoldState)

    def __init__(self, **params):
        params.setdefault("state", ManifoldState())
        super().__init__(**params)
        s = self.state
        self._doc = pn.state.curdoc
        s.dispatch = dispatcher(self._doc)  # results land in this session's tick
        self.fig = {
            "sample": CropFigure("Sample", size=TRIPLE_SIZE),
            "neighbour": CropFigure("Nearest real", size=TRIPLE_SIZE),
            "artifact": CropFigure("Artifact (amplified)", size=TRIPLE_SIZE),
            "spectrum": SpectrumFigure("Mean spectrum of the model's artifacts"),
            "confusion": MatrixFigure("Confusion (artifacts)", low=0, x_label="predicted",
                                      y_label="true"),
        }
        s.param.watch(lambda e: in_session(self._doc, self._draw), "view")
        s.param.watch(lambda e: in_session(self._doc, self._draw_attribution), "attribution")
        # the model list is a widget's options: changed in the session's tick
        s.param.watch(lambda e: in_session(self._doc, self._list_models), "artifacts")
        wide = dict(sizing_mode="stretch_width")
        self._models = pn.widgets.Select.from_param(s.param.model, **wide)
        train = pn.widgets.Button(name="Train attribution", button_type="primary", **wide)
        train.on_click(lambda e: s.run_attribution())
        self.controls = pn.Column(
            pn.pane.Markdown("### Manifold"),
            pn.widgets.Select.from_param(s.param.space, **wide),
            pn.widgets.MultiSelect.from_param(s.param.entries, size=6, **wide),
            pn.widgets.TextInput.from_param(s.param.folder, placeholder="server folder", **wide),
            self._models,
            pn.widgets.IntSlider.from_param(s.param.index, end=199, **wide),
            train, **wide)
        self.caption = pn.pane.Markdown("", css_classes=["fpx-man-caption"], **wide)
        self.table = pn.pane.Markdown(attribution_markdown(None), stylesheets=[TABLE_CSS],
                                      css_classes=["fpx-man-attribution"], **wide)

        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-man-{key}"]
            return pn.pane.Bokeh(fig)

        self._layout = pn.Column(
            pn.pane.Markdown("ManiFPT's artifact: a generated sample minus its nearest real "
                             "image (200 real crops held out, as `fpx artifacts`), in pixel, "
                             "spectrum or extractor space. The artifact carries the model's "
                             "trace without the picture's content.", **wide),
            status_row(s, "man"), when_shown(s.compute), self.caption,
            flow(pane("sample"), pane("neighbour"), pane("artifact"), pane("spectrum")),
            self.table, pane("confusion"), **wide)

    def _draw(self) -> None:
        v = self.state.view
        if v is None:
            return
        if v.model in self._models.options and self._models.value != v.model:
            self._models.value = v.model  # chosen on the worker thread
        for key, image in (("sample", v.sample), ("neighbour", v.neighbour),
                           ("artifact", v.artifact)):
            self.fig[key].update(image)
        self.fig["spectrum"].update(v.spectrum.spectrum, v.spectrum.peaks)
        grid = v.spectrum.grid
        lattice = (f"lattice period {grid.period} (false alarm {grid.false_alarm:.3f})"
                   if grid.period else "no lattice detected")
        self.caption.object = (f"**{v.model}** sample {v.index} (`{v.path.rsplit('/', 1)[-1]}`)"
                               f": distance to its nearest real image {v.distance:.3f} in "
                               f"{self.state.space} space; artifact amplified x"
                               f"{1 / v.gain:.1f}; artifacts' {lattice}.")

    def _list_models(self) -> None:
        self._models.options = list(self.state.param.model.objects)

    def _draw_attribution(self) -> None:
        report = self.state.attribution
        self.table.object = attribution_markdown(report)
        if report and report.get("artifacts"):
            r = report["artifacts"]
            self.fig["confusion"].update(r["class_names"], r["confusion"], "{:.0f}")

    def __panel__(self):
        return self._layout


TAB = Tab(order=60, title="Manifold", view=ManifoldView)
