import pytest
import torch

from dwf import ArchSpec, DataSpec, Zoo, ZooSpec, data, train_zoo

ARCH = ArchSpec("mlp", 64, (16,), 10)
SPEC = ZooSpec(n_models=6, epochs=3, batch_size=64, lr=3e-3, seed=5)


@pytest.fixture(scope="module")
def digits():
    return data.load(DataSpec("digits"))


class Interrupt(Exception):
    pass


def test_same_seed_same_weights_and_models_differ(digits):
    a = train_zoo(digits, ARCH, SPEC, progress=False)
    b = train_zoo(digits, ARCH, SPEC, progress=False)
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
    w = a.params["fc.0.weight"]
    assert not torch.equal(w[0], w[1])
    assert a.metric("test_acc").mean() > 0.8   # real learning on real digits


def test_resume_after_interruption_gives_the_same_zoo(digits, tmp_path):
    full = train_zoo(digits, ARCH, SPEC, progress=False)

    def stop_after_first(epoch):
        if epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False, on_epoch_end=stop_after_first)
    assert (tmp_path / "checkpoint.safetensors").exists() and not (tmp_path / "weights.safetensors").exists()
    resumed = train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False)
    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k]), k
    assert not (tmp_path / "checkpoint.safetensors").exists()
    loaded = Zoo.load(tmp_path)
    assert loaded.n == 6 and loaded.models[0]["test_acc"] == resumed.models[0]["test_acc"]


def test_selection_uses_validation(digits):
    zoo = train_zoo(digits, ARCH, SPEC, progress=False)
    for m in zoo.models:
        assert 0 <= m["best_epoch"] < SPEC.epochs
        assert len(m["train_loss"]) == SPEC.epochs


def test_a_model_trains_the_same_alone_or_in_a_batch(digits):
    """Stacking is an implementation detail: member i of a zoo equals a zoo holding only it."""
    spec = ZooSpec(n_models=3, epochs=2, batch_size=64, seed=2)
    zoo = train_zoo(digits, ARCH, spec, progress=False)
    alone = train_zoo(digits, ARCH, ZooSpec(n_models=1, epochs=2, batch_size=64, seed=2), progress=False)
    for k in zoo.params:
        assert torch.allclose(zoo.params[k][0], alone.params[k][0], atol=1e-5), k
    assert not torch.allclose(zoo.params["fc.0.weight"][0], zoo.params["fc.0.weight"][1])
