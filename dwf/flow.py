"""Flow matching from Gaussian noise to latent codes (PAPER.md §4-7).

Path x_t = (1 - t) x0 + t x1 + sigma * eps with fresh x0 ~ N(0, s^2 I) every step; the velocity
network regresses x1 - x0. Sampling integrates the EMA network's field from t = 0 to 1.

A conditional flow also reads a label y in {0..L-1} (e.g. which dataset a net was trained on),
with an extra null label L that replaces y on a share of training steps (`label_dropout`), so
one net learns both v(x, t | y) and v(x, t). Sampling with classifier-free guidance w follows
v_null + w (v_y - v_null): w = 1 is the plain conditional field, w > 1 pushes toward the label.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm import tqdm

from . import checkpoint as ckpt, devices, ode
from .config import SNAPSHOTS, FlowSpec
from .errors import ArtifactError, ConfigError, DwfError
from .io import load_json, load_tensors, save_json, save_tensors
from .record import from_json
from .velocity_stack import VelocityStack

log = logging.getLogger(__name__)


class VelocityNet(nn.Module):
    """v(x, t [, y]): time MLP embedding (and, with labels, a label embedding whose last row is
    the null label) concatenated with x, then the paper's LN-GELU-Dropout MLP."""

    def __init__(self, dim: int, hidden: int = 64, time_dim: int = 64, dropout: float = 0.1,
                 n_labels: int = 0):
        super().__init__()
        self.n_labels = n_labels
        self.time = nn.Sequential(nn.Linear(1, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim))
        self.label = nn.Embedding(n_labels + 1, time_dim) if n_labels else None
        h2 = max(1, hidden // 2)
        self.net = nn.Sequential(
            nn.Linear(dim + time_dim * (2 if n_labels else 1), hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, h2), nn.LayerNorm(h2), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(h2, hidden), nn.LayerNorm(hidden), nn.GELU(),
            nn.Linear(hidden, dim),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, d), t (B,), y (B,) labels in [0, n_labels] (n_labels: null; None: all null) -> (B, d)
        h = [x, self.time(t[:, None])]
        if self.label is not None:
            h.append(self.label(torch.full_like(t, self.n_labels, dtype=torch.long) if y is None else y))
        return self.net(torch.cat(h, dim=1))


@dataclass
class Flow:
    """A fitted flow: EMA velocity net plus the code scaling it was trained in."""
    net: VelocityNet
    spec: FlowSpec
    scale: torch.Tensor            # (d,) codes are divided by this before training
    history: dict = field(default_factory=dict)  # step, train_loss, val_loss, lr

    @property
    def dim(self) -> int:
        return self.scale.shape[0]

    @property
    def n_labels(self) -> int:
        return self.net.n_labels

    @torch.no_grad()
    def sample(self, n: int, steps: int = 100, method: str = "rk4",
               generator: torch.Generator | None = None, source_std: float | None = None,
               trajectory: bool = False, label: int | None = None, guidance: float = 1.0) -> torch.Tensor:
        """(n, d) codes, or with `trajectory` (steps + 1, n, d) along the ODE path. A conditional
        flow samples `label` with guidance weight `guidance` (label None: the null label)."""
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        s = self.spec.source_std if source_std is None else source_std
        if s <= 0:
            raise ConfigError(f"source std must be > 0, got {s}")
        if label is not None and not 0 <= label < self.n_labels:
            raise ConfigError(f"label {label} is out of range: this flow knows "
                              f"{self.n_labels} labels" + ("" if self.n_labels else " (it is unconditional)"))
        dev = devices.current().device
        x0 = torch.randn(n, self.dim, generator=generator) * s                # drawn on the CPU, as on any device
        x = ode.integrate(self._field(devices.on_device(self.net, dev).eval(), label, guidance), x0.to(dev),
                          steps=steps, method=method, trajectory=trajectory)
        return x.cpu() * self.scale

    @staticmethod
    def _field(net: VelocityNet, label: int | None, guidance: float):
        """v(x, t) for the ODE: unconditional, or guided toward `label`."""
        if label is None:
            return net

        def guided(x, t):
            y = torch.full((x.shape[0],), label, dtype=torch.long, device=x.device)
            v_label = net(x, t, y)
            if guidance == 1.0:
                return v_label
            v_null = net(x, t)
            return v_null + guidance * (v_label - v_null)

        return guided

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        save_tensors(d / "flow.safetensors", {**{f"net.{k}": v for k, v in self.net.state_dict().items()},
                                              "scale": self.scale})
        save_json(d / "flow.json", {"spec": dataclasses.asdict(self.spec), "history": self.history,
                                    "n_labels": self.n_labels})

    @classmethod
    def load(cls, directory: str | Path) -> "Flow":
        d = Path(directory)
        meta = load_json(d / "flow.json")
        t = load_tensors(d / "flow.safetensors")
        if not isinstance(meta, dict) or not {"spec", "history"} <= set(meta) or "scale" not in t:
            raise ArtifactError(f"{d} is not a saved flow (flow.json needs 'spec' and 'history', "
                                "flow.safetensors needs 'scale'); delete the folder and re-run")
        spec = from_json(FlowSpec, meta["spec"], str(d / "flow.json") + ".spec")
        net = VelocityNet(t["scale"].shape[0], spec.hidden, spec.time_dim, spec.dropout,
                          int(meta.get("n_labels", 0)))
        try:
            net.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("net.")})
        except RuntimeError as e:
            raise ArtifactError(f"{d / 'flow.safetensors'} does not match its flow.json ({e}); "
                                "delete the flow folder and re-run") from e
        return cls(net.eval(), spec, t["scale"], meta["history"])


