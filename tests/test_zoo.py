import json
from dataclasses import replace

import pytest
import torch

from dwf import ArchSpec, ConfigError, DataSpec, Zoo, ZooSpec, data, train_zoo

ARCH = ArchSpec("mlp", 64, (16,), 10)
SPEC = ZooSpec(n_models=6, epochs=3, batch_size=64, lr=3e-3, seed=5)


@pytest.fixture(scope="module")
def digits():
    return data.load(DataSpec("digits"))


class Interrupt(Exception):
    pass


def stop_after(last_epoch: int):
    """An on_epoch_end callback that interrupts training after epoch `last_epoch`."""
    def callback(epoch: int) -> None:
        if epoch == last_epoch:
            raise Interrupt
    return callback


def test_same_seed_same_weights_and_models_differ(digits):
    a = train_zoo(digits, ARCH, SPEC, progress=False)
    b = train_zoo(digits, ARCH, SPEC, progress=False)
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
    w = a.params["fc.0.weight"]
    assert not torch.equal(w[0], w[1])
    assert a.metric("val_acc").mean() > 0.8   # real learning on real digits (validation: test is locked)


def test_resume_after_interruption_gives_the_same_zoo(digits, tmp_path):
    full = train_zoo(digits, ARCH, SPEC, progress=False)

    with pytest.raises(Interrupt):
        train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False, on_epoch_end=stop_after(0))
    assert (tmp_path / "checkpoint.safetensors").exists() and not (tmp_path / "weights.safetensors").exists()
    resumed = train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False)
    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k]), k
    assert not (tmp_path / "checkpoint.safetensors").exists()
    loaded = Zoo.load(tmp_path)
    assert loaded.n == 6 and loaded.models[0]["val_acc"] == resumed.models[0]["val_acc"]


@pytest.mark.parametrize("last_epoch", [0, 1])
def test_resume_at_every_epoch_boundary_equals_the_uninterrupted_zoo(digits, tmp_path, last_epoch):
    full = train_zoo(digits, ARCH, SPEC, progress=False)
    with pytest.raises(Interrupt):
        train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False, on_epoch_end=stop_after(last_epoch))
    resumed = train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False)
    assert all(torch.equal(full.params[k], resumed.params[k]) for k in full.params)
    assert [m["train_loss"] for m in resumed.models] == [m["train_loss"] for m in full.models]


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(digits, tmp_path, monkeypatch):
    """The checkpoint is one file renamed into place: killed mid-write (here: the rename of the
    second epoch's checkpoint fails), the first epoch's checkpoint is intact and resumes exactly."""
    import dwf.io
    full = train_zoo(digits, ARCH, SPEC, progress=False)
    real_replace, calls = dwf.io.os.replace, []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise Interrupt
        real_replace(src, dst)

    monkeypatch.setattr(dwf.io.os, "replace", crash_on_second)
    with pytest.raises(Interrupt):
        train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False)
    monkeypatch.setattr(dwf.io.os, "replace", real_replace)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]    # no temp file left
    assert json.loads(dwf.io.load_metadata(tmp_path / "checkpoint.safetensors")["meta"])["epoch"] == 1
    resumed = train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False)
    assert all(torch.equal(full.params[k], resumed.params[k]) for k in full.params)


def test_a_checkpoint_of_another_configuration_is_not_resumed(digits, tmp_path):
    other = replace(SPEC, seed=6)
    with pytest.raises(Interrupt):
        train_zoo(digits, ARCH, SPEC, out_dir=tmp_path, progress=False, on_epoch_end=stop_after(0))
    resumed = train_zoo(digits, ARCH, other, out_dir=tmp_path, progress=False)
    fresh = train_zoo(digits, ARCH, other, progress=False)
    assert all(torch.equal(fresh.params[k], resumed.params[k]) for k in fresh.params)


def test_selection_uses_validation(digits):
    zoo = train_zoo(digits, ARCH, SPEC, progress=False)
    for m in zoo.models:
        assert 0 <= m["best_epoch"] < SPEC.epochs
        assert len(m["train_loss"]) == SPEC.epochs


