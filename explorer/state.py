"""Dashboard state: ``param`` classes over ``core``. Never imports panel, so the teaching
notebooks drive the very same objects with ipywidgets.

:class:`LabState` is the Spectrum Lab: a generator design (the controls), a source of real
images and the analysis settings go in; one computation, :class:`LabResult`, comes out
each time anything changes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import param
import torch

from core.analysis import SpectrumReport, analyse_batches
from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING, upsampler
from core.errors import FpxError, InvalidInputError
from core.specs import BlockSpec, GeneratorSpec
from core.spectrum import RESIDUALS, WINDOWS, periods_near, spectral_distance
from core.synthetic import build_generator, match_statistics
from core.theory import PredictedPeak, predict_peaks
from explorer import sources
from explorer.background import call_now


def upsampling_choices() -> dict[str, str]:
    """Display label -> registry name of every registered upsampler, in registry order."""
    return {u.label: name for name, u in UPSAMPLING.items()}


UPSAMPLING_CHOICES = upsampling_choices()
SOURCE_CHOICES = {"Bundled photos": "bundled", "Uploaded image": "upload",
                  "Folder on server": "folder"}
CUSTOM = "Custom"
DESIGN = ("upsampling", "factor", "kernel", "blocks", "norm", "activation", "order", "seed")
PRESETS: dict[str, dict] = {
    "DCGAN-like transposed conv": dict(upsampling="transposed", factor=2, kernel=4, blocks=3,
                                       norm="batch", activation="relu", order="post"),
    "Checkerboard k3 s2": dict(upsampling="transposed", factor=2, kernel=3, blocks=1,
                               norm="none", activation="relu", order="post"),
    "Resize-conv (nearest)": dict(upsampling="nearest", factor=2, blocks=2, norm="batch",
                                  activation="relu", order="post"),
    "Bilinear StyleGAN-like": dict(upsampling="bilinear", factor=2, blocks=3, norm="instance",
                                   activation="leaky_relu", order="post"),
    "Pixel shuffle": dict(upsampling="pixelshuffle", factor=2, blocks=2, norm="none",
                          activation="relu", order="post"),
    "Zero insertion (textbook)": dict(upsampling="zero", factor=2, blocks=1, norm="none",
                                      activation="none", order="post"),
}


@dataclass(frozen=True)
class LabResult:
    """One computation of the lab; every view draws from it.

    Attributes:
        spec: the generator that ran.
        source: label of the real images.
        input_crop, output_crop: ``(3, S, S)`` in ``[-1, 1]``: one real crop and what the
            generator made of it.
        real, generated: analyses of the real crops and of the generator's outputs.
        difference: ``(S, S)`` generated minus real mean log spectrum, dB.
        predicted: spectral lines ``core.theory`` predicts for ``spec``.
        distance_db: spectral distance between the two radial profiles.
        compute_ms: wall time of this computation.
    """

    spec: GeneratorSpec
    source: str
    input_crop: torch.Tensor
    output_crop: torch.Tensor
    real: SpectrumReport
    generated: SpectrumReport
    difference: torch.Tensor
    predicted: tuple[PredictedPeak, ...]
    distance_db: float
    compute_ms: float


class LabState(param.Parameterized):
    """The Spectrum Lab: generator design, real-image source and analysis settings."""

    preset = param.Selector(default=CUSTOM, objects=[CUSTOM, *PRESETS], label="Presets",
                            doc="A known design; choosing one sets the controls")
    upsampling = param.Selector(default="transposed", objects=UPSAMPLING_CHOICES,
                                label="Upsampling",
                                doc="How each up-block enlarges its input: a learned "
                                    "filter (transposed conv, pixel shuffle) or a fixed "
                                    "one (nearest, bilinear, bicubic), then a 3x3 conv")
    factor = param.Selector(default=2, objects=[2, 4], label="Scale factor",
                            doc="How many times each up-block enlarges the image per side "
                                "(s); replicas land at multiples of 1/s cycles/pixel")
    kernel = param.Integer(default=4, bounds=(1, 8), label="Kernel size",
                           doc="Side in pixels of the transposed conv's learned filter (its "
                               "stride is the scale factor; a size not divisible by it "
                               "makes a checkerboard); unused by the fixed upsamplers")
    blocks = param.Integer(default=2, bounds=(1, 3), label="Up-blocks",
                           doc="How many up-blocks follow each other; the total factor is "
                               "s ** up-blocks (as many x2 down-blocks come first)")
    norm = param.Selector(default="batch", objects=list(NORMALIZATION), label="Normalization",
                          doc="How each block rescales its features (over the batch, each "
                              "image, each pixel's channels, or channel groups); it shapes "
                              "the radial profile, not the grid")
    activation = param.Selector(default="relu", objects=list(ACTIVATION), label="Activation",
                                doc="The nonlinearity after (post) or before (pre) each "
                                    "up-block; it adds weak lines at the current period")
    order = param.Selector(default="post", objects=["post", "pre"], label="Order",
                           doc="post: up, conv, norm, act; pre: norm, act, up, conv")
    seed = param.Integer(default=0, bounds=(0, 9999), softbounds=(0, 99), label="Seed",
                         doc="Picks the generator's random weights (it is never trained): "
                             "another seed, the same architecture")
    convs = param.Integer(default=1, bounds=(1, 4), precedence=-1,
                          doc="Convolutions per block (kept for loaded specs)")
    channels = param.Integer(default=16, bounds=(4, 64), precedence=-1,
                             doc="Feature channels; 16 keeps the lab interactive on a CPU")
    residual = param.Selector(default="none", objects=list(RESIDUALS), label="Residual",
                              doc="Analyse the image minus a 3x3 blur or median of it (the "
                                  "fine detail where fingerprints live), or the image itself")
    window = param.Selector(default="none", objects=["none", *WINDOWS], label="Window",
                            doc="Taper each crop to 0 at its edges before the FFT, so the "
                                "edges' jump adds no cross of leakage; lowers the exponent")
    source = param.Selector(default="bundled", objects=SOURCE_CHOICES, label="Image source",
                            doc="The real images: crops of the bundled photos, an uploaded "
                                "image cut into crops, or a folder on the server")
    upload_name = param.String(default="", precedence=-1,
                               doc="File name of the upload in use (empty if none)")
    folder = param.String(default="", label="Folder path",
                          doc="A folder of images on the server (read as images only)")
    crop_size = param.Selector(default=128, objects=[64, 128, 256], label="Crop size",
                               doc="Side in pixels of the square crops analysed; the "
                                   "spectrum has one bin per 1/size cycles/pixel")
    batch = param.Integer(default=8, bounds=(1, 64), precedence=-1,
                          doc="Generated crops averaged per spectrum")
    show_predicted = param.Boolean(default=True, label="Show predicted peaks",
                                   doc="Draw the lines core.theory predicts from the design "
                                       "as green crosses on the generated spectrum")
    message = param.String(default="", doc="The last problem, one line (empty if none)")
    loading = param.String(default="", doc="What is being read in the background and how "
                                           "far it got, one line (empty if nothing)")
    result = param.ClassSelector(class_=LabResult, allow_None=True, default=None)
    pinned = param.ClassSelector(class_=LabResult, allow_None=True, default=None,
                                 doc="Configuration A of the comparison")

    def __init__(self, **params):
        # Upsamplers registered after this module was imported are choices too (the
        # registry is process-wide, so is the class's list).
        type(self).param.upsampling.objects = upsampling_choices()
        super().__init__(**params)
        self._upload: tuple[bytes, str] | None = None
        self._last_real: sources.RealSet | None = None
        self._applying = False
        self._lock = threading.RLock()
        self._load: sources.FolderLoad | None = None
        self._latest_load: sources.FolderLoad | None = None
        self._failed: tuple[sources.FolderTarget, FpxError] | None = None
        self.dispatch: Callable[[Callable[[], None]], None] = call_now
        """Runs a callable where this state's watchers may run: at once by default (plain
        Python, notebooks); a dashboard session sets it to its document's next tick, so a
        folder loaded on a background thread lands under the session's lock."""
        self.recompute()

    # --- the design ----------------------------------------------------------------

    @property
    def spec(self) -> GeneratorSpec:
        """The generator the controls describe: ``blocks`` equal up-blocks and as many x2
        down-blocks as make the output the input's size."""
        up = upsampler(self.upsampling)
        kernel = self.kernel if self.kernel_applies else up.kernel_for(self.factor)
        block = BlockSpec(self.upsampling, self.factor, kernel, self.norm, self.activation,
                          self.order, self.convs)
        down = self.blocks * int(math.log2(self.factor))
        return GeneratorSpec(up=(block,) * self.blocks, down=down, channels=self.channels,
                             seed=self.seed, name=self.preset if self.preset != CUSTOM else "")

    @property
    def kernel_applies(self) -> bool:
        """Whether the Kernel control shapes the current upsampler (its kernel is its own
        learned resampling filter, any size) or is unused (a fixed 3x3 conv)."""
        return upsampler(self.upsampling).kernels == "any"

    def spec_json(self) -> str:
        return self.spec.to_json()

    def load_spec_json(self, text: str | bytes) -> None:
        """Set the controls from a spec's JSON; a spec the lab cannot show sets
        :attr:`message` and changes nothing."""
        try:
            spec = GeneratorSpec.from_json(text)
            first = spec.up[0]
            if any(b != first for b in spec.up):
                raise InvalidInputError("the lab builds equal up-blocks; this spec's differ")
            if first.factor not in (2, 4) or len(spec.up) > 3:
                raise InvalidInputError("the lab shows 1-3 up-blocks of factor 2 or 4")
            if spec.down != len(spec.up) * int(math.log2(first.factor)):
                raise InvalidInputError("the lab needs as many x2 down-blocks as the total "
                                        f"factor asks ({spec.total_factor}); spec has "
                                        f"{spec.down}")
            values = dict(upsampling=first.upsampling, factor=first.factor, blocks=len(spec.up),
                          norm=first.norm, activation=first.activation, order=first.order,
                          convs=first.convs, seed=spec.seed, channels=spec.channels,
                          preset=spec.name if spec.name in PRESETS else CUSTOM)
            if upsampler(first.upsampling).kernels == "any":
                values["kernel"] = first.kernel
            for name, value in values.items():  # check all before setting any
                bounds = getattr(self.param[name], "bounds", None)
                if bounds and not bounds[0] <= value <= (bounds[1] or value):
                    raise InvalidInputError(f"{name} = {value} is outside the lab's range "
                                            f"{bounds[0]}..{bounds[1]}")
            self._set(values)
        except (FpxError, ValueError) as err:
            self.message = f"cannot load spec: {err}"

    def _set(self, values: dict) -> None:
        self._applying = True
        try:
            self.param.update(**values)
        finally:
            self._applying = False
        self.recompute()

    @param.depends("preset", watch=True)
    def _apply_preset(self) -> None:
        if self._applying or self.preset == CUSTOM:
            return
        self._set(dict(PRESETS[self.preset], convs=1))

    @param.depends(*DESIGN, watch=True)
    def _design_changed(self) -> None:
        if self._applying:
            return
        if self.preset != CUSTOM:
            self._applying = True
            try:
                self.preset = CUSTOM
            finally:
                self._applying = False
        self.recompute()

    @param.depends("residual", "window", "source", "folder", "crop_size", "batch",
                   "channels", "convs", watch=True)
    def _settings_changed(self) -> None:
        if not self._applying:
            self.recompute()

    # --- real images ---------------------------------------------------------------

    def set_upload(self, data: bytes, name: str) -> bool:
        """Take an uploaded image and switch the source to it; ``True`` when taken. An
        upload that is not a usable image is refused with a message (``False``); the lab
        keeps its current images."""
        name = name or "upload"
        try:
            sources.upload(data, name, self.crop_size)
        except FpxError as err:
            self.message = f"upload refused: {err}"
            return False
        self.upload_name = name
        self._upload = (data, name)
        if self.source == "upload":
            self.recompute()
        else:
            self.source = "upload"
        return True

    def _real(self) -> sources.RealSet | None:
        """The chosen real images; ``None`` while a folder is read in the background."""
        if self.source != "folder":
            self.cancel_load()
        if self.source == "bundled":
            return sources.bundled(self.crop_size)
        if self.source == "upload":
            data, name = self._upload or (None, "upload")
            return sources.upload(data, name, self.crop_size)
        target = sources.folder_target(self.folder, self.crop_size)
        ready = sources.cached_folder(target)
        if ready is not None:
            self.cancel_load()
            return ready
        if self._failed is not None and self._failed[0] == target:
            raise self._failed[1]
        if self._load is None or self._load.target != target:
            self._start_load(target)
        return None

    def _start_load(self, target: sources.FolderTarget) -> None:
        """Read ``target`` on a background thread (replacing any other load); the lab
        recomputes on it once it is read."""
        self.cancel_load()

        def progress(done: int, total: int) -> None:
            self.dispatch(lambda: self._load is load and self._say_loading(
                f"{done} of {total} images"))

        def done(result, error) -> None:
            self.dispatch(lambda: self._loaded(load, error))

        load = sources.FolderLoad(target, on_done=done, on_progress=progress)
        self._load = self._latest_load = load
        self._say_loading("listing its images")
        load.start()

    def _say_loading(self, how_far: str) -> None:
        shown = f" (showing {self.result.source} meanwhile)" if self.result else ""
        self.loading = f"reading {self._load.target.text}: {how_far}{shown}"

    def _loaded(self, load: sources.FolderLoad, error: FpxError | None) -> None:
        if load is not self._load:  # replaced or cancelled meanwhile
            return
        self._load = None
        self._failed = (load.target, error) if error is not None else None
        self.loading = ""
        self.recompute()

    def cancel_load(self) -> None:
        """Give up the folder being read in the background, if any."""
        if self._load is not None:
            self._load.cancel()
            self._load = None
            self.loading = ""

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until a folder being read in the background has been read and shown
        (scripts, notebooks and tests; a dashboard never waits)."""
        load = self._latest_load  # its thread ends once its result is shown
        if load is not None:
            load.thread.join(timeout)
            if load.thread.is_alive():
                raise TimeoutError(f"{load.target.text} still loading after {timeout} s")

    # --- the computation -----------------------------------------------------------

    def recompute(self) -> None:
        """Run the generator on the real crops and analyse both.

        When the chosen real images cannot be used (no upload yet, a bad folder) the lab
        keeps working on the last good ones and says why in :attr:`message`; a design the
        crops cannot hold keeps the last result.
        """
        with self._lock:  # a background load may land while a control changes
            self._recompute(time.perf_counter())

    def _recompute(self, t0: float) -> None:
        try:
            spec = self.spec
            if spec.total_factor * 4 > self.crop_size:
                raise InvalidInputError(
                    f"total factor {spec.total_factor} needs crops of at least "
                    f"{spec.total_factor * 4} px; choose fewer up-blocks or a bigger crop size"
                )
            last = self._last_real
            if last is None or last.crops.shape[-1] != self.crop_size:
                last = sources.bundled(self.crop_size)
            try:
                real_set, problem = self._real(), ""
            except FpxError as err:
                real_set, problem = last, f"{err} (showing {last.label})"
            if real_set is None:  # a folder is being read: the lab goes on meanwhile
                real_set = last
            self.result = self._compute(spec, real_set, t0)
            self._last_real = real_set
            self.message = problem or "; ".join(real_set.notes[:3])
        except FpxError as err:
            self.message = str(err)

    def _compute(self, spec: GeneratorSpec, real_set: sources.RealSet, t0: float) -> LabResult:
        window = None if self.window == "none" else self.window
        real = _real_report(real_set, self.residual, window)
        x = real_set.crops[:self.batch]
        with torch.no_grad():
            model = build_generator(spec).train()  # norms use the batch's statistics
            y = match_statistics(model(x), x)
        # The lattice test on the periods this design makes likely (its divisors and
        # twice it), with 99 null draws: the full scan would cost a second per update.
        generated = analyse_batches([y], residual=self.residual, window=window,
                                    candidates=periods_near(spec.total_factor, y.shape[-1]),
                                    fractional=False, draws=99)
        return LabResult(
            spec=spec, source=real_set.label, input_crop=x[0], output_crop=y[0].clamp(-1, 1),
            real=real, generated=generated, difference=generated.spectrum - real.spectrum,
            predicted=tuple(predict_peaks(spec)),
            distance_db=float(spectral_distance(generated.profile, real.profile)),
            compute_ms=1000 * (time.perf_counter() - t0),
        )

    # --- comparison ----------------------------------------------------------------

    def pin(self) -> None:
        """Keep the current result as configuration A."""
        self.pinned = self.result

    def unpin(self) -> None:
        self.pinned = None

    def compare_distance_db(self) -> float | None:
        """Spectral distance between the generated profiles of A (pinned) and B (now)."""
        if self.pinned is None or self.result is None:
            return None
        return float(spectral_distance(self.pinned.generated.profile,
                                       self.result.generated.profile))


_REAL_CACHE: dict[tuple, SpectrumReport] = {}


def _real_report(real_set: sources.RealSet, residual: str, window: str | None) -> SpectrumReport:
    """Analysis of the real crops, computed once per source and setting (process-wide:
    every session shares the bundled photos' spectrum)."""
    key = (real_set.key, residual, window)
    if key not in _REAL_CACHE:
        if len(_REAL_CACHE) > 32:
            _REAL_CACHE.pop(next(iter(_REAL_CACHE)))
        _REAL_CACHE[key] = analyse_batches([real_set.crops], residual=residual, window=window,
                                           fractional=False, draws=99)
    return _REAL_CACHE[key]
