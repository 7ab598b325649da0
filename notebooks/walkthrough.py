import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import marimo as mo
    import torch

    import dwf
    import dwf.plots
    import dwf.rebasin.symmetry

    S = dwf.PopulationSpec
    return S, dwf, mo, torch


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # DeepWeightFlow, stage by stage

    This notebook walks through one experiment of **dwf**, a re-build of *DeepWeightFlow:
    Re-Basined Flow Matching for Generating Neural Network Weights* (Gupta et al., ICLR 2026).
    The idea: train a *zoo* of networks, remove the symmetry that lets one function be written
    with many different weight vectors, compress the aligned weights with PCA, and fit a
    flow-matching model that turns Gaussian noise into the compressed weights of **new, complete
    networks**, with no fine-tuning. Every number and figure below comes from `dwf`; the notebook
    only calls it and draws.

    Run it headless with
    `python notebooks/walkthrough.py -- --profile smoke --artifacts /tmp/artifacts`, or
    interactively with `marimo edit notebooks/walkthrough.py -- --profile quick`.
    Options: `--experiment` (default `fmnist_mlp`), `--profile` (`smoke`, `quick`, `paper`;
    default `quick`), `--artifacts` (the cache folder; default `artifacts`).
    """)
    return


@app.cell
def _(mo):
    _args = mo.cli_args()
    experiment_name = str(_args.get("experiment") or "fmnist_mlp")
    profile = str(_args.get("profile") or "quick")
    artifacts = str(_args.get("artifacts") or "artifacts")
    return artifacts, experiment_name, profile


@app.cell
def _(dwf, experiment_name, mo):
    picker = mo.ui.dropdown(dwf.experiments.names(), value=experiment_name, label="Experiment")
    picker
    return (picker,)


@app.cell
def _(artifacts, dwf, mo, picker, profile):
    exp = dwf.experiments.get(picker.value, profile)
    # an experiment that is not built yet waits for a click (building can take minutes), so the
    # sections below never show one experiment's text under another's name; a script run builds
    build_button = mo.ui.run_button(label=f"Build {exp.name} [{profile}]")
    _built = dwf.pipeline.is_built(exp, artifacts)
    None if _built else mo.vstack([mo.callout(mo.md(
        f"**{exp.name}** [{profile}] is not built in `{artifacts}` yet: building trains its zoo, aligns, "
        "compresses, fits the flows and evaluates (quick: minutes). The sections below appear when it is done."),
        kind="warn"), build_button])
    return build_button, exp


@app.cell
def _(artifacts, build_button, dwf, exp, mo, profile):
    mo.stop(not (dwf.pipeline.is_built(exp, artifacts) or build_button.value or mo.app_meta().mode == "script"))
    _stages = ["data", *exp.STAGES, "sample", "evaluate", "barrier", "transfer", "frontier"]
    with mo.status.progress_bar(total=len(_stages), title=f"{exp.name} [{profile}]", remove_on_exit=True) as _bar:
        run = dwf.pipeline.build(exp, artifacts, progress=False,
                                 on_stage=lambda stage: _bar.update(subtitle=f"stage: {stage}"))
    report = run.report
    mo.md(f"Loaded **{exp.name}** with the **{exp.profile}** profile from "
          f"`{run.root}`: every stage is cached there, keyed by a hash of its config.")
    return report, run


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 1. Data

    A classification dataset split three ways. The *validation* split is carved out of the
    training split and is the only thing used to pick checkpoints; the *test* split is only ever
    used to report accuracy. Inputs are standardized with training statistics.
    """)
    return


