import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="dwf: sample neural networks", html_head_file="app_head.html")


@app.cell
def _():
    import threading

    import marimo as mo
    from safetensors.torch import save as safetensors_bytes

    import dwf

    return dwf, mo, safetensors_bytes, threading


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # dwf — sample complete neural networks

    Each experiment is a *zoo* of networks trained from different seeds. Their weights were
    aligned (re-basin removes the neuron-permutation symmetry), compressed with dual PCA, and a
    flow-matching model learned to turn Gaussian noise into such compressed weights.

    **Sample** draws fresh noise, integrates the flow and decodes it into new, complete networks,
    then tests them on the held-out test split beside the zoo and two trivial baselines: *noisy
    copies* of zoo members and *interpolations* between aligned pairs. Good generated networks
    are as accurate as the zoo without being copies of it.

    A *conditional* experiment holds one flow over the zoos of several datasets; pick the label
    (the dataset to generate for) and the guidance weight *w* (0 ignores the label, 1 follows
    it, more than 1 is classifier-free guidance).
    """)
    return


@app.cell
def _(mo):
    _args = mo.cli_args()
    profile = str(_args.get("profile") or "quick")
    artifacts = str(_args.get("artifacts") or "artifacts")
    return artifacts, profile


@app.cell
def _(dwf, mo):
    @mo.cache
    def load_run(name: str, profile: str, artifacts: str, conditional: bool):
        """Every artifact up to the flow of a built experiment, loaded once and kept in memory."""
        if conditional:
            exp = dwf.experiments.conditional(name, profile)
            build, n_stages = dwf.conditional.build, 4 + len(exp.members)
        else:
            exp = dwf.experiments.get(name, profile)
            build, n_stages = dwf.pipeline.build, 5
        with mo.status.progress_bar(total=n_stages, title=f"{name} [{profile}]", remove_on_exit=True) as bar:
            return build(exp, artifacts, progress=False, evaluate=False,
                         on_stage=lambda stage: bar.update(subtitle=f"stage: {stage}"))

    return (load_run,)


@app.cell
def _(dwf, mo, profile):
    def missing_data(name: str) -> str | None:
        """Why the experiment's data is not on disk (checked once, without loading it), or None."""
        try:
            specs = ([m.data for m in dwf.experiments.conditional(name, profile).members]
                     if name in dwf.experiments.CONDITIONAL else [dwf.experiments.get(name, profile).data])
        except dwf.DwfError as e:
            return str(e)
        return next((why for why in map(dwf.data.unavailable, specs) if why), None)

    _missing = {n: missing_data(n) for n in [*dwf.experiments.names(), *dwf.experiments.CONDITIONAL]}
    _label = lambda n, kind="": n + kind + (" — data not on disk" if _missing[n] else "")  # noqa: E731
    experiment = mo.ui.dropdown(
        {**{_label(n): n for n in dwf.experiments.names()},
         **{_label(n, " (conditional)"): n for n in dwf.experiments.CONDITIONAL}},
        value=_label("fmnist_mlp"), label="Experiment")
    experiment
    return experiment, missing_data


@app.cell
def _(mo):
    get_trainings, set_trainings = mo.state(0)  # bumped after training, to refresh the status below
    return get_trainings, set_trainings


@app.cell
def _(artifacts, dwf, experiment, get_trainings, missing_data, mo, profile):
    get_trainings()
    conditional = experiment.value in dwf.experiments.CONDITIONAL
    try:
        exp = (dwf.experiments.conditional if conditional else dwf.experiments.get)(experiment.value, profile)
    except dwf.DwfError as _e:
        mo.stop(True, mo.callout(str(_e), kind="danger"))
    _why = missing_data(experiment.value)
    mo.stop(_why is not None, mo.callout(mo.md(f"**{exp.name}** cannot be trained or sampled here: {_why}"),
                                         kind="warn"))
    built = (dwf.conditional.is_built(exp, artifacts) if conditional
             else dwf.pipeline.is_built(exp, artifacts, stage="flow"))
    _where = dwf.conditional.root(exp, artifacts) if conditional else dwf.pipeline.experiment_dir(exp, artifacts)
    train = mo.ui.run_button(label=f"Train the {profile} profile")
    None if built else mo.vstack([
        mo.callout(mo.md(f"No trained **{exp.name}** [{profile}] in `{_where}` yet. Training fits the "
                         + ("member zoos, aligns them to one basis" if conditional else "zoo, aligns it")
                         + ", compresses it and fits the flow (smoke: seconds, quick: minutes, "
                         "paper: hours)."), kind="warn"),
        train,
    ])
    return built, conditional, exp, train


