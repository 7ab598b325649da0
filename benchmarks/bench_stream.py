"""The streamed pipeline end to end (`dwf.stream`) on a zoo larger than the memory it may use:
24 BERT-base-sized nets (12 layers, width 768, 12 heads, a 30,522-piece vocabulary: 110M
parameters, about 10.5 GB of float32 on disk).

The zoo is synthetic, with the structure alignment has to undo: one random-init BERT-base plus
Gaussian noise of NOISE times each tensor's std per member, every member randomly permuted
(heads, QK, VO, FFN and the residual stream). It is written one member at a time
(`StackedWriter`). A fresh subprocess then runs `dwf.stream.run`: TransFusion to member 0
written member by member, a streamed DualPCA of the fitting members, a small flow, M generated
nets decoded slab by slab into a file. It reports its own peak RSS (VmHWM: imports and model
building included) and its throughput: bytes read and written per second over the run.

Agreement with the in-memory path is measured on a zoo that fits both (the same construction
with a small BERT): the PCA subspace error ||P_stream - P_memory||_2 of the components' row
spaces, and the largest difference between the generated weights of the two paths.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dwf import ArchSpec, ParamLayout, archs, flow as flow_mod
from dwf.align import match_all
from dwf.columns import StackedColumns, StackedWriter
from dwf.config import AlignSpec, DataSpec, EvalSpec, Experiment, FlowSpec, PCASpec, SampleSpec, ZooSpec
from dwf.pca import DualPCA
from dwf.pipeline import flow_spec
from dwf.rebasin import bert_spec
from dwf.rebasin.symmetry import random_permutation
from dwf.reporting import sample_spec
from dwf.zoo import split

from .bench_pca import subspace_error

BERT_BASE = ArchSpec("bert", 0, (768,), 1, depth=12, heads=12, vocab=30_522, max_len=512)
SMALL = ArchSpec("bert", 0, (64,), 1, depth=2, heads=4, vocab=1000, max_len=32)
N_MODELS, N_SMALL = 24, 12
NOISE = 0.05
CHUNK = 1 << 20
M = 4                      # generated nets


def experiment(arch: ArchSpec, n: int, m: int = M) -> Experiment:
    """What the streamed run does: TransFusion to member 0, all n − 1 PCA directions of the
    fitting members, one flow replicate of 500 steps, m nets with 50 RK4 steps."""
    return Experiment("synthetic_bert", "bench", DataSpec("vader"), arch, ZooSpec(n_models=n, epochs=1),
                      align=AlignSpec("transfusion"), pca=PCASpec(held_out=0.25),
                      flow=FlowSpec(steps=500, hidden=256, batch_size=8, eval_every=250),
                      sample=SampleSpec(n=m, steps=50), eval=EvalSpec(replicates=1))


def write_zoo(path: Path, arch: ArchSpec, n: int, seed: int = 0) -> ParamLayout:
    """n permuted noisy copies of one random-init net, written one member at a time."""
    model = archs.build(arch, seed=seed)
    layout = ParamLayout.from_module(model)
    spec = bert_spec(model.bert)
    base = {k: v.detach() for k, v in model.state_dict().items() if k in layout.names}
    del model
    g = torch.Generator().manual_seed(seed)
    with StackedWriter(path, layout, n) as w:
        for i in range(n):
            noisy = {k: v + NOISE * v.std(correction=0) * torch.randn(v.shape, generator=g) for k, v in base.items()}
            w.write_row(i, random_permutation(spec, noisy, g))
    return layout


_RUN = r"""
import json, sys, time
from pathlib import Path
from benchmarks.bench_stream import experiment, CHUNK
from dwf import ArchSpec, stream
def peak_mb():  # this process's own high-water RSS
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024
zoo, out, arch, n = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
s = stream.run(experiment(ArchSpec(**{**arch, "hidden": tuple(arch["hidden"])}), n), zoo, out, chunk=CHUNK)
print(json.dumps({"seconds": time.perf_counter() - t0, "stages": s.seconds, "bytes_read": s.bytes_read,
                  "bytes_written": s.bytes_written, "peak_rss_mb": peak_mb(), "k": s.pca.n_components_}))