@app.cell
def _(dwf, exp, mo, run):
    _d = run.data
    _names = {"fmnist": ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Boot")}.get(_d.name)
    _arch = dwf.families.describe(exp.arch)
    _target = (f"{_d.n_classes} classes" if _d.n_classes else
               "a regression target (each token's mean human valence rating, −4 to 4)")
    _text = mo.md(
        f"**{_d.name}**: {len(_d.y_train)} training, {len(_d.y_val)} validation and "
        f"{len(_d.y_val)} validation examples of shape {_d.input_shape} (the test split stays "
        f"locked until the report stage), {_target}. The architecture is an {_arch}."
    )
    _grid = (dwf.plots.image_grid(_d.x_train[:16], _d.y_train[:16].tolist(), _names)
             if _d.x_train.ndim == 4 else None)
    mo.vstack([_text, _grid] if _grid is not None else [_text])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 2. The zoo

    The training set of the generator is itself a set of networks: the same architecture trained
    from many random seeds. dwf trains all of them at once (one vectorized pass over the stacked
    weights) and keeps each net's best-validation epoch.

    A seeded quarter of the zoo is then **held out**: those members never enter PCA or flow
    fitting. They are the yardstick for "new": a generated net that is as far from the fitting
    members as a held-out member is, and as accurate, is a genuinely new member of the zoo.
    """)
    return


@app.cell
def _(dwf, mo, report, run):
    _z, _h = report.zoo_population, report.held_out
    mo.vstack([
        mo.md(f"{run.zoo.n} nets: {report.zoo.n_fit} fitting members, test {report.metric} "
              f"{report.fmt(_z.score.mean)} ± {report.fmt(_z.score_std)}; {len(report.zoo.held_out)} held out "
              + (f"(members {report.zoo.held_out}), {report.fmt(_h.score.mean)} ± {report.fmt(_h.score_std)}."
                 if _h else "(none).")),
        dwf.plots.zoo_accuracy_histogram(_z.per_net.score, report.zoo.val_score, metric=report.metric,
                                         title="Zoo score: fitting members (test), every member (validation)"),
    ])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 3. Symmetry: many weight vectors, one function

    Shuffle the hidden units of a layer, rows of the weights that write them and columns of
    the weights that read them alike, and the network computes exactly the same function. Two
    zoo members can thus be far apart in weight space only because their units are listed in
    different orders. dwf reads which axes of which tensors move together from the model's own
    graph (`dwf.rebasin.spec_from_module`, with `torch.fx`): in a ResNet, every block that adds
    to the residual stream shares the stream's permutation, and BatchNorm scales, shifts and
    running statistics follow their channels. A transformer has more: the heads of a block can
    be reordered, the query/key units inside a head permuted together, its value/output units
    by a *separate* permutation, the FFN units, and the whole residual stream
    (`dwf.rebasin.vit_spec`). Below, one zoo member is permuted with random permutations of
    every group: its weights move a long way, its outputs do not (up to float rounding).
    """)
    return


@app.cell
def _(dwf, mo, run, torch):
    _spec = dwf.families.symmetry(run.experiment.arch, run.data.x_train)
    _sd = run.zoo.state_dicts()[0]
    _sd_perm = dwf.rebasin.symmetry.random_permutation(_spec, _sd, torch.Generator().manual_seed(0))
    _model = dwf.archs.build(run.experiment.arch).eval()
    _x = run.data.x_val[:1000]   # any inputs will do; the test split stays locked
    with torch.no_grad():
        _model.load_state_dict(_sd)
        _out = _model(_x)
        _model.load_state_dict(_sd_perm)
        _out_perm = _model(_x)
    sym_max_diff = float((_out - _out_perm).abs().max())
    _flat = run.zoo.layout.flatten([_sd, _sd_perm])
    _moved = float((_flat[0] - _flat[1]).norm())
    _groups = dwf.rebasin.symmetry.group_sizes(_spec, _sd)
    _log10 = dwf.rebasin.symmetry.log10_equivalent_weights(_spec, _sd)
    print(f"max |f(x) - f_permuted(x)| over {len(_x)} validation inputs: {sym_max_diff:.2e}")
    _shown = _groups if len(_groups) <= 6 else f"{len(_groups)} groups of sizes {sorted(set(_groups.values()))}"
    mo.md(
        f"Permutation groups: {_shown}, so each net has about 10^{_log10:.0f} "
        f"equivalent weight vectors. The permuted copy is {_moved:.2f} away in weight space "
        f"(the weight vector itself has norm {float(_flat[0].norm()):.2f}), yet the largest "
        f"difference in its logits over {len(_x)} validation inputs is **{sym_max_diff:.1e}**."
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 4. Re-basin: pick one representative per function

    Git Re-Basin *weight matching* permutes every zoo member's hidden units to best match a
    reference member (member 0): for each layer in turn, a linear assignment maximizes the inner
    product between the reference's units and the member's units, until no layer improves.
    Transformers are aligned by *TransFusion* in one pass: the residual stream first, then per
    block the heads (matched by the singular values of their Q, K, V weights, which no other
    permutation changes), the QK and VO units inside each matched head pair, and the FFN units.
    The functions do not change; the zoo becomes a tighter cloud, which is far easier to model.
    """)
    return


@app.cell
def _(dwf, mo, report):
    _before = report.zoo.dist_to_ref_before
    _after = report.zoo.dist_to_ref_after
    _ref = report.zoo.reference
    _b = [v for i, v in enumerate(_before) if i != _ref]
    _a = [v for i, v in enumerate(_after) if i != _ref]
    mo.vstack([
        mo.md(f"Mean distance to the reference: {sum(_b) / len(_b):.2f} before alignment, "
              f"{sum(_a) / len(_a):.2f} after ({100 * (1 - sum(_a) / sum(_b)):.0f} % shorter). "
              f"Zoo accuracy is unchanged, because every net still computes the same function."),
        dwf.plots.alignment_distances(_before, _after, reference=_ref),
    ])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The classic re-basin picture: walk the straight line θ(λ) = (1 − λ) θ_a + λ θ_b between two
    zoo members. As trained, the midpoint is a much worse network (a *loss barrier*); after
    permuting θ_b's units to match θ_a, the path stays low. This is why averaging, PCA and flows
    work far better on aligned weights.
    """)
    return


