"""Bad input gives a DwfError that names the problem, and nothing half-written is left behind."""
import json

import pytest
import torch
from safetensors.torch import save_file

from dwf import ArchSpec, ArtifactError, ConfigError, DwfError, Zoo, experiments
from dwf.cli import main


def small_zoo(n=3):
    arch = ArchSpec("mlp", 4, (5,), 3)
    from dwf import archs
    sds = [archs.build(arch, seed=i).state_dict() for i in range(n)]
    return Zoo(arch, {k: torch.stack([sd[k] for sd in sds]) for k in sds[0]}, [{"test_acc": 0.5}] * n)


def test_truncated_zoo_file(tmp_path):
    small_zoo().save(tmp_path)
    f = tmp_path / "weights.safetensors"
    f.write_bytes(f.read_bytes()[:-40])
    with pytest.raises(ArtifactError, match="truncated or corrupt"):
        Zoo.load(tmp_path)


def test_zoo_with_mismatched_shapes(tmp_path):
    zoo = small_zoo()
    zoo.save(tmp_path)
    bad = dict(zoo.params)
    bad["fc.0.weight"] = torch.zeros(3, 6, 4)
    save_file(bad, str(tmp_path / "weights.safetensors"))
    with pytest.raises(ArtifactError, match="fc.0.weight.*different model"):
        Zoo.load(tmp_path)


def test_zoo_with_nan_weights(tmp_path):
    zoo = small_zoo()
    zoo.params["fc.1.bias"][1, 0] = float("nan")
    save_file(zoo.params, str(tmp_path / "weights.safetensors"))
    (tmp_path / "manifest.json").write_text(json.dumps({"arch": {"kind": "mlp", "in_dim": 4, "hidden": [5], "out_dim": 3}}))
    with pytest.raises(ArtifactError, match="NaN"):
        Zoo.load(tmp_path)


