"""Few-shot transfer: split, head handling, probe + fine-tuning, validation-based selection."""
import pytest
import torch

from dwf import ArchSpec, ConfigError, DataSpec, ZooSpec, archs, data, train_zoo
from dwf.config import TransferSpec
from dwf.transfer import few_shot, fine_tune, head_names, transfer


@pytest.fixture(scope="module")
def digits():
    return data.load(DataSpec("digits")).for_reporting()   # transfer reports test accuracy


def test_few_shot_draws_k_per_class_from_train_and_val_only(digits):
    task = few_shot(digits, shots=3, val_shots=2, seed=0)
    assert torch.equal(torch.bincount(task.y_train, minlength=10), torch.full((10,), 3))
    assert torch.equal(torch.bincount(task.y_val, minlength=10), torch.full((10,), 2))
    # the images come from the training / validation splits; the test split is untouched
    tr = {tuple(r.tolist()) for r in digits.x_train.flatten(1)}
    va = {tuple(r.tolist()) for r in digits.x_val.flatten(1)}
    assert all(tuple(r.tolist()) in tr for r in task.x_train.flatten(1))
    assert all(tuple(r.tolist()) in va for r in task.x_val.flatten(1))
    assert task.x_test is digits.x_test
    again = few_shot(digits, shots=3, val_shots=2, seed=0)
    assert torch.equal(again.x_train, task.x_train)
    with pytest.raises(ConfigError, match="at most"):
        few_shot(digits, shots=10_000, val_shots=2, seed=0)


@pytest.mark.parametrize("arch, heads", [
    (ArchSpec("mlp", 64, (16, 8), 10), ["fc.2.weight", "fc.2.bias"]),
    (ArchSpec("cnn", 1, (4, 8), 10), ["head.weight", "head.bias"]),
    (ArchSpec("resnet20", 1, width=0.25), ["fc.weight", "fc.bias"]),
])
def test_head_is_what_depends_on_the_number_of_classes(arch, heads):
    assert head_names(arch) == tuple(heads)


def test_trained_backbones_transfer_better_than_random_and_selection_uses_validation(digits):
    arch = ArchSpec("mlp", 64, (32,), 10)
    zoo = train_zoo(digits, arch, ZooSpec(n_models=3, epochs=15, batch_size=32, lr=3e-3), progress=False)
    task = few_shot(digits, shots=3, val_shots=3, seed=1)
    spec = TransferSpec(DataSpec("digits"), epochs=(0, 2), n_models=3, lr=1e-3, batch_size=10)
    res = transfer(arch, {"trained": zoo.state_dicts(), "random": 3}, task, spec)
    rows = {r["init"]: r for r in res.rows()}
    assert rows["trained"]["acc_e0"] > rows["random"]["acc_e0"] + 0.05
    assert res.epochs == [0, 1, 2] and res.report_epochs == [0, 2]
    for init in ("trained", "random"):
        for t, v, e, sel in zip(res.test_acc[init], res.val_acc[init], res.selected_epoch[init],
                                res.selected_test_acc[init]):
            assert len(t) == len(v) == 3
            assert v[e] == max(v) and sel == t[e]
    # deterministic: same nets, same seeds, same numbers
    again = transfer(arch, {"trained": zoo.state_dicts(), "random": 3}, task, spec)
    assert again.test_acc == res.test_acc


def test_fine_tune_recalibrates_batchnorm_on_the_target_training_images():
    big = data.load(DataSpec("digits", resize=28)).for_reporting()
    assert big.x_train.shape[1:] == (1, 28, 28)
    arch = ArchSpec("resnet20", 1, out_dim=10, width=0.25)
    model = archs.build(arch, seed=0)
    with torch.no_grad():
        model.bn1.running_mean.fill_(7.0)                   # stale source statistics
    task = few_shot(big, shots=2, val_shots=1, seed=0)
    spec = TransferSpec(DataSpec("digits", resize=28), epochs=(0,), n_models=1)
    test, val = fine_tune(model, ["fc.weight", "fc.bias"], task, spec, seed=0)
    assert len(test) == len(val) == 1                     # epoch 0 only: the probe
    with torch.no_grad():
        h = model.conv1(task.x_train)                     # (20, C, 28, 28)
    assert torch.allclose(model.bn1.running_mean, h.mean((0, 2, 3)), atol=1e-5)