@app.cell
def _(dwf, mo, report):
    (dwf.plots.interpolation_barrier(report.barrier) if report.barrier else
     mo.md("_This run measured no barrier (`EvalSpec.interpolation`)._"))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 5. Dual PCA

    With n nets of d weights (n ≪ d), PCA is done on the n × n Gram matrix of the centred
    weight vectors rather than the d × d covariance ("dual" PCA); its eigenvectors are mapped
    back to weight space. At most n − 1 directions carry variance. The explained-variance ratio
    below is measured against the **full** variance (the trace), not just the kept components.
    """)
    return


@app.cell
def _(dwf, mo, report):
    _ratio = report.zoo.explained_variance_ratio
    mo.vstack([
        mo.md(f"{report.zoo.n_params} weights per net are compressed to "
              f"{report.zoo.n_components} coordinates, keeping "
              f"{100 * sum(_ratio):.1f} % of the fitting members' variance."),
        dwf.plots.pca_spectrum(_ratio),
    ])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 6. Flow matching

    A small MLP learns a velocity field v(x, t) that carries Gaussian noise x₀ (std s) to the
    zoo's codes x₁ along straight lines: at a random time t it sees
    x_t = (1 − t) x₀ + t x₁ (plus a little noise) and regresses x₁ − x₀. Fresh noise is drawn at
    every step. A tenth of the codes is held out; the exponential moving average of the network
    with the lowest held-out loss is kept. A gap between the two curves means the flow is
    learning the training codes themselves rather than the distribution they come from.

    The flow is fitted several times with its own seed (the *replicates*, 3 by default): every
    number about generated nets below is a mean over replicates with a 95 % interval, so a
    difference that one seed shows and another does not is visible as such.
    """)
    return


@app.cell
def _(dwf, report):
    dwf.plots.flow_loss(report.flow.history, title="Flow-matching loss (replicate 0)")
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    Sampling integrates the learned field from t = 0 to 1 (RK4 by default). Here are sample
    paths in the first two latent coordinates, from noise near the origin to the zoo's codes.
    """)
    return


@app.cell
def _(dwf, exp, run, torch):
    _traj = run.flow.sample(24, steps=exp.sample.steps, method=exp.sample.method,
                            generator=torch.Generator().manual_seed(0),
                            source_std=exp.sample.source_std, trajectory=True)
    dwf.plots.flow_trajectories(_traj.numpy(), targets=run.codes.numpy())
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 7. Generation

    Decode sampled codes with the inverse PCA, reshape them into state dicts, and the result is a
    set of ready-to-use networks. Accuracy alone says little, so every run also scores two
    trivial generators that need no learning at all: **noisy copies** of zoo members (Gaussian
    noise of std σ on every weight) and **interpolations** between random pairs of aligned
    members.

    Networks with BatchNorm need one more step. The flow generates weights only; the running
    statistics a BatchNorm layer normalizes with are re-estimated for every generated net on a
    fixed, seeded subset of the *training* images (a cumulative average over the batches).
    Without it — here, with the zoo's average statistics instead — a generated ResNet is
    usually no better than chance, because BatchNorm makes the scale of the convolution weights
    before it arbitrary and every zoo member settles on its own.
    """)
    return


