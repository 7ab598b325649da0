"""Independent jobs fanned out as Ray tasks, or run here one after another.

    results[i] = fn(*shared, *jobs[i])        for every i, in job order

`shared` (e.g. an evaluation context with its test split) is put in Ray's object store once and
handed to every task; each job carries only its own arguments. Each task asks for
`engine.cpus_per_shard` CPUs and one GPU when the cluster has GPUs, and is retried by Ray
`engine.max_retries` times when its worker dies. Without an engine the same calls run in this
process, so a caller has one code path and the result does not depend on where it ran (up to the
thread count of the worker: Ray gives a 1-CPU task one thread).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from tqdm import tqdm

from .errors import DwfError

if TYPE_CHECKING:
    from .shards import Engine


def connect(engine: "Engine"):
    """The `ray` module, joined to the engine's cluster (a local one when its address is None)."""
    import ray   # here, not at the top: importing ray takes a second every dwf import would pay

    if not ray.is_initialized():
        try:
            ray.init(address=engine.address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise DwfError(f"cannot reach a Ray cluster at {engine.address!r} ({e}); start one with "
                           "`ray start --head` and pass its address, or leave the address out to run a "
                           "local cluster") from e
    return ray


@contextmanager
def session(engine: "Engine") -> Iterator[Any]:
    """`connect`, and on leaving, `ray.shutdown()` if this call started Ray (a Ray someone else
    started stays up). A process that ends by a signal rather than by returning, as a notebook
    kernel does when papermill stops it, would otherwise have Ray print a stack trace for it."""
    import ray

    owned = not ray.is_initialized()
    try:
        yield connect(engine)
    finally:
        if owned and ray.is_initialized():
            ray.shutdown()


def remote(ray, engine: "Engine", fn: Callable):
    """`fn` as a Ray task with the engine's resource request and retries."""
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return ray.remote(fn).options(num_cpus=engine.cpus_per_shard, num_gpus=gpus,
                                  max_retries=engine.max_retries, retry_exceptions=False)


def wait_all(ray, refs: list, desc: str, progress: bool, engine: "Engine", hint: str = "",
             ticks: Callable[[], int] | None = None, total: int | None = None, unit: str = "task",
             poll: Callable[[], None] | None = None) -> list:
    """Every task's result in order. A bar counts finished tasks, or with `ticks` (polled every
    second) the `total` units the workers report done, e.g. epochs of a zoo's members; `poll` is
    called every second too (e.g. to copy the workers' log lines). A task that still fails after
    its retries stops the whole with a DwfError (`hint`: what to do about it)."""
    try:
        pending = list(refs)
        with tqdm(total=total if ticks else len(refs), unit=unit, disable=not progress,
                  desc=f"{desc} on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)") as bar:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1,
                                          timeout=None if ticks is None and poll is None else 1.0)
                if poll is not None:
                    poll()
                ray.get(ready)                            # a failed task raises here, not at the end
                bar.update(ticks() - bar.n if ticks else len(ready))
        return ray.get(refs)
    except ray.exceptions.RayError as e:
        cause = getattr(e, "cause", None)    # the task's own exception, without Ray's traceback
        why = f"{type(cause).__name__}: {cause}" if isinstance(cause, Exception) else str(e)
        raise DwfError(f"a task of {desc} failed on Ray ({why}); a task whose worker died was retried up "
                       f"to {engine.max_retries} times{hint}") from e


def map_jobs(engine: "Engine | None", fn: Callable[..., Any], shared: tuple, jobs: Sequence[tuple],
             desc: str = "jobs", progress: bool = False) -> list:
    """[fn(*shared, *job) for job in jobs], as Ray tasks when `engine` is given."""
    if engine is None:
        return [fn(*shared, *job) for job in tqdm(jobs, desc=desc, disable=not progress)]
    ray = connect(engine)
    shared_refs = [ray.put(x) for x in shared]
    task = remote(ray, engine, fn)
    refs = [task.remote(*shared_refs, *job) for job in jobs]
    return wait_all(ray, refs, desc, progress, engine)


__all__ = ["connect", "map_jobs", "remote", "session", "wait_all"]
