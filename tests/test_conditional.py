"""One conditional flow over two zoos of one MLP (Fashion-MNIST, digits at 28x28): each label's
generated nets work on their own dataset, and the label is what makes them work there."""
from dataclasses import replace

import pytest

from dwf import ArchSpec, ConfigError, PopulationSpec as S, conditional, evaluate, experiments
from dwf.record import to_json


def test_conditional_flow_generates_nets_for_each_dataset(artifacts):
    cexp = experiments.conditional("fmnist_digits_mlp", "smoke")
    run = conditional.build(cexp, artifacts, progress=False)
    n0, n1 = (m.zoo.n_models for m in cexp.members)
    assert run.flow.n_labels == 2 and run.aligned.n == n0 + n1 and len(run.flows) == cexp.eval.replicates
    assert run.labels.tolist() == [0] * n0 + [1] * n1
    # each zoo keeps its own held-out members, out of the joint PCA
    assert {int(run.labels[i]) for i in run.held_idx} == {0, 1}
    assert run.pca.n_components_ == len(run.fit_idx) - 1
    # all nets share one basis: aligned to member 0 of the first zoo, functions unchanged
    assert run.aligned.info["reference"] == 0
    by_name = {r.experiment: r for r in run.reports}
    assert set(by_name) == {"fmnist_digits_mlp_fmnist", "fmnist_digits_mlp_digits28"}
    for k, (r, other) in enumerate([(by_name["fmnist_digits_mlp_fmnist"], 1),
                                    (by_name["fmnist_digits_mlp_digits28"], 0)]):
        own, cross = r.generated.score.mean, r.population(S("generated", label=other)).score.mean
        assert r.generated.spec == S("generated", label=k) and r.conditional.label == k
        assert own > cross + 0.05          # the label steers the flow toward this dataset's nets
        assert r.find(S("generated", label=k, guidance=0.0)) is not None     # the unconditional control
    # a second build reads every stage from the cache
    again = conditional.build(cexp, artifacts, progress=False)
    assert to_json(again.reports[1]) == to_json(run.reports[1])
    # the app's path: any nets scored for one label, beside that label's fitting and held-out members
    spec = replace(cexp.sample, n=12, seed=5, steps=20, method="euler", guidance=2.0)
    gen = conditional.generate_for(run, 1, spec)
    assert gen.vectors.shape == (12, run.aligned.layout.dim) and gen.label == 1
    assert set(gen.params) == set(run.aligned.params)
    pops = evaluate.compare(conditional.context(run, 1), gen)
    assert [p.spec for p in pops] == [S("zoo", "own"), S("held_out", "own"), S("generated", label=1)]
    assert pops[0].per_net.score == run.reports[1].zoo_population.per_net.score   # same members, same test split
    assert conditional.is_built(cexp, artifacts)
    assert not conditional.is_built(cexp, artifacts / "elsewhere")
    with pytest.raises(ConfigError, match="label 2 is not one of"):
        conditional.generate_for(run, 2, spec)


def test_conditional_experiments_need_one_architecture_and_two_zoos():
    cexp = experiments.conditional("fmnist_digits_mlp", "smoke")
    other = replace(cexp.members[1], arch=ArchSpec("mlp", 784, (16,), 10))
    with pytest.raises(ConfigError, match="share one architecture"):
        replace(cexp, members=(cexp.members[0], other))
    with pytest.raises(ConfigError, match="at least 2"):
        replace(cexp, members=cexp.members[:1])
    with pytest.raises(ConfigError, match="unknown conditional"):
        experiments.conditional("nope")