def test_missing_zoo(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        Zoo.load(tmp_path / "nowhere")


def test_unknown_experiment_and_profile():
    with pytest.raises(ConfigError, match="unknown experiment 'mnist_gpt'.*fmnist_mlp"):
        experiments.get("mnist_gpt")
    with pytest.raises(ConfigError, match="profile"):
        experiments.get("iris_mlp", "huge")


def test_cli_reports_errors_cleanly(tmp_path, capsys):
    assert main(["run", "mnist_gpt", "--artifacts", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import dwf.io

    zoo = small_zoo()

    def boom(*a, **k):
        raise OSError("disk full")

    original = dwf.io.os.replace
    monkeypatch.setattr(dwf.io.os, "replace", boom)
    with pytest.raises(OSError):
        zoo.save(tmp_path)
    monkeypatch.setattr(dwf.io.os, "replace", original)
    assert list(tmp_path.iterdir()) == []


def test_errors_are_dwf_errors(tmp_path):
    """One `except DwfError` catches a missing artifact and an impossible option alike."""
    for fail in (lambda: Zoo.load(tmp_path / "nothing"), lambda: experiments.get("iris_mlp", "huge")):
        with pytest.raises(DwfError):
            fail()


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "svhn", "stl10"])
def test_missing_torchvision_dataset_names_the_fix(tmp_path, monkeypatch, name):
    import dwf.data
    from dwf import DataSpec, DatasetUnavailable
    monkeypatch.setattr(dwf.data, "TORCHVISION_ROOT", tmp_path)
    with pytest.raises(DatasetUnavailable, match=f"{name} is not on disk.*DWF_DATA"):
        dwf.data.load(DataSpec(name))


def test_missing_fashion_mnist_names_the_debian_package(tmp_path, monkeypatch):
    import dwf.data
    from dwf import DataSpec, DatasetUnavailable
    monkeypatch.setattr(dwf.data, "FMNIST_DIR", tmp_path)
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        dwf.data.load(DataSpec("fmnist"))


@pytest.mark.parametrize("arch, match", [
    (ArchSpec("bert", 0, (8,), 1, depth=1, heads=2, vocab=50, max_len=16), "vocab"),   # ids up to 4130
    (ArchSpec("mlp", 64, (5,), 10), "in_dim"),                                          # digits are 8x8
])
def test_data_that_does_not_fit_the_architecture_is_refused_before_training(tmp_path, arch, match):
    from dwf import ZooSpec, data
    from dwf.config import DataSpec
    from dwf.zoo import train_zoo
    ds = data.load(DataSpec("vader", vocab="lexicon", train_limit=64) if arch.kind == "bert"
                   else DataSpec("digits", resize=28))
    with pytest.raises(ConfigError, match=f"do not fit the {arch.kind}.*{match}"):
        train_zoo(ds, arch, ZooSpec(n_models=2, epochs=1), out_dir=tmp_path / "zoo", progress=False)
    assert not (tmp_path / "zoo").exists() or not any((tmp_path / "zoo").iterdir())


def test_tensors_are_written_as_standard_safetensors_without_a_second_copy(tmp_path):
    """dwf writes safetensors itself (tensor by tensor, for 7 GB checkpoints); the safetensors
    library must read back every dtype, shape, view and the metadata exactly."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    from dwf.io import save_tensors
    g = torch.Generator().manual_seed(0)
    t = {"f32": torch.randn(3, 4, generator=g), "i64": torch.arange(5), "bf16": torch.randn(7, generator=g).bfloat16(),
         "f16": torch.randn(2, 3, generator=g).half(), "f64": torch.randn(2, generator=g).double(),
         "bool": torch.tensor([True, False, True]), "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5),
         "strided": torch.randn(4, 6, generator=g)[:, ::2]}
    save_tensors(tmp_path / "t.safetensors", t, metadata={"note": "x"})
    back = load_file(str(tmp_path / "t.safetensors"))
    for k, v in t.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v), k
    with safe_open(str(tmp_path / "t.safetensors"), "pt") as f:
        assert f.metadata() == {"note": "x"}
    with pytest.raises(ArtifactError, match="dtype"):
        save_tensors(tmp_path / "c.safetensors", {"z": torch.zeros(2, dtype=torch.complex64)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.safetensors"]


@pytest.mark.parametrize("content", [b"this is not gzip at all", b""])
def test_fashion_mnist_files_that_are_not_gzip_are_refused_by_name(tmp_path, monkeypatch, content):
    import dwf.data
    from dwf import DataSpec, DatasetUnavailable
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(content)
    monkeypatch.setattr(dwf.data, "FMNIST_DIR", tmp_path)
    with pytest.raises(DatasetUnavailable, match="train-images-idx3-ubyte.gz"):
        dwf.data.load(DataSpec("fmnist"))


@pytest.mark.parametrize("args, words", [
    (["--seed", "-1"], "seed must be an integer from 0 to 2147483647"),
    (["--seed", "99999999999999999999"], "seed must be an integer from 0"),
    (["--artifacts", "FILE"], "is a file, not a folder"),
    (["--artifacts", "FILE/sub"], "cannot write into --artifacts"),
    (["--out", "FILE"], "--out is where the scale profile writes"),
])
def test_cli_checks_its_input_before_any_work(tmp_path, capsys, args, words):
    (tmp_path / "FILE").write_text("")
    args = [a.replace("FILE", str(tmp_path / "FILE")) for a in args]
    if "--artifacts" not in args:
        args += ["--artifacts", str(tmp_path / "a")]
    assert main(["run", "iris_mlp", "--profile", "smoke", "--no-progress", *args]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())   # nothing half-started


@pytest.mark.parametrize("damage, words", [
    (lambda t: t.pop("n_samples"), r"lacks \['n_samples'\]"),
    (lambda t: t.update(mean=t["mean"][:-1]), "inconsistent shapes: mean"),
    (lambda t: t.update(components=t["components"][:, :-1].contiguous()), "inconsistent shapes"),
])
def test_a_damaged_pca_file_is_refused_with_its_problem(tmp_path, damage, words):
    from dwf import DualPCA
    X = torch.randn(6, 20, generator=torch.Generator().manual_seed(0))
    DualPCA(device="cpu").fit(X).save(tmp_path / "pca.safetensors")
    from safetensors.torch import load_file
    t = load_file(str(tmp_path / "pca.safetensors"))
    damage(t)
    save_file(t, str(tmp_path / "pca.safetensors"))
    with pytest.raises(ArtifactError, match=words):
        DualPCA.load(tmp_path / "pca.safetensors")


def test_ctrl_c_in_the_cli_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import dwf.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dwf.pipeline, "build", interrupted)
    assert main(["run", "iris_mlp", "--profile", "smoke", "--artifacts", str(tmp_path), "--no-progress"]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
