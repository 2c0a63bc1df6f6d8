"""The synthetic model bank: many small generators, briefly fitted, stored, run in batches.

Yang et al. teach their fingerprint extractor with thousands of synthetic models, each a
class. A bank here is ``architectures x seeds`` models from :data:`SYNTHETIC_SPACE`, each
fitted for a few steps to reconstruct real crops (0 steps keeps the random weights).
Models of one architecture can be fitted together, as one stacked network
(:class:`SyntheticGenerator` with ``copies``): one grouped convolution per layer instead
of one call per model, which is what a GPU wants. On a CPU, oneDNN's grouped convolutions
(forward + backward) run slower than the same convolutions one model at a time
(``benchmarks/bank_build.py`` measured 0.42x on 2 cores), so ``strategy="auto"`` stacks
on CUDA and fits one model after another on the CPU. Both give the same models.
The bank is saved as safetensors weights plus a JSON record of its config, specs, fit
losses and code version; nothing is unpickled on load.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.func import functional_call

from core.errors import InvalidInputError, check_int
from core.runtime import atomic_path, atomic_write, code_version
from core.specs import GeneratorSpec
from core.synthetic.model import (
    SyntheticGenerator,
    batch_statistics_only,
    build_generator,
    network,
    spec_from_dict,
    stack_states,
    unstack_state,
)
from core.synthetic.space import SYNTHETIC_SPACE, architectures

BANK_FORMAT = "fpx.synthetic_bank/1"
SPACES = ("autoencoder", "decoder")


@dataclass(frozen=True)
class BankConfig:
    """What a bank is made of and how it is fitted.

    Attributes:
        architectures: number of architectures, drawn without replacement (seeded) from
            the design space; 0 takes all of them.
        seeds: models (weight seeds) per architecture.
        fit_steps: Adam steps of reconstruction fitting per model (0: random weights).
        lr: Adam learning rate of the fit.
        crop_size, batch: real crops the models are fitted on.
        channels: feature channels of every model.
        seed: seed of the architecture draw, the weight seeds and the fitting batches.
        skip_architectures: how many of the seeded architecture order to pass over first,
            so that a second bank can hold architectures the first never saw.
        weight_seed: seed of the models' weight seeds (default: ``seed``); a second bank
            with the same ``seed`` and another ``weight_seed`` holds the same
            architectures with unseen weights.
        space: ``autoencoder`` (:data:`SYNTHETIC_SPACE`, Yang et al.'s) or ``decoder``
            (:data:`core.synthetic.decoder.DECODER_SPACE`: real images reduced to 4x4 to
            16x16 at ``crop_size`` and grown back through 2 to 5 stages); a decoder
            bank needs ``architectures >= 1`` (its space is too large to take whole).
    """

    architectures: int = 16
    seeds: int = 2
    fit_steps: int = 30
    lr: float = 2e-3
    crop_size: int = 64
    batch: int = 16
    channels: int = 16
    seed: int = 0
    skip_architectures: int = 0
    weight_seed: int | None = None
    space: str = "autoencoder"

    def __post_init__(self):
        for name in ("architectures", "seeds", "fit_steps", "crop_size", "batch", "channels",
                     "seed", "skip_architectures"):
            value = getattr(self, name)
            low = 1 if name in ("seeds", "crop_size", "batch", "channels") else 0
            check_int(f"bank config {name}", value, low)
        if self.weight_seed is not None:
            check_int("bank config weight_seed", self.weight_seed, 0)
        if not self.lr > 0:
            raise InvalidInputError(f"bank config lr = {self.lr!r} must be > 0")
        if self.space not in SPACES:
            raise InvalidInputError(f"bank config space = {self.space!r}; valid: "
                                    f"{', '.join(SPACES)}")
        if self.space == "decoder" and self.architectures == 0:
            raise InvalidInputError("a decoder bank needs architectures >= 1 (its space "
                                    "holds over 100,000)")

    def specs(self) -> list[GeneratorSpec]:
        """The bank's models, architecture by architecture, seeds within (deterministic)."""
        rng = random.Random(self.seed if self.weight_seed is None else self.weight_seed)
        if self.space == "decoder":
            from core.synthetic.decoder import decoder_architectures

            chosen = decoder_architectures(self.architectures, self.seed,
                                           size=self.crop_size, channels=self.channels,
                                           skip=self.skip_architectures)
            return [dataclasses.replace(arch, seed=rng.randrange(2**31))
                    for arch in chosen for _ in range(self.seeds)]
        pool = architectures(SYNTHETIC_SPACE, channels=self.channels)
        random.Random(self.seed).shuffle(pool)
        stop = None if self.architectures == 0 else self.skip_architectures + self.architectures
        chosen = pool[self.skip_architectures:stop]
        if not chosen:
            raise InvalidInputError("bank config selects no architecture")
        return [dataclasses.replace(arch, seed=rng.randrange(2**31))
                for arch in chosen for _ in range(self.seeds)]


def _arch_key(spec: GeneratorSpec) -> str:
    return dataclasses.replace(spec, seed=0, name="").to_json(indent=None)


def _fit_batches(crops: torch.Tensor, steps: int, batch: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = crops.shape[0]
    return [torch.randint(n, (batch,), generator=g) for _ in range(steps)]


def fit_stacked(specs: list[GeneratorSpec], crops: torch.Tensor, *, steps: int, lr: float,
                batch: int, seed: int) -> tuple[list[dict], list[float]]:
    """Fit models of one architecture together; return their states and final losses.

    Every model sees the same batches; the loss is the sum of the models' reconstruction
    MSEs, so each model's gradient is its own, and Adam (element-wise) updates each
    exactly as if it were fitted alone. The fit runs on ``crops``' device; the states
    come back on the CPU.
    """
    arch = specs[0]
    if any(_arch_key(s) != _arch_key(arch) for s in specs):
        raise InvalidInputError("fit_stacked needs models of a single architecture")
    m = len(specs)
    singles = [batch_statistics_only(build_generator(s)).state_dict() for s in specs]
    model = batch_statistics_only(network(arch, copies=m))
    model.load_state_dict(stack_states(singles))
    model.to(crops.device)
    losses = [float("nan")] * m
    if steps:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for idx in _fit_batches(crops, steps, batch, seed):
            x = crops[idx].repeat(1, m, 1, 1)
            per_model = (model(x) - x).square().view(len(idx), m, -1).mean((0, 2))
            opt.zero_grad(set_to_none=True)
            per_model.sum().backward()
            opt.step()
        losses = per_model.detach().tolist()
    states = [{k: v.detach().cpu().clone() for k, v in s.items()}
              for s in unstack_state(model.state_dict(), m)]
    return states, losses


def fit_one(spec: GeneratorSpec, crops: torch.Tensor, *, steps: int, lr: float, batch: int,
            seed: int) -> tuple[dict, float]:
    """Fit one model alone (the reference that :func:`fit_stacked` must reproduce), on
    ``crops``' device; the state comes back on the CPU."""
    model = batch_statistics_only(build_generator(spec)).to(crops.device)
    loss = float("nan")
    if steps:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for idx in _fit_batches(crops, steps, batch, seed):
            x = crops[idx]
            err = (model(x) - x).square().mean()
            opt.zero_grad(set_to_none=True)
            err.backward()
            opt.step()
        loss = float(err.detach())
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, loss


def match_statistics(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Give ``y`` the per-image, per-channel mean and std of ``x``: an affine map that
    moves only the DC term and the overall level (random weights make arbitrary gains)."""
    ym, ys = y.mean((-2, -1), keepdim=True), y.std((-2, -1), keepdim=True).clamp(min=1e-6)
    xm, xs = x.mean((-2, -1), keepdim=True), x.std((-2, -1), keepdim=True)
    return (y - ym) / ys * xs + xm


class SyntheticBank:
    """Fitted synthetic models: ``specs[i]`` and ``states[i]`` describe model ``i``."""

    def __init__(self, config: BankConfig, specs: list[GeneratorSpec], states: list[dict],
                 losses: list[float]):
        self.config, self.specs, self.states, self.losses = config, specs, states, losses
        self._groups: dict[str, list[int]] = defaultdict(list)
        for i, spec in enumerate(specs):
            self._groups[_arch_key(spec)].append(i)
        self._skeletons: dict[tuple[str, int], SyntheticGenerator] = {}
        self._placed: tuple[torch.device, list[dict]] | None = None  # states on a device

    def _states_on(self, device: torch.device) -> list[dict]:
        """``states`` on ``device``, copied there once (not at every batch)."""
        if device.type == "cpu":
            return self.states
        if self._placed is None or self._placed[0] != device:
            self._placed = (device, [{n: t.to(device) for n, t in s.items()}
                                     for s in self.states])
        return self._placed[1]

    def __len__(self) -> int:
        return len(self.specs)

    @classmethod
    def build(cls, config: BankConfig, crops: torch.Tensor, progress=None,
              strategy: str = "auto", models: int | None = None) -> SyntheticBank:
        """Build and fit the models of ``config`` on ``crops`` ``(N, 3, S, S)`` in [-1, 1].

        Args:
            progress: called with the number of models just fitted, after each
                architecture.
            strategy: ``stacked`` (one stacked fit per architecture), ``sequential`` (one
                model after another) or ``auto`` (stacked on CUDA, else sequential).
            models: fit only the first ``models`` models (all by default). They are the
                very models the whole bank holds first (same weights, batches and
                seeds): what ``fpx bank sample --models N`` needs, without fitting the
                rest.
        """
        if models is not None:
            check_int("models", models)
        if strategy not in ("auto", "stacked", "sequential"):
            raise InvalidInputError(f"unknown strategy '{strategy}'; valid: auto, stacked, "
                                    "sequential")
        if strategy == "auto":
            strategy = "stacked" if crops.is_cuda else "sequential"
        if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[-1] != config.crop_size:
            raise InvalidInputError(f"bank crops must be (N, 3, {config.crop_size}, "
                                    f"{config.crop_size}), got {tuple(crops.shape)}")
        specs = config.specs()[:models]
        states: list[dict] = [{}] * len(specs)
        losses: list[float] = [float("nan")] * len(specs)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, spec in enumerate(specs):
            groups[_arch_key(spec)].append(i)
        for g, members in enumerate(groups.values()):
            options = dict(steps=config.fit_steps, lr=config.lr, batch=config.batch,
                           seed=config.seed + g)
            if strategy == "stacked":
                fitted, loss = fit_stacked([specs[i] for i in members], crops, **options)
            else:
                pairs = [fit_one(specs[i], crops, **options) for i in members]
                fitted, loss = [p[0] for p in pairs], [p[1] for p in pairs]
            for i, state, value in zip(members, fitted, loss):
                states[i], losses[i] = state, value
            if progress is not None:
                progress(len(members))
        return cls(config, specs, states, losses)

    # --- running ---------------------------------------------------------------------

    def _skeleton(self, key: str, copies: int) -> SyntheticGenerator:
        if (key, copies) not in self._skeletons:
            spec = spec_from_dict(json.loads(key))
            with torch.device("meta"):
                self._skeletons[(key, copies)] = batch_statistics_only(
                    network(spec, copies=copies))
        return self._skeletons[(key, copies)]

    @torch.no_grad()
    def generate(self, ids, x: torch.Tensor) -> torch.Tensor:
        """Run models ``ids`` on images: ``x`` ``(len(ids), K, 3, S, S)`` (each model its
        own K images) -> ``(len(ids), K, 3, S, S)``, levels matched to the inputs.

        Models of one architecture run as one stacked network.
        """
        ids = [int(i) for i in ids]
        if x.ndim != 5 or x.shape[0] != len(ids) or x.shape[2] != 3:
            raise InvalidInputError(f"x must be (len(ids)={len(ids)}, K, 3, S, S), got "
                                    f"{tuple(x.shape)}")
        if ids and not 0 <= min(ids) <= max(ids) < len(self):
            raise InvalidInputError(f"model ids must lie in 0..{len(self) - 1}")
        out = torch.empty_like(x)
        by_arch: dict[str, list[int]] = defaultdict(list)
        for pos, i in enumerate(ids):
            by_arch[_arch_key(self.specs[i])].append(pos)
        k, s = x.shape[1], x.shape[-1]
        states = self._states_on(x.device)
        for key, positions in by_arch.items():
            params = stack_states([states[ids[p]] for p in positions])
            inp = x[positions].transpose(0, 1).reshape(k, len(positions) * 3, s, s)
            y = functional_call(self._skeleton(key, len(positions)), params, (inp,))
            out[positions] = y.reshape(k, len(positions), 3, s, s).transpose(0, 1)
        return match_statistics(out, x)

    # --- storage ---------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write ``bank.safetensors`` and ``bank.json`` into ``folder`` (atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"{i}/{name}": t.contiguous() for i, state in enumerate(self.states)
                   for name, t in state.items()}
        with atomic_path(folder / "bank.safetensors") as tmp:
            save_file(tensors, str(tmp))
        record = {"format": BANK_FORMAT, "config": dataclasses.asdict(self.config),
                  "specs": [s.to_dict() for s in self.specs], "losses": self.losses,
                  "code_version": code_version()}
        atomic_write(folder / "bank.json", json.dumps(record, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SyntheticBank:
        """Read a bank written by :meth:`save`; anything else is refused."""
        folder = Path(folder)
        try:
            record = json.loads((folder / "bank.json").read_text())
        except FileNotFoundError:
            raise InvalidInputError(f"{folder}: no bank.json (not a synthetic bank)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InvalidInputError(f"{folder}/bank.json is corrupt: {err}") from None
        if not isinstance(record, dict) or record.get("format") != BANK_FORMAT:
            raise InvalidInputError(f"{folder}/bank.json is not an fpx synthetic bank")
        config = BankConfig(**record["config"])
        specs = [spec_from_dict(d) for d in record["specs"]]
        try:
            tensors = load_file(str(folder / "bank.safetensors"))
        except (FileNotFoundError, OSError, Exception) as err:
            raise InvalidInputError(f"{folder}/bank.safetensors cannot be read: {err}") from None
        states: list[dict] = [{} for _ in specs]
        for key, t in tensors.items():
            i, name = key.split("/", 1)
            states[int(i)][name] = t
        for i, spec in enumerate(specs):
            expected = batch_statistics_only(build_generator(spec)).state_dict()
            if set(states[i]) != set(expected) or any(
                    states[i][n].shape != expected[n].shape for n in expected):
                raise InvalidInputError(f"{folder}: weights of model {i} do not match its spec")
        return cls(config, specs, states, [float(v) for v in record["losses"]])
