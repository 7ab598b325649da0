"""A zoo larger than memory, end to end: one model or one column slab in memory at a time.

    zoo file (n, d)   ──model i──▶  aligned to the reference       ──▶  aligned file   (dwf.columns)
    aligned file      ──slabs────▶  DualPCA(keep_components=False)   ──▶  codes Z (n_fit, k)
    Z                 ───────────▶  R flows (k-dimensional, in memory: dwf.flow)
    flow r            ──ODE──────▶  sampled codes Ẑ_r (m, k)
    Ẑ_r, aligned file ──slabs────▶  X̂_r = (Ẑ_r W) X_fit + mean      ──▶  generated file r (m, d)
    generated file r  ──b nets───▶  score(states) per net (optional)

Peak memory: the reference and one member while aligning; one (max(n, m), chunk) slab and the
(n, n) Gram after. Every step is the in-memory pipeline's own (`dwf.pipeline`): members are
matched with the same per-member seeds (`dwf.align.match_all`), the held-out split is the same
(`dwf.zoo.split`), the flows and samples take the same specs (`pipeline.flow_spec`,
`reporting.sample_spec`), so on a zoo that fits in memory both give the same nets
(tests/test_stream.py). Architectures with BatchNorm are refused: their generated nets need
statistics re-estimated on data, which the in-memory path does. The folder keeps the aligned
zoo (with a record of the zoo file and alignment it came from, so a rerun reuses it), the PCA,
each flow and the generated files.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from . import align as align_mod, archs, families, flow as flow_mod, lock
from .columns import StackedColumns, StackedWriter
from .config import Experiment
from .errors import ConfigError, DwfError
from .flow import Flow
from .io import load_json, save_json
from .layout import ParamLayout
from .pca import DualPCA
from .pipeline import flow_spec
from .reporting import sample_spec
from .rebasin.symmetry import Symmetry
from .zoo import split

States = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Streamed:
    """What a streamed run leaves: files on disk, and the small things in memory."""
    aligned: Path                  # (n, d) the zoo, every member aligned to `reference`
    generated: list[Path]          # (m, d) per flow replicate
    reference: int
    fit_idx: list[int]             # members the PCA and flows were fitted on
    held_idx: list[int]
    pca: DualPCA                   # fitted without components: decodes from `aligned`
    codes: torch.Tensor            # (n_fit, k)
    flows: list[Flow]
    sampled: list[torch.Tensor]    # (m, k) per replicate
    scores: list[torch.Tensor] | None   # (m,) per replicate, when a score was given
    seconds: dict[str, float]      # align, pca, flow, decode (and score, when scored)
    bytes_read: int                # from the zoo and aligned files
    bytes_written: int             # to the aligned and generated files


ALIGNED_RECORD = "aligned.json"   # what the aligned file was made from; a rerun that matches reuses it


def _source_record(zoo_file: Path, exp: Experiment) -> dict:
    """The zoo file (path, size, modification time) and the alignment settings behind an aligned file."""
    st = zoo_file.stat()
    record = {"zoo": str(zoo_file.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
              "arch": dataclasses.asdict(exp.arch), "align": dataclasses.asdict(exp.align)}
    return json.loads(json.dumps(record))          # as it reads back (tuples as lists)


def align_file(source: Path, out: Path, layout: ParamLayout, spec: Symmetry, reference: int, max_iter: int,
               seed: int, exclude: Sequence[str] = (), stream: bool = True,
               log: Callable[[str], None] = lambda line: None) -> tuple[int, int]:
    """Every model of `source` matched to model `reference` and written to `out`, one at a
    time; the same matching (and per-member seed) as `dwf.align.align_zoo`. Returns the bytes
    read and written."""
    zoo = StackedColumns(source, layout)
    n = zoo.shape[0]
    if isinstance(reference, bool) or not isinstance(reference, int) or not 0 <= reference < n:
        raise ConfigError(f"a streamed zoo aligns to a member index in [0, {n}), got {reference!r} "
                          "('medoid' needs every member aligned twice: align in memory for it)")
    ref = zoo.row(reference)
    with StackedWriter(out, layout, n) as w:
        for i in range(n):
            sd = ref if i == reference else align_mod.match_member(spec, ref, zoo.row(i), i, max_iter, seed,
                                                                    exclude, stream)
            w.write_row(i, sd)
            del sd                                    # before the next member is read
            log(f"aligned member {i + 1}/{n}")
    return zoo.bytes_read, w.bytes_written


def decode_file(pca: DualPCA, Z: torch.Tensor, fitted: StackedColumns, out: Path, layout: ParamLayout) -> int:
    """The nets of codes Z (m, k), decoded slab by slab from the vectors `pca` was fitted on and
    written to `out` as they are formed. Returns bytes written."""
    with StackedWriter(out, layout, Z.shape[0]) as w:
        pca.inverse_transform_streamed(Z, fitted, out=w)
    return w.bytes_written


def batches(path: Path, layout: ParamLayout, size: int) -> Iterator[States]:
    """The nets of a zoo file as stacked state dicts {name: (b, ...)} of at most `size` nets."""
    if size < 1:
        raise ConfigError(f"a batch holds at least one net, got {size}")
    zoo = StackedColumns(path, layout)
    n = zoo.shape[0]
    for b0 in range(0, n, size):
        part = StackedColumns(path, layout, rows=range(b0, min(n, b0 + size)))
        yield layout.unflatten_stacked(part[:, 0:layout.dim])


def check(exp: Experiment) -> None:
    """Refuse, with the reason, an experiment the streamed path cannot run."""
    if families.has_batchnorm(exp.arch):
        raise ConfigError(f"{exp.name}: the streamed path takes architectures without BatchNorm (generated "
                          "nets with BatchNorm need statistics re-estimated on data); run it in memory")


def run(exp: Experiment, zoo_file: Path, out_dir: Path, score: Callable[[States], torch.Tensor] | None = None,
        chunk: int = 1 << 20, batch: int = 8, progress: bool = False,
        log: Callable[[str], None] = lambda line: None) -> Streamed:
    """`exp`'s alignment, PCA, flows and sampling on the zoo in `zoo_file`, streamed; the
    generated nets of replicate r in `out_dir/generated_r{r}.safetensors`, scored `batch` nets
    at a time by `score` when given."""
    check(exp)
    out_dir = Path(out_dir)
    with lock.locked(out_dir, on_wait=log):          # one run at a time writes a folder's files
        return _run(exp, Path(zoo_file), out_dir, score, chunk, batch, progress, log)


def _run(exp: Experiment, zoo_file: Path, out_dir: Path, score: Callable[[States], torch.Tensor] | None,
         chunk: int, batch: int, progress: bool, log: Callable[[str], None]) -> Streamed:
    layout = ParamLayout.from_module(archs.build(exp.arch))
    seconds, read, written = {}, 0, 0

    t0 = time.perf_counter()
    aligned = out_dir / "aligned.safetensors"
    reference = exp.align.reference
    source = _source_record(zoo_file, exp)
    if exp.align.method == "none":
        aligned, reference = zoo_file, 0
    elif aligned.is_file() and (out_dir / ALIGNED_RECORD).is_file() and load_json(out_dir / ALIGNED_RECORD) == source:
        log(f"aligned zoo reused: {aligned} (from this zoo file and alignment spec)")
    else:
        (out_dir / ALIGNED_RECORD).unlink(missing_ok=True)
        # the symmetry of an MLP is traced on two inputs (a transformer's is declared)
        spec = families.symmetry(exp.arch, torch.zeros(2, max(1, exp.arch.in_dim)))
        r, w = align_file(zoo_file, aligned, layout, spec, reference, exp.align.max_iter, exp.align.seed,
                          families.buffer_names(exp.arch), exp.align.stream, log)
        read, written = read + r, written + w
        save_json(out_dir / ALIGNED_RECORD, source)   # after the file: a crash before leaves no record
    seconds["align"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n = StackedColumns(aligned, layout).shape[0]
    fit_idx, held_idx = split(n, exp.pca.held_out, exp.zoo.seed, keep=reference)
    fitted = StackedColumns(aligned, layout, rows=fit_idx)
    pca = DualPCA(exp.pca.n_components, exp.pca.variance, device="cpu", chunk=chunk, keep_components=False).fit(fitted)
    codes = pca.train_codes_
    pca.save(out_dir / "pca.safetensors")          # decodes with the aligned file after load
    seconds["pca"] = time.perf_counter() - t0
    log(f"PCA: {pca.n_components_} components of {n - len(held_idx)} fitting members")

    t0 = time.perf_counter()
    flows = flow_mod.fit_many(codes, [flow_spec(exp, r) for r in range(exp.eval.replicates)], progress)
    for r, f in enumerate(flows):
        f.save(out_dir / f"flow_r{r}")
    seconds["flow"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sampled, generated = [], []
    for r, f in enumerate(flows):
        s = sample_spec(exp, r)
        Z = f.sample(s.n, steps=s.steps, method=s.method, generator=torch.Generator().manual_seed(s.seed),
                     source_std=s.source_std)
        if not torch.isfinite(Z).all():
            raise DwfError("sampled codes hold NaN or inf: the flow diverged while sampling; use rk4 with "
                           "more steps, or a smaller source std")
        generated.append(out_dir / f"generated_r{r}.safetensors")
        written += decode_file(pca, Z, fitted, generated[-1], layout)
        sampled.append(Z)
        log(f"replicate {r}: {s.n} nets decoded into {generated[-1]}")
    seconds["decode"] = time.perf_counter() - t0
    read += fitted.bytes_read

    scores = None
    if score is not None:
        t0 = time.perf_counter()
        scores = [torch.cat([score(states) for states in batches(p, layout, batch)]) for p in generated]
        seconds["score"] = time.perf_counter() - t0
    return Streamed(aligned, generated, reference, fit_idx, held_idx, pca, codes, flows, sampled, scores,
                    seconds, read, written)


__all__ = ["Streamed", "align_file", "batches", "check", "decode_file", "run"]
