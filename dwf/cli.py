"""Command line: `python -m dwf list`, `python -m dwf run EXPERIMENT [--profile P] ...`."""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from . import (conditional, devices, experiments, families, figures, guided, oracle, pipeline, readme, recipe, refit,
               replicas, scaling, selection, shards, stream)
from .errors import ConfigError, DwfError
from .guidance import Guidance
from .io import atomic_write_bytes
from .refit import Refit
from .progress import StageLog


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dwf", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list experiments and profiles")
    compute = argparse.ArgumentParser(add_help=False)
    compute.add_argument("--device", default="auto", help="where to compute: auto (CUDA when present), cpu, cuda[:N]")
    compute.add_argument("--precision", default="auto", choices=devices.PRECISIONS,
                         help="auto: bfloat16 autocast for forward passes on CUDA, float32 on the CPU")
    r = sub.add_parser("run", help="run the whole pipeline for one experiment", parents=[compute])
    r.add_argument("experiment")
    r.add_argument("--profile", default="quick", choices=experiments.PROFILES,
                   help="scale: the zoo-scaling study at every zoo size (digits_mlp, fmnist_mlp and their wide "
                        "nets; fmnist_resnet20, fmnist_vit at N = 64)")
    r.add_argument("--artifacts", default="artifacts")
    r.add_argument("--seed", type=int, default=None, help="seed every stage from this number")
    r.add_argument("--zoo-replicates", type=int, default=None, metavar="Z",
                   help="repeat the whole run over Z independent zoos (seeds seed … seed+Z−1) and report "
                        "intervals over zoos (default: the profile's, 3 for paper, else 1)")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="train the zoo in shards, align its members and measure the report (populations, "
                        "frontier, transfer) as Ray tasks: on the cluster at ADDRESS (or $DWF_RAY_ADDRESS), "
                        "else on a local Ray started here; the same report as without")
    r.add_argument("--shard-size", type=int, default=8, metavar="M", help="with --ray: members per shard")
    r.add_argument("--out", default=None, help="scale profile: the folder for its table and figures "
                   "(default: <artifacts>/<experiment>/scale/seed<S>/scaling)")
    r.add_argument("--recipe", default=None, help="scale profile: run the study with this recipe (dwf.recipe, "
                   "as `dwf recipes` names them), e.g. zoo-lr10x")
    sel = sub.add_parser("select", help="choose a flow hyperparameter on validation data (never test)", parents=[compute])
    sel.add_argument("experiment")
    sel.add_argument("--field", required=True, help="a FlowSpec field, e.g. hidden or batch_size")
    sel.add_argument("--values", required=True, help="comma-separated candidates, e.g. 64,128,256")
    sel.add_argument("--rule", default="best", choices=sorted(selection.RULES),
                     help="best: the best mean validation score; cheapest: the first value (list them "
                          "cheapest first) whose mean validation score lies inside the best's interval")
    sel.add_argument("--profile", default="quick", choices=experiments.PROFILES)
    sel.add_argument("--artifacts", default="artifacts")
    sel.add_argument("--out", default=None, help="also write the table (markdown) to this file")
    rc = sub.add_parser("recipes", help="compare the flow recipes (dwf.recipe) on validation data at one zoo size", parents=[compute])
    rc.add_argument("experiment")
    rc.add_argument("--profile", default="scale", choices=experiments.PROFILES)
    rc.add_argument("--n", type=int, default=None, help="zoo size of the scaling study (default: the whole zoo)")
    rc.add_argument("--recipes", default=None, help="comma-separated recipe names (default: all of "
                    + ", ".join(r.name for r in recipe.CANDIDATES) + "; a+b makes both changes, e.g. zoo-lr3x+whitened)")
    rc.add_argument("--artifacts", default="artifacts")
    rc.add_argument("--out", default=None, help="also write the table (markdown) to this file, and beside it "
                    "(.png, .html) the figure of every recipe against the trivial generators' curves")
    guiding = argparse.ArgumentParser(add_help=False, parents=[compute])   # what `guide` and `refit` share
    guiding.add_argument("experiment")
    guiding.add_argument("--profile", default="scale", choices=experiments.PROFILES)
    guiding.add_argument("--n", type=int, default=None, help="zoo size of the scaling study (default: the whole zoo)")
    guiding.add_argument("--recipe", default="paper", help="the flow recipe (as `dwf recipes` names them; a+b joins two)")
    guiding.add_argument("--steps", type=int, default=Guidance.steps, help="guidance: Adam steps on each net's PCA code")
    guiding.add_argument("--lr", type=float, default=Guidance.lr, help="guidance: their learning rate")
    guiding.add_argument("--batch-size", type=int, default=Guidance.batch_size, help="guidance: training examples per step")
    guiding.add_argument("--artifacts", default="artifacts")
    guiding.add_argument("--out", default=None, help="also write the table (markdown) to this file and the figure beside it")
    sub.add_parser("guide", help="score one recipe's flow nets and the trivial generators' before and after "
                   "the same loss guidance (dwf.guidance) on validation data", parents=[guiding])
    rf = sub.add_parser("refit", help="refit one recipe's flow and the Gaussian over the codes to their own guided "
                        "nets, round after round (dwf.refit), and score both on validation data", parents=[guiding])
    rf.add_argument("--rounds", type=int, default=Refit.rounds, help="refits after the first fit")
    rf.add_argument("--temperature", type=float, default=Refit.temperature,
                    help="temperature of every round's draws (1: the generator's own distribution)")
    orc = sub.add_parser("oracle", help="draw the leading PCA codes from the fitting members' own (an oracle), "
                         "the held-out members' or a flow, the rest from the fitted Gaussian (dwf.oracle); scored on "
                         "validation data", parents=[compute])
    orc.add_argument("experiment")
    orc.add_argument("--profile", default="scale", choices=experiments.PROFILES)
    orc.add_argument("--n", type=int, default=None, help="zoo size of the scaling study (default: the whole zoo)")
    orc.add_argument("--recipe", default="paper", help="the zoo and flow spec (as `dwf recipes` names them; a+b joins two)")
    orc.add_argument("--k", type=_head_sizes, default=(16, 64), help="comma-separated head sizes (default 16,64)")
    orc.add_argument("--artifacts", default="artifacts")
    orc.add_argument("--out", default=None, help="also write the table (markdown) to this file and the figure beside it")
    st = sub.add_parser("stream", help="align, compress, fit and sample a zoo file larger than memory, one "
                        "member or column slab at a time (dwf.stream); architectures without BatchNorm", parents=[compute])
    st.add_argument("experiment")
    st.add_argument("--profile", default="quick", choices=experiments.PROFILES)
    st.add_argument("--zoo", default=None, help="a stacked safetensors zoo file (default: the experiment's "
                    "trained zoo under --artifacts)")
    st.add_argument("--artifacts", default="artifacts")
    st.add_argument("--out", default=None, help="folder for the aligned and generated zoo files "
                    "(default: <artifacts>/<experiment>/<profile>/seed<S>/stream)")
    rd = sub.add_parser("readme", help="rewrite README's results block from a results.json")
    rd.add_argument("--results", default="paper_figures/results.json")
    rd.add_argument("--readme", default="README.md")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for chatty in ("kaleido", "choreographer"):   # figure rendering logs every browser step at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        with devices.using(getattr(args, "device", None), getattr(args, "precision", None)):
            if args.cmd in ("run", "select", "recipes", "guide", "refit", "oracle", "stream"):
                writable_folder(args.artifacts)
            if args.cmd == "run" and args.out and args.profile != "scale":
                raise ConfigError("--out is where the scale profile writes its table and figures; other "
                                  "profiles write their report under --artifacts")
            if args.cmd == "run" and args.recipe and args.profile != "scale":
                raise ConfigError("--recipe runs the scaling study with a recipe (--profile scale); to compare "
                                  "recipes at one size use `python -m dwf recipes`")
            chosen = recipe.named([args.recipe])[0] if getattr(args, "recipe", None) else None
            if args.cmd == "list":
                for name in experiments.names():
                    e = experiments.get(name, "quick")
                    shape = families.describe(e.arch)
                    print(f"{name:<18} {shape} on {e.data.name}; "
                          f"profiles: {', '.join(experiments.profiles(name))}")
                for name in experiments.CONDITIONAL:
                    c = experiments.conditional(name)
                    print(f"{name:<18} conditional flow over {' + '.join(m.name for m in c.members)}; "
                          f"profiles: {', '.join(experiments.CONDITIONAL[name])}")
                return 0
            if args.cmd == "readme":
                changed = readme.update(args.readme, args.results)
                print(f"{args.readme}: results block {'rewritten' if changed else 'already current'} from {args.results}")
                return 0
            if args.cmd == "select":
                exp = (experiments.conditional if args.experiment in experiments.CONDITIONAL else experiments.get)(
                    args.experiment, args.profile)
                result = selection.select(exp, args.field, [v.strip() for v in args.values.split(",") if v.strip()],
                                          args.artifacts, args.rule)
                print(result.markdown())
                if args.out:
                    atomic_write_bytes(args.out, (result.markdown() + "\n").encode())
                return 0
            if args.cmd == "recipes":
                sw = recipe.sweep(_sized(experiments.get(args.experiment, args.profile), args.n),
                                  recipe.named(args.recipes.split(",")) if args.recipes else recipe.CANDIDATES,
                                  args.artifacts, log=sys.stderr)
                print(sw.markdown())
                if args.out:
                    atomic_write_bytes(args.out, (sw.markdown() + "\n").encode())
                    if sw.scored:
                        figures.write_figure(Path(args.out).with_suffix(""), sw.figure())
                return 0
            if args.cmd == "guide":
                gs = guided.study(_sized(experiments.get(args.experiment, args.profile), args.n), chosen,
                                  Guidance(args.steps, args.lr, args.batch_size), args.artifacts, log=sys.stderr)
                print(gs.markdown())
                if args.out:
                    atomic_write_bytes(args.out, (gs.markdown() + "\n").encode())
                    figures.write_figure(Path(args.out).with_suffix(""), gs.figure())
                return 0
            if args.cmd == "refit":
                rs = refit.study(_sized(experiments.get(args.experiment, args.profile), args.n), chosen,
                                 Guidance(args.steps, args.lr, args.batch_size), Refit(args.rounds, args.temperature), args.artifacts,
                                 log=sys.stderr)
                print(rs.markdown())
                if args.out:
                    atomic_write_bytes(args.out, (rs.markdown() + "\n").encode())
                    figures.write_figure(Path(args.out).with_suffix(""), rs.figure())
                return 0
            if args.cmd == "oracle":
                found = oracle.study(_sized(experiments.get(args.experiment, args.profile), args.n), chosen, args.k,
                                   args.artifacts, log=sys.stderr)
                print(found.markdown())
                if args.out:
                    atomic_write_bytes(args.out, (found.markdown() + "\n").encode())
                    figures.write_figure(Path(args.out).with_suffix(""), found.figure())
                return 0
            if args.cmd == "stream":
                return _stream(experiments.get(args.experiment, args.profile), args)
            if args.experiment in experiments.CONDITIONAL:
                if args.ray is not None:
                    raise ConfigError("--ray trains one experiment's zoo in shards; a conditional experiment takes "
                                      "its members' zoos: run them with --ray first")
                if args.seed is not None or args.zoo_replicates is not None:
                    raise ConfigError("--seed and --zoo-replicates apply to single-zoo experiments; a "
                                      "conditional one takes its members' zoos")
                cexp = experiments.conditional(args.experiment, args.profile)
                run = conditional.build(cexp, args.artifacts, progress=not args.no_progress)
                for report in run.reports:
                    print(report.table())
                print(f"reports: {run.root / 'report'}")
                return 0
            exp = experiments.get(args.experiment, args.profile)
            if args.seed is not None:
                exp = exp.with_seed(args.seed)
            zoos = exp.zoo_replicates if args.zoo_replicates is None else args.zoo_replicates
            if args.ray is not None and (args.profile == "scale" or zoos > 1):
                raise ConfigError("--ray trains one experiment's zoo in shards; the scale profile and --zoo-replicates > 1 "
                                  "do not take it yet (pass --zoo-replicates 1 for one zoo)")
            if args.profile == "scale":
                if zoos > 1:
                    raise ConfigError("the scale profile runs one zoo at every size; --zoo-replicates does not apply")
                out = Path(args.out) if args.out else pipeline.seed_dir(exp, args.artifacts) / "scaling"
                points = scaling.write(exp, out, args.artifacts, progress=not args.no_progress, log=sys.stderr,
                                       recipe=chosen)
                print(scaling.markdown(points))
                print(f"table and figures: {out}")
                return 0
            if zoos > 1:
                rep = replicas.build(exp, args.artifacts, zoos, progress=not args.no_progress)
                print(rep.markdown())
                print(f"report: {replicas.path(exp, args.artifacts)}")
                return 0
            log = StageLog(f"{exp.name} [{exp.profile}, seed {exp.seed}]", sys.stderr)
            engine = None if args.ray is None else shards.Engine.from_env(args.ray, args.shard_size)
            report = pipeline.build(exp, args.artifacts, progress=not args.no_progress, on_stage=log,
                                    engine=engine).report
            log.done()
            print(report.table())
            print(f"report: {pipeline.experiment_dir(exp, args.artifacts) / 'report.json'}")
            return 0
    except DwfError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages and the last zoo/flow checkpoint are kept; run the same "
              "command again to resume", file=sys.stderr)
        return 130