@app.cell
def _(artifacts, built, conditional, dwf, exp, mo, profile, set_trainings, threading, train):
    mo.stop(built or not train.value)
    _cancel = threading.Event()
    _cancel_button = mo.ui.button(label="Cancel training", on_click=lambda _: _cancel.set())

    def _train() -> None:
        """Training in a marimo thread, so Cancel is heard; it stops at the next stage, zoo epoch
        or flow checkpoint and keeps what finished, so Train resumes there."""
        _me = mo.current_thread()
        _build, _n = ((dwf.conditional.build, 4 + len(exp.members)) if conditional else (dwf.pipeline.build, 5))
        try:
            with mo.status.progress_bar(total=_n, title=f"Training {exp.name} [{profile}]",
                                        remove_on_exit=True) as _bar:
                _build(exp, artifacts, progress=False, evaluate=False,
                       on_stage=lambda stage: _bar.update(subtitle=f"stage: {stage}"),
                       cancel=lambda: _cancel.is_set() or _me.should_exit)
        except dwf.Cancelled:
            mo.output.replace(mo.callout(mo.md(
                "**Training cancelled.** Finished stages and the last zoo or flow checkpoint are kept: "
                "**Train** again resumes there."), kind="info"))
            return
        except dwf.DwfError as _e:
            mo.output.replace(mo.callout(str(_e), kind="danger"))
            return
        mo.output.clear()
        set_trainings(lambda n: n + 1)                 # the status above now finds it built

    mo.output.replace(mo.hstack([_cancel_button, mo.md("_Training… Cancel stops it at the next epoch or "
                                                       "checkpoint._")], justify="start"))
    mo.Thread(target=_train, daemon=True).start()
    return


@app.cell
def _(artifacts, built, conditional, dwf, exp, load_run, mo, profile):
    mo.stop(not built)
    try:
        run = load_run(exp.name, profile, artifacts, conditional)
    except dwf.DwfError as _e:
        mo.stop(True, mo.callout(str(_e), kind="danger"))
    _zoo = (f"one conditional flow over {run.aligned.n} `{exp.arch.kind}` networks ("
            + ", ".join(f"{z.n} on {name}" for z, name in zip(run.zoos, exp.labels)) + ")"
            if conditional else f"a zoo of {run.zoo.n} `{exp.arch.kind}` networks")
    mo.md(f"**{exp.name}** [{profile}]: {_zoo} with {run.aligned.layout.dim:,} weights each, "
          f"compressed to {run.pca.n_components_} PCA components; the flow trained for "
          f"{exp.flow.steps:,} steps.")
    return (run,)


@app.cell
def _(artifacts, conditional, dwf, exp, mo, run):
    # the full report (every replicate, every baseline), when `make reproduce` or `dwf run` built it
    _where = (run.root / "report" / "label0.json") if conditional else dwf.pipeline.experiment_dir(exp, artifacts) / "report.json"
    _built = dwf.conditional.is_built(exp, artifacts, "report") if conditional else dwf.pipeline.is_built(exp, artifacts)
    _rep = dwf.Report.load(_where) if _built else None
    (mo.md(f"**Report of {_rep.experiment}** ({_rep.replicates} replicate flows, own seeds): generated "
           f"{_rep.fmt_interval(_rep.generated.score)} vs fitting members {_rep.fmt(_rep.zoo_population.score.mean)}, "
           f"gap {_rep.gap_text}; novelty {_rep.generated.novelty.text()}, spread {_rep.generated.spread.text()} "
           "(95 % intervals over replicates). " + (" ".join(_rep.verdicts()) or "No collapse or memorization."))
     if _rep else mo.md("_No full report for this experiment yet (`python -m dwf run` writes one); "
                        "sampling below works without it._"))
    return


