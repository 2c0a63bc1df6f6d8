"""The Embeddings tab: where generators sit in the extractor's embedding space.

Controls (sidebar): extractor, image sets, features, map, colouring, shots. The map, similarity
matrix, ROC and confusion redraw from one :class:`~explorer.embeddings.EmbeddingsResult`;
a click on the map shows that image, its spectrum and its nearest models. Embedding runs
on a background thread (:class:`~explorer.embeddings.EmbeddingsState`), and starts only
when the tab is first shown, so other tabs' sessions never wait for it.
"""

from __future__ import annotations

import threading

import panel as pn
import param

from explorer.embeddings import EmbeddingsState
from explorer.point_detail import thumbnail
from explorer.views import Tab
from explorer.views.embedding_figures import CurveFigure, MapFigure, MatrixFigure
from explorer.views.figures import TABLE_CSS, CropFigure, SpectrumFigure
from explorer.views.session import dispatcher, in_session
from explorer.views.spectrum_lab import IMAGE_TYPES, MAX_UPLOAD, flow

MAX_THUMBS = 600  # hover thumbnails are sent for maps of at most this many points


def status_row(state, tab: str) -> pn.Column:
    """Message, progress bar and status line of a tab whose state runs in the
    background (``message``, ``busy``, ``progress``, ``status``); css classes
    ``fpx-TAB-message`` and ``fpx-TAB-status``."""
    alert = pn.pane.Alert(pn.bind(lambda m: m or "", state.param.message),
                          alert_type="warning", visible=pn.bind(bool, state.param.message),
                          css_classes=[f"fpx-{tab}-message"], sizing_mode="stretch_width")
    bar = pn.indicators.Progress(value=pn.bind(lambda p: int(100 * p), state.param.progress),
                                 max=100, visible=state.param.busy, width=300)
    text = pn.pane.Markdown(pn.bind(lambda s, b: f"*{s}*" if s else "", state.param.status,
                                    state.param.busy),
                            css_classes=[f"fpx-{tab}-status"], sizing_mode="stretch_width")
    return pn.Column(alert, pn.Row(bar, text), sizing_mode="stretch_width")


def when_shown(start) -> pn.viewable.Viewable:
    """An empty pane that calls ``start()`` the first time it is rendered (the tab is
    opened), not when the session is built."""
    done = []

    def hook():
        if not done:
            done.append(True)
            start()
        return pn.pane.HTML("", width=0, height=0, margin=0)

    # ParamFunction's lazy: evaluated on first render (pn.panel(hook, lazy=True) calls
    # the function at once, so every session would compute at build)
    return pn.param.ParamFunction(hook, lazy=True)


