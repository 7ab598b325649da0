"""Where the compute kernels run, and in which precision.

`device="auto"` means CUDA when present, else the CPU. A run chooses once, with
`using(device, precision)`; the kernels (zoo training, flow fitting and sampling, BatchNorm
recalibration, test predictions) read the choice with `current()`, so every stage of a
`pipeline.build` honours it without each call passing it on. Their inputs and results stay on the
CPU (artifacts, random draws and metrics do not depend on the device); a kernel moves its own
work to the device and its result back.

Precision "auto" is bfloat16 autocast for the networks' forward passes (zoo training, test
predictions) on CUDA and float32 on the CPU; "fp32" never autocasts, "bf16" always does (on the
CPU too, where it is slow but lets the tests exercise the path). Flows, PCA, alignment and
BatchNorm statistics always run in float32.
"""
from __future__ import annotations

import contextlib
import copy
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import torch

from .errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve(device: str | torch.device = "auto") -> torch.device:
    """`device` as a torch device ("auto": CUDA when present, else the CPU)."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {device!r} ({e}); use 'auto', 'cpu' or 'cuda'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but this machine has no CUDA GPU; use 'auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is None:   # as tensors report it, so devices compare equal
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


@dataclass(frozen=True)
class Compute:
    """A run's choice: the device, and the precision asked for (`PRECISIONS`)."""
    device: torch.device
    precision: str = "auto"

    @classmethod
    def of(cls, device: str | torch.device = "auto", precision: str = "auto") -> "Compute":
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
        return cls(resolve(device), precision)

    @property
    def mixed(self) -> bool:
        """Whether forward passes autocast to bfloat16."""
        return self.precision == "bf16" or (self.precision == "auto" and self.device.type == "cuda")

    def on(self, device: str | torch.device) -> "Compute":
        """The same precision choice on another device."""
        return Compute.of(device, self.precision)

    def __str__(self) -> str:
        return f"{self.device} {'bf16 autocast' if self.mixed else 'fp32'}"


_CURRENT: ContextVar[Compute | None] = ContextVar("dwf_compute", default=None)


def current() -> Compute:
    """The choice in effect (outside any `using`: device "auto", precision "auto")."""
    return _CURRENT.get() or Compute.of()


@contextlib.contextmanager
def using(device: str | torch.device | None = "auto", precision: str | None = "auto") -> Iterator[Compute]:
    """Run the block's kernels on `device` in `precision`; None keeps the enclosing choice for
    that part (so a library call inside a CLI's `using` inherits it). Restored on exit."""
    outer = current()
    token = _CURRENT.set(Compute.of(outer.device if device is None else device,
                                    outer.precision if precision is None else precision))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def autocast(compute: Compute | None = None) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on the compute device when the choice is mixed; else nothing."""
    c = compute or current()
    if not c.mixed:
        return contextlib.nullcontext()
    return torch.autocast(device_type=c.device.type, dtype=torch.bfloat16)


def module_device(model: torch.nn.Module) -> torch.device:
    """Where the module's tensors live (the CPU for a module without any)."""
    t = next(iter(model.state_dict().values()), None)
    return t.device if t is not None else torch.device("cpu")


def on_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` when it lives on `device`, else a copy moved there (the caller's stays put)."""
    return model if module_device(model) == device else copy.deepcopy(model).to(device)


__all__ = ["PRECISIONS", "Compute", "autocast", "current", "module_device", "on_device", "resolve", "using"]