@app.cell
def _(conditional, mo, run):
    _s = run.experiment.sample
    # the experiment's own sample size (at most 64): every net is tested on the whole test split
    n_samples = mo.ui.slider(8, 256, value=min(64, max(8, 8 * round(_s.n / 8))), step=8, label="samples",
                             show_value=True)
    ode_steps = mo.ui.slider(1, 200, value=_s.steps, label="ODE steps", show_value=True)
    solver = mo.ui.dropdown(["euler", "midpoint", "rk4"], value=_s.method, label="solver")
    # no bounds on the number fields: a bad value gets a message on Sample, never a silent clamp
    source_std = mo.ui.number(step=1e-3, label="source std",
                              value=run.flow.spec.source_std if _s.source_std is None else _s.source_std)
    seed = mo.ui.number(step=1, value=_s.seed, label="seed")
    sample_button = mo.ui.run_button(label="Sample")
    class_label = (mo.ui.dropdown({name: k for k, name in enumerate(run.experiment.labels)},
                                  value=run.experiment.labels[0], label="generate for")
                   if conditional else None)
    guidance = mo.ui.number(step=0.5, value=_s.guidance, label="guidance w") if conditional else None
    mo.vstack([
        mo.md("The *source std* scales the starting noise (the flow was trained with the "
              "default); more ODE steps or a higher-order solver follow the flow more exactly."),
        mo.hstack([n_samples, ode_steps, solver], justify="start"),
        *([mo.hstack([class_label, guidance], justify="start")] if conditional else []),
        mo.hstack([source_std, seed, sample_button], justify="start"),
    ])
    return class_label, guidance, n_samples, ode_steps, sample_button, seed, solver, source_std


@app.cell
def _(conditional, dwf, mo, run):
    import functools

    @functools.cache
    def bench_for(label):
        """The fitting and held-out members tested once per label; every sample reuses them."""
        _ctx = dwf.conditional.context(run, label) if conditional else dwf.reporting.context(run)
        return dwf.evaluate.Bench.of(_ctx)

    if not conditional:   # test the members now, while the controls are read, not on the first Sample
        with mo.status.spinner(title="Testing the fitting and held-out members once (every sample reuses them)"):
            bench_for(None)
    return (bench_for,)


@app.cell
def _(mo):
    get_history, set_history = mo.state([])   # every sample of this session, to compare settings
    return get_history, set_history


@app.cell
def _(mo, run):
    _experiment = run.experiment               # another experiment starts with no sample shown
    get_sample, set_sample = mo.state(None)    # the last finished sample, shown until the next one
    return get_sample, set_sample


