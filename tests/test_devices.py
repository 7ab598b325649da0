"""Devices and precision (`dwf.devices`): every kernel computes on the run's device and returns
to the CPU with the numbers the CPU gives; bfloat16 autocast runs where asked and stays close.

The device-parametrized tests run on every device this machine has (the CPU here; the CPU and
CUDA on a GPU machine), so a GPU run exercises the same assertions."""
import dataclasses

import pytest
import torch

from dwf import ArchSpec, ConfigError, DataSpec, FlowSpec, ZooSpec, archs, cache, data, devices, flow, stacked, train_zoo
from dwf.bn import recalibrate_stacked
from dwf.cli import main

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ARCH = ArchSpec("mlp", 64, (16,), 10)
SPEC = ZooSpec(n_models=4, epochs=3, batch_size=64, lr=3e-3, seed=5)


@pytest.fixture(scope="module")
def digits():
    return data.load(DataSpec("digits"))


def test_using_nests_inherits_and_restores():
    outer = devices.current()
    with devices.using("cpu", "bf16") as c:
        assert c.mixed and devices.current() == c
        with devices.using(None, "fp32"):            # None keeps the enclosing device
            assert devices.current() == devices.Compute(torch.device("cpu"), "fp32")
        with devices.using(None, None):
            assert devices.current() == c
        assert devices.current() == c
    assert devices.current() == outer
    assert not devices.Compute.of("cpu", "auto").mixed      # auto: float32 on the CPU


def test_bad_device_and_precision_are_config_errors():
    with pytest.raises(ConfigError, match="precision"):
        devices.Compute.of("cpu", "fp16")
    with pytest.raises(ConfigError, match="unknown device"):
        devices.resolve("tpu:0")
    if torch.cuda.is_available():
        assert devices.resolve("cuda") == torch.device("cuda", torch.cuda.current_device())
    else:
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            devices.resolve("cuda")