"""


@dataclass
class StreamRunResult:
    n_models: int
    n_params: int
    file_gb: float
    write_zoo_s: float
    seconds: float
    stages: dict
    read_gb: float
    written_gb: float
    gb_per_s: float                # (read + written) / seconds
    peak_rss_mb: float
    k: int


@dataclass
class AgreementResult:
    n_models: int
    n_params: int
    subspace_error: float          # streamed vs in-memory PCA, ||P_s - P_m||_2
    max_weight_diff: float         # generated nets, streamed vs in memory
    weight_scale: float            # max |weight| of the in-memory generated nets


def _stream(zoo: Path, out: Path, arch: ArchSpec, n: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _RUN, str(zoo), str(out), json.dumps(asdict(arch)), str(n)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the streamed run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(n: int = N_MODELS, folder: Path | None = None, arch: ArchSpec = BERT_BASE) -> StreamRunResult:
    """The streamed run on n synthetic nets of `arch` (files in `folder`, else a temporary one)."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        zoo = Path(tmp) / "zoo.safetensors"
        t0 = time.perf_counter()
        layout = write_zoo(zoo, arch, n)
        written = time.perf_counter() - t0
        r = _stream(zoo, Path(tmp) / "out", arch, n)
        size = zoo.stat().st_size / 1e9
    return StreamRunResult(n, layout.dim, size, written, r["seconds"], r["stages"], r["bytes_read"] / 1e9,
                           r["bytes_written"] / 1e9, (r["bytes_read"] + r["bytes_written"]) / 1e9 / r["seconds"],
                           r["peak_rss_mb"], r["k"])


def run_if_room(n: int = N_MODELS) -> StreamRunResult | str:
    """`run`, or why not: the zoo and its aligned copy need about 2.2 × the zoo's size free on
    the temporary folder's disk."""
    need = 2.2 * n * ParamLayout.from_module(archs.build(BERT_BASE)).dim * 4
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < need:
        return f"needs {need / 1e9:.0f} GB free in {tempfile.gettempdir()}, has {free / 1e9:.0f} GB"
    return run(n)


def agreement(arch: ArchSpec = SMALL, n: int = N_SMALL) -> AgreementResult:
    """The streamed and the in-memory path on one zoo that fits both."""
    exp = experiment(arch, n)
    with tempfile.TemporaryDirectory() as tmp:
        zoo = Path(tmp) / "zoo.safetensors"
        layout = write_zoo(zoo, arch, n)
        _stream(zoo, Path(tmp) / "out", arch, n)
        streamed = StackedColumns(Path(tmp) / "out" / "generated_r0.safetensors", layout)[:, 0:layout.dim]
        X = StackedColumns(zoo, layout)[:, 0:layout.dim]
        # the in-memory path: every member aligned at once, PCA with components, decode by V
        sds = layout.unflatten(X)
        spec = bert_spec(archs.build(arch).bert)
        aligned = match_all(spec, sds[0], sds, 0, exp.align.max_iter, exp.align.seed, stream=exp.align.stream)
        A = layout.flatten({k: torch.stack([sd[k] for sd in aligned]) for k in layout.names}, stacked=True)
        fit_idx, _ = split(n, exp.pca.held_out, exp.zoo.seed, keep=0)
        pca = DualPCA(device="cpu").fit(A[fit_idx])
        flow = flow_mod.fit_many(pca.transform(A[fit_idx]), [flow_spec(exp, 0)], progress=False)[0]
        s = sample_spec(exp, 0)
        Z = flow.sample(s.n, steps=s.steps, method=s.method, generator=torch.Generator().manual_seed(s.seed))
        memory = pca.inverse_transform(Z)
        # the streamed PCA's components, formed here (the zoo fits) to compare the subspaces
        ps = DualPCA(device="cpu", chunk=CHUNK, keep_components=False).fit(
            StackedColumns(Path(tmp) / "out" / "aligned.safetensors", layout, rows=fit_idx))
        err = subspace_error((ps.coef_.double() @ A[fit_idx].double()).numpy(), pca.components_.numpy())
    return AgreementResult(n, layout.dim, err, float((streamed - memory).abs().max()), float(memory.abs().max()))


__all__ = ["AgreementResult", "StreamRunResult", "agreement", "experiment", "run", "run_if_room", "write_zoo"]