@app.cell
def _(bench_for, class_label, conditional, dwf, guidance, mo, n_samples, ode_steps, run, sample_button, seed,
      set_history, set_sample, solver, source_std, threading):
    mo.stop(not sample_button.value, mo.md("Set the controls and press **Sample**."))
    import dataclasses as _dc
    import time as _time

    _whole = lambda v: int(v) if isinstance(v, float) and v.is_integer() else v  # noqa: E731
    try:
        _spec = _dc.replace(run.experiment.sample, n=n_samples.value, steps=ode_steps.value, method=solver.value,
                            source_std=source_std.value, seed=_whole(seed.value),
                            guidance=guidance.value if conditional else 1.0)
    except dwf.DwfError as _e:
        mo.stop(True, mo.callout(mo.md(f"**Not sampled:** {_e}"), kind="warn"))
    _label = class_label.value if conditional else None
    _cancel = threading.Event()
    _cancel_button = mo.ui.button(label="Cancel", on_click=lambda _: _cancel.set())

    class _Cancelled(Exception):
        pass

    def _sample() -> None:
        """The Sample action in a marimo thread, so the page keeps listening (Cancel, other
        controls) while it runs; it stops at the next stage once cancelled or superseded."""
        _me = mo.current_thread()
        _t0 = _time.perf_counter()
        _seconds = {}

        def _stage(name, bar, work):
            if _cancel.is_set() or _me.should_exit:
                raise _Cancelled
            bar.update(increment=0, subtitle=name)
            _t = _time.perf_counter()
            out = work()
            _seconds[name] = _time.perf_counter() - _t
            bar.update()
            return out

        try:
            with mo.status.progress_bar(total=3, title="Sample", remove_on_exit=True) as _bar:
                _bench = _stage("testing the members (once per experiment)", _bar, lambda: bench_for(_label))
                _generated = _stage("sampling, decoding and BatchNorm", _bar, lambda: (
                    dwf.conditional.generate_for(run, _label, _spec) if conditional else
                    dwf.sample.generate(run.flow, run.pca, run.experiment.arch, _spec, _bench.ctx.data.x_train)))
                _populations = _stage("testing the generated nets", _bar, lambda: _bench.compare(_generated))
                if _cancel.is_set() or _me.should_exit:
                    raise _Cancelled
        except _Cancelled:
            mo.output.replace(mo.callout(mo.md(
                "**Sample cancelled**: nothing from it is shown or kept; the last finished sample "
                "stays below."), kind="info"))
            return
        except dwf.DwfError as _e:
            mo.output.replace(mo.callout(str(_e), kind="danger"))
            return
        _action = _time.perf_counter() - _t0
        _metric, _g = _bench.ctx.task.metric, _populations[-1]
        set_history(lambda h: [*h, {
            "#": len(h) + 1, "experiment": run.experiment.name,
            "for": run.experiment.labels[_label] if conditional else _bench.ctx.data.name,
            "n": _spec.n, "ODE steps": _spec.steps, "solver": _spec.method,
            "source std": run.flow.spec.source_std if _spec.source_std is None else _spec.source_std,
            "seed": _spec.seed, **({"guidance": _spec.guidance} if conditional else {}),
            "score": round(dwf.report.score_format(_metric)[0] * _g.score.mean, 4),
            "novelty": round(_g.novelty.mean, 3), "spread": round(_g.spread.mean, 3),
            "memorized": round(_g.memorized.mean, 2), "seconds": round(_action, 2), "metric": _metric,
            "scores": list(_g.per_net.score)}])
        set_sample((_action, _bench.ctx.data, _generated, _label, _metric, _populations, _seconds))
        mo.output.clear()

    mo.output.replace(mo.hstack([_cancel_button, mo.md("_Sampling… Cancel stops it at the next stage._")],
                                justify="start"))
    mo.Thread(target=_sample, daemon=True).start()
    return


@app.cell
def _(get_sample, mo):
    mo.stop(get_sample() is None)
    action_seconds, dataset, generated, label, metric, populations, stage_seconds = get_sample()
    return action_seconds, dataset, generated, label, metric, populations, stage_seconds


