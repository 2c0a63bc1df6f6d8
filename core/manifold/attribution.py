"""Attribution: which model (or the real data) made a sample, learned from its artifact.

ManiFPT's claim is that a classifier trained on *artifacts* (a generated sample minus its
nearest real sample, in some embedding space) attributes samples to their source model
better than the same classifier trained on the raw samples, whose content hides the
model's trace. :func:`attribute` measures that for any array of inputs: images
``(N, C, H, W)`` (rgb or freq artifacts) go to a small ResNet, vectors ``(N, D)`` (learned
features) to an MLP; one classifier per seed, each on its own stratified train/test split.
:func:`fisher_ratio` measures the separability of the classes without training anything.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InvalidInputError, check_int, check_real
from core.resnet import resnet_stages, resnet_stem
from core.runtime import cpu_seeded, resolve_device


@dataclass(frozen=True)
class AttributionConfig:
    """How each attribution classifier is trained.

    Attributes:
        epochs: passes over the training split.
        batch: training batch size (the split is cut into near-equal batches of at most it).
        lr: peak AdamW learning rate (cosine decay to 0 over all steps).
        weight_decay: AdamW weight decay.
        width: ResNet channels of the first stage (``w, 2w, 4w``); the MLP's hidden layers
            have ``8 * width`` units.
        val_fraction: fraction of each class held out (at least 1 sample, at least 1 left
            for training); accuracy, confusion and F1 are measured on it.
        seeds: one classifier per seed; the seed draws the split, the initial weights and
            the batch order.
        device: ``auto | cpu | cuda | cuda:N``.
    """

    epochs: int = 20
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 16
    val_fraction: float = 0.25
    seeds: tuple[int, ...] = (0, 1, 2)
    device: str = "cpu"

    def __post_init__(self):
        for name in ("epochs", "batch", "width"):
            check_int(f"attribution {name}", getattr(self, name))
        check_real("attribution weight_decay", self.weight_decay, 0)
        if check_real("attribution lr", self.lr, 0) == 0:
            raise InvalidInputError("attribution lr must be > 0, got 0")
        v = self.val_fraction
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < 1:
            raise InvalidInputError(f"attribution val_fraction = {v!r} must be in (0, 1)")
        seeds = self.seeds
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
            raise InvalidInputError(f"attribution seeds = {seeds!r} must be a tuple of ints")
        seeds = tuple(seeds)
        if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**63
                            for s in seeds) or len(set(seeds)) != len(seeds):
            raise InvalidInputError(f"attribution seeds = {self.seeds!r} must be distinct "
                                    "ints >= 0, at least one")
        object.__setattr__(self, "seeds", seeds)
        if not isinstance(self.device, str):
            raise InvalidInputError(f"attribution device = {self.device!r} must be a string")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d


@dataclass(frozen=True)
class AttributionResult:
    """Test-split results of :func:`attribute`, one classifier per seed.

    Attributes:
        class_names: the ``K`` classes, in label order.
        accuracies: test accuracy per seed (in ``config.seeds`` order).
        accuracy_mean, accuracy_std: over seeds (sample std, ``ddof=1``; 0 for one seed).
        macro_f1_mean: macro-F1 over the ``K`` classes, per seed, averaged.
        confusion: ``(K, K)`` int counts summed over seeds; row = true class, column =
            predicted class. Its total is ``n_test * len(seeds)``.
        n_train, n_test: split sizes (the same for every seed: the split is stratified).
        network: ``resnet`` (image inputs) or ``mlp`` (vector inputs).
        config: the :class:`AttributionConfig` used.
    """

    class_names: tuple[str, ...]
    accuracies: tuple[float, ...]
    accuracy_mean: float
    accuracy_std: float
    macro_f1_mean: float
    confusion: np.ndarray = field(compare=False)
    n_train: int
    n_test: int
    network: str
    config: AttributionConfig

    def to_dict(self) -> dict:
        return {"class_names": list(self.class_names), "accuracies": list(self.accuracies),
                "accuracy_mean": self.accuracy_mean, "accuracy_std": self.accuracy_std,
                "macro_f1_mean": self.macro_f1_mean, "confusion": self.confusion.tolist(),
                "n_train": self.n_train, "n_test": self.n_test, "network": self.network,
                "config": self.config.to_dict()}


class SmallResNet(nn.Module):
    """``(B, C, H, W)`` -> ``(B, classes)`` logits: 3x3 stem, three stages of one residual
    block (``w, 2w, 4w`` channels, stride 2 between stages), global average pool, linear."""

    def __init__(self, in_channels: int, num_classes: int, width: int):
        super().__init__()
        w = width
        self.stem = resnet_stem(in_channels, w)
        self.body, ch = resnet_stages(w, 3, 1)
        self.head = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean((-2, -1)))


class MLP(nn.Module):
    """``(B, D)`` -> ``(B, classes)`` logits: two hidden ReLU layers of ``hidden`` units."""

    def __init__(self, in_features: int, num_classes: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_classifier(sample_shape: Sequence[int], num_classes: int, width: int) -> nn.Module:
    """The classifier for inputs of one sample's shape: ``(C, H, W)`` -> :class:`SmallResNet`,
    ``(D,)`` -> :class:`MLP` with ``8 * width`` hidden units."""
    shape = tuple(sample_shape)
    if len(shape) == 3:
        return SmallResNet(shape[0], num_classes, width)
    if len(shape) == 1:
        return MLP(shape[0], num_classes, 8 * width)
    raise InvalidInputError(f"attribution inputs must be (N, C, H, W) or (N, D); one sample "
                            f"has shape {shape}")


def _as_tensor(x, what: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dtype == torch.bool or t.is_complex():
        raise InvalidInputError(f"{what} must be real numbers, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise InvalidInputError(f"{what} contain NaN or Inf")
    return t


def _check_labels(labels, n: int, class_names: Sequence[str]) -> np.ndarray:
    names = list(class_names)
    if len(names) < 2:
        raise InvalidInputError(f"attribution needs at least 2 classes, got {len(names)}")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"class names must be distinct: {names}")
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise InvalidInputError(f"labels have shape {y.shape}; expected ({n},), one per sample")
    if not np.issubdtype(y.dtype, np.integer):
        raise InvalidInputError(f"labels must be integer class indices, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise InvalidInputError(f"labels must lie in [0, {len(names)}), got "
                                f"[{y.min()}, {y.max()}]")
    counts = np.bincount(y, minlength=len(names))
    for name, count in zip(names, counts):
        if count < 2:
            raise InvalidInputError(f"class '{name}' has {count} sample(s); each class needs "
                                    "at least 2 (one to train, one to test)")
    return y.astype(np.int64)


def stratified_split(labels: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, each class split alone: ``round(test_fraction * n_c)`` of its
    ``n_c`` samples (clipped to ``[1, n_c - 1]``) go to test. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(max(1, round(test_fraction * len(idx))), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero mean, unit variance per channel (images) or per feature (vectors), with the
    training split's statistics; constant channels are only centred."""
    dims = (0, 2, 3) if train.ndim == 4 else (0,)
    mean = train.mean(dims, keepdim=True)
    std = train.std(dims, keepdim=True, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def _confusion(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def _macro_f1(confusion: np.ndarray) -> float:
    tp = np.diag(confusion).astype(np.float64)
    denom = confusion.sum(0) + confusion.sum(1)  # predicted + true per class
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


def _train_and_test(x: torch.Tensor, y: torch.Tensor, train_idx: np.ndarray,
                    test_idx: np.ndarray, k: int, seed: int,
                    config: AttributionConfig) -> np.ndarray:
    """Train one classifier on ``train_idx`` and return its test predictions."""
    device = x.device
    tr = torch.as_tensor(train_idx, device=device)
    te = torch.as_tensor(test_idx, device=device)
    x_train, x_test = _standardise(x[tr], x[te])
    y_train = y[tr]
    # Seeded without disturbing the caller's global RNG state.
    with cpu_seeded(seed):
        model = build_classifier(x.shape[1:], k, config.width).to(device)
    order = torch.Generator().manual_seed(seed)
    n = len(train_idx)
    n_batches = math.ceil(n / config.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * n_batches)
    model.train()
    for _ in range(config.epochs):
        # Near-equal batches, so no batch is a single sample (BatchNorm needs two).
        for b in torch.tensor_split(torch.randperm(n, generator=order).to(device), n_batches):
            loss = F.cross_entropy(model(x_train[b]), y_train[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(chunk).argmax(1)
                          for chunk in x_test.split(max(config.batch, 256))])
    return pred.cpu().numpy()


def attribute(x, labels, class_names: Sequence[str],
              config: AttributionConfig = AttributionConfig()) -> AttributionResult:
    """Train and test one attribution classifier per seed.

    Args:
        x: ``(N, C, H, W)`` images (a :class:`SmallResNet`) or ``(N, D)`` vectors (an
            :class:`MLP`); NumPy or torch, any float dtype (trained in float32).
        labels: ``(N,)`` integer class indices into ``class_names``.
        class_names: the ``K >= 2`` class names; every class needs at least 2 samples.
        config: training settings and seeds.

    Each seed draws a stratified split (:func:`stratified_split`), standardises the inputs
    with the training split's per-channel / per-feature statistics, trains with AdamW and a
    cosine schedule, and predicts the test split. Data are moved to ``config.device`` once
    and batches are index slices there. Deterministic for a given seed on the CPU.
    """
    if not isinstance(config, AttributionConfig):
        raise InvalidInputError("config must be an AttributionConfig")
    t = _as_tensor(x, "attribution inputs")
    if t.ndim not in (2, 4):
        raise InvalidInputError(f"attribution inputs must be (N, C, H, W) or (N, D), got "
                                f"shape {tuple(t.shape)}")
    y_np = _check_labels(labels, t.shape[0], class_names)
    device = resolve_device(config.device)
    x_dev = t.to(device=device, dtype=torch.float32)
    y_dev = torch.as_tensor(y_np, device=device)
    k = len(class_names)
    accs, f1s = [], []
    confusion = np.zeros((k, k), dtype=np.int64)
    for seed in config.seeds:
        train_idx, test_idx = stratified_split(y_np, config.val_fraction, seed)
        pred = _train_and_test(x_dev, y_dev, train_idx, test_idx, k, seed, config)
        conf = _confusion(y_np[test_idx], pred, k)
        confusion += conf
        accs.append(float(np.trace(conf) / conf.sum()))
        f1s.append(_macro_f1(conf))
    return AttributionResult(
        class_names=tuple(str(c) for c in class_names), accuracies=tuple(accs),
        accuracy_mean=float(np.mean(accs)),
        accuracy_std=float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        macro_f1_mean=float(np.mean(f1s)), confusion=confusion,
        n_train=int(len(train_idx)), n_test=int(len(test_idx)),
        network="resnet" if t.ndim == 4 else "mlp", config=config)


def fisher_ratio(features, labels) -> float:
    r"""Fisher discriminant ratio of labelled features: between- over within-class scatter.

    With samples :math:`x_i` (flattened to vectors), class means :math:`\mu_k` over the
    :math:`n_k` samples of class :math:`k`, and the overall mean :math:`\mu`:

    .. math::

        S_B = \sum_k n_k (\mu_k - \mu)(\mu_k - \mu)^\top, \qquad
        S_W = \sum_k \sum_{i \in k} (x_i - \mu_k)(x_i - \mu_k)^\top,

        J = \frac{\operatorname{tr} S_B}{\operatorname{tr} S_W}
          = \frac{\sum_k n_k \lVert \mu_k - \mu \rVert^2}
                 {\sum_k \sum_{i \in k} \lVert x_i - \mu_k \rVert^2}.

    Larger is more separable; it is unchanged by a common scale or shift of the features.
    ``inf`` when every class is a single point and the classes differ.

    Args:
        features: ``(N, D)`` or ``(N, C, H, W)`` (flattened), NumPy or torch.
        labels: ``(N,)`` class labels of any hashable kind (ints, strings).
    """
    f = _as_tensor(features, "features").double().cpu()
    if f.ndim < 2 or f.shape[0] == 0:
        raise InvalidInputError(f"features must be (N, D) or (N, C, H, W) with N > 0, got "
                                f"shape {tuple(f.shape)}")
    f = f.reshape(f.shape[0], -1).numpy()
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if lab.ndim != 1 or len(lab) != len(f):
        raise InvalidInputError(f"labels have shape {lab.shape}; expected ({len(f)},), one "
                                "per sample")
    classes, inverse = np.unique(lab, return_inverse=True)
    if len(classes) < 2:
        raise InvalidInputError(f"the Fisher ratio needs at least 2 classes, got {len(classes)}")
    counts = np.bincount(inverse).astype(np.float64)
    means = np.zeros((len(classes), f.shape[1]))
    np.add.at(means, inverse, f)
    means /= counts[:, None]
    between = float((counts * ((means - f.mean(0)) ** 2).sum(1)).sum())
    within = float(((f - means[inverse]) ** 2).sum())
    if within == 0:
        if between == 0:
            raise InvalidInputError("features are all identical; the Fisher ratio is undefined")
        return math.inf
    return between / within
