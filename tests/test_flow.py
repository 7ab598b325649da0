import dataclasses
import math

import pytest
import torch

from dwf import ConfigError, FlowSpec, flow, ode
from dwf.velocity_stack import VelocityStack


@pytest.mark.parametrize("method,steps", [("euler", 1), ("midpoint", 7), ("rk4", 13)])
def test_solvers_exact_on_fields_they_integrate_exactly(method, steps):
    # dx/dt = a + b t: euler is exact for constant fields, midpoint for linear-in-t, rk4 for cubic-in-t
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    if method == "euler":
        def v(x, t): return a.expand_as(x)
        expected = x0 + a
    elif method == "midpoint":
        def v(x, t): return a + 3 * t[:, None]
        expected = x0 + a + 1.5
    else:
        def v(x, t): return a + 4 * t[:, None] ** 3
        expected = x0 + a + 1.0
    assert torch.allclose(ode.integrate(v, x0, steps, method), expected, atol=1e-12)


def test_rk4_converges_on_linear_ode_and_counts_steps():
    calls = []
    x0 = torch.ones(2, 1, dtype=torch.float64)

    def v(x, t):
        calls.append(1)
        return -x

    x1 = ode.integrate(v, x0, 20, "rk4")
    assert len(calls) == 20 * 4
    assert abs(float(x1[0, 0]) - math.exp(-1)) < 1e-7
    traj = ode.integrate(v, x0, 5, "euler", trajectory=True)
    assert traj.shape == (6, 2, 1)


def test_unknown_solver():
    with pytest.raises(ConfigError, match="rk4"):
        ode.integrate(lambda x, t: x, torch.zeros(1, 1), 3, "heun")


def test_flow_transports_to_a_gaussian_mixture():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    labels = torch.randint(3, (600,), generator=g)
    Z = centers[labels] + 0.3 * torch.randn(600, 2, generator=g)
    spec = FlowSpec(hidden=128, time_dim=32, dropout=0.0, steps=2500, batch_size=128, lr=2e-3,
                    source_std=1.0, eval_every=500, ema_decay=0.99)
    f = flow.fit(Z, spec, progress=False)
    S = f.sample(3000, steps=40, method="rk4", generator=torch.Generator().manual_seed(1))
    assert torch.allclose(S.mean(0), Z.mean(0), atol=0.25)
    assert torch.allclose(S.std(0), Z.std(0), atol=0.25)
    # mass near each mode matches the data's mixture weights
    near = torch.cdist(S, centers).argmin(1)
    frac = torch.bincount(near, minlength=3).float() / len(S)
    frac_data = torch.bincount(labels, minlength=3).float() / len(labels)
    assert (frac - frac_data).abs().max() < 0.08
    # and most samples sit on a mode, not between modes
    assert (torch.cdist(S, centers).min(1).values < 1.2).float().mean() > 0.9