@app.cell
def _(dwf, mo, report):
    _acc = {p.name: p.per_net.score for p in report.populations}
    _g = report.generated
    mo.vstack([
        mo.md(f"{_g.n} generated nets per replicate: test {report.metric} {report.fmt_interval(_g.score)} "
              f"(mean [95 % interval over {report.replicates} replicates]), **{report.gap_text}** against "
              f"the fitting members; sampling and decoding took "
              f"{report.timings.get('sample', float('nan')):.2f} s per replicate."),
        dwf.plots.accuracy_distributions(_acc, metric=report.metric, title="Test score per net (replicate 0)"),
    ])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    Where do these nets sit? Below, every net in the first two PCA coordinates of the aligned
    zoo: the fitting members' codes, the held-out members and freshly generated nets projected
    the same way, and the trivial generators (`dwf.evaluate.build`). Interpolations lie on the
    segments between members; noisy copies sit on top of their originals, because isotropic
    weight noise falls almost entirely outside the few directions in which zoo members differ;
    the Gaussian over the PCA codes fills the cloud without knowing anything about its shape.
    """)
    return


@app.cell
def _(dwf, exp, run):
    ctx = dwf.reporting.context(run)   # the report stage's view: test split unlocked, members split
    _gen = dwf.sample.generate(run.flow, run.pca, exp.arch, exp.sample, ctx.data.x_train)
    _pops = {"zoo (fitting members)": run.codes, "generated": _gen.codes}
    if ctx.held_out is not None:
        _pops["held-out members"] = run.pca.transform(ctx.layout.flatten(ctx.held_out, stacked=True))
    for _spec in dwf.evaluate.declared(exp.eval, has_bn=False, held_out=False):
        if _spec.source in ("noisy", "interpolation", "code_gaussian"):
            _pops[dwf.evaluate.name(_spec)] = run.pca.transform(
                ctx.layout.flatten(dwf.evaluate.build(ctx, _spec), stacked=True))
    dwf.plots.latent_scatter({_k: _v.numpy() for _k, _v in _pops.items()})
    return (ctx,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 8. Novelty: new networks, or copies?

    A generator that reproduces its training nets scores the zoo's accuracy for free. Two views
    of novelty:

    - **distance**: each net's distance to its nearest zoo member (aligned weight space),
      divided by the zoo's own median nearest-neighbour distance: 1 means as far from the zoo
      as zoo members are from one another, near 0 means near-copies;
    - **behaviour**: the largest IoU between the set of test examples a net gets wrong and that
      of any zoo member: near 1 means it makes the same mistakes as some original.

    Good generated nets sit up and to the right of the noisy copies: as accurate, but further away.
    Two more numbers say whether the flow *generates* or *copies*:

    - **held-out novelty**: the same distance, to the held-out members. A net as new as a real
      member is about as far from them as the fitting members are;
    - **spread**: the same distance within the generated nets. Near 0 the flow has
      **collapsed** onto one net (below 0.1 the report says so in words), and the **memorized
      fraction** counts nets far closer to one member than to any other (above one half, the
      flow memorizes).

    Two trivial generators of the flow's own space bound what the flow must beat: the fitting
    members through PCA encode → decode (the novelty floor: what compression alone adds) and a
    Gaussian fitted to the PCA codes.
    """)
    return


