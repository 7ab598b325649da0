"""One conditional flow over two zoos of one MLP (Fashion-MNIST, digits at 28x28): each label's
generated nets work on their own dataset, and the label is what makes them work there."""
from dataclasses import replace

import pytest

from dwf import ArchSpec, ConfigError, conditional, experiments


def test_conditional_flow_generates_nets_for_each_dataset(artifacts):
    cexp = experiments.conditional("fmnist_digits_mlp", "smoke")
    run = conditional.build(cexp, artifacts, progress=False)
    n0, n1 = (m.zoo.n_models for m in cexp.members)
    assert run.flow.n_labels == 2 and run.aligned.n == n0 + n1
    assert run.labels.tolist() == [0] * n0 + [1] * n1
    # all nets share one basis: aligned to member 0 of the first zoo, functions unchanged
    assert run.aligned.info["reference"] == 0
    by_name = {r.experiment: r for r in run.reports}
    assert set(by_name) == {"fmnist_digits_mlp_fmnist", "fmnist_digits_mlp_digits28"}
    for k, (r, other) in enumerate([(by_name["fmnist_digits_mlp_fmnist"], "digits28"),
                                    (by_name["fmnist_digits_mlp_digits28"], "fmnist")]):
        own, cross = r.row("generated")["acc_mean"], r.row(f"generated for {other}")["acc_mean"]
        zoo = r.row("zoo")["acc_mean"]
        print(f"label {k}: zoo {zoo:.3f}, generated {own:.3f}, generated for {other} {cross:.3f}")
        assert own > cross + 0.05          # the label steers the flow toward this dataset's nets
        assert r.extras["conditional"]["label"] == k
    # a second build reads every stage from the cache
    again = conditional.build(cexp, artifacts, progress=False)
    assert again.reports[1].rows == run.reports[1].rows
    gen = conditional.sample(run, 1, n=3, guidance=2.0)
    assert gen.vectors.shape == (3, run.aligned.layout.dim)
    assert set(gen.params) == set(run.aligned.params)
    # the app's path: any nets scored for one label, beside that label's zoo and baselines
    rep = conditional.label_report(run, 1, conditional.sample(run, 1, n=12, seed=5, steps=20, method="euler"))
    assert rep.row("zoo") == run.reports[1].row("zoo")          # same zoo, same test split
    assert rep.row("generated")["n"] == 12 and rep.extras["conditional"]["label"] == 1
    assert {r["name"] for r in rep.rows} >= {"zoo", "generated", "interpolation"}
    assert conditional.is_built(cexp, artifacts)
    assert not conditional.is_built(cexp, artifacts / "elsewhere")
    with pytest.raises(ConfigError, match="label 2 is not one of"):
        conditional.sample(run, 2)


def test_conditional_experiments_need_one_architecture_and_two_zoos():
    cexp = experiments.conditional("fmnist_digits_mlp", "smoke")
    other = replace(cexp.members[1], arch=ArchSpec("mlp", 784, (16,), 10))
    with pytest.raises(ConfigError, match="share one architecture"):
        replace(cexp, members=(cexp.members[0], other))
    with pytest.raises(ConfigError, match="at least 2"):
        replace(cexp, members=cexp.members[:1])
    with pytest.raises(ConfigError, match="unknown conditional"):
        experiments.conditional("nope")
