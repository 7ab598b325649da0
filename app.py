import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="dwf: sample neural networks")


@app.cell
def _():
    import marimo as mo
    from safetensors.torch import save as safetensors_bytes

    import dwf

    return dwf, mo, safetensors_bytes


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # dwf — sample complete neural networks

    Pick an experiment: a zoo of trained networks, aligned by re-basin, compressed with dual PCA,
    with a flow-matching model fitted from Gaussian noise to the compressed weights. **Sample**
    draws fresh noise, integrates the flow and decodes new networks, then scores them on the
    test split beside the zoo and two trivial baselines (noisy copies of zoo members and
    interpolations of aligned pairs). *Novelty* is the median distance to the nearest zoo member
    relative to the zoo's own spacing (near 0: near-copies; 1: as far as zoo members are from
    each other).
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
    experiment = mo.ui.dropdown(dwf.experiments.names(), value="fmnist_mlp", label="Experiment")
    experiment
    return (experiment,)


@app.cell
def _(artifacts, dwf, experiment, mo, profile):
    exp = dwf.experiments.get(experiment.value, profile)
    built = dwf.pipeline.is_built(exp, artifacts, stage="flow")
    train = mo.ui.run_button(label=f"Train the {profile} profile", disabled=built)
    mo.vstack([
        mo.md(f"**{exp.name}** [{profile}]: {'artifacts found in' if built else 'no artifacts yet in'} "
              f"`{dwf.pipeline.experiment_dir(exp, artifacts)}`"
              + ("" if built else " — train the zoo and the flow here (the quick profile takes a few minutes).")),
        train,
    ])
    return built, exp, train


@app.cell
def _(artifacts, built, dwf, exp, mo, train):
    mo.stop(not (built or train.value))
    _stages = ["data", "zoo", "align", "pca", "flow"]
    with mo.status.progress_bar(total=len(_stages), title=f"Loading {exp.name}",
                                remove_on_exit=True) as _bar:
        run = dwf.pipeline.build(exp, artifacts, progress=False, evaluate=False,
                                 on_stage=lambda s: _bar.update(title=f"{exp.name}: {s}"))
    return (run,)


@app.cell
def _(mo, run):
    n_samples = mo.ui.slider(8, 256, value=64, step=8, label="samples", show_value=True)
    source_std = mo.ui.number(start=1e-4, stop=10.0, step=1e-3, value=run.flow.spec.source_std,
                              label="source std")
    ode_steps = mo.ui.slider(1, 200, value=run.experiment.sample.steps, label="ODE steps", show_value=True)
    solver = mo.ui.dropdown(["euler", "midpoint", "rk4"], value="rk4", label="solver")
    seed = mo.ui.number(start=0, stop=1_000_000, step=1, value=0, label="seed")
    sample_button = mo.ui.run_button(label="Sample")
    mo.vstack([mo.hstack([n_samples, ode_steps, solver], justify="start"),
               mo.hstack([source_std, seed, sample_button], justify="start")])
    return n_samples, ode_steps, sample_button, seed, solver, source_std


@app.cell
def _(dwf, mo, n_samples, ode_steps, run, sample_button, seed, solver, source_std):
    mo.stop(not sample_button.value, mo.md("Set the controls and press **Sample**."))
    with mo.status.spinner(title="Sampling and evaluating..."):
        generated = dwf.pipeline.sample(run, n=n_samples.value, steps=ode_steps.value,
                                        method=solver.value, source_std=source_std.value,
                                        seed=int(seed.value))
        report = dwf.pipeline.evaluate_run(run, generated, barrier=False)
    return generated, report


@app.cell
def _(dwf, generated, mo, report):
    _g, _z = report.row("generated"), report.row("zoo")
    _shown = {k: report.populations[k]["acc"] for k in report.populations
              if k in ("zoo", "generated", "interpolation") or k == "noisy σ=0.01"}
    mo.vstack([
        mo.md(f"### Generated: mean accuracy {100 * _g['acc_mean']:.2f}% "
              f"(zoo {100 * _z['acc_mean']:.2f}%), novelty {_g['novelty']:.3f}, "
              f"max error-IoU {_g['max_iou']:.3f}\n\n"
              f"{_g['n']} networks sampled and decoded in {generated.seconds:.2f} s."),
        mo.ui.plotly(dwf.plots.accuracy_distributions(_shown)),
        mo.ui.plotly(dwf.plots.novelty_scatter(report)),
        mo.ui.table([{"population": r["name"], "n": r["n"], "accuracy %": round(100 * r["acc_mean"], 2),
                      "± std": round(100 * r["acc_std"], 2), "novelty": round(r["novelty"], 3),
                      "max error-IoU": round(r["max_iou"], 3)} for r in report.rows],
                    selection=None, label="All populations"),
    ])
    return


@app.cell
def _(generated, mo, report, run):
    _p = report.populations["generated"]
    _zoo_nn = report.extras["zoo_median_nn"]
    mo.ui.table([{"net": i, "accuracy %": round(100 * a, 2), "novelty": round(d / _zoo_nn, 3),
                  "max error-IoU": round(u, 3)}
                 for i, (a, d, u) in enumerate(zip(_p["acc"], _p["nn_dist"], _p["max_iou"]))],
                selection=None, page_size=10,
                label=f"Each generated net ({generated.vectors.shape[1]} weights, {run.experiment.arch.kind})")
    return


@app.cell
def _(dwf, exp, generated, mo, run, safetensors_bytes):
    _zoo = dwf.Zoo.from_vectors(run.experiment.arch, generated.vectors)
    mo.download(data=safetensors_bytes(_zoo.params, metadata={"experiment": exp.name, "profile": exp.profile,
                                                              "n_models": str(_zoo.n)}),
                filename=f"generated_{exp.name}.safetensors", mimetype="application/octet-stream",
                label="Download the generated weights (safetensors, one key per tensor, leading model axis)")
    return


if __name__ == "__main__":
    app.run()