def fit(Z: torch.Tensor, spec: FlowSpec, generator: torch.Generator | None = None,
        progress: bool = True, labels: torch.Tensor | None = None) -> Flow:
    """Fit a flow to codes Z (n, d), conditional on `labels` (n,) in {0..L-1} when given.
    Held-out codes give a validation loss (EMA net, fixed noise, true labels); the EMA snapshot
    with the lowest validation loss is returned (`spec.snapshot` "best"; "last": the final EMA
    weights). `generator` (optional) draws the seed."""
    if generator is not None:
        spec = dataclasses.replace(spec, seed=int(torch.randint(2**62, (1,), generator=generator)))
    return fit_many(Z, [spec], progress, labels)[0]


def fit_many(Z: torch.Tensor | Sequence[torch.Tensor], specs: list[FlowSpec], progress: bool = True,
             labels: torch.Tensor | None = None, checkpoint_path: Path | None = None,
             on_eval: Callable[[int], None] | None = None) -> list[Flow]:
    """One flow per spec (specs that differ only in seed: replicates), trained as one stack
    (dwf.velocity_stack) in one loop. Replicate r draws everything from its own seed (its
    validation split, initialization, batches, noise, dropout), so it is the flow `fit` returns
    for specs[r] alone, up to floating-point summation order.

    Z is one (n, d) code matrix for every spec, or one per spec (codes of one shape from
    several runs, e.g. an experiment and its ablations: `dwf.pipeline.fit_flows`); replicate r
    then fits Z[r] as it would alone. The stack's step costs little more than one flow's (these
    nets are small: per-step overhead dominates), so fitting runs together saves time.

    With `checkpoint_path`, the whole training state (weights, EMA, optimizer, scheduler, every
    generator, histories, best snapshots) is saved there at each validation step (`dwf.checkpoint`)
    and a later call with the same codes and specs resumes from it: the result equals an
    uninterrupted fit bit for bit at the same thread count. `on_eval(step)` runs after each
    validation step (and its checkpoint).

    The nets train on the run's device (`dwf.devices`) in float32; every random draw is made on
    the CPU from the replicate's generator, so a device changes only the arithmetic."""
    if not specs or len({dataclasses.replace(s, seed=0) for s in specs}) != 1:
        raise ConfigError("fit_many() takes one or more flow specs that differ only in their seed")
    shared = isinstance(Z, torch.Tensor)
    codes = [torch.as_tensor(z).float() for z in ([Z] * len(specs) if shared else Z)]
    if len(codes) != len(specs) or len({tuple(z.shape) for z in codes}) != 1:
        raise ConfigError(f"fit_many() takes one code matrix, or one per spec of one shape; got "
                          f"{[tuple(z.shape) for z in codes]} for {len(specs)} specs")
    Z = codes[0]
    if Z.ndim != 2 or Z.shape[0] < 2:
        raise ConfigError(f"flow needs codes of shape (n >= 2, d), got {tuple(Z.shape)}")
    if not all(torch.isfinite(z).all() for z in codes):
        raise DwfError("the latent codes hold NaN or inf; the zoo or PCA stage is broken")
    spec = specs[0]
    n_labels = 0
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (Z.shape[0],) or labels.min() < 0:
            raise ConfigError(f"labels must be (n,) = ({Z.shape[0]},) non-negative integers, got "
                              f"shape {tuple(labels.shape)}")
        n_labels = int(labels.max()) + 1
    if not 0.0 <= spec.label_dropout < 1.0:
        raise ConfigError(f"label_dropout must be in [0, 1), got {spec.label_dropout}")
    if spec.snapshot not in SNAPSHOTS:
        raise ConfigError(f"flow snapshot must be one of {SNAPSHOTS}, got {spec.snapshot!r}")
    scales = [z.std(0).clamp_min(1e-8) if spec.standardize else torch.ones(z.shape[1]) for z in codes]
    Zs = [z / sc for z, sc in zip(codes, scales)]                               # R × (n, d)
    n, d, R = Z.shape[0], Z.shape[1], len(specs)
    n_val = int(round(spec.val_fraction * n)) if n >= 10 else 0
    gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    orders = [torch.randperm(n, generator=g) for g in gens]
    val = torch.stack([z[o[:n_val]] for z, o in zip(Zs, orders)])               # (R, n_val, d)
    train = torch.stack([z[o[n_val:]] for z, o in zip(Zs, orders)])             # (R, n_train, d)
    y_val = torch.stack([labels[o[:n_val]] for o in orders]) if n_labels else None
    y_train = torch.stack([labels[o[n_val:]] for o in orders]) if n_labels else None
    nets = []
    for s in specs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)
            nets.append(VelocityNet(d, spec.hidden, spec.time_dim, spec.dropout, n_labels))
    dev = devices.current().device
    stack = VelocityStack(nets, dev)
    params = list(stack.params.values())
    ema = {k: v.detach().clone() for k, v in stack.params.items()}
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay, betas=spec.betas, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.steps, eta_min=spec.lr_min)
    hists = [{"step": [], "train_loss": [], "val_loss": [], "lr": []} for _ in specs]
    best = [stack.state_dict(r, ema) for r in range(R)]
    best_loss = [math.inf] * R
    run = torch.zeros(R, device=dev)
    bs = min(spec.batch_size, train.shape[1])
    rows = torch.arange(R)[:, None]
    fp = ckpt.fingerprint(*(codes[:1] if shared else codes), labels, [dataclasses.asdict(s) for s in specs])
    start = 1
    saved = ckpt.load(checkpoint_path, fp) if checkpoint_path is not None else None
    if saved is not None:
        start = _restore(saved, stack, ema, opt, sched, gens, hists, best, best_loss) + 1
        log.info("resuming flow fitting at step %d of %d", start, spec.steps)
    for step in tqdm(range(start, spec.steps + 1), initial=start - 1, total=spec.steps, disable=not progress,
                     desc=f"flow ×{R}", unit="step"):
        idx = torch.stack([torch.randint(train.shape[1], (bs,), generator=g) for g in gens])   # (R, bs)
        y = None
        if n_labels:   # each label is replaced by the null label with prob. label_dropout
            drop = torch.stack([torch.rand(bs, generator=g) for g in gens]) < spec.label_dropout
            y = torch.where(drop, n_labels, y_train[rows, idx])
        loss = _path_loss(stack, stack.params, train[rows, idx], spec, gens, y, dropout=True)   # (R,)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        sched.step()
        decay = min(spec.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.values()), params, 1 - decay)
        run += loss.detach()
        if step % spec.eval_every == 0 or step == spec.steps:
            k = step - (hists[0]["step"][-1] if hists[0]["step"] else 0)
            vl = _val_loss(stack, ema, val, spec, y_val) if n_val else [float("nan")] * R
            for r, h in enumerate(hists):
                h["step"].append(step)
                h["train_loss"].append(float(run[r]) / k)
                h["val_loss"].append(vl[r])
                h["lr"].append(sched.get_last_lr()[0])
                if not n_val or vl[r] < best_loss[r]:
                    best_loss[r], best[r] = vl[r], stack.state_dict(r, ema)
            run.zero_()
            if checkpoint_path is not None and step < spec.steps:
                _save(checkpoint_path, fp, step, stack, ema, opt, sched, gens, hists, best, best_loss)
            if on_eval is not None:
                on_eval(step)
    if spec.snapshot == "last":   # the final EMA weights, whatever the held-out loss did
        best = [stack.state_dict(r, ema) for r in range(R)]
        best_loss = [h["val_loss"][-1] for h in hists]
    flows = []
    for r, s in enumerate(specs):
        net = VelocityNet(d, spec.hidden, spec.time_dim, spec.dropout, n_labels)
        net.load_state_dict(best[r])
        hists[r]["best_val_loss"] = best_loss[r]   # of the weights returned
        flows.append(Flow(net.eval(), s, scales[r], hists[r]))
    return flows


