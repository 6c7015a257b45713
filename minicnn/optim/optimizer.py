"""``Optimizer``: parameter groups, per-parameter state, and PyTorch's state-dict layout.

An optimizer holds ``param_groups``, a list of dicts, each with its ``params`` (a
list of Tensors) and its hyperparameters (``lr``, ...); groups let one model use
different settings for different parameters::

    optim.SGD([{"params": backbone.parameters()},
               {"params": head.parameters(), "lr": 0.1}], lr=0.01, momentum=0.9)

``state[p]`` is a dict of running buffers (momentum, Adam moments) per parameter.
``state_dict()`` is ``{"state": {index: {...}}, "param_groups": [{..., "params":
[indices]}]}``, indices numbering parameters in group order, exactly as PyTorch.

Subclasses implement ``_update(p, g, group, state)``: given the parameter, its
gradient array and the group's settings, change ``p.array`` in place. ``step``
runs it under ``no_grad`` for every parameter that has a gradient. The gradient
array is never written to (it may be shared or a read-only view).
"""
import copy
import numbers

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # id(param) -> dict of buffers; keyed by id because Tensor == is elementwise
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, "
                            "not a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a dict ``{"params": [...], hyperparameter: value, ...}``; missing settings take the defaults."""
        if not isinstance(group, dict):
            raise TypeError(f"add_param_group: expected a dict, got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor (shape {p.shape})")
        group = dict(group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{type(self).__name__}: parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (``p.grad = None``), as PyTorch does by default.

        With ``set_to_none=False`` the gradient is replaced by zeros in new memory:
        the old array may be shared with other tensors, so it is not overwritten.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor._make(backend.array_module(p.array).zeros_like(p.grad.array))

    def step(self, closure=None):
        """Update every parameter that has a gradient; ``closure`` (optional) re-computes and returns the loss."""
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        with autograd.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.array
                    if g.shape != p.array.shape:
                        raise RuntimeError(f"{type(self).__name__}.step: gradient of shape {tuple(g.shape)} "
                                           f"for a parameter of shape {p.shape}")
                    if group.get("maximize", False):
                        g = -g
                    self._update(p, g, group, self.state.setdefault(id(p), {}))
        return loss

    def _update(self, p, g, group, state):
        raise NotImplementedError

    # -- saving and restoring ------------------------------------------------
    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self):
        """``{"state": {index: {name: host array or number}}, "param_groups": [...]}`` (PyTorch's layout)."""
        index, groups, start = {}, [], 0
        for g in self.param_groups:
            ids = list(range(start, start + len(g["params"])))
            index.update({id(p): i for p, i in zip(g["params"], ids)})
            start += len(ids)
            groups.append({**{k: copy.deepcopy(v) for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for pid, s in self.state.items():
            if pid in index and s:
                state[index[pid]] = {k: _to_host(v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and buffers saved by ``state_dict`` (ours or PyTorch's, as NumPy arrays)."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state has {len(saved)} parameter "
                             f"groups but the optimizer has {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: parameter group {i} has "
                                 f"{len(g['params'])} parameters but the saved group has {len(s['params'])}")
        by_index = {}
        for g, s in zip(self.param_groups, saved):
            by_index.update({int(i): p for i, p in zip(s["params"], g["params"])})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = by_index.get(int(i))
            if p is None:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for parameter index {i}, "
                                 "which no parameter group lists")
            self.state[id(p)] = {k: _to_param_like(v, p, k) for k, v in s.items()}
        for g, s in zip(self.param_groups, saved):
            g.update({k: _plain(v) for k, v in s.items() if k != "params"})


def _to_host(v):
    if isinstance(v, Tensor):
        v = v.array
    if isinstance(v, np.ndarray) or backend.is_cupy_array(v):
        return backend.to_numpy(v).copy()
    return copy.deepcopy(v)


def _to_param_like(v, p, name):
    """A saved buffer back on the parameter's device and dtype; ``step`` counters stay numbers."""
    if isinstance(v, Tensor):
        v = v.array
    if name == "step":
        return float(np.asarray(backend.to_numpy(v)))
    if isinstance(v, np.ndarray) or backend.is_cupy_array(v):
        arr = backend.to_numpy(v)
        if arr.shape != p.shape:
            raise ValueError(f"load_state_dict: buffer '{name}' has shape {arr.shape} but its parameter has "
                             f"shape {p.shape}")
        return backend.to_device(np.array(arr, dtype=p.dtype), p.device)
    return v


def _plain(v):
    """Saved hyperparameters as Python values (a loader may hand back 0-d arrays or lists for tuples)."""
    if isinstance(v, np.ndarray):
        v = v.item() if v.ndim == 0 else tuple(v.tolist())
    if isinstance(v, list):
        v = tuple(v)
    if isinstance(v, np.generic):
        v = v.item()
    return v


def check_hyper(name, value, low=0.0, high=None, closed_high=False):
    """Validate a hyperparameter with a message that names it (``lr``, ``momentum``, ...)."""
    if not isinstance(value, numbers.Real) or value < low or (high is not None and
                                                              (value > high or (value == high and not closed_high))):
        rng = f">= {low}" + (f" and {'<=' if closed_high else '<'} {high}" if high is not None else "")
        raise ValueError(f"invalid {name}: {value!r} (must be {rng})")
