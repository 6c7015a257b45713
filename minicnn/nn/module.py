"""``Module``: the base of every layer and model, with PyTorch's registration rules.

Assigning a Parameter or a Module to an attribute registers it; buffers (state
that is saved but not learned, like BatchNorm's running statistics) are
registered with ``register_buffer``. ``state_dict`` keys are dotted paths,
identical to PyTorch's, so weights move between the two by name.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import autograd, backend
from ..autograd import Function
from ..tensor import Tensor, split_device_dtype
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _BackwardHookPoint(Function):
    """An identity op whose backward hands the gradients flowing through it to ``callback``:
    placed on a module's inputs (grad_input) and outputs (grad_output) for its backward hooks."""

    def __init__(self, callback):
        self.callback = callback

    def forward(self, *xs):
        return xs if len(xs) > 1 else xs[0]

    def backward(self, *gys):
        result = self.callback(gys)
        return tuple(result) if len(gys) > 1 else result[0]

    @staticmethod
    def wrap(args, on_grad_input):
        """The args, the tensors among them passed through one hook point."""
        idx = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not idx:
            return args
        out = _BackwardHookPoint(on_grad_input).apply(*[args[i] for i in idx])
        out = out if isinstance(out, tuple) else (out,)
        args = list(args)
        for i, t in zip(idx, out):
            args[i] = t
        return tuple(args)

    @staticmethod
    def wrap_output(out, args, state, call_hooks):
        """``out`` through a hook point that records grad_output; where no input needs a gradient
        the hooks run from here, with grad_input all None."""
        inputs_need_grad = any(isinstance(a, Tensor) and a.requires_grad for a in args)
        n_inputs = sum(isinstance(a, Tensor) for a in args)

        def on_grad_output(gys):
            state["grad_output"] = gys
            if not inputs_need_grad:
                call_hooks((None,) * n_inputs, state)
            return gys

        if not isinstance(out, Tensor) or not out.requires_grad:
            return out
        return _BackwardHookPoint(on_grad_output).apply(out)


class _HookHandle:
    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