def _save(path: Path, fp: str, step: int, stack: VelocityStack, ema: dict, opt, sched, gens, hists, best,
          best_loss) -> None:
    t = {f"param.{k}": v.detach() for k, v in stack.params.items()} | {f"ema.{k}": v for k, v in ema.items()}
    t |= {f"best.{r}.{k}": v for r, sd in enumerate(best) for k, v in sd.items()}
    t |= {f"generator.{r}": g.get_state() for r, g in enumerate(gens)} | ckpt.optimizer_tensors(opt)
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.state_dict()["param_groups"]]
    ckpt.save(path, fp, t, {"step": step, "histories": hists, "best_loss": best_loss, "param_groups": groups,
                            "scheduler": sched.state_dict()})


def _restore(saved, stack: VelocityStack, ema: dict, opt, sched, gens, hists, best, best_loss) -> int:
    """Load a `_save`d training state in place; returns its step."""
    t, meta = saved
    with torch.no_grad():
        for k, v in stack.params.items():
            v.copy_(t[f"param.{k}"])
            ema[k].copy_(t[f"ema.{k}"])
    for r, g in enumerate(gens):
        g.set_state(t[f"generator.{r}"])
        best[r] = {k: t[f"best.{r}.{k}"] for k in best[r]}
        best_loss[r] = float(meta["best_loss"][r])
        hists[r].update(meta["histories"][r])
    ckpt.restore_optimizer(opt, t, meta["param_groups"])
    sched.load_state_dict(meta["scheduler"])
    return int(meta["step"])


