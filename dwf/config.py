"""Typed configuration: one frozen dataclass per pipeline stage, bundled into an Experiment.

Every stage's cache key is a hash of its own spec *and* the specs of the stages before it, so a
change anywhere upstream invalidates exactly the artifacts that depend on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from .errors import ConfigError


@dataclass(frozen=True)
class DataSpec:
    name: str                      # "iris" | "digits" | "fmnist" | "mnist" | "cifar10" | "cifar100" | "svhn" | "stl10"
    val_fraction: float = 0.1      # carved from the training split, never from test
    train_limit: int | None = None  # subsample the training split (quick profiles)
    test_limit: int | None = None  # a fixed seeded subset of the test split (smoke; quick convnets, ViT)
    val_limit: int | None = None   # a seeded subset of the validation carve (smoke; quick convnets, ViT)
    seed: int = 0                  # split / subsample seed
    resize: int | None = None      # images resized (bilinear) to resize x resize, e.g. digits to 28
    vocab: str = "minilm"          # vader token ids: "minilm" (MiniLM-L6's 30,522 word pieces) or
                                   # "lexicon" (only the ~4k pieces the lexicon uses; dwf.data.vader_tokenizer)


@dataclass(frozen=True)
class ArchSpec:
    kind: str                      # "mlp" | "cnn" | "resnet20" | "resnet18" | "vit" | "bert"
    in_dim: int                    # input features (mlp), input channels (convnets, vit), 0 (bert)
    hidden: tuple[int, ...] = ()   # hidden widths (mlp), channels per conv stage (cnn), (dim,) (vit, bert)
    out_dim: int = 10              # classes (1 for a regression output)
    width: float = 1.0             # channel multiplier (cnn, resnets)
    depth: int = 0                 # transformer blocks (vit, bert)
    heads: int = 0                 # attention heads per block (vit, bert)
    patch: int = 0                 # patch side (vit)
    image_size: int = 0            # input side (vit)
    vocab: int = 0                 # token vocabulary (bert)
    max_len: int = 0               # longest input in tokens (bert)
    pretrained: str = ""           # bert: "" (random init) or "minilm-l6" (the shipped MiniLM-L6)


@dataclass(frozen=True)
class ZooSpec:
    n_models: int
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"     # "constant" | "cosine" (per step, from lr to 0 over all epochs)
    seed: int = 0                  # model i starts from seed + i
    data_order: str = "rotated"    # "rotated" | "independent": which samples each member sees (dwf.batches)


@dataclass(frozen=True)
class AlignSpec:
    method: str = "weight_matching"  # "weight_matching" (MLP, convnets) | "transfusion" (transformers) | "none"
    reference: int | str = 0         # a member index, or "medoid"
    stream: bool = True              # transfusion: also align the residual stream
    max_iter: int = 100
    seed: int = 0


@dataclass(frozen=True)
class PCASpec:
    n_components: int | None = None  # None and variance None: n - 1 (all the zoo's directions)
    variance: float | None = None    # smallest k whose explained-variance ratio reaches this
    held_out: float = 0.25           # share of the zoo kept out of PCA and flow fitting (dwf.zoo.split)


@dataclass(frozen=True)
class FlowSpec:
    hidden: int = 64               # h in PAPER.md §5
    time_dim: int = 64
    dropout: float = 0.1
    steps: int = 30_000
    batch_size: int = 8
    lr: float = 5e-4
    lr_min: float = 1e-6
    weight_decay: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.95)
    source_std: float = 0.01       # x0 ~ N(0, s^2 I)
    path_noise: float = 0.001      # sigma of the noise added along the linear path
    ema_decay: float = 0.999
    val_fraction: float = 0.1      # codes held out for the flow's validation loss
    eval_every: int = 500
    seed: int = 0
    standardize: bool = False      # train on codes divided by their per-component std
    label_dropout: float = 0.1     # conditional flows: share of training labels replaced by the null label
    snapshot: str = "best"         # the EMA weights returned: "best" held-out loss (early stopping) or "last"


SOLVERS = ("euler", "midpoint", "rk4")   # dwf.ode
SNAPSHOTS = ("best", "last")              # FlowSpec.snapshot
MAX_SEED = 2**31 - 1   # derived seeds (seed · 1_000_003 + i) stay far inside torch's 64-bit range


@dataclass(frozen=True)
class SampleSpec:
    n: int = 100
    steps: int = 100
    method: str = "rk4"            # "euler" | "midpoint" | "rk4"
    source_std: float | None = None  # None: the flow's training source std
    guidance: float = 1.0          # conditional flows: classifier-free guidance weight (1 = plain conditional)
    bn_samples: int = 1024         # training images for BatchNorm recalibration
    seed: int = 0

    def __post_init__(self):
        whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        for name, least in (("n", 1), ("steps", 1), ("bn_samples", 1), ("seed", 0)):
            v = getattr(self, name)
            if not whole(v) or v < least:
                raise ConfigError(f"sampling: {name} must be a whole number >= {least}, got {v!r}")
        if self.method not in SOLVERS:
            raise ConfigError(f"sampling: unknown ODE solver {self.method!r}; use one of {', '.join(SOLVERS)}")
        if self.source_std is not None and not (math.isfinite(self.source_std) and self.source_std > 0):
            raise ConfigError(f"sampling: the source std must be a finite number > 0, got {self.source_std!r}")
        if not math.isfinite(self.guidance):
            raise ConfigError(f"sampling: the guidance weight must be finite, got {self.guidance!r}")


@dataclass(frozen=True)
class EvalSpec:
    noise_sigmas: tuple[float, ...] = (0.001, 0.01, 0.03)
    n_baseline: int = 32           # nets per baseline (0: no baselines)
    interpolation: bool = True     # loss barrier between zoo members 0 and 1, naive vs aligned
    seed: int = 0
    frontier_stds: tuple[float, ...] = ()  # source stds of the accuracy-novelty frontier (dwf.frontier); () = none
    replicates: int = 3            # flow fits + samples + baselines, each with its own seed


POPULATION_SOURCES = ("zoo", "held_out", "generated", "noisy", "interpolation", "code_gaussian",
                      "encode_decode")
BN_STATISTICS = ("own", "recalibrate", "mean", "member")


@dataclass(frozen=True)
class PopulationSpec:
    """One population of nets a report scores, declared by where its nets come from:

    zoo: the fitting members; held_out: members kept out of PCA and flow fitting; generated: the
    flow's nets (a conditional flow's for `label`, at `guidance`); noisy: fitting members plus
    N(0, σ²) weight noise; interpolation: (1 − λ) a + λ b of aligned pairs (λ fixed, or None for
    U[0.25, 0.75]); code_gaussian: a Gaussian fitted to the PCA codes (mean and per-component
    std, the std times `scale`), decoded; encode_decode: fitting members through PCA encode → decode.
    `bn`: BatchNorm statistics: the nets' "own" (trained members only), "recalibrate"d on the
    training split, the zoo's "mean", or one "member"'s (the reference's)."""
    source: str
    bn: str = "recalibrate"
    sigma: float = 0.0
    lam: float | None = None
    label: int | None = None
    guidance: float | None = None
    scale: float = 1.0

    def __post_init__(self):
        if self.source not in POPULATION_SOURCES:
            raise ConfigError(f"unknown population source {self.source!r}; use one of {POPULATION_SOURCES}")
        if self.bn not in BN_STATISTICS:
            raise ConfigError(f"unknown BatchNorm statistics {self.bn!r}; use one of {BN_STATISTICS}")
        if self.bn == "own" and self.source not in ("zoo", "held_out"):
            raise ConfigError("only trained members (zoo, held_out) have their own BatchNorm statistics")
        if self.source == "noisy" and not self.sigma > 0:
            raise ConfigError(f"noisy copies need sigma > 0, got {self.sigma}")
        if self.lam is not None and not 0 <= self.lam <= 1:
            raise ConfigError(f"interpolation lambda must be in [0, 1], got {self.lam}")
        if self.scale != 1.0 and (self.source != "code_gaussian" or not self.scale >= 0):
            raise ConfigError(f"scale {self.scale} is for the code Gaussian's std and must be >= 0; "
                              "other populations take sigma (noisy copies) or lam (interpolations)")

    @property
    def replicated(self) -> bool:
        """Whether the nets depend on the replicate's seed (the zoo and its encodings do not)."""
        return self.source not in ("zoo", "held_out", "encode_decode")

    @property
    def key(self) -> str:
        """A stable identifier (seeds and lookups), e.g. 'noisy|recalibrate|s=0.01'."""
        parts = [self.source, self.bn] + ([f"s={self.sigma:g}"] if self.sigma else [])
        parts += [f"c={self.scale:g}"] if self.scale != 1.0 else []
        parts += [f"{k}={v:g}" for k, v in (("l", self.lam), ("y", self.label), ("w", self.guidance))
                  if v is not None]
        return "|".join(parts)


@dataclass(frozen=True)
class TransferSpec:
    """Few-shot transfer of generated nets to another task (dwf.transfer)."""
    data: DataSpec                 # the target task, e.g. DataSpec("digits", resize=28)
    shots: int = 10                # training images per class
    val_shots: int = 10            # validation images per class, for epoch selection
    epochs: tuple[int, ...] = (0, 1, 5)  # reported epochs (0: linear probe); trains to the max
    n_models: int = 8              # nets per initialization (generated, zoo, random)
    lr: float = 1e-3
    batch_size: int = 20
    probe_c: float = 1.0           # inverse L2 strength of the logistic-regression probe
    seed: int = 0


@dataclass(frozen=True)
class Experiment:
    name: str
    profile: str
    data: DataSpec
    arch: ArchSpec
    zoo: ZooSpec
    align: AlignSpec = field(default_factory=AlignSpec)
    pca: PCASpec = field(default_factory=PCASpec)
    flow: FlowSpec = field(default_factory=FlowSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    transfer: tuple[TransferSpec, ...] = ()  # targets for few-shot transfer, in the report
    variant: str = ""              # an ablation of the experiment: shares its zoo, own later stages
    members: int | None = None     # from alignment on, only the zoo's first `members` nets (None: all);
                                   # with the independent data order they are the zoo of that size
    task: str = field(default="", compare=False)  # what the nets do, in words (not hashed)
    zoo_replicates: int = 1        # independent zoos (run seeds seed, seed+1, …) that dwf.replicas
                                   # repeats the whole run over; no stage depends on it

    def __post_init__(self):
        if self.zoo_replicates < 1:
            raise ConfigError(f"zoo_replicates must be >= 1, got {self.zoo_replicates}")
        if self.members is not None and not 3 <= self.members <= self.zoo.n_models:
            raise ConfigError(f"members must be from 3 to the zoo's {self.zoo.n_models} nets, got {self.members}")

    STAGES = ("zoo", "align", "pca", "flow", "report", "reach")   # reach: the scaling study's (dwf.reach)
    ZOO_SPECS = ("data", "arch", "zoo")      # what a variant may not change

    @property
    def seed(self) -> int:
        """The run's seed (`with_seed` seeds every stage from it); part of the artifacts path."""
        return self.zoo.seed

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("task")
        d.pop("zoo_replicates")
        return d

    def stage_hash(self, stage: str) -> str:
        """Hash of everything the given stage depends on (its spec and all upstream specs)."""
        deps = {
            "zoo": ("data", "arch", "zoo"),
            "align": ("data", "arch", "zoo", "members", "align"),
            "pca": ("data", "arch", "zoo", "members", "align", "pca"),
            "flow": ("data", "arch", "zoo", "members", "align", "pca", "flow"),
            "report": ("data", "arch", "zoo", "members", "align", "pca", "flow", "sample", "eval", "transfer"),
            "reach": ("data", "arch", "zoo", "members", "align", "pca", "flow", "sample", "eval"),
        }[stage]
        full = self.to_dict()
        payload = json.dumps({k: full[k] for k in deps}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def ablation(self, name: str, **changes) -> "Experiment":
        """A variant of this experiment: the same zoo, other specs for the stages after it
        (e.g. `align=AlignSpec(method="none")`). Its stages are cached beside the experiment's."""
        if not name or "/" in name:
            raise ConfigError(f"a variant needs a plain, non-empty name, got {name!r}")
        touched = sorted(set(changes) & set(self.ZOO_SPECS))
        if touched:
            raise ConfigError(f"variant {name!r} changes {touched}; a variant shares the zoo, so it "
                              "may only change align, pca, flow, sample, eval or transfer")
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"variant {name!r}: unknown fields {unknown}")
        return dataclasses.replace(self, variant=name, **changes)

    def with_seed(self, seed: int) -> "Experiment":
        """The same experiment with every stage seeded from `seed` (0 ≤ seed < 2³¹)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
        r = dataclasses.replace
        return r(self, data=r(self.data, seed=seed), zoo=r(self.zoo, seed=seed),
                 align=r(self.align, seed=seed), flow=r(self.flow, seed=seed),
                 sample=r(self.sample, seed=seed), eval=r(self.eval, seed=seed))


@dataclass(frozen=True)
class ConditionalExperiment:
    """One conditional flow over the zoos of several experiments that share an architecture:
    label k is `members[k]`, whose dataset its generated nets are evaluated on. Each member's
    zoo is its own experiment's (shared cache); everything after is joint: all nets aligned to
    member 0's reference, one PCA, one flow with a label embedding and a null label."""
    name: str
    profile: str
    members: tuple[Experiment, ...]
    align: AlignSpec = field(default_factory=AlignSpec)
    pca: PCASpec = field(default_factory=PCASpec)
    flow: FlowSpec = field(default_factory=FlowSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    guidance: tuple[float, ...] = (0.0, 2.0)   # weights evaluated besides sample.guidance (0: unconditional)

    STAGES = ("align", "pca", "flow", "report")

    def __post_init__(self):
        if len(self.members) < 2:
            raise ConfigError(f"a conditional experiment needs at least 2 member zoos, got {len(self.members)}")
        arches = {m.arch for m in self.members}
        if len(arches) != 1:
            raise ConfigError(f"the member zoos of {self.name!r} must share one architecture, got "
                              f"{sorted(str(a) for a in arches)}")

    @property
    def arch(self) -> ArchSpec:
        return self.members[0].arch

    @property
    def labels(self) -> list[str]:
        """Label k's name: its member's dataset (with the resize, when there is one)."""
        return [m.data.name + (f"{m.data.resize}" if m.data.resize else "") for m in self.members]

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["members"] = [m.to_dict() for m in self.members]
        return json.loads(json.dumps({k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
                                      for k, v in d.items()}, default=str))

    def stage_hash(self, stage: str) -> str:
        """Hash of the member zoos' configs and every joint spec up to `stage`."""
        own = {"align": ("align",), "pca": ("align", "pca"), "flow": ("align", "pca", "flow"),
               "report": ("align", "pca", "flow", "sample", "eval", "guidance")}[stage]
        full = self.to_dict()
        payload = json.dumps({"zoos": [m.stage_hash("zoo") for m in self.members],
                              **{k: full[k] for k in own}}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