@app.cell
def _(action_seconds, dataset, dwf, label, metric, mo, populations, run, stage_seconds):
    _z, _g = populations[0], populations[-1]
    _h = populations[1] if len(populations) == 3 else None
    _f, _d, _label = dwf.report.score_format(metric)
    _name, _unit = ("accuracy", "%") if metric == "accuracy" else (metric, "")
    _on = dataset.name if label is None else run.experiment.labels[label]
    _v = lambda v: f"{_f * v:.{_d}f}"  # noqa: E731
    _s = lambda v: _v(v) + _unit  # noqa: E731
    _warn = []
    if _g.collapsed:
        _warn.append(f"**Collapsed:** the spread among these nets is {_g.spread.mean:.3f} (below "
                     f"{dwf.report.COLLAPSE_SPREAD}): they are nearly one net.")
    if _g.memorizes:
        _warn.append(f"**Memorizes:** {100 * _g.memorized.mean:.0f} % of these nets are near-copies of one "
                     "fitting member.")
    mo.vstack([
        mo.md(f"### Generated on {_on}: mean {_name} {_s(_g.score.mean)} (fitting members "
              f"{_s(_z.score.mean)}" + (f", held-out members {_s(_h.score.mean)}" if _h else "") + ")\n\n"
              f"Novelty {_g.novelty.mean:.3f} against the fitting members"
              + (f", {_g.novelty_held_out.mean:.3f} against the held-out ones (a fitting member scores "
                 f"{_z.novelty_held_out.mean:.3f} there)" if _g.novelty_held_out and _z.novelty_held_out else "")
              + f"; spread {_g.spread.mean:.3f}; memorized {100 * _g.memorized.mean:.0f} %; "
              f"error similarity {_g.error_similarity.mean:.3f}.\n\n"
              f"The whole action took {action_seconds:.2f} s: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in stage_seconds.items())
              + ". No baselines, frontier or transfer run here (the report has them)."),
        *([mo.callout(mo.md("\n\n".join(_warn)), kind="warn")] if _warn else []),
        mo.ui.plotly(dwf.plots.accuracy_distributions(
            {p.name: p.per_net.score for p in populations}, metric=metric,
            title=f"Test {_name} of the fitting members, held-out members and generated nets")),
        mo.md("Each dot is one network. *Novelty* is the median distance from a network to its nearest "
              "fitting zoo member, divided by the same distance among fitting members (near 0: "
              "near-copies; about 1: as far from the zoo as its members are from each other). The "
              "*held-out members* were kept out of PCA and flow fitting: they show what a genuinely new "
              "network of this kind looks like. *Spread* is the same distance measured within the "
              "sample (near 0: the flow collapsed onto one net); *memorized* is the share of nets far "
              "closer to one member than to any other."),
        mo.ui.plotly(dwf.plots.spread_novelty(populations)),
        mo.ui.table([{"population": p.name, "n": p.n, _label: _v(p.score.mean), "± std": _v(p.score_std),
                      "novelty": round(p.novelty.mean, 3),
                      "held-out novelty": round(p.novelty_held_out.mean, 3) if p.novelty_held_out else None,
                      "spread": round(p.spread.mean, 3), "memorized": round(p.memorized.mean, 2),
                      "coverage": round(p.coverage.mean, 2) if p.coverage else None,
                      "error similarity": round(p.error_similarity.mean, 3)} for p in populations],
                    selection=None, label="Populations"),
    ])
    return


@app.cell
def _(dwf, get_history, mo):
    _h = get_history()
    mo.stop(not _h)
    _last = [e for e in _h[-2:] if e["metric"] == _h[-1]["metric"]]
    mo.vstack([
        mo.md("### Samples so far\n\nEvery sample of this session, to compare settings (score in "
              "display units; novelty, spread and memorized as above)."),
        mo.ui.table([{k: v for k, v in e.items() if k not in ("scores", "metric")} for e in _h],
                    selection=None, page_size=10, label="Sample history"),
        mo.ui.plotly(dwf.plots.score_histograms(
            {f"sample {e['#']} (seed {e['seed']}, std {e['source std']:g})": e["scores"] for e in _last},
            metric=_h[-1]["metric"], title="The last two samples, net by net")),
    ])
    return


@app.cell
def _(dwf, generated, metric, mo, populations, run):
    _p = populations[-1].per_net
    _f, _d, _ = dwf.report.score_format(metric)
    mo.ui.table([{"net": i, "score": f"{_f * a:.{_d}f}", "novelty": round(d, 3), "max error similarity": round(u, 3)}
                 for i, (a, d, u) in enumerate(zip(_p.score, _p.novelty, _p.error_similarity))],
                selection=None, page_size=10,
                label=f"Each generated net ({generated.vectors.shape[1]:,} weights, "
                      f"{dwf.families.describe(run.experiment.arch)})")
    return


