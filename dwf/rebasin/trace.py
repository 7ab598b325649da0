"""A PermutationSpec derived from a model's graph (torch.fx), so new architectures need no
hand-written spec.

Follow channel *groups* through the graph. Every Linear / Conv writes a new group on its output
axis (weight axis 0, bias) and reads its input's group on weight axis 1. Ops that treat each
channel alike and separately (BatchNorm, elementwise activations, pooling, dropout, flatten of a
1x1 map) pass the group through. An elementwise binary op (a residual `+`) merges the groups of
its operands (union-find), so a whole residual stream shares one permutation. A group that
reaches the model output, or meets an unpermuted operand of full size, is fixed. The model input
is unpermuted. Any other op applied to a permuted tensor raises ConfigError.
"""
from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import ConfigError
from .spec import PermutationSpec, check_compatible

FIXED = 0                      # the group of unpermuted axes
State = tuple[int, int] | None  # (group, axis carrying it) of a node's tensor; None: unpermuted

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")  # not num_batches_tracked
_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Hardtanh,
                        nn.Hardswish, nn.Mish, nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Identity,
                        nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_ELEMENTWISE = {F.relu, torch.relu, F.relu6, F.gelu, F.silu, F.elu, F.leaky_relu, F.hardtanh,
                F.hardswish, F.mish, F.softplus, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
                F.dropout, "relu", "sigmoid", "tanh", "contiguous", "clone"}
_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
                 nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                 nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_POOLS = {F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
          F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
          F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d}
_RESHAPES = {torch.flatten, torch.reshape, torch.squeeze, "flatten", "view", "reshape", "squeeze"}
_MEANS = {torch.mean, "mean"}
_BINARY = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub,
           torch.mul, torch.div, "add", "sub", "mul", "div"}
_QUERIES = {"size", "dim", getattr}  # results are shapes / numbers, not tensors

_SUPPORTED = ("Linear, Conv1d/2d/3d (groups=1), BatchNorm1d/2d/3d, elementwise activations, "
              "dropout, max/avg/adaptive pooling, mean over non-channel axes, flatten/view of a "
              "pooled (1x1) map, and elementwise + - * / (residual connections)")


def spec_from_module(model: nn.Module, example_input: torch.Tensor) -> PermutationSpec:
    """The permutation symmetry of `model`, read from its torch.fx graph.

    example_input: one batch the model accepts, e.g. (2, 3, 32, 32); it is run once in eval
    mode without gradients to learn the shapes (running statistics are left untouched).
    Permutations are named after the first module that writes them, e.g. "P_layer1.0.conv1".
    """
    gm = _trace(model)
    _propagate_shapes(gm, model, example_input)
    spec = _GroupTracer(gm).run()
    check_compatible(spec, model.state_dict())
    return spec


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as e:  # TraceError, TypeError, ... from data-dependent Python
        raise ConfigError(f"torch.fx cannot trace {type(model).__name__} ({e}); derive the "
                          "spec from a traceable model or write a PermutationSpec by hand") from e


def _propagate_shapes(gm: fx.GraphModule, model: nn.Module, x: torch.Tensor) -> None:
    modes = {m: m.training for m in model.modules()}
    try:
        with torch.no_grad():
            model.eval()                     # gm shares model's submodules
            _ShapeRecorder(gm).run(x)
    except Exception as e:
        raise ConfigError(f"the example input of shape {tuple(x.shape)} does not run through "
                          f"{type(model).__name__}: {e}") from e
    finally:
        for m, training in modes.items():
            m.train(training)


class _ShapeRecorder(fx.Interpreter):
    """Runs the graph once and stores each tensor-valued node's shape in node.meta."""

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            n.meta["dwf_shape"] = tuple(out.shape)
        return out


