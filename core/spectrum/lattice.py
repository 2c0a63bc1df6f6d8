"""The upsampling lattice of a set of images: is there a period ``P`` that every image
shares, at the same alignment, and which frequencies ``(a / P, b / P)`` carry it?

Why phase-folded statistics, not the mean power spectrum. A generator that upsamples by
``P`` (one xP stage, or ``L`` x2 stages with ``P = 2^L``) computes the pixels of each
``P x P`` cell by different filter taps, so the *local statistics* of its output depend
on the pixel position modulo ``P``, at the same alignment in every image. The mean power
spectrum sees this only through a product with each image's content (energy at ``k/P``
smeared into lines along rows and columns, under the content's own 1/f spectrum), which
is why isolated-peak finders miss trained generators. Here each image becomes four maps
of local statistics of its luma: ``|dx|``, ``|dy|``, ``dx^2`` and ``dy^2`` (first
differences along x and y, each map divided by its own mean so no image dominates; first
differences, because a symmetric high-pass such as a Laplacian is blind to nearest
upsampling by 2, whose two phases are mirror images). Averaged over ``N`` images, a
position-dependent statistic adds up coherently while content, at random positions,
averages out like ``1 / sqrt(N)``. The averaged map is windowed (Hann, so a strong line
does not leak into its neighbours) and Fourier transformed: a period ``P`` shows as power
at the lattice ``(a / P, b / P)`` cycles/pixel above the power of the bins around each
point.

Which period. For each candidate (the integers 2 to a quarter of the side, and the
half-integers between them for resized lattices) the evidence is the mean log ratio,
lattice point over local background, on the points that belong to the candidate and to
no shorter period (``gcd(a, b, P) = 1``, see :func:`core.spectrum.grid_points`): so
period 16 is claimed only on frequencies that periods 2, 4 and 8 do not explain. A
cascade of ``L`` x2 stages lights every level up to ``2^L``; the reported period is the
largest significant multiple of the most significant candidate.

False alarms, calibrated on the data themselves. Images are dealt into ``G`` groups
(round robin). The null is the same set with its shared alignment destroyed: at each
frequency, the groups' deviations from their mean, each turned by a random phase (what a
random translation of the group does there), summed
(:class:`core.spectrum.evidence.Evidence`). It keeps every content statistic of the
images, heavy tails included, and loses only what is locked to the pixel grid (photos
cropped anywhere, textures and noise satisfy it). Each candidate's
evidence is standardised by its null draws (``z``), and ``false_alarm`` is the share of
null draws whose *largest* ``z`` over all candidates reaches the observed one
(family-wise, with the usual ``+1``: at least ``1 / (draws + 1)``). A detection is
reported when ``false_alarm <= alpha``. Measured on 200 sets of 32 real crops, the test
fires on 1.5 % at ``alpha = 0.01`` (``tests/test_lattice.py``, ``docs/results.md``). It
needs :data:`MIN_GROUPS` groups: a smaller set is cut into tiles (only periods dividing
the tile side stay aligned across tiles), and ``evidence`` says so.

JPEG. Files saved as JPEG carry an 8x8 block grid at the same alignment, as real a
period as any generator's. With ``exclude_period=8`` every frequency within 2 bins of the
1/8 lattice is left out of the evidence, so periods 2, 4 and 8 cannot be claimed (nothing
is left to tell them from JPEG; at 32 px nothing at all is), while a period such as 16
still can, on its odd points. Chroma subsampling (a 16x16 grid in the colour channels)
does not reach the luma analysed here.

All functions are pure and batched; CPU or CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from core.errors import InvalidInputError, check_int, check_real
from core.spectrum.evidence import Evidence, group_spectra
from core.spectrum.lattice_points import (
    EXCLUDE_BINS,
    all_points,
    candidate_points,
    near,
    wrap,
)
from core.spectrum.transforms import check_images, require_finite

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, the JPEG (JFIF) luma
ALPHA = 0.01  # default false-alarm level of a detection
GROUPS = 32  # images are dealt into at most this many groups for the null
MIN_GROUPS = 16  # groups needed: fewer leave the groups' scatter too rough an estimate of
#                  the noise (measured: 8 single images call every period significant)
MIN_TILE = 32  # pixels: the smallest tile a small set is cut into (periods up to 8)
EVIDENCE = ("phase-folded luma differences (|d|, d^2 along x and y): Fourier lattice "
            "against local background, null from randomly shifted image groups")


def folded_maps(x: torch.Tensor) -> torch.Tensor:
    """Per-image maps of local statistics whose average reveals a shared period.

    Args:
        x: ``(B, C, H, W)`` images, any value range; 3 channels are reduced to luma
            (BT.601), other counts are averaged.

    Returns:
        ``(B, 4, H - 1, W - 1)``: ``|dx|``, ``|dy|``, ``dx^2`` and ``dy^2`` of the luma
        (first differences along x and y, cropped to a common grid), each divided by its
        own mean over the image (a flat image gives zeros). Absolute values weigh every
        pixel alike; squares follow the variance, which interpolating upsamplers modulate
        most. (Measured on the shipped zoo: with both, every GAN, VAE and flow entry is
        found; with either alone one or two bilinear entries are missed.)
    """
    check_images(x)
    require_finite(x)
    if min(x.shape[-2:]) < 8:
        raise InvalidInputError(f"images of {x.shape[-1]}x{x.shape[-2]} are too small "
                                "for a lattice (< 8 px)")
    if x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device)
        y = torch.einsum("bchw,c->bhw", x, w)
    else:
        y = x.mean(1)
    y = y.float()
    b, h, w = y.shape
    maps = y.new_empty((b, 4, h - 1, w - 1))
    torch.sub(y[:, :-1, 1:], y[:, :-1, :-1], out=maps[:, 0])  # dx
    torch.sub(y[:, 1:, :-1], y[:, :-1, :-1], out=maps[:, 1])  # dy
    torch.square(maps[:, :2], out=maps[:, 2:])
    maps[:, :2].abs_()
    return maps.div_(maps.mean((-2, -1), keepdim=True).clamp_min_(1e-12))


class LatticeAccumulator:
    """Running group sums of :func:`folded_maps`, fed batch by batch (one pass over a
    folder, alongside the mean spectrum), and the lattice test on them (:meth:`detect`).

    Image ``i`` (in the order seen) goes to group ``i % groups``. The maps of the first
    :data:`MIN_GROUPS` images are also kept one by one: a set smaller than that is tested
    on tiles of its images instead (:meth:`detect`).
    """

    def __init__(self, groups: int = GROUPS):
        self.groups = check_int("groups", groups, 1)
        self.sums: torch.Tensor | None = None
        self.counts = torch.zeros(groups, dtype=torch.long)
        self.seen = 0
        self.first: list[torch.Tensor] = []

    def add(self, x: torch.Tensor) -> None:
        """Add a batch ``(B, C, H, W)`` of images of the size seen so far."""
        maps = folded_maps(x)
        if self.sums is None:
            self.sums = maps.new_zeros((self.groups, *maps.shape[1:]))
        elif maps.shape[1:] != self.sums.shape[1:]:
            raise InvalidInputError(f"images of {x.shape[-1]}x{x.shape[-2]} after images of "
                                    f"{self.sums.shape[-1] + 1}x{self.sums.shape[-2] + 1}")
        index = (torch.arange(maps.shape[0]) + self.seen) % self.groups
        self.sums.index_add_(0, index.to(maps.device), maps)
        self.counts += torch.bincount(index, minlength=self.groups)
        if self.seen < MIN_GROUPS:
            self.first.extend(maps[:MIN_GROUPS - self.seen])
        self.seen += maps.shape[0]

    def group_means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G, C, h, w)`` mean maps of the non-empty groups and ``(G,)`` their counts."""
        if self.sums is None:
            raise InvalidInputError("no images were added")
        keep = self.counts > 0
        counts = self.counts[keep]
        means = self.sums[keep.to(self.sums.device)]
        return means / counts.to(means)[:, None, None, None], counts

    def tiles(self) -> tuple[torch.Tensor, int] | None:
        """For a set of fewer than :data:`MIN_GROUPS` images: the maps of the images cut
        into ``T x T`` tiles at offsets that are multiples of ``T`` (``T`` the largest
        power of two giving at least :data:`MIN_GROUPS` tiles, and at least
        :data:`MIN_TILE` pixels), as ``((N, C, T - 1, T - 1), T)``; ``None`` when the
        images are too small for that."""
        if not self.first:
            return None
        maps = torch.stack(self.first)
        side = maps.shape[-1] + 1
        t = 1 << (side.bit_length() - 1)
        while t >= MIN_TILE and len(maps) * (side // t) ** 2 < MIN_GROUPS:
            t //= 2
        if t < MIN_TILE:
            return None
        k = side // t
        cut = [maps[:, :, i * t:(i + 1) * t - 1, j * t:(j + 1) * t - 1]
               for i in range(k) for j in range(k)]
        return torch.cat(cut), t

    def detect(self, **options) -> GridDetection:
        """:func:`detect_lattice` on the groups; a set of fewer than :data:`MIN_GROUPS`
        images on tiles of them (:meth:`tiles`), where only periods dividing the tile
        side keep their alignment from tile to tile; a set too small even for that gets
        no test, and says so."""
        means, counts = self.group_means()
        _check_options(**options)
        if len(means) >= MIN_GROUPS:
            return detect_lattice(means, counts, **options)
        tiled = self.tiles()
        if tiled is None:
            side = means.shape[-1] + 1
            return GridDetection(
                None, (), 0.0, 1.0, options.get("alpha", ALPHA), (), self.seen, len(means),
                options.get("exclude_period"),
                f"too few: {self.seen} image(s) of {side} px; the test needs "
                f"{MIN_GROUPS} images, or images large enough to cut into {MIN_GROUPS} "
                f"tiles of {MIN_TILE} px")
        maps, t = tiled
        d = detect_lattice(maps, **options)
        note = (f"{self.seen} image(s) cut into {len(maps)} tiles of {t} px: only periods "
                f"dividing {t} stay aligned from tile to tile")
        return replace(d, images=self.seen, evidence=f"weak: {note}")


@dataclass(frozen=True)
class LatticePoint:
    """One frequency of a detected lattice: ``fy, fx`` in cycles/pixel, and its power
    above the local background of the folded map, in dB."""

    fy: float
    fx: float
    power_db: float


@dataclass(frozen=True)
class LatticeMarks:
    """Frequencies ``fy, fx`` ``(n,)`` (cycles/pixel) to mark on a spectrum."""

    fy: torch.Tensor
    fx: torch.Tensor

    def __len__(self) -> int:
        return int(self.fy.numel())


@dataclass(frozen=True)
class CandidateScore:
    """The evidence for one candidate period: mean log ratio on its own points (dB),
    standardised against the null (``z``), and its family-wise false-alarm rate."""

    period: int
    score_db: float
    z: float
    false_alarm: float


@dataclass(frozen=True)
class GridDetection:
    """What :func:`detect_lattice` found.

    Attributes:
        period: the detected period in pixels, or ``None``.
        lattice: the lattice points of ``period`` at least 3 dB above their background,
            strongest first (at most 64).
        score_db: mean power of ``period``'s lattice points above their background (dB);
            0 when nothing is detected.
        false_alarm: the chance that images with nothing locked to the pixel grid reach
            the detected evidence (family-wise over candidates); for no detection, that
            of the strongest candidate.
        alpha: the false-alarm level a detection must meet.
        candidates: evidence per candidate period.
        images, groups: images analysed and the groups the null rolled.
        excluded_period: a period whose lattice was left out (8 for JPEG), or ``None``.
        evidence: ``"ok"``, or why the evidence is weak.
        predicted_by: how the lattice was found (the method, :data:`EVIDENCE`).
    """

    period: int | None
    lattice: tuple[LatticePoint, ...]
    score_db: float
    false_alarm: float
    alpha: float
    candidates: tuple[CandidateScore, ...]
    images: int
    groups: int
    excluded_period: int | None = None
    evidence: str = "ok"
    predicted_by: str = EVIDENCE
    notes: tuple[str, ...] = field(default_factory=tuple)

    def points(self) -> LatticeMarks:
        """The lattice's points with both members of each ``+-f`` pair, for drawing."""
        fy = torch.tensor([p.fy for p in self.lattice], dtype=torch.float64)
        fx = torch.tensor([p.fx for p in self.lattice], dtype=torch.float64)
        both = torch.cat([torch.stack([fy, fx], 1), wrap(-torch.stack([fy, fx], 1))])
        both = torch.unique(both.round(decimals=9), dim=0)
        return LatticeMarks(both[:, 0], both[:, 1])

    def to_json_dict(self) -> dict:
        """The ``grid`` object of ``fpx spectrum --json``."""
        return {
            "period": self.period,
            "lattice": [{"fy": round(p.fy, 6), "fx": round(p.fx, 6),
                         "power_db": round(p.power_db, 2)} for p in self.lattice],
            "score_db": round(self.score_db, 2),
            "false_alarm": round(self.false_alarm, 4),
            "alpha": self.alpha,
            "predicted_by": self.predicted_by,
            "explanation": describe_period(self.period),
            "images": self.images,
            "groups": self.groups,
            "excluded_period": self.excluded_period,
            "evidence": self.evidence,
            "candidates": [{"period": c.period, "score_db": round(c.score_db, 2),
                            "z": round(c.z, 2), "false_alarm": round(c.false_alarm, 4)}
                           for c in self.candidates],
            "notes": list(self.notes),
        }


def describe_period(period: float | None) -> str:
    """One phrase for a user: what a period says about the upsampling."""
    if period is None:
        return "no upsampling period detected"
    if float(period) != int(period):
        return (f"period {period:g} px: not an integer, consistent with an integer period "
                "resized by a non-integer factor")
    p = int(period)
    stages = p.bit_length() - 1
    if p == 1 << stages:
        words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
        n = words.get(stages, str(stages))
        plural = "stage" if stages == 1 else "stages"
        alt = "" if stages == 1 else f" (or one x{p})"
        return f"period {p}: consistent with {n} x2 upsampling {plural}{alt}"
    return f"period {p}: consistent with upsampling stages whose factors multiply to {p}"


def _scores(evidence: Evidence, periods, exclude_period, draws: int, skip=None
            ) -> list[CandidateScore]:
    """Each candidate's observed score, ``z`` against its null draws, and family-wise
    false alarm (share of draws whose largest ``z`` over the candidates reaches it).
    ``skip(period, freqs) -> mask`` drops points (e.g. those a found lattice explains)."""
    stats = {}
    for p in periods:
        f = candidate_points(p, exclude_period, evidence.h, evidence.w)
        if skip is not None and len(f):
            f = f[~skip(p, f)]
        if len(f) >= 2:
            stats[p] = evidence.log_ratios(f).mean((1, 2)).cpu()  # (1 + R,)
    if not stats:
        return []
    z = {p: (s - s[1:].mean()) / s[1:].std().clamp_min(1e-12) for p, s in stats.items()}
    null_max = torch.stack([zz[1:] for zz in z.values()]).max(0).values
    return [CandidateScore(p, float(stats[p][0]) * DB, float(z[p][0]),
                           (1 + int((null_max >= z[p][0]).sum())) / (draws + 1))
            for p in stats]


DB = 10 / math.log(10)  # natural-log power ratio -> dB


def _check_options(*, alpha=ALPHA, draws=199, exclude_period=None, candidates=None,
                   **_) -> float:
    """Validate :func:`detect_lattice`'s options (one-line errors); returns ``alpha``."""
    check_int("draws", draws, 19)
    if exclude_period is not None:
        check_int("exclude_period", exclude_period, 2)
    for p in candidates or ():
        check_int("candidate period", p, 2)
    return check_real("alpha", alpha, 0.0, 1.0)


def detect_lattice(group_means: torch.Tensor, counts: torch.Tensor | None = None, *,
                   candidates=None, alpha: float = ALPHA, draws: int = 199,
                   exclude_period: int | None = None, fractional: bool = True,
                   seed: int = 0) -> GridDetection:
    """Detect a period shared by a set of images, from their group-mean folded maps.

    Candidates are the integers 2 .. a quarter of the side and, with ``fractional``, the
    half-integers between them (a resized lattice), all in one family of tests. The
    reported period is the largest significant multiple of the most significant integer
    candidate (a cascade of x2 stages lights 2, 4, ... up to its full period); a
    half-integer period is reported only when no significant integer within half a pixel
    explains it.

    Args:
        group_means: ``(G, C, h, w)`` mean :func:`folded_maps` of ``G`` groups of images
            (:class:`LatticeAccumulator`); ``h + 1`` is the image side.
        counts: ``(G,)`` images per group (weights; default equal).
        candidates: integer periods to try (default 2 .. a quarter of the shorter side).
        alpha: false-alarm level for a detection.
        draws: null draws; ``false_alarm >= 1 / (draws + 1)``.
        exclude_period: leave this period's lattice out of the evidence (8 for JPEG).
        fractional: also try half-integer periods.
        seed: seed of the null draws (the result is deterministic given it).

    Returns:
        :class:`GridDetection`.
    """
    alpha = _check_options(alpha=alpha, draws=draws, exclude_period=exclude_period,
                           candidates=candidates)
    if not isinstance(group_means, torch.Tensor) or group_means.ndim != 4:
        raise InvalidInputError("group_means must be a (G, C, h, w) tensor")
    require_finite(group_means, "group_means")
    g, _, h, w = group_means.shape
    if g < MIN_GROUPS:
        raise InvalidInputError(f"the lattice test needs at least {MIN_GROUPS} groups of "
                                f"images, got {g} (LatticeAccumulator.detect tiles small sets)")
    side = min(h, w) + 1
    counts = torch.ones(g) if counts is None else counts.detach().float().cpu()
    if counts.shape != (g,) or bool((counts <= 0).any()):
        raise InvalidInputError(f"counts must be {g} positive numbers")
    top = side // 4
    periods = sorted({check_int("candidate period", p, 2) for p in
                      (range(2, top + 1) if candidates is None else candidates)})
    periods = [p for p in periods if p <= top]
    images = int(counts.sum())
    evidence = Evidence(group_spectra(group_means), counts, draws,
                         torch.Generator().manual_seed(int(seed)), (h, w))
    weak = "ok"
    notes = []
    if exclude_period is not None:
        notes.append(f"the 1/{exclude_period} lattice (JPEG blocks) is left out: periods "
                     f"dividing {exclude_period} cannot be told from it")

    def result(period, score_db, false_alarm, scores, lattice=()):
        return GridDetection(period, tuple(lattice), score_db, false_alarm, alpha,
                             tuple(scores), images, g, exclude_period, weak,
                             notes=tuple(notes))

    if fractional:  # a resized lattice: half-pixel periods, in the same family of tests
        periods = periods + [p + 0.5 for p in range(2, top)]
    scores = _scores(evidence, periods, exclude_period, draws)
    if not scores:
        weak = ("none: at this size every candidate's frequencies lie within "
                f"{EXCLUDE_BINS:g} bins of the excluded 1/{exclude_period} lattice"
                if exclude_period is not None else "none: no candidate period fits")
    significant = [c for c in scores if c.false_alarm <= alpha]
    if not significant:
        best = min(scores, key=lambda c: (c.false_alarm, -c.z), default=None)
        return result(None, 0.0, best.false_alarm if best else 1.0, scores)
    first = min(significant, key=lambda c: (c.false_alarm, -c.z))
    whole = [c for c in significant if float(c.period).is_integer()]
    if not float(first.period).is_integer():
        # At small sizes a half period shares points with its integer neighbours: an
        # integer period within half a pixel that is significant too explains it.
        close = [c for c in whole if abs(c.period - first.period) <= 0.5]
        first = min(close, key=lambda c: (c.false_alarm, -c.z)) if close else first
    if float(first.period).is_integer():
        chosen = max((c for c in whole if c.period % first.period == 0),
                     key=lambda c: c.period)
        f_all = all_points(int(chosen.period), exclude_period, h, w)
    else:
        chosen = first
        f_all = candidate_points(chosen.period, exclude_period, h, w)
        notes.append(f"no integer period explains the lattice; it fits {chosen.period:g} px "
                     "(a resized image?)")
    db = evidence.log_ratios(f_all, observed_only=True)[0].mean(0).cpu() * DB
    # Other periods: judged again without the points the found lattice explains (at
    # small sizes, 7 and 8 have points within a bin of each other).
    rest = [p for p in periods if float(p).is_integer() and float(chosen.period).is_integer()
            and chosen.period % p]
    again = _scores(evidence, rest, exclude_period, draws,
                    skip=lambda p, f: near(f, f_all, h, w, 1.5))
    others = sorted(c.period for c in again if c.false_alarm <= alpha)
    if others:
        notes.append("also significant, not dividing the period: " + ", ".join(map(str, others)))
    period = int(chosen.period) if float(chosen.period).is_integer() else chosen.period
    return result(period, float(db.mean()), chosen.false_alarm, scores, _strongest(f_all, db))


def _strongest(freqs: torch.Tensor, db: torch.Tensor) -> list[LatticePoint]:
    """Lattice points at least 3 dB above their background, strongest first (64 at most)."""
    order = torch.argsort(db, descending=True)
    return [LatticePoint(float(freqs[i, 0]), float(freqs[i, 1]), float(db[i]))
            for i in order.tolist() if db[i] >= 3.0][:64]


def detect_lattice_in_images(x: torch.Tensor, **options) -> GridDetection:
    """:func:`detect_lattice` on a batch ``(B, C, H, W)`` of images of one size."""
    check_images(x)
    acc = LatticeAccumulator()
    acc.add(x)
    return acc.detect(**options)