class EmbeddingsView(pn.viewable.Viewer):
    """Controls in :attr:`controls`; map, detail, similarity, ROC and confusion in the
    viewer."""

    state = param.ClassSelector(class_=EmbeddingsState)

    def __init__(self, **params):
        params.setdefault("state", EmbeddingsState(autostart=False))
        super().__init__(**params)
        s = self.state
        self._doc = pn.state.curdoc
        s.dispatch = dispatcher(self._doc)  # results land in this session's tick
        self.fig = {
            "map": MapFigure("Embedding map"),
            "image": CropFigure("Clicked image"),
            "spectrum": SpectrumFigure("Its log spectrum (blur residual)"),
            "similarity": MatrixFigure("Model similarity (cosine, dendrogram order)"),
            "roc": CurveFigure("Verification ROC", "false positive rate",
                               "true positive rate"),
            "confusion": MatrixFigure("Identification confusion", low=0,
                                      x_label="predicted", y_label="true"),
        }
        self.fig["map"].source.selected.on_change("indices", self._on_tap)
        s.param.watch(lambda e: in_session(self._doc, self._draw), ["result", "color_by"])
        s.param.watch(lambda e: in_session(self._doc, self._draw_detail), "detail")
        self.controls = self._controls()
        self._layout = self._make_layout()

    def _controls(self) -> pn.Column:
        s = self.state
        wide = dict(sizing_mode="stretch_width")
        upload = pn.widgets.FileDropper(accepted_filetypes=IMAGE_TYPES, multiple=True,
                                        max_file_size=MAX_UPLOAD, label="Add images",
                                        **wide)  # no fixed height: the dropped files show
        upload.param.watch(lambda e: e.new and s.add_uploads(
            [(k, v if isinstance(v, bytes) else v.encode()) for k, v in e.new.items()]),
            "value")
        add = pn.widgets.Button(label="Add folder/upload/bank models to the Attribute gallery",
                                **wide)
        add.on_click(lambda e: s.add_to_gallery())
        return pn.Column(
            pn.pane.Markdown("### Embeddings"),
            pn.widgets.Select.from_param(s.param.extractor, **wide),
            pn.widgets.MultiSelect.from_param(s.param.entries, size=6, **wide),
            pn.widgets.Checkbox.from_param(s.param.real),
            pn.widgets.Select.from_param(s.param.bank, **wide),
            pn.widgets.TextInput.from_param(s.param.folder, placeholder="server folder",
                                            **wide),
            upload,
            pn.widgets.Select.from_param(s.param.features, **wide),
            pn.widgets.Select.from_param(s.param.level, **wide),
            pn.widgets.Select.from_param(s.param.method, **wide),
            pn.widgets.Select.from_param(s.param.color_by, **wide),
            pn.widgets.IntSlider.from_param(s.param.shots, **wide),
            add, **wide)

    def _make_layout(self) -> pn.Column:
        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-emb-{key}"]
            return pn.pane.Bokeh(fig)

        self.nearest = pn.pane.Markdown("*Click a point of the map.*", width=260,
                                        css_classes=["fpx-emb-nearest"], stylesheets=[TABLE_CSS])
        self.summary = pn.pane.Markdown("", css_classes=["fpx-emb-summary"],
                                        sizing_mode="stretch_width", stylesheets=[TABLE_CSS])
        return pn.Column(
            pn.pane.Markdown("Images embedded by the fingerprint extractor (as `fpx embed`), "
                             "cached on disk. Colour the map by a recorded design choice; "
                             "click a point to see its image, spectrum and nearest models.",
                             sizing_mode="stretch_width"),
            status_row(self.state, "emb"), when_shown(self.state.start), self.summary,
            flow(pane("map"), pn.Column(pane("image"), self.nearest), pane("spectrum")),
            flow(pane("similarity"), pane("roc"), pane("confusion")),
            sizing_mode="stretch_width")

    def _on_tap(self, attr, old, new) -> None:
        if not new:
            return
        row = self.fig["map"].source.data["row"][new[0]]
        # The detail reads files and tests a lattice: not on the document's thread.
        threading.Thread(target=setattr, args=(self.state, "selected", int(row)),
                         daemon=True).start()

    def _draw(self) -> None:
        s, r = self.state, self.state.result
        if r is None:
            return
        paths = [r.data.paths[i] for i in r.point_rows]
        thumbs = [thumbnail(p) for p in paths] if len(paths) <= MAX_THUMBS else None
        colours, title = s.colours(), (f"{r.method.upper()} map of {len(r.points)} "
                                       f"{r.level}, coloured by {s.color_by}")

        def draw_map():
            self.fig["map"].update(r.points, r.point_labels, colours, r.point_rows, thumbs)
            self.fig["map"].figure.title.text = title

        # A message of its own: BokehJS paints the legend from the new rows with the old
        # colours (RangeError) when the new points share a message with other figures'.
        in_session(self._doc, draw_map)
        if r.similarity is not None:
            self.fig["similarity"].update(r.similarity.models, r.similarity.matrix)
        if r.roc is not None:
            self.fig["roc"].update(r.roc.fpr, r.roc.tpr, f"Verification ROC: AUC "
                                   f"{r.roc.auc:.3f} over {r.roc.pairs} pairs")
        if r.confusion is not None:
            c = r.confusion
            self.fig["confusion"].update(c.models, c.matrix, "{:.0f}")
            self.fig["confusion"].figure.title.text = (f"Identification, {c.shots} shots: "
                                                       f"accuracy {c.accuracy:.3f}")
        notes = "".join(f"\n- {n}" for n in r.notes)
        kind = "hybrid features" if r.features == "hybrid" else "embeddings"
        self.summary.object = (f"**{len(r.data.labels)} images of {len(r.models)} models**, "
                               f"{r.data.dim}-d {kind}; views "
                               f"{'read from the cache' if r.cached else 'computed'} in "
                               f"{r.compute_ms:.0f} ms.{notes}")

    def _draw_detail(self) -> None:
        d = self.state.detail
        if d is None:
            return
        self.fig["image"].update(d.image)
        self.fig["image"].figure.title.text = f"{d.model}: {d.path.rsplit('/', 1)[-1]}"
        self.fig["spectrum"].update(d.report.spectrum, d.report.peaks)
        grid = d.model_report.grid if d.model_report is not None else None
        lattice = ("not tested" if grid is None else
                   f"period {grid.period} (false alarm {grid.false_alarm:.3f}, "
                   f"{grid.images} images)" if grid.period else
                   f"none found ({grid.images} images)")
        rows = "\n".join(f"| {i + 1} | {m} | {v:.3f} |" for i, (m, v) in enumerate(d.nearest))
        self.nearest.object = (f"**{d.model}**, lattice of its images: {lattice}\n\n"
                               f"| | nearest model | cosine |\n|---|---|---|\n{rows}")

    def __panel__(self):
        return self._layout


TAB = Tab(order=40, title="Embeddings", view=EmbeddingsView)