@app.cell
def _(dwf, mo, report):
    _pops = {p.name: p.per_net for p in report.populations}
    _nn = {p.name: p.per_net.novelty for p in report.populations if p.spec.source != "zoo"}
    _verdicts = report.verdicts()
    print("verdicts: " + ("; ".join(_verdicts) if _verdicts else "none"))
    mo.vstack([
        mo.md(dwf.tables.novelty_summary(report)),
        *([mo.callout(mo.md("\n\n".join(_verdicts)), kind="warn")] if _verdicts else []),
        dwf.plots.spread_novelty(report.populations),
        dwf.plots.novelty_scatter(report.populations, report.metric),
        mo.md(dwf.tables.population_markdown(report)),
        dwf.plots.novelty_per_net(_pops, metric=report.metric),
        dwf.plots.nn_distance_histogram(_nn),
        dwf.plots.error_similarity_accuracy(_pops, metric=report.metric),
    ])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The same question net by net: the similarity of the mistakes of 12 generated nets and 12 zoo
    members with those of each of the 12 members (the zoo block's diagonal is each member
    against itself). A generated row with one bright cell is a near-copy of that member (only 12
    of the zoo's members are columns here, so most generated nets' closest member is off the
    chart); the zoo rows show how differently independently trained nets err.
    """)
    return


@app.cell
def _(ctx, dwf, exp, report, run, torch):
    import dataclasses as _dc

    _k = min(12, ctx.layout.flatten(ctx.fit, stacked=True).shape[0])
    _gen = dwf.sample.generate(run.flow, run.pca, exp.arch, _dc.replace(exp.sample, n=12), ctx.data.x_train)
    _model, _task = dwf.archs.build(exp.arch), ctx.task
    _x, _y = ctx.data.x_test, ctx.data.y_test
    _pz = dwf.stacked.predict(_model, {k: v[:_k] for k, v in ctx.fit.items()}, _x, task=_task)
    _pg = dwf.stacked.predict(_model, _gen.params, _x, task=_task)
    _sim = dwf.evaluate.error_similarity(torch.cat([_pg, _pz]), _pz, _y, _task)
    dwf.plots.error_similarity_heatmap(
        _sim.numpy(), [f"generated {i}" for i in range(len(_pg))] + [f"zoo {j}" for j in range(_k)],
        [f"zoo {j}" for j in range(_k)], metric=report.metric)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ### The accuracy–novelty frontier

    One point per setting: the flow sampled at growing source stds (the paper samples at its
    tiny training std, circled), a second flow fitted on standardized codes, noisy copies at
    growing σ, and interpolations of aligned pairs at growing λ. Moving right means further from
    the zoo; the question is how much score each family pays for it.
    """)
    return


@app.cell
def _(dwf, mo, report):
    mo.vstack([dwf.plots.frontier(report.frontier, report.zoo_population.score.mean, report.metric),
               mo.md(dwf.tables.frontier_markdown(report))]
              if report.frontier else
              [mo.md("_This experiment has no frontier sweep (`EvalSpec.frontier_stds`); "
                     "fmnist_mlp and fmnist_resnet20 have one._")])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 9. Ablations: what each ingredient buys

    The same zoo, with one thing changed at a time (`dwf.experiments.ablations`):

    - **flow width × alignment** (the paper's ablation): the velocity network at its default
      width and at the paper's small width (h = 64 for MLPs, 128 for ViTs), each fitted on
      aligned and on unaligned weights. Re-basin matters most when the flow is small;
    - **source std**: how far from the zoo sampling may start (the frontier above sweeps it);
    - **BatchNorm recalibration**: generated ResNets with re-estimated running statistics
      against the same nets with one member's statistics (the paper's control) and with the
      zoo's mean statistics, each control also applied to the zoo members themselves.
    """)
    return


@app.cell
def _(artifacts, dwf, exp, mo, report):
    with mo.status.spinner(title="Building the ablation variants (cached after the first run)"):
        _variants = [dwf.pipeline.build(_e, artifacts, progress=False).report for _e in dwf.experiments.ablations(exp)]
    _cells = dwf.tables.flow_alignment_cells(report, _variants)
    print("ablation " + ", ".join(f"{w} {a}: {report.fmt(iv.mean)}" for (w, a), iv in _cells.items()))
    variants = _variants
    mo.vstack([dwf.plots.flow_alignment(_cells, report.zoo_population.score.mean, report.metric),
               mo.md(dwf.tables.ablation_markdown(report, _variants))])
    return (variants,)


@app.cell
def _(S, dwf, mo, report):
    _gen = [p for p in report.frontier if p.family == "generated"]
    _sweep = mo.md("**Source std.** " + (", ".join(
        f"s = {p.param:g}{' (paper recipe)' if p.recipe else ''}: {report.fmt(p.score)} at "
        f"novelty {p.novelty:.3f}" for p in _gen) + ". A wider start buys novelty with score."
        if _gen else "This experiment has no frontier sweep; `fmnist_mlp` has one (and `fmnist_resnet20` in the paper profile)."))
    _specs = [S("zoo", "own"), S("zoo", "recalibrate"), S("generated"), S("zoo", "member"),
              S("generated", "member"), S("zoo", "mean"), S("generated", "mean")]
    _found = [report.find(_s) for _s in _specs]
    _bn = (dwf.plots.accuracy_distributions({p.name: p.per_net.score for p in _found},
                                            title="BatchNorm statistics: recalibrated, one member's, the zoo's mean",
                                            metric=report.metric)
           if all(_found) else
           mo.md("**BatchNorm recalibration.** This architecture has no BatchNorm; pick "
                 "`fmnist_resnet20` to see it matter."))
    mo.vstack([_sweep, _bn])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 10. Transfer: are generated nets useful starting points?

    For experiments with a transfer target, the backbones of generated nets, of zoo members and
    of randomly initialized nets start a *new* task with only a few labelled images per class
    and a new classifier head. Epoch 0 is a linear probe on frozen features; after that every
    weight is fine-tuned. Good generated nets transfer like the originals, far better than
    random initialization.
    """)
    return