@app.cell
def _(generated, mo):
    _n = generated.vectors.shape[0]
    net_a = mo.ui.number(start=0, stop=_n - 1, step=1, value=0, label="net a")
    net_b = mo.ui.number(start=0, stop=_n - 1, step=1, value=min(1, _n - 1), label="net b")
    interpolate_button = mo.ui.run_button(label="Interpolate")
    mo.vstack([
        mo.md("### Between two generated nets\n\nGenerated nets share the aligned basis, so the "
              "straight line between two of them is meaningful: a flat curve means they sit in one "
              "basin."),
        mo.hstack([net_a, net_b, interpolate_button], justify="start"),
    ])
    return interpolate_button, net_a, net_b


@app.cell
def _(dataset, dwf, generated, interpolate_button, metric, mo, net_a, net_b, run):
    mo.stop(not interpolate_button.value)
    _i, _j = int(net_a.value), int(net_b.value)
    _sd = generated.state_dict
    _bn = dwf.families.has_batchnorm(run.experiment.arch)
    with mo.status.spinner(title=f"Testing 11 nets between generated nets {_i} and {_j}..."):
        _path = dwf.interpolate.interpolation_path(
            dwf.archs.build(run.experiment.arch), _sd(_i), _sd(_j), dataset.x_test, dataset.y_test,
            x_calib=dataset.x_train if _bn else None, task=dwf.task.task_for(dataset))
    dwf.plots.interpolation_scores(_path.lambdas.tolist(), _path.acc.tolist(), _path.loss.tolist(),
                                   metric, title=f"Between generated nets {_i} and {_j}")
    return


@app.cell
def _(dwf, generated, mo, run):
    def _hf_folder() -> bytes:
        """Generated net 0 as a Hugging Face folder (save_pretrained + head + tokenizer), zipped."""
        import io
        import tempfile
        import zipfile
        from pathlib import Path

        _exp = run.experiment
        with tempfile.TemporaryDirectory() as tmp:
            out = dwf.export.save_bert(_exp.arch, generated.state_dict(0),
                                       Path(tmp) / "bert", tokenizer=dwf.data.vader_tokenizer(_exp.data.vocab))
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(out.iterdir()):
                    z.write(f, f"{_exp.name}_generated_0/{f.name}")
            return buf.getvalue()

    (mo.download(data=_hf_folder, filename=f"{run.experiment.name}_generated_0.zip",
                 mimetype="application/zip",
                 label="Download generated net 0 as a Hugging Face folder (zip; transformers loads it)")
     if run.experiment.arch.kind == "bert" else None)
    return


@app.cell
def _(dwf, generated, label, mo, run, safetensors_bytes):
    import dataclasses
    import json

    def _weights() -> bytes:
        """The generated nets as a dwf zoo file: one key per tensor with a leading model axis,
        BatchNorm statistics recalibrated."""
        _exp = run.experiment
        _for = {} if label is None else {"label": str(label), "dataset": _exp.labels[label]}
        return safetensors_bytes(generated.params, metadata={
            "experiment": _exp.name, "profile": _exp.profile, "n_models": str(generated.n),
            "sample": json.dumps(dataclasses.asdict(generated.spec)),   # every sampling setting
            "flow_config_hash": _exp.stage_hash("flow"), "flow_seed": str(run.flow.spec.seed),
            "flow": json.dumps(dataclasses.asdict(run.flow.spec)), "dwf_version": dwf.__version__, **_for})

    mo.download(data=_weights, filename=f"generated_{run.experiment.name}.safetensors",
                mimetype="application/octet-stream",
                label="Download the generated weights (safetensors, one key per tensor, leading model axis)")
    return


if __name__ == "__main__":
    app.run()
