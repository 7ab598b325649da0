"""Command line: `python -m dwf list`, `python -m dwf run EXPERIMENT [--profile P] ...`."""
from __future__ import annotations

import argparse
import logging
import sys

from . import experiments, pipeline
from .errors import DwfError


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
                a = e.arch
                shape = (f"{a.in_dim}-{'-'.join(map(str, a.hidden))}-{a.out_dim}" if a.kind == "mlp"
                         else f"width {a.width:g}, {a.in_dim} input channels")
                print(f"{name:<18} {a.kind} ({shape}) on {e.data.name}; "
                      f"profiles: {', '.join(experiments.PROFILES)}")
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
