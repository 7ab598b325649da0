"""The benchmark helpers compute what they claim, at tiny sizes (speed is never asserted)."""
import numpy as np
import torch

from benchmarks import bench_align, bench_cofit, bench_distances, bench_pca, bench_transfusion, bench_zoo
from dwf import ArchSpec, DataSpec, FlowSpec, ZooSpec, archs, data, devices, experiments, stacked, train_zoo


def test_sequential_loop_reproduces_train_zoo():
    digits = data.load(DataSpec("digits"))
    arch, spec = ArchSpec("mlp", 64, (16,), 10), ZooSpec(n_models=3, epochs=2, batch_size=64, seed=1)
    zoo = train_zoo(digits, arch, spec, progress=False, device="cpu")
    params, acc = bench_zoo.train_sequential(digits, arch, spec)
    for k in zoo.params:
        assert torch.allclose(zoo.params[k], params[k], atol=1e-5), k
    test = digits.for_reporting()
    zoo_acc = stacked.predict(zoo.module(), zoo.params, test.x_test).eq(test.y_test).float().mean(1)
    assert torch.allclose(zoo_acc, acc, atol=1e-3)


def test_subspace_error_is_sin_of_the_largest_principal_angle():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((50, 4)))
    V = Q.T                                                  # (4, 50) orthonormal rows
    R, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    assert bench_pca.subspace_error(V, R @ V) < 1e-12        # another basis, same subspace
    theta = 0.3
    W = V.copy()
    W[0] = np.cos(theta) * V[0] + np.sin(theta) * V[3]
    assert np.isclose(bench_pca.subspace_error(V[:3], W[:3]), np.sin(theta))


def test_pca_bench_agrees_with_sklearn_at_tiny_size():
    r = bench_pca.run(n=20, d=3000, k=5)
    assert r.subspace_error < 1e-3 and r.memmap_subspace_error < 1e-8
    assert r.max_abs_evr_diff < 1e-5


def test_align_bench_recovers_the_planted_permutations_at_tiny_size():
    arch = ArchSpec("resnet20", 3, width=0.25)
    r = bench_align.run("tiny", arch, 3)
    assert r.recovered == 3
    assert r.n_params == sum(p.numel() for p in archs.build(arch).parameters())


def test_transfusion_bench_recovers_the_planted_permutations_at_tiny_size():
    arch = ArchSpec("vit", 1, (24,), 10, depth=2, heads=3, patch=7, image_size=28)
    r = bench_transfusion.run("tiny", arch, 3)
    assert r.recovered == 3
    assert r.n_params == sum(p.numel() for p in archs.build(arch).parameters())


def test_paper_profile_estimate_scales_the_probe_to_the_paper_profile():
    from benchmarks import bench_paper_profile

    with devices.using("cpu"):
        e = bench_paper_profile.estimate("iris_mlp", probe_models=2, probe_examples=30, flow_steps=20,
                                         min_epoch_s=0)
    exp = experiments.get("iris_mlp", "paper")
    assert e.n_params == 131 and e.probe_examples == (30, 96) and e.train_examples == 96
    per_epoch = e.validation_s + e.example_s * e.train_examples
    assert np.isclose(e.zoo_s, (e.startup_s + exp.zoo.epochs * per_epoch) * exp.zoo.n_models / 2)
    assert min(e.startup_s, e.validation_s, e.example_s) >= 0
    assert np.isclose(e.flow_s, e.flow_probe_s * exp.flow.steps / 20)
    assert np.isclose(e.align_s, e.align_member_s * (exp.zoo.n_models - 1))
    assert np.isclose(e.evaluate_s, e.predict_net_s * e.scored_nets) and e.device == "cpu fp32"
    assert e.total_s == e.zoo_s + e.flow_s + e.align_s + e.evaluate_s
    # 75 fitting + 25 held-out members once; 100 generated and 32 per baseline (3 σ, interpolations,
    # code Gaussian) per replicate; encode → decode once
    n_fit = 75
    assert e.scored_nets == n_fit + 25 + 3 * (exp.sample.n + 5 * exp.eval.n_baseline) + n_fit


def test_family_bench_compares_the_same_training_step():
    """Batched and looped steps start from the same weights, see the same batches and make the
    same update, so the ratio measures batching alone."""
    from benchmarks import bench_families

    batched, loop, state, modules = bench_families.steps("fmnist_mlp", 3)
    batched()
    loop()
    for i, m in enumerate(modules):
        for k, v in m.named_parameters():
            assert torch.allclose(state[k][i], v, atol=1e-5), (i, k)
    before = {k: v.detach().clone() for k, v in state.items()}
    batched()
    assert any(not torch.equal(before[k], state[k]) for k in state)    # the step does update


def test_device_bench_reports_the_build_it_ran():
    from benchmarks import bench_devices

    r = bench_devices.run("iris_mlp", "cpu", "smoke")
    assert r.compute == "cpu fp32"
    assert set(r.stages) == {"zoo", "align", "pca", "flow", "report"}
    assert np.isclose(sum(r.stages.values()), r.seconds) and min(r.stages.values()) >= 0
    assert r.gap[1] <= r.gap[0] <= r.gap[2] and 0 < r.zoo_score <= 1 and r.novelty > 0


def test_cofit_bench_fits_the_same_flows_both_ways_at_tiny_size():
    r = bench_cofit.run("tiny", FlowSpec(steps=30, eval_every=10, hidden=16, time_dim=8))
    assert (r.runs, r.replicates, r.steps) == (bench_cofit.RUNS, bench_cofit.R, 30)
    assert r.max_abs_param_diff < 1e-4 and r.ratio == r.apart_s / r.together_s


def test_distances_bench_reads_the_same_numbers_off_one_matrix_at_tiny_size():
    r = bench_distances.run(n_fit=30, n_nets=8, d=50, repeats=1)
    assert r.same_numbers
