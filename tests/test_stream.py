"""The streamed path (dwf.stream, dwf.columns): zoo files written and read by rows or column
slabs, and a streamed run that gives the in-memory pipeline's nets."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from benchmarks import bench_stream
from benchmarks.bench_pca import subspace_error
from dwf import archs, experiments, pipeline, stacked, stream
from dwf.columns import StackedColumns, StackedWriter
from dwf.config import AlignSpec
from dwf.errors import ConfigError
from dwf.layout import ParamLayout
from dwf.reporting import sample_spec
from dwf.sample import generate
from dwf.task import task_for

LAYOUT = ParamLayout.from_shapes({"w": (3, 4), "b": (5,), "c": (2, 2, 2)})


def test_a_zoo_file_written_by_slabs_or_rows_in_any_order_reads_back_the_same(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(6, LAYOUT.dim, generator=g)
    by_slabs, by_rows = tmp_path / "slabs.safetensors", tmp_path / "rows.safetensors"
    with StackedWriter(by_slabs, LAYOUT, 6) as w:
        cuts = [0, 5, 11, 12, LAYOUT.dim]                      # slabs that cross tensor borders
        for j0, j1 in reversed(list(zip(cuts, cuts[1:]))):
            w[:, j0:j1] = X[:, j0:j1]
    with StackedWriter(by_rows, LAYOUT, 6) as w:
        for i in torch.randperm(6, generator=g).tolist():
            w.write_row(i, StackedColumns(by_slabs, LAYOUT).row(i))
    for path in (by_slabs, by_rows):
        assert torch.equal(StackedColumns(path, LAYOUT)[:, 0:LAYOUT.dim], X)
        assert torch.equal(LAYOUT.flatten(load_file(str(path)), stacked=True), X)   # a plain safetensors file
        view = StackedColumns(path, LAYOUT, rows=[4, 1])
        assert view.shape == (2, LAYOUT.dim)
        assert torch.equal(view[:, 3:17], X[[4, 1], 3:17])


def test_a_failed_write_leaves_nothing_behind_and_bad_slabs_are_refused(tmp_path):
    with pytest.raises(RuntimeError):
        with StackedWriter(tmp_path / "z.safetensors", LAYOUT, 2) as w:
            w.write_row(0, LAYOUT.unflatten(torch.zeros(1, LAYOUT.dim))[0])
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    with StackedWriter(tmp_path / "z.safetensors", LAYOUT, 2) as w:
        with pytest.raises(ConfigError, match="shape"):
            w[:, 0:4] = torch.zeros(2, 5)
        with pytest.raises(ConfigError, match="outside"):
            w.write_row(2, {})
        w[:, 0:LAYOUT.dim] = torch.zeros(2, LAYOUT.dim)
    with pytest.raises(ConfigError, match="rows"):
        StackedColumns(tmp_path / "z.safetensors", LAYOUT, rows=[0, 2])


@pytest.mark.parametrize("name", ["iris_mlp", "vader_tinybert"])     # weight matching, TransFusion
def test_a_streamed_run_gives_the_in_memory_pipelines_nets(artifacts, tmp_path, name):
    exp = experiments.get(name, "smoke")
    run = pipeline.build(exp, artifacts, progress=False)
    model, task = archs.build(exp.arch), task_for(run.data)
    score = lambda states: task.score(stacked.predict(model, states, run.data.x_val, task=task), run.data.y_val)  # noqa: E731
    zoo_file = pipeline.stage_dir(exp, "zoo", artifacts) / "weights.safetensors"
    s = stream.run(exp, zoo_file, tmp_path, score=score, chunk=1000, batch=3)   # several slabs and batches
    layout = ParamLayout.from_module(model)

    assert (s.fit_idx, s.held_idx, s.reference) == (run.fit_idx, run.held_idx, 0)
    assert torch.allclose(StackedColumns(s.aligned, layout)[:, 0:layout.dim], run.aligned.vectors(), atol=1e-6)
    fitted = StackedColumns(s.aligned, layout, rows=s.fit_idx)[:, 0:layout.dim]
    assert subspace_error((s.pca.coef_.double() @ fitted.double()).numpy(), run.pca.components_.numpy()) < 1e-5
    assert torch.allclose(s.codes, run.codes, atol=1e-4)
    for r, f in enumerate(run.flows):
        memory = generate(f, run.pca, exp.arch, sample_spec(exp, r), run.data.x_train)
        streamed = StackedColumns(s.generated[r], layout)[:, 0:layout.dim]
        assert streamed.shape == memory.vectors.shape
        assert torch.allclose(streamed, memory.vectors, atol=1e-4)
        assert torch.allclose(s.scores[r], score(memory.params), atol=1e-3)
    assert s.bytes_read > 0 and s.bytes_written >= StackedColumns(s.aligned, layout).shape[0] * layout.dim * 4


def test_the_streamed_path_refuses_batchnorm_and_a_medoid_reference_with_the_fix(artifacts, tmp_path):
    resnet = experiments.get("fmnist_resnet20", "smoke")
    with pytest.raises(ConfigError, match="BatchNorm"):
        stream.run(resnet, pipeline.stage_dir(resnet, "zoo", artifacts) / "weights.safetensors", tmp_path)
    iris = experiments.get("iris_mlp", "smoke")
    medoid = iris.ablation("medoid", align=AlignSpec(reference="medoid"))
    with pytest.raises(ConfigError, match="medoid"):
        stream.run(medoid, pipeline.stage_dir(iris, "zoo", artifacts) / "weights.safetensors", tmp_path)
    assert not (tmp_path / "aligned.safetensors").exists()


def test_stream_bench_agrees_with_the_in_memory_path_at_tiny_size():
    r = bench_stream.agreement(replace(bench_stream.SMALL, hidden=(16,), vocab=50), n=6)
    assert r.subspace_error < 1e-5
    assert r.max_weight_diff < 1e-4 * r.weight_scale


def test_dwf_stream_writes_the_files_it_names_and_says_how_to_get_a_missing_zoo(artifacts, tmp_path, capsys):
    from dwf import cli

    assert cli.main(["stream", "vader_tinybert", "--profile", "smoke", "--artifacts", str(artifacts),
                     "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    exp = experiments.get("vader_tinybert", "smoke")
    n = exp.zoo.n_models
    assert f"aligned member {n}/{n}" in out and "seconds: align" in out
    layout = ParamLayout.from_module(archs.build(exp.arch))
    assert StackedColumns(tmp_path / "s" / "generated_r0.safetensors", layout).shape == (exp.sample.n, layout.dim)
    assert cli.main(["stream", "vader_tinybert", "--profile", "smoke", "--artifacts", str(tmp_path / "empty")]) == 2
    assert "train it first (python -m dwf run vader_tinybert --profile smoke)" in capsys.readouterr().err
    # an experiment the streamed path cannot run says so before asking for its zoo
    assert cli.main(["stream", "fmnist_resnet20", "--profile", "smoke", "--artifacts", str(tmp_path / "empty")]) == 2
    assert "without BatchNorm" in capsys.readouterr().err


def test_stream_bench_counts_every_pass_over_the_files_at_tiny_size():
    arch, n = replace(bench_stream.SMALL, hidden=(16,), vocab=50), 8
    r = bench_stream.run(n, arch=arch)
    d = r.n_params
    exp = bench_stream.experiment(arch, n)
    n_fit = n - round(exp.pca.held_out * n)
    zoo_bytes, fit_bytes = 4 * n * d, 4 * n_fit * d
    # read: the zoo once (alignment), the fitting members once for the Gram and once per decode
    assert r.read_gb * 1e9 == pytest.approx(zoo_bytes + 2 * fit_bytes, rel=1e-6)
    # written: the aligned zoo and the generated nets
    assert r.written_gb * 1e9 == pytest.approx(zoo_bytes + 4 * bench_stream.M * d, rel=1e-6)
    assert r.k == n_fit - 1 and r.peak_rss_mb > 0 and set(r.stages) == {"align", "pca", "flow", "decode"}


def test_a_rerun_reuses_the_aligned_zoo_of_the_same_file_and_the_folder_keeps_pca_and_flows(artifacts, tmp_path):
    import shutil

    from dwf.flow import Flow
    from dwf.pca import DualPCA

    exp = experiments.get("iris_mlp", "smoke")
    zoo_file = tmp_path / "zoo.safetensors"
    shutil.copy(pipeline.stage_dir(exp, "zoo", artifacts) / "weights.safetensors", zoo_file)
    layout = ParamLayout.from_module(archs.build(exp.arch))
    first = stream.run(exp, zoo_file, tmp_path / "out")
    lines = []
    again = stream.run(exp, zoo_file, tmp_path / "out", log=lines.append)
    assert any("aligned zoo reused" in line for line in lines)
    assert again.bytes_read < first.bytes_read                        # the zoo file was not read again
    generated = StackedColumns(again.generated[0], layout)[:, 0:layout.dim]
    assert torch.equal(generated, StackedColumns(first.generated[0], layout)[:, 0:layout.dim])
    # the saved PCA decodes the saved flow's codes from the aligned file
    pca = DualPCA.load(tmp_path / "out" / "pca.safetensors")
    flow = Flow.load(tmp_path / "out" / "flow_r0")
    fitted = StackedColumns(tmp_path / "out" / "aligned.safetensors", layout, rows=again.fit_idx)
    assert torch.allclose(pca.inverse_transform_streamed(again.sampled[0], fitted), generated, atol=1e-6)
    assert flow.dim == pca.n_components_
    # another zoo file (here: the same bytes, written anew) is aligned again
    shutil.copy(zoo_file, tmp_path / "zoo2.safetensors")
    lines.clear()
    stream.run(exp, tmp_path / "zoo2.safetensors", tmp_path / "out", log=lines.append)
    assert not any("reused" in line for line in lines) and any("aligned member" in line for line in lines)
