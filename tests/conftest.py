"""Shared fixtures: smoke-profile runs built once per test session in a temporary folder."""
from __future__ import annotations

import pytest

from dwf import devices, experiments, pipeline


@pytest.fixture(scope="session", autouse=True)
def on_the_cpu():
    """Every test computes on the CPU in float32, as CI does, also on a machine with a GPU
    (bit-for-bit assertions hold there); tests/test_devices.py opts into each device it has."""
    with devices.using("cpu", "fp32"):
        yield


SMOKE_RUNS = ("iris_mlp", "fmnist_mlp", "fmnist_resnet20", "fmnist_vit", "vader_tinybert")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """A temporary artifacts folder holding the smoke runs of SMOKE_RUNS (with their ablation
    variants); tests that build more there (the reproduce notebook's conditional flow) add to it."""
    root = tmp_path_factory.mktemp("artifacts")
    for name in SMOKE_RUNS:
        exp = experiments.get(name, "smoke")
        for e in [exp, *experiments.ablations(exp)]:
            pipeline.build(e, root, progress=False)
    return root


@pytest.fixture(scope="session")
def fmnist_smoke_run(artifacts):
    return pipeline.build(experiments.get("fmnist_mlp", "smoke"), artifacts, progress=False)


@pytest.fixture
def one_thread():
    """One torch thread, as a Ray worker with num_cpus=1 runs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray cluster of 2 CPUs for the session (dwf.shards, dwf.fanout)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