@pytest.mark.parametrize("order", ["rotated", "independent"])
def test_minibatches_follow_each_models_epoch_order(order):
    from dwf.batches import epoch_order, minibatches
    N, n, B = 50, 4, 8
    x = torch.arange(N, dtype=torch.float32)[:, None] * torch.ones(1, 3)   # row r holds r
    y = torch.arange(N)
    batches = list(minibatches(x, y, 7, 2, range(n), n, B, order))
    assert len(batches) == N // B
    for i in range(n):
        ordered = epoch_order(7, 2, i, n, N, order)
        assert sorted(ordered.tolist()) == list(range(N))          # each sample once per epoch
        seen = torch.cat([yb[i] for _, yb in batches])
        assert torch.equal(seen, ordered[: len(seen)])
        assert torch.equal(torch.cat([xb[i, :, 0] for xb, _ in batches]).long(), seen)
    assert not torch.equal(epoch_order(7, 2, 0, n, N, order), epoch_order(7, 2, 1, n, N, order))
    if order == "rotated":      # one shuffle, rotated: member 1 reads member 0's sequence shifted
        assert torch.equal(epoch_order(7, 2, 1, n, N).roll(N // n), epoch_order(7, 2, 0, n, N))
    else:                       # an own shuffle, the same in a zoo of any size
        assert torch.equal(epoch_order(7, 2, 1, n, N, order), epoch_order(7, 2, 1, 2 * n, N, order))
        rows = list(minibatches(x, y, 7, 2, range(2, 4), n, B, order))   # part of the zoo alone
        assert all(torch.equal(part, whole[2:4]) for (_, part), (_, whole) in zip(rows, batches))


def test_a_zoo_grown_from_n_to_2n_equals_the_zoo_trained_at_2n(digits):
    """With the independent data order each member's init, minibatches and updates are its own,
    so growing a zoo trains only the new members and gives the zoo trained at full size."""
    from dwf.zoo import grow
    spec = replace(SPEC, n_models=8, epochs=2, data_order="independent")
    full = train_zoo(digits, ARCH, spec, progress=False)
    half = train_zoo(digits, ARCH, replace(spec, n_models=4), progress=False)
    grown = grow(half, digits, spec, progress=False)
    assert grown.n == 8 and grown.info["grown_from"] == 4
    for k in full.params:
        assert torch.allclose(full.params[k], grown.params[k], atol=1e-6, rtol=0), k
    assert [m["seed"] for m in grown.models] == [m["seed"] for m in full.models]
    assert [m["best_epoch"] for m in grown.models] == [m["best_epoch"] for m in full.models]
    with pytest.raises(ConfigError, match="data_order='independent'"):
        grow(train_zoo(digits, ARCH, replace(SPEC, n_models=4), progress=False), digits,
             replace(SPEC, n_models=8))
    with pytest.raises(ConfigError, match="not as the first members"):
        grow(half, digits, replace(spec, lr=1e-2))


def test_cosine_schedule_decays_from_lr_to_zero_and_resumes_identically(digits, tmp_path):
    from dwf.zoo import learning_rate
    spec = ZooSpec(n_models=4, epochs=3, batch_size=64, lr=3e-3, schedule="cosine", seed=2)
    lrs = [learning_rate(spec, s, 30) for s in range(30)]
    assert lrs[0] == 3e-3 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 1e-4
    assert abs(learning_rate(spec, 15, 30) - 1.5e-3) < 1e-12
    assert learning_rate(ZooSpec(n_models=1, epochs=1, lr=0.1), 7, 30) == 0.1

    full = train_zoo(digits, ARCH, spec, progress=False)
    with pytest.raises(Interrupt):
        train_zoo(digits, ARCH, spec, out_dir=tmp_path, progress=False, on_epoch_end=stop_after(1))
    resumed = train_zoo(digits, ARCH, spec, out_dir=tmp_path, progress=False)
    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k]), k
    constant = train_zoo(digits, ARCH, replace(spec, schedule="constant"), progress=False)
    assert not torch.equal(constant.params["fc.0.weight"], full.params["fc.0.weight"])


def test_unknown_schedule_is_a_config_error(digits):
    from dwf import ConfigError
    with pytest.raises(ConfigError, match="schedule"):
        train_zoo(digits, ARCH, replace(SPEC, schedule="step"), progress=False)