class Module:
    training = True

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_backward_hooks"] = OrderedDict()
        d["training"] = True

    # -- registration ------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            for r in (d, buffers, modules):
                r.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            for r in (d, params, buffers):
                r.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter '{name}' (use nn.Parameter or None)")
            params[name] = None
        elif name in buffers:
            buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to child module '{name}' (use a Module or None)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[registry]:
                del self.__dict__[registry][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Saved in ``state_dict`` and moved by ``to``, but not returned by ``parameters``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        self._modules[name] = module

    # -- traversal ---------------------------------------------------------
    def named_modules(self, prefix=""):
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((k, m) for k, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named(self, registry, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for k, v in getattr(m, registry).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{mname}.{k}" if mname else k), v

    def named_parameters(self, prefix="", recurse=True):
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # -- calling -------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        with autograd.module_scope(self):  # the ops recorded inside know they ran here
            for hook in list(self._forward_pre_hooks.values()):
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
            backward_hooks = self.__dict__.get("_backward_hooks") and autograd.is_grad_enabled()
            if backward_hooks:
                state = {}
                args = _BackwardHookPoint.wrap(args, lambda grad_input: self._call_backward_hooks(grad_input, state))
            out = self.forward(*args, **kwargs)
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
            if backward_hooks:
                out = _BackwardHookPoint.wrap_output(out, args, state, self._call_backward_hooks)
        return out

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output)`` runs during backward once the gradients with
        respect to the module's inputs are known (tuples of Tensors, None where an input needs
        none) and may return a tuple to use as grad_input instead; returns a handle with ``remove()``."""
        key = object()
        self._backward_hooks[key] = hook
        return _HookHandle(self._backward_hooks, key)

    def _call_backward_hooks(self, grad_input, state):
        grad_output = state.get("grad_output", ())
        wrap = lambda gs: tuple(None if g is None else Tensor._make(g) for g in gs)  # noqa: E731
        for hook in list(self._backward_hooks.values()):
            result = hook(self, wrap(grad_input), wrap(grad_output))
            if result is not None:
                grad_input = tuple(None if g is None else (g.array if isinstance(g, Tensor) else g) for g in result)
        return grad_input

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after every forward and may return a
        replacement output; returns a handle with ``remove()``."""
        key = object()
        self._forward_hooks[key] = hook
        return _HookHandle(self._forward_hooks, key)

    def register_forward_pre_hook(self, hook):
        """``hook(module, inputs)`` runs before every forward and may return replacement
        inputs; returns a handle with ``remove()``."""
        key = object()
        self._forward_pre_hooks[key] = hook
        return _HookHandle(self._forward_pre_hooks, key)

    # -- modes and devices --------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (or, with ``set_to_none=False``, replace them by zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor._make(backend.array_module(p.grad.array).zeros_like(p.grad.array))

    def _convert(self, fn):
        for m in self.modules():
            for registry in (m._parameters, m._buffers):
                for t in registry.values():
                    if t is not None:
                        t.array = fn(t.array)
                        if t.grad is not None:
                            t.grad.array = fn(t.grad.array)
        return self

    def to(self, device=None, dtype=None, non_blocking=False, memory_format=None):
        """Move (in place) every parameter and buffer; ``dtype`` casts floating point ones only.
        ``module.to(mc.float64)`` works too, as in PyTorch. Parameters keep their identity.
        ``memory_format`` (e.g. ``mc.channels_last``) is accepted and ignored: arrays stay NCHW."""
        device, dtype = split_device_dtype(device, dtype)
        if device is not None:
            device = backend.normalize_device(device)
            self._convert(lambda a: backend.to_device(a, device))
        if dtype is not None:
            dtype = np.dtype(dtype)
            self._convert(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)
        return self

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- state -----------------------------------------------------------------
    def _state_entries(self, prefix=""):
        """(key, tensor) for every parameter and persistent buffer, walking children
        recursively as PyTorch does (a module registered twice appears under both keys)."""
        for k, p in self._parameters.items():
            if p is not None:
                yield prefix + k, p
        for k, b in self._buffers.items():
            if b is not None and k not in self._non_persistent:
                yield prefix + k, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_entries(f"{prefix}{name}.")

    def state_dict(self, prefix=""):
        """Parameters and persistent buffers as host NumPy arrays (copies), under PyTorch's keys."""
        return OrderedDict((k, t.numpy().copy()) for k, t in self._state_entries(prefix))

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (NumPy, CuPy or Tensors) into parameters and buffers by key.

        Values are cast to each tensor's dtype and device; parameters keep their
        identity (optimizers still hold them). With ``strict``, missing or unexpected
        keys raise; a shape mismatch always raises. Returns (missing_keys, unexpected_keys).
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays (a dict, as state_dict() "
                            f"returns), got {type(state_dict).__name__}")
        own = OrderedDict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = backend.to_numpy(v.array if isinstance(v, Tensor) else v)
            if tuple(arr.shape) != t.shape:
                errors.append(f"size mismatch for {k}: copying a param with shape {tuple(arr.shape)} "
                              f"from checkpoint, the shape in current model is {t.shape}")
        if strict:
            if missing:
                errors.append("missing keys: " + ", ".join(missing))
            if unexpected:
                errors.append("unexpected keys: " + ", ".join(unexpected))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  " + "\n  ".join(errors))
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                arr = backend.to_numpy(v.array if isinstance(v, Tensor) else v)
                t.array = backend.to_device(np.array(arr, dtype=t.dtype), t.device)
        return IncompatibleKeys(missing, unexpected)

    # -- printing --------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({k}): " + repr(m).replace("\n", "\n  ") for k, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n  " + "\n  ".join(lines) + "\n)")