@app.cell
def _(dwf, mo, report):
    _t = [t for t in report.transfer if "unavailable" not in t]
    mo.vstack([mo.vstack([dwf.plots.transfer_curves(t), mo.md(dwf.tables.transfer_markdown(t))]) for t in _t]
              if _t else [mo.md("_This experiment has no transfer target._")])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 11. Conditional generation: one flow, several zoos

    Zoos of one architecture trained on different datasets (here the MLP 784-32-32-10 on
    Fashion-MNIST and on the digits resized to 28×28) are aligned to one reference, compressed by
    one PCA, and learned by one flow that also reads a label: which dataset. A learned *null*
    label (used for 10 % of training steps) gives the unconditional field too, so sampling can
    follow $v_\varnothing + w\,(v_y - v_\varnothing)$: $w = 1$ is the plain conditional
    flow, $w > 1$ is classifier-free guidance, $w = 0$ ignores the label. Each label's nets are
    tested on their own dataset, next to nets generated for the other label and without one.
    """)
    return


@app.cell
def _(S, artifacts, dwf, mo, profile):
    _cexp = dwf.experiments.conditional("fmnist_digits_mlp", profile)
    with mo.status.spinner(title=f"Building the conditional flow [{profile}]"):
        _crun = dwf.conditional.build(_cexp, artifacts, progress=False)
    for _r in _crun.reports:   # one line per label, also in the headless run's output
        _c = _r.conditional
        _others = [j for j in range(len(_c.labels)) if j != _c.label]
        print(f"conditional label {_c.label} ({_c.labels[_c.label]}): zoo "
              f"{_r.zoo_population.score.mean:.4f}, generated {_r.generated.score.mean:.4f}, "
              + ", ".join(f"generated for {_c.labels[j]} {_r.population(S('generated', label=j)).score.mean:.4f}"
                          for j in _others))
    mo.vstack([item for _r in _crun.reports for item in (
        mo.md(f"**Label {_r.conditional.label}: {_r.experiment}**\n\n" + dwf.tables.conditional_summary(_r)),
        dwf.plots.accuracy_distributions({p.name: p.per_net.score for p in _r.populations},
                                         title=f"Test accuracy on {_r.conditional.labels[_r.conditional.label]}"),
        mo.md(dwf.tables.population_markdown(_r)))])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 12. Timings

    Every stage's wall time on this machine (a stage loaded from the cache reports the time it
    took when it was computed). The zoo is trained once, all members at once; after that a new
    net costs one ODE solve and one matrix product.
    """)
    return


@app.cell
def _(dwf, mo, report):
    _t = report.timings
    _nz, _ng = report.zoo.n_fit + len(report.zoo.held_out), report.generated.n
    mo.vstack([
        mo.md(f"Training the zoo took {_t.get('zoo', float('nan')):.1f} s, "
              f"{_t.get('zoo', float('nan')) / _nz:.2f} s per net; generating {_ng} nets took "
              f"{_t.get('sample', float('nan')):.2f} s, {1000 * _t.get('sample', float('nan')) / _ng:.1f} ms "
              "per net (sampling and decoding; testing them is extra)."),
        dwf.plots.stage_timings(_t),
    ])
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 13. Results
    """)
    return


@app.cell
def _(dwf, mo, report, variants):
    # the experiment and the variants built above: every table here is from this same run
    mo.md(dwf.tables.results_markdown([report, *variants], title=""))
    return


if __name__ == "__main__":
    app.run()