def _path_loss(stack: VelocityStack, params: dict, x1: torch.Tensor, spec: FlowSpec,
               gens: list[torch.Generator], y: torch.Tensor | None = None, dropout: bool = False) -> torch.Tensor:
    """(R,) mean squared error of each replicate's velocity on its batch x1 (R, B, d) (on the
    CPU, as its labels y; the noise is drawn there too and moved to the stack's device)."""
    R, B, d = x1.shape
    dev = stack.device
    x0 = torch.stack([torch.randn(B, d, generator=g) for g in gens]).to(dev) * spec.source_std
    t = torch.stack([torch.rand(B, generator=g) for g in gens]).to(dev)         # (R, B)
    eps = torch.stack([torch.randn(B, d, generator=g) for g in gens]).to(dev) * spec.path_noise
    x1 = x1.to(dev)
    xt = (1 - t[..., None]) * x0 + t[..., None] * x1 + eps
    v = stack.forward(params, xt, t, None if y is None else y.to(dev), gens if dropout else None)
    return ((v - (x1 - x0)) ** 2).mean(dim=(1, 2))


@torch.no_grad()
def _val_loss(stack: VelocityStack, params: dict, val: torch.Tensor, spec: FlowSpec,
              y: torch.Tensor | None = None, repeats: int = 32) -> list[float]:
    """Each replicate's validation loss: its EMA net on its held-out codes, fixed noise."""
    gens = [torch.Generator().manual_seed(1234) for _ in range(val.shape[0])]
    return _path_loss(stack, params, val.repeat(1, repeats, 1), spec, gens,
                      None if y is None else y.repeat(1, repeats)).tolist()
