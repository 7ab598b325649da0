"""Choosing a flow hyperparameter without the test split.

Each candidate value of one `FlowSpec` field is fitted R times (the experiment's replicates, own
seeds) on the fitting members' codes, and scored on what selection may see:

    val_score   mean validation-split score of the nets it generates (the criterion)
    val_loss    the flow's held-out loss on codes it was not fitted on
    novelty     of its nets against the fitting members (reported: a copy scores well too)

Rule "best" chooses the candidate with the best mean validation score. Rule "cheapest", for a
run-time budget, takes the candidates in the order given (cheapest first, e.g. fewer flow steps)
and chooses the first whose mean validation score lies inside the best candidate's 95 % interval:
the time it saves costs no validation score the best candidate's own replicates can tell apart
(a best candidate whose replicates scatter widely admits more: the table shows how much).
`Selection.markdown` records every candidate and the rule so the choice can be checked. The
datasets handed to this module keep their test split locked (`dwf.data`), so a selection rule
cannot read it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import archs, conditional as cond, pipeline, stacked
from .config import ConditionalExperiment, Experiment, FlowSpec
from .errors import ConfigError
from .interval import Interval
from .novelty import novelty
from .reporting import replicate_nets
from .task import task_for


RULES = {"best": "the best mean validation score",
         "cheapest": "the first candidate (cheapest first) whose mean validation score lies inside the best "
                     "candidate's interval"}


@dataclass(frozen=True)
class Candidate:
    value: str
    val_score: Interval
    val_loss: Interval
    novelty: Interval


@dataclass(frozen=True)
class Selection:
    experiment: str
    field: str
    candidates: list[Candidate]
    chosen: str
    rule: str = "best"

    def markdown(self) -> str:
        rule = RULES[self.rule]
        lines = [f"Selection of `flow.{self.field}` for {self.experiment} on the validation split "
                 f"(95 % intervals over replicates; the test split is locked). Rule: {rule}.", "",
                 f"| {self.field} | validation score of generated nets | held-out flow loss | novelty |",
                 "|---|---|---|---|"]
        for c in self.candidates:
            mark = " (chosen)" if c.value == self.chosen else ""
            lines.append(f"| {c.value}{mark} | {c.val_score.text(100, 2)} | {c.val_loss.text(1, 4)} | "
                         f"{c.novelty.text()} |")
        return "\n".join(lines)


def _val_score(arch, params, data) -> float:
    task = task_for(data)
    preds = stacked.predict(archs.build(arch), params, data.x_val, task=task)
    return float(task.score(preds, data.y_val).mean())


def _best_val_loss(flow) -> float:
    v = flow.history.get("best_val_loss")
    return float(v) if v is not None else math.nan


def _candidate(exp: Experiment | ConditionalExperiment, value, artifacts: Path) -> Candidate:
    """Fit (cached) and score the experiment with flow.<field> = value."""
    scores, losses, novelties = [], [], []
    if isinstance(exp, ConditionalExperiment):
        run = cond.build(exp, artifacts, progress=False, evaluate=False)
        for r, f in enumerate(run.flows):
            per_label, nov = [], []
            for k, data in enumerate(run.datasets):
                gen = cond.generate_for(run, k, cond.sample_spec(exp, r, k), r)
                per_label.append(_val_score(exp.arch, gen.params, data))
                fit_k = run.aligned.select([i for i in run.fit_idx if run.labels[i] == k]).vectors()
                nov.append(novelty(gen.vectors, fit_k))
            scores.append(sum(per_label) / len(per_label))
            novelties.append(sum(nov) / len(nov))
            losses.append(_best_val_loss(f))
    else:
        run = pipeline.build(exp, artifacts, progress=False, evaluate=False)
        for f, gen in zip(run.flows, replicate_nets(run)):
            scores.append(_val_score(exp.arch, gen.params, run.data))
            novelties.append(novelty(gen.vectors, run.fit.vectors()))
            losses.append(_best_val_loss(f))
    return Candidate(str(value), Interval.of(scores), Interval.of(losses), Interval.of(novelties))


def choose(candidates: Sequence[Candidate], rule: str = "best") -> Candidate:
    """The candidate `rule` picks (`RULES`): the best mean validation score, or the first in the
    given order whose mean lies inside the best one's interval."""
    best = max(candidates, key=lambda c: c.val_score.mean)
    if rule == "best":
        return best
    return next(c for c in candidates if best.val_score.contains(c.val_score.mean))


def select(exp: Experiment | ConditionalExperiment, field: str, values: Sequence,
           artifacts: str | Path = "artifacts", rule: str = "best") -> Selection:
    """Every candidate value of `flow.<field>`, scored on validation data; one chosen by `rule`
    ("best" or "cheapest", with `values` cheapest first). Candidates are cached as their own runs
    (`<name>-select-<field>-<value>`), beside the experiment's, never overwriting it."""
    if field not in {f.name for f in dataclasses.fields(FlowSpec)}:
        raise ConfigError(f"unknown flow field {field!r}; choose one of FlowSpec's fields")
    if rule not in RULES:
        raise ConfigError(f"unknown selection rule {rule!r}; use one of {', '.join(RULES)}")
    if not values:
        raise ConfigError("give at least one candidate value")
    kind = type(getattr(exp.flow, field))
    out = []
    for v in values:
        flow = dataclasses.replace(exp.flow, **{field: kind(v)})
        if isinstance(exp, ConditionalExperiment):
            candidate = dataclasses.replace(exp, name=f"{exp.name}-select-{field}-{v}", flow=flow)
        else:
            candidate = exp.ablation(f"select-{field}-{v}", flow=flow)
        out.append(_candidate(candidate, v, Path(artifacts)))
    return Selection(exp.name, field, out, choose(out, rule).value, rule)