def test_flow_save_load_round_trip(tmp_path):
    Z = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    f = flow.fit(Z, FlowSpec(steps=50, eval_every=25, hidden=16, time_dim=8), progress=False)
    f.save(tmp_path)
    g = flow.Flow.load(tmp_path)
    a = f.sample(5, steps=4, generator=torch.Generator().manual_seed(3))
    b = g.sample(5, steps=4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_conditional_flow_transports_each_label_to_its_own_mode(tmp_path):
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    labels = torch.randint(3, (600,), generator=g)
    Z = centers[labels] + 0.3 * torch.randn(600, 2, generator=g)
    spec = FlowSpec(hidden=128, time_dim=32, dropout=0.0, steps=2500, batch_size=128, lr=2e-3,
                    source_std=1.0, eval_every=500, ema_decay=0.99, label_dropout=0.2)
    f = flow.fit(Z, spec, progress=False, labels=labels)
    assert f.n_labels == 3
    for k in range(3):
        S = f.sample(500, steps=30, generator=torch.Generator().manual_seed(k), label=k)
        assert (torch.cdist(S, centers).argmin(1) == k).float().mean() > 0.95
        assert torch.allclose(S.mean(0), centers[k], atol=0.3)
    # the null label (dropped labels) learns the whole mixture
    S = f.sample(1500, steps=30, generator=torch.Generator().manual_seed(9))
    frac = torch.bincount(torch.cdist(S, centers).argmin(1), minlength=3).float() / len(S)
    assert (frac - torch.bincount(labels, minlength=3).float() / len(labels)).abs().max() < 0.1
    # guidance 0 is exactly the unconditional field; guidance 1 is the conditional one
    a = f.sample(7, steps=5, generator=torch.Generator().manual_seed(1), label=2, guidance=0.0)
    b = f.sample(7, steps=5, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-6)
    f.save(tmp_path)
    again = flow.Flow.load(tmp_path)
    assert torch.equal(again.sample(4, steps=3, generator=torch.Generator().manual_seed(2), label=1),
                       f.sample(4, steps=3, generator=torch.Generator().manual_seed(2), label=1))
    with pytest.raises(ConfigError, match="label 3 is out of range"):
        f.sample(2, label=3)


def test_conditional_flow_errors():
    Z = torch.randn(20, 4)
    with pytest.raises(ConfigError, match="labels must be"):
        flow.fit(Z, FlowSpec(steps=5), progress=False, labels=torch.zeros(19, dtype=torch.long))
    with pytest.raises(ConfigError, match="label_dropout"):
        flow.fit(Z, FlowSpec(steps=5, label_dropout=1.0), progress=False, labels=torch.zeros(20))
    f = flow.fit(Z, FlowSpec(steps=5, eval_every=5, hidden=8, time_dim=4), progress=False)
    with pytest.raises(ConfigError, match="unconditional"):
        f.sample(2, label=0)


def test_velocity_stack_computes_each_net_and_round_trips():
    nets = [flow.VelocityNet(5, hidden=16, time_dim=8, dropout=0.3, n_labels=2) for _ in range(3)]
    for i, n in enumerate(nets):   # non-trivial last layers (they start at zero)
        torch.nn.init.normal_(n.net[-1].weight, generator=torch.Generator().manual_seed(i))
        n.eval()
    stack = VelocityStack(nets)
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(3, 7, 5, generator=g), torch.rand(3, 7, generator=g)
    y = torch.randint(3, (3, 7), generator=g)
    out = stack.forward(stack.params, x, t, y)
    for r, n in enumerate(nets):
        assert torch.allclose(out[r], n(x[r], t[r], y[r]), atol=1e-5)
        assert torch.allclose(stack.forward(stack.params, x, t)[r], n(x[r], t[r]), atol=1e-5)   # null label
        assert all(torch.equal(v, n.state_dict()[k]) for k, v in stack.state_dict(r).items())


def test_replicates_fitted_as_one_stack_match_fits_alone():
    Z = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
    spec = FlowSpec(steps=60, eval_every=20, hidden=32, time_dim=8)
    specs = [dataclasses.replace(spec, seed=s) for s in (0, 1, 2)]
    together = flow.fit_many(Z, specs, progress=False)
    for s, f in zip(specs, together):
        alone = flow.fit(Z, s, progress=False)
        assert f.spec == s and f.history["step"] == alone.history["step"]
        assert f.history["val_loss"] == pytest.approx(alone.history["val_loss"], rel=1e-4)
        for k, v in alone.net.state_dict().items():
            assert torch.allclose(f.net.state_dict()[k], v, atol=1e-4), k
    # other seeds give other flows
    assert not torch.allclose(together[0].net.net[0].weight, together[1].net.net[0].weight)
    with pytest.raises(ConfigError, match="differ only in their seed"):
        flow.fit_many(Z, [spec, dataclasses.replace(spec, hidden=64)], progress=False)


def test_runs_with_their_own_codes_fitted_as_one_stack_match_fits_alone():
    """One code matrix per replicate (an experiment and its ablations): each replicate is the
    flow fitted alone on its own codes, standardized by its own codes' std."""
    g = torch.Generator().manual_seed(1)
    Z1, Z2 = torch.randn(30, 6, generator=g), 3 * torch.randn(30, 6, generator=g) + 1
    spec = FlowSpec(steps=60, eval_every=20, hidden=32, time_dim=8, standardize=True)
    specs = [dataclasses.replace(spec, seed=s) for s in (0, 1, 0, 1)]
    together = flow.fit_many([Z1, Z1, Z2, Z2], specs, progress=False)
    for Z, s, f in zip([Z1, Z1, Z2, Z2], specs, together):
        alone = flow.fit(Z, s, progress=False)
        assert torch.equal(f.scale, alone.scale)
        assert f.history["val_loss"] == pytest.approx(alone.history["val_loss"], rel=1e-4)
        for k, v in alone.net.state_dict().items():
            assert torch.allclose(f.net.state_dict()[k], v, atol=1e-4), k
    assert not torch.allclose(together[0].scale, together[2].scale)   # the same seed on other codes
    with pytest.raises(ConfigError, match="one per spec of one shape"):
        flow.fit_many([Z1, Z2[:, :5]], specs[:2], progress=False)
    with pytest.raises(ConfigError, match="one per spec of one shape"):
        flow.fit_many([Z1], specs[:2], progress=False)


@pytest.mark.parametrize("change, words", [
    (dict(n=0), "n must be a whole number >= 1"), (dict(seed=1.5), "seed must be a whole number"),
    (dict(seed=-1), "seed must be a whole number >= 0"), (dict(steps=True), "steps must be"),
    (dict(method="heun"), "unknown ODE solver 'heun'"), (dict(source_std=0.0), "source std must be"),
    (dict(source_std=float("inf")), "source std must be"), (dict(guidance=float("nan")), "guidance")])
def test_sample_spec_refuses_bad_settings_by_name(change, words):
    from dwf import SampleSpec
    with pytest.raises(ConfigError, match=words):
        SampleSpec(**change)


class Interrupt(Exception):
    pass


def _equal_flows(a: list[flow.Flow], b: list[flow.Flow]) -> bool:
    return all(x.history == y.history and all(torch.equal(v, y.net.state_dict()[k])
                                              for k, v in x.net.state_dict().items()) for x, y in zip(a, b))


@pytest.mark.parametrize("labelled", [False, True])
def test_a_fit_resumed_at_every_checkpoint_equals_the_uninterrupted_fit(tmp_path, labelled):
    """Killed after any validation step (its checkpoint written), a rerun resumes there and ends
    with the same flows, histories and best snapshots, bit for bit."""
    Z = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(30) % 3 if labelled else None
    spec = FlowSpec(steps=60, eval_every=20, hidden=32, time_dim=8, dropout=0.2)
    specs = [dataclasses.replace(spec, seed=s) for s in (0, 1)]
    full = flow.fit_many(Z, specs, progress=False, labels=labels)
    for stop in (20, 40):
        ck = tmp_path / f"stop{stop}.safetensors"

        def interrupt(step, stop=stop):
            if step == stop:
                raise Interrupt

        with pytest.raises(Interrupt):
            flow.fit_many(Z, specs, progress=False, labels=labels, checkpoint_path=ck, on_eval=interrupt)
        assert ck.exists()
        resumed = flow.fit_many(Z, specs, progress=False, labels=labels, checkpoint_path=ck)
        assert _equal_flows(full, resumed), stop


def test_a_checkpoint_of_other_codes_or_specs_is_not_resumed(tmp_path):
    Z = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
    spec = FlowSpec(steps=40, eval_every=20, hidden=16, time_dim=8)
    ck = tmp_path / "checkpoint.safetensors"

    def interrupt(step):
        raise Interrupt

    with pytest.raises(Interrupt):
        flow.fit_many(Z, [spec], progress=False, checkpoint_path=ck, on_eval=interrupt)
    for Z2, spec2 in ((Z + 1, spec), (Z, dataclasses.replace(spec, seed=5))):
        fresh = flow.fit_many(Z2, [spec2], progress=False)
        assert _equal_flows(fresh, flow.fit_many(Z2, [spec2], progress=False, checkpoint_path=ck))


@pytest.mark.parametrize("damage, words", [
    (lambda meta: meta.pop("spec"), "needs 'spec'"),
    (lambda meta: meta["spec"].update(width=3), "unknown field"),
    (lambda meta: meta["spec"].update(hidden="wide"), "hidden"),
])
def test_a_damaged_flow_json_is_an_artifact_error(tmp_path, damage, words):
    import json
    from dwf import ArtifactError
    Z = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    flow.fit(Z, FlowSpec(steps=20, eval_every=10, hidden=16, time_dim=8), progress=False).save(tmp_path)
    meta = json.loads((tmp_path / "flow.json").read_text())
    damage(meta)
    (tmp_path / "flow.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=words):
        flow.Flow.load(tmp_path)


def test_the_last_snapshot_is_the_final_ema_and_best_the_lowest_held_out_loss():
    """Validation never touches the training draws, so a fit checked every 20 steps that keeps its
    last EMA weights equals a fit checked only at its end; "best" keeps the lowest loss's."""
    Z = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    spec = FlowSpec(steps=60, eval_every=20, hidden=16, time_dim=4, seed=3)
    last = flow.fit(Z, dataclasses.replace(spec, snapshot="last"), progress=False)
    once = flow.fit(Z, dataclasses.replace(spec, eval_every=60), progress=False)
    best = flow.fit(Z, spec, progress=False)
    for k, v in once.net.state_dict().items():
        assert torch.equal(last.net.state_dict()[k], v), k
    assert last.history["best_val_loss"] == last.history["val_loss"][-1]
    assert best.history["best_val_loss"] == min(best.history["val_loss"])
    with pytest.raises(ConfigError, match="snapshot"):
        flow.fit(Z, dataclasses.replace(spec, snapshot="first"), progress=False)
