"""Command line: `python -m dwf list`, `python -m dwf run EXPERIMENT [--profile P] ...`."""
from __future__ import annotations

import argparse
import logging
import sys

from . import conditional, experiments, pipeline
from .errors import ConfigError, DwfError


def _describe(a) -> str:
    """An architecture's shape in a few words."""
    if a.kind == "mlp":
        return f"{a.in_dim}-{'-'.join(map(str, a.hidden))}-{a.out_dim}"
    if a.kind == "vit":
        return f"width {a.hidden[0]}, {a.depth} blocks × {a.heads} heads, patch {a.patch}"
    if a.kind == "bert":
        return (f"pretrained {a.pretrained}" if a.pretrained else
                f"width {a.hidden[0]}, {a.depth} layers × {a.heads} heads, vocabulary {a.vocab}")
    return f"width {a.width:g}, {a.in_dim} input channels"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dwf", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list experiments and profiles")
    r = sub.add_parser("run", help="run the whole pipeline for one experiment")
    r.add_argument("experiment")
    r.add_argument("--profile", default="quick", choices=experiments.PROFILES)
    r.add_argument("--artifacts", default="artifacts")
    r.add_argument("--seed", type=int, default=None, help="seed every stage from this number")
    r.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.cmd == "list":
            for name in experiments.names():
                e = experiments.get(name, "quick")
                shape = _describe(e.arch)
                print(f"{name:<18} {e.arch.kind} ({shape}) on {e.data.name}; "
                      f"profiles: {', '.join(experiments.PROFILES)}")
            for name in experiments.CONDITIONAL:
                c = experiments.conditional(name)
                print(f"{name:<18} conditional flow over {' + '.join(m.name for m in c.members)}; "
                      f"profiles: {', '.join(experiments.CONDITIONAL[name])}")
            return 0
        if args.experiment in experiments.CONDITIONAL:
            if args.seed is not None:
                raise ConfigError("--seed applies to single-zoo experiments; a conditional one takes "
                                  "its members' seeds")
            cexp = experiments.conditional(args.experiment, args.profile)
            run = conditional.build(cexp, args.artifacts, progress=not args.no_progress)
            for report in run.reports:
                print(report.table())
            print(f"reports: {run.root / 'report'}")
            return 0
        exp = experiments.get(args.experiment, args.profile)
        if args.seed is not None:
            exp = exp.with_seed(args.seed)
        report = pipeline.run(exp, args.artifacts, progress=not args.no_progress)
        print(report.table())
        print(f"report: {pipeline.experiment_dir(exp, args.artifacts) / 'report.json'}")
        return 0
    except DwfError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