class _GroupTracer:
    """One pass over the graph in topological order; union-find over channel groups."""

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.parent: list[int] = [FIXED]      # union-find forest; the smaller id is the root
        self.size: list[int] = [0]
        self.writer: list[str] = [""]         # module that created the group
        self.written: dict[str, int] = {}     # module target -> its output group (shared modules)
        self.axes: dict[str, list[int | None]] = {}  # tensor name -> group per axis
        self.states: dict[fx.Node, State] = {}

    # union-find ---------------------------------------------------------------------------
    def _new(self, size: int, writer: str) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.writer.append(writer)
        return len(self.parent) - 1

    def _find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def _union(self, a: int, b: int, node: fx.Node) -> int:
        a, b = self._find(a), self._find(b)
        if a == b:
            return a
        if FIXED not in (a, b) and self.size[a] != self.size[b]:
            raise ConfigError(f"node {node.name!r} joins channel groups of {self.size[a]} and "
                              f"{self.size[b]} units; they cannot share a permutation")
        a, b = min(a, b), max(a, b)           # keep the earliest group (its writer names it)
        self.parent[b] = a
        return a

    # graph walk ---------------------------------------------------------------------------
    def run(self) -> PermutationSpec:
        for node in self.gm.graph.nodes:
            if node.op == "output":
                for arg in node.all_input_nodes:
                    if (s := self._state(arg)) is not None:
                        self._union(s[0], FIXED, node)
            elif node.op in ("placeholder", "get_attr"):
                self.states[node] = None      # the input and constants are unpermuted
            else:
                self.states[node] = self._visit(node)
        return self._spec()

    def _state(self, arg: Any) -> State:
        """The live state of an argument: None for non-nodes, unpermuted and fixed tensors."""
        s = self.states.get(arg) if isinstance(arg, fx.Node) else None
        return None if s is None or self._find(s[0]) == FIXED else s

    def _visit(self, node: fx.Node) -> State:
        live = [s for a in node.all_input_nodes if (s := self._state(a)) is not None]
        target = self.modules[node.target] if node.op == "call_module" else node.target
        if node.op == "call_module" and isinstance(target, nn.Linear):
            return self._layer(node, target, axis=_ndim(node) - 1)
        if node.op == "call_module" and isinstance(target, _CONVS) and target.groups == 1:
            return self._layer(node, target, axis=1)
        if not live:
            return None                       # any op of unpermuted tensors is unpermuted
        x = self._state(node.args[0]) if node.args else None
        if node.op == "call_module":
            if isinstance(target, _NORMS):
                return self._batchnorm(node, target, x)
            if isinstance(target, _ELEMENTWISE_MODULES):
                return x
            if isinstance(target, _POOL_MODULES):
                return self._pool(node, x)
            if isinstance(target, nn.Flatten):
                return self._reshape(node, x)
        else:                                 # a function or a method name
            if target in _ELEMENTWISE and x is not None and _shape(node) == _shape(node.args[0]):
                return x
            if target in _POOLS:
                return self._pool(node, x)
            if target in _RESHAPES:
                return self._reshape(node, x)
            if target in _MEANS:
                return self._mean(node, x)
            if target in _BINARY:
                return self._binary(node)
            if target in _QUERIES and _shape(node) is None:
                return None
        raise _unsupported(node, target)

    # handlers -----------------------------------------------------------------------------
    def _layer(self, node: fx.Node, m: nn.Module, axis: int) -> State:
        """Linear / Conv: read the input group on weight axis 1, write a new group on axis 0."""
        x = self._state(node.args[0])
        in_axis = 1 if isinstance(m, _CONVS) else _ndim(node.args[0]) - 1
        if x is not None and x[1] != in_axis:
            raise ConfigError(f"node {node.name!r} ({type(m).__name__} {node.target!r}) reads "
                              f"axis {in_axis}, but its input is permuted along axis {x[1]}")
        if node.target not in self.written:
            self.written[node.target] = self._new(m.weight.shape[0], node.target)
        out = self.written[node.target]
        self._assign(f"{node.target}.weight", m.weight.ndim, 0, out, node)
        self._assign(f"{node.target}.weight", m.weight.ndim, 1, FIXED if x is None else x[0], node)
        if m.bias is not None:
            self._assign(f"{node.target}.bias", 1, 0, out, node)
        return out, axis

    def _batchnorm(self, node: fx.Node, m: nn.Module, x: State) -> State:
        if x is None or x[1] != 1:
            raise _unsupported(node, m, "normalizes axis 1, not the permuted axis")
        for name in _NORM_TENSORS:
            if getattr(m, name, None) is not None:
                self._assign(f"{node.target}.{name}", 1, 0, x[0], node)
        return x

    def _pool(self, node: fx.Node, x: State) -> State:
        out = _shape(node)
        if x is None or x[1] != 1 or out is None or out[:2] != _shape(node.args[0])[:2]:
            raise _unsupported(node, node.target, "pools over the channel axis")
        return x

    def _reshape(self, node: fx.Node, x: State) -> State:
        """Keep the group when the axes up to the channel axis are kept (flatten of a 1x1 map)."""
        s, t = _shape(node.args[0]), _shape(node)
        if x is not None and t is not None:
            a = x[1]
            if s[:a + 1] == t[:a + 1] and math.prod(s[a + 1:]) == math.prod(t[a + 1:]):
                return x
        raise _unsupported(node, node.target,
                           f"reshapes the permuted axis of {s} into {t}; flattening a spatial map "
                           "would need the permutation repeated per position: pool it to 1x1 "
                           "first (e.g. AdaptiveAvgPool2d(1)) or write the spec by hand")

    def _mean(self, node: fx.Node, x: State) -> State:
        """Mean over other axes keeps the group; over the channel axis it is invariant."""
        if x is None:
            raise _unsupported(node, node.target)
        n = _ndim(node.args[0])
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        keepdim = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
        if dim is None:
            return None                       # mean of everything
        dims = [d % n for d in ((dim,) if isinstance(dim, int) else dim)]
        if x[1] in dims:
            return None
        return x[0], x[1] if keepdim else x[1] - sum(d < x[1] for d in dims)

    def _binary(self, node: fx.Node) -> State:
        """Elementwise op with broadcasting: merge the operands' groups (axes aligned from the
        right); an unpermuted operand spanning the group's axis fixes the group."""
        out = _shape(node)
        axis, group = None, None
        operands = [*node.args[:2], *(node.kwargs[k] for k in ("other",) if k in node.kwargs)]
        for arg in operands:
            if (s := self._state(arg)) is not None:
                a = len(out) - (_ndim(arg) - s[1])
                if axis is not None and a != axis:
                    raise _unsupported(node, node.target, "its operands are permuted along "
                                                          "different axes")
                axis, group = a, s[0] if group is None else self._union(group, s[0], node)
        if group is None:
            raise _unsupported(node, node.target, "its permuted operand is not x or other")
        for arg in operands:
            if self._state(arg) is None and isinstance(arg, fx.Node) and _shape(arg) is not None:
                a = axis - (len(out) - _ndim(arg))
                if a >= 0 and _shape(arg)[a] > 1:
                    self._union(group, FIXED, node)
                    return None
        return group, axis

    # output -------------------------------------------------------------------------------
    def _assign(self, name: str, ndim: int, axis: int, group: int, node: fx.Node) -> None:
        groups = self.axes.setdefault(name, [None] * ndim)
        groups[axis] = group if groups[axis] is None else self._union(groups[axis], group, node)

    def _spec(self) -> PermutationSpec:
        axes, sizes = {}, {}
        for name, groups in self.axes.items():
            roots = [None if g is None else self._find(g) for g in groups]
            perms = tuple(None if r in (None, FIXED) else f"P_{self.writer[r]}" for r in roots)
            if any(p is not None for p in perms):
                axes[name] = perms
                for r, p in zip(roots, perms):
                    if p is not None:
                        sizes[p] = self.size[r]
        return PermutationSpec(axes, sizes)


def _shape(node: Any) -> tuple[int, ...] | None:
    return node.meta.get("dwf_shape") if isinstance(node, fx.Node) else None


def _ndim(node: fx.Node) -> int:
    return len(_shape(node))


def _describe(target: Any) -> str:
    if isinstance(target, nn.Module):
        return f"module {type(target).__name__}"
    if isinstance(target, str):
        return f"method .{target}()"
    module = getattr(target, "__module__", None) or ""
    return f"function {module}.{getattr(target, '__name__', target)}"

def _unsupported(node: fx.Node, target: Any, why: str = "") -> ConfigError:
    where = f"node {node.name!r} ({_describe(target)}, target {node.target!r})"
    reason = why or "is not known to treat each channel alike and separately"
    return ConfigError(f"cannot derive a permutation spec: {where} acts on a permuted tensor and "
                       f"{reason}. Supported: {_SUPPORTED}. Write a PermutationSpec by hand for "
                       "this model.")