def test_cli_names_a_bad_device_before_any_work(capsys, tmp_path):
    assert main(["run", "iris_mlp", "--profile", "smoke", "--device", "tpu", "--no-progress",
                 "--artifacts", str(tmp_path)]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_autocast_runs_forward_passes_in_bfloat16_only_when_mixed():
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with devices.autocast(devices.Compute.of("cpu", "bf16")):
        assert lin(x).dtype == torch.bfloat16
    with devices.autocast(devices.Compute.of("cpu", "fp32")):
        assert lin(x).dtype == torch.float32


@pytest.fixture(scope="module")
def zoo(digits):
    return train_zoo(digits, ARCH, SPEC, progress=False, device="cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_predictions_on_any_device_equal_the_cpus(zoo, digits, device):
    model = archs.build(ARCH)
    cpu = stacked.predict(model, zoo.params, digits.x_val, compute=devices.Compute.of("cpu", "fp32"))
    with devices.using(device, "fp32"):
        out = stacked.predict(model, zoo.params, digits.x_val)
    assert out.device.type == "cpu" and out.dtype == torch.int64
    assert (out == cpu).float().mean() >= 0.995            # argmax ties may break otherwise off the CPU
    assert next(model.parameters()).device.type == "cpu"   # the caller's template stays put


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_precision_predictions_stay_within_a_fraction_of_a_point(zoo, digits, device):
    model = archs.build(ARCH)
    fp32 = stacked.predict(model, zoo.params, digits.x_val, compute=devices.Compute.of(device, "fp32"))
    bf16 = stacked.predict(model, zoo.params, digits.x_val, compute=devices.Compute.of(device, "bf16"))
    acc = lambda p: (p == digits.y_val).float().mean(1)  # noqa: E731
    assert (bf16 == fp32).float().mean() >= 0.98
    assert (acc(bf16) - acc(fp32)).abs().max() <= 0.01


@pytest.mark.parametrize("device", DEVICES)
def test_zoo_training_in_mixed_precision_learns_as_well(digits, zoo, device):
    with devices.using(device, "bf16"):
        mixed = train_zoo(digits, ARCH, SPEC, progress=False)
    assert all(v.device.type == "cpu" and v.dtype == torch.float32 for v in mixed.params.values())
    assert any(not torch.equal(v, zoo.params[k]) for k, v in mixed.params.items())   # autocast did run
    assert mixed.metric("val_acc").mean() >= zoo.metric("val_acc").mean() - 0.03


@pytest.mark.parametrize("device", DEVICES)
def test_a_convnet_zoo_trains_in_float32_under_a_mixed_precision_run(digits, device):
    arch = ArchSpec("cnn", 1, (4, 8), 10)
    spec = ZooSpec(n_models=2, epochs=1, batch_size=64, seed=1)
    imgs = dataclasses.replace(digits, x_train=digits.x_train.view(-1, 1, 8, 8), x_val=digits.x_val.view(-1, 1, 8, 8))
    with devices.using(device, "fp32"):
        fp32 = train_zoo(imgs, arch, spec, progress=False)
    with devices.using(device, "bf16"):
        mixed = train_zoo(imgs, arch, spec, progress=False)
    assert mixed.info["compute"] == f"{devices.resolve(device)} fp32"
    tol = 0 if device == "cpu" else 1e-6   # cuDNN's convolution backward is not bit-reproducible
    for k, v in fp32.params.items():
        torch.testing.assert_close(mixed.params[k], v, atol=tol, rtol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_a_flow_fitted_and_sampled_on_any_device_is_the_cpus(device):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 6, generator=g) @ torch.randn(6, 6, generator=g)
    spec = FlowSpec(hidden=32, time_dim=16, steps=60, batch_size=8, eval_every=20, seed=3)
    labels = torch.arange(40) % 2
    with devices.using("cpu"):
        ref = flow.fit_many(Z, [spec, dataclasses.replace(spec, seed=4)], progress=False, labels=labels)
        ref_sample = ref[1].sample(16, steps=10, generator=torch.Generator().manual_seed(1), label=1, guidance=2.0)
    with devices.using(device):
        fits = flow.fit_many(Z, [spec, dataclasses.replace(spec, seed=4)], progress=False, labels=labels)
        sample = fits[1].sample(16, steps=10, generator=torch.Generator().manual_seed(1), label=1, guidance=2.0)
    for a, b in zip(ref, fits):
        for k, v in a.net.state_dict().items():
            assert b.net.state_dict()[k].device.type == "cpu"
            torch.testing.assert_close(b.net.state_dict()[k], v, atol=1e-4, rtol=1e-4)
    assert sample.device.type == "cpu"
    torch.testing.assert_close(sample, ref_sample, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm_recalibration_on_any_device_is_the_cpus(device):
    arch = ArchSpec("resnet20", 1, out_dim=10, width=0.25)
    nets = [archs.build(arch, seed=s).state_dict() for s in range(2)]
    params = {k: torch.stack([sd[k] for sd in nets]) for k, _ in archs.build(arch).named_parameters()}
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with devices.using("cpu"):
        ref = recalibrate_stacked(archs.build(arch), params, x, n_samples=64, batch_size=32)
    with devices.using(device):
        out = recalibrate_stacked(archs.build(arch), params, x, n_samples=64, batch_size=32)
    assert ref and ref.keys() == out.keys()
    tol = 1e-5 if device == "cpu" else 1e-2   # cuDNN convolutions run in TF32 (10-bit mantissa) by default
    for k in ref:
        assert out[k].device.type == "cpu"
        torch.testing.assert_close(out[k], ref[k], atol=tol, rtol=tol)


def test_a_stage_record_names_the_device_and_precision(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Exp:
        name: str = "e"
        profile: str = "p"
        seed: int = 0

        def stage_hash(self, stage):
            return "h"

        def to_dict(self):
            return {}

    with devices.using("cpu", "bf16"):
        rec = cache.finish(tmp_path, Exp(), "s", 1.0)
    assert rec.compute == "cpu bf16 autocast"
    assert cache.read(tmp_path).compute == "cpu bf16 autocast"