def _stream(exp, args) -> int:
    """`dwf stream`: the streamed run, one console line per member and stage."""
    stream.check(exp)
    zoo = Path(args.zoo) if args.zoo else pipeline.stage_dir(exp, "zoo", args.artifacts) / "weights.safetensors"
    if not zoo.is_file():
        raise ConfigError(f"no zoo file at {zoo}: train it first (python -m dwf run {exp.name} --profile "
                          f"{exp.profile}) or pass --zoo FILE")
    out = Path(args.out) if args.out else pipeline.experiment_dir(exp, args.artifacts) / "stream"
    s = stream.run(exp, zoo, out, log=print)
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s.seconds.items()))
    print(f"read {s.bytes_read / 1e9:.2f} GB, wrote {s.bytes_written / 1e9:.2f} GB; aligned zoo: {s.aligned}; "
          f"generated nets: {', '.join(map(str, s.generated))}")
    return 0


def _head_sizes(text: str) -> tuple[int, ...]:
    """--k: comma-separated whole numbers >= 1 (checked against the run's code size once it is known)."""
    try:
        ks = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated head sizes >= 1, e.g. 16,64; got {text!r}")
    return ks


def _sized(exp, n: int | None):
    """The scaling study's run of zoo size n (None: the experiment itself)."""
    if n is None:
        return exp
    sizes = {e.members or e.zoo.n_models: e for e in experiments.scaling(exp)}
    if n not in sizes:
        raise ConfigError(f"--n {n} is not a size of the scaling study; choose one of {sorted(sizes)}")
    return sizes[n]


def writable_folder(folder: str) -> None:
    """Check up front that the artifacts folder is (or can become) a folder this user can write."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--artifacts {folder} is a file, not a folder; give a folder path")
    try:
        p.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=p).close()
    except OSError as e:
        raise ConfigError(f"cannot write into --artifacts {folder} ({e.strerror}); give a folder you can "
                          "write to") from e


if __name__ == "__main__":
    sys.exit(main())
