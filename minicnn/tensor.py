"""``Tensor``: an array (NumPy or CuPy) plus the autograd bookkeeping."""
import numbers

import numpy as np

from . import autograd, backend

_DEFAULT_FLOAT = np.float32


def _to_array(data, dtype, device, op="tensor()", copy=False):
    """Turn user data into an array on ``device``; Python floats become float32.

    With ``copy`` the result never shares memory with ``data``."""
    if isinstance(data, Tensor):
        data = data.array
    xp = backend.cupy_module() if device == "cuda" else np
    if backend.is_cupy_array(data) or isinstance(data, (np.ndarray, np.generic)):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{op}: cannot build a tensor from {type(data).__name__}: {e}") from None
        copy = False  # already a new array
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(_DEFAULT_FLOAT)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{op}: data of dtype {arr.dtype} ({type(data).__name__}) is not numeric "
            "(expected bool, integer or floating point values)"
        )
    moved = backend.to_device(arr, device)
    copy = copy and moved is arr
    if dtype is not None and np.dtype(dtype) != moved.dtype:
        moved, copy = moved.astype(dtype), False
    return xp.array(moved) if copy else xp.asarray(moved)


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    ``array`` is the NumPy or CuPy array that holds the values, ``grad`` a Tensor (or None)
    filled by ``backward``; ``requires_grad`` marks leaves whose gradient is wanted. ``data``
    is, as in PyTorch, a Tensor sharing ``array`` without the history (``w.data.sub_(...)``).
    """

    # ``ndarray + Tensor`` defers to Tensor.__radd__ (and NumPy ufuncs refuse Tensors
    # instead of silently turning them into object arrays)
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, dtype=None, device=None, copy=False):
        if device is None:
            device = backend.device_of(data.array if isinstance(data, Tensor) else data)
        self.array = _to_array(data, dtype, backend.normalize_device(device), copy=copy)
        self.grad = None
        self._creator = None
        self._out_index = 0
        self.requires_grad = requires_grad

    @classmethod
    def _make(cls, array, requires_grad=False):
        """Wrap an array produced by an op, without checks or copies."""
        t = cls.__new__(cls)
        t.array, t.grad, t._creator, t._out_index = array, None, None, 0
        t._requires_grad = requires_grad
        return t

    # -- properties ---------------------------------------------------------
    @property
    def data(self):
        """The same values (shared memory) as a Tensor outside the graph, as PyTorch's ``.data``."""
        return Tensor._make(self.array)

    @data.setter
    def data(self, value):
        """``t.data = other`` makes ``t`` hold other's values (a Tensor or an array; any shape)."""
        self.array = _to_array(value, None, self.device, op="Tensor.data")

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and self.array.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, not {self.array.dtype}")
        if not flag and self._creator is not None:
            raise RuntimeError("requires_grad can only be cleared on a leaf tensor; use detach()")
        self._requires_grad = bool(flag)

    shape = property(lambda self: tuple(self.array.shape))
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    device = property(lambda self: backend.device_of(self.array))
    is_leaf = property(lambda self: self._creator is None)
    grad_fn = property(lambda self: self._creator, doc="The graph node (a Function) that made this tensor; "
                       "None for a leaf. ``grad_fn.next_functions`` walks on towards the inputs.")
    T = property(lambda self: self.transpose(-1, -2) if self.ndim >= 2 else self)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.array.size)

    def dim(self):
        return self.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{extra})"

    def __format__(self, spec):
        if spec and self.array.size == 1:
            return format(self.item(), spec)
        return format(repr(self), spec)

    # -- conversion ---------------------------------------------------------
    def numpy(self):
        """The values as a host NumPy array (a copy when on the GPU)."""
        return backend.to_numpy(self.array)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy() if dtype is None else self.numpy().astype(dtype, copy=False)
        return a.copy() if copy and a is self.array else a

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.array.size} elements, not 1")
        return self.array.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """Same data (shared memory), cut from the graph."""
        return Tensor._make(self.array)

    def clone(self):
        """A copy in new memory that stays in the graph (its gradient flows back to ``self``)."""
        return ops.clone(self)

    def contiguous(self):
        return self if self.array.flags.c_contiguous else self.clone()

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None, non_blocking=False, copy=False, memory_format=None):
        """A copy on ``device`` and/or of ``dtype`` (``t.to(mc.float64)`` works too);
        ``self`` itself when nothing changes. Differentiable. ``memory_format`` is a layout hint
        that minicnn accepts and ignores (its arrays are NCHW)."""
        from .ops.shape import ToDevice, Cast

        device, dtype = split_device_dtype(device, dtype)
        out = self
        if device is not None and backend.normalize_device(device) != self.device:
            out = ToDevice(backend.normalize_device(device)).apply(out)
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = Cast(dtype).apply(out)
        return self.clone() if copy and out is self else out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def long(self):
        return Tensor._make(self.array.astype(np.int64))

    def astype(self, dtype):
        return self.to(dtype=dtype)

    # -- autograd -----------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is the upstream gradient d(loss)/d(self); it may be omitted only for a
        one-element tensor. The graph is freed afterwards unless ``retain_graph``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph "
                "(did you compute it under no_grad, or from tensors without requires_grad=True?)"
            )
        if grad is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicitly created only for scalar outputs, "
                    f"but this tensor has shape {self.shape}; pass grad=<tensor of that shape>"
                )
            g, user = backend.array_module(self.array).ones_like(self.array), ()
        else:
            g = _to_array(grad, self.dtype, self.device, op="backward()")
            if g.shape != self.array.shape:
                raise RuntimeError(f"backward(): grad has shape {tuple(g.shape)} but the tensor has shape {self.shape}")
            user = (g,)
        autograd.backward([self], [g], retain_graph=retain_graph, user_grads=user)

    def _accumulate_grad(self, g):
        """``.grad += g`` out of place (``g`` is already owned by this tensor: see autograd._Owner),
        after the hooks of ``register_hook`` (leaves) and before those of
        ``register_post_accumulate_grad_hook``."""
        if self._creator is None and getattr(self, "_grad_hooks", None):
            g = autograd._run_hooks(self._grad_hooks, g)
        self.grad = Tensor._make(g if self.grad is None else self.grad.array + g)
        for hook in getattr(self, "_post_accumulate_grad_hooks", ()):
            hook(self)

    def register_hook(self, hook):
        """``hook(grad)`` runs during backward when the gradient with respect to this tensor is
        known, and may return a Tensor to use instead (as PyTorch's); returns a handle with
        ``remove()``. On an intermediate result it sees the gradient before it flows on."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require grad")
        if self._creator is None:
            hooks = self.__dict__.setdefault("_grad_hooks", [])
        else:
            hooks = self._creator.__dict__.setdefault("_hooks", {}).setdefault(self._out_index, [])
        hooks.append(hook)
        return _RemovableHook(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor)`` runs during backward each time a gradient has been added into this
        leaf's ``.grad`` (as PyTorch's); returns a handle with ``remove()``."""
        if self._creator is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors accumulate gradients")
        hooks = self.__dict__.setdefault("_post_accumulate_grad_hooks", [])
        hooks.append(hook)
        return _RemovableHook(hooks, hook)

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor too (leaves keep theirs anyway)."""
        if self._creator is not None and not getattr(self._creator, "_freed", False):
            self._creator._retained[self._out_index] = self
        return self

    def zero_(self):
        self.array[...] = 0
        return self

    # -- arithmetic ---------------------------------------------------------
    def __add__(self, o):
        return ops.add(self, o)

    def __radd__(self, o):
        return ops.add(o, self)

    def __sub__(self, o):
        return ops.sub(self, o)

    def __rsub__(self, o):
        return ops.sub(o, self)

    def __mul__(self, o):
        return ops.mul(self, o)

    def __rmul__(self, o):
        return ops.mul(o, self)

    def __truediv__(self, o):
        return ops.div(self, o)

    def __rtruediv__(self, o):
        return ops.div(o, self)

    def __pow__(self, o):
        return ops.pow(self, o)

    def __rpow__(self, o):
        return ops.pow(o, self)

    def __matmul__(self, o):
        return ops.matmul(self, o)

    def __rmatmul__(self, o):
        return ops.matmul(o, self)

    def __neg__(self):
        return ops.neg(self)

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__

    def neg(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    # Comparisons give boolean tensors outside the graph.
    def _compare(self, o, f):
        other = o.array if isinstance(o, Tensor) else o
        return Tensor._make(f(self.array, other))

    __lt__ = lambda self, o: self._compare(o, lambda a, b: a < b)
    __le__ = lambda self, o: self._compare(o, lambda a, b: a <= b)
    __gt__ = lambda self, o: self._compare(o, lambda a, b: a > b)
    __ge__ = lambda self, o: self._compare(o, lambda a, b: a >= b)
    __eq__ = lambda self, o: self._compare(o, lambda a, b: a == b)
    __ne__ = lambda self, o: self._compare(o, lambda a, b: a != b)
    __hash__ = object.__hash__

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.array.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        """A one-element integer tensor indexes a list (``classes[labels[j]]``), as in PyTorch."""
        if self.array.size != 1 or self.array.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be converted to an index "
                            f"(got {self.array.dtype} of shape {self.shape})")
        return int(self.item())

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __setitem__(self, index, value):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("in-place assignment to a tensor that requires grad; wrap it in no_grad()")
        self.array[_raw_index(index)] = value.array if isinstance(value, Tensor) else value

    # -- methods that mirror the functional ops -----------------------------
    def sum(self, dim=None, keepdim=False):
        return ops.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return ops.mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return ops.var(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim=None, keepdim=False):
        return ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return ops.min(self, dim, keepdim)

    def gather(self, dim, index):
        return ops.gather(self, dim, index)

    def scatter(self, dim, index, src=None, value=None):
        return ops.scatter(self, dim, index, src, value)

    def sort(self, dim=-1, descending=False, stable=False):
        return ops.sort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return ops.topk(self, k, dim, largest, sorted)

    def amax(self, dim=(), keepdim=False):
        return ops.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return ops.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return ops.argmin(self, dim, keepdim)

    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        return ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return ops.permute(self, *dims)

    def squeeze(self, dim=None):
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim):
        return ops.unsqueeze(self, dim)

    def expand(self, *shape):
        return ops.expand(self, *shape)

    def split(self, split_size_or_sections, dim=0):
        return ops.split(self, split_size_or_sections, dim)

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def clamp(self, min=None, max=None):
        return ops.clamp(self, min, max)

    clip = clamp

    def softmax(self, dim):
        return ops.softmax(self, dim)

    def log_softmax(self, dim):
        return ops.log_softmax(self, dim)

    # -- PyTorch's method spellings of what operators and functions do -------------------------
    def eq(self, o):
        return self == o

    def ne(self, o):
        return self != o

    def lt(self, o):
        return self < o

    def le(self, o):
        return self <= o

    def gt(self, o):
        return self > o

    def ge(self, o):
        return self >= o

    def view_as(self, other):
        return self.reshape(other.shape)

    def isnan(self):
        return Tensor._make(backend.array_module(self.array).isnan(self.array))

    def isinf(self):
        return Tensor._make(backend.array_module(self.array).isinf(self.array))

    def isfinite(self):
        return Tensor._make(backend.array_module(self.array).isfinite(self.array))

    def any(self, dim=None, keepdim=False):
        return Tensor._make(self.array.any(axis=dim, keepdims=keepdim))

    def all(self, dim=None, keepdim=False):
        return Tensor._make(self.array.all(axis=dim, keepdims=keepdim))

    def int(self):
        return self.to(dtype=np.int32)

    def bool(self):
        return Tensor._make(self.array.astype(bool))

    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return ops.std(self, dim, unbiased, keepdim, correction=correction)

    # in place, on leaves outside autograd (optimizer steps, `w.data.sub_(...)`, initialisation)
    def _in_place(self, name, value):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(f"{name}: in-place change of a tensor that requires grad; wrap it in no_grad()")
        self.array[...] = value
        return self

    def add_(self, other, alpha=1):
        return self._in_place("add_", self.array + alpha * _raw(other))

    def sub_(self, other, alpha=1):
        return self._in_place("sub_", self.array - alpha * _raw(other))

    def mul_(self, other):
        return self._in_place("mul_", self.array * _raw(other))

    def div_(self, other):
        return self._in_place("div_", self.array / _raw(other))

    def fill_(self, value):
        return self._in_place("fill_", _raw(value))

    def copy_(self, src):
        return self._in_place("copy_", backend.to_device(_raw(src), self.device) if isinstance(src, Tensor)
                              else _raw(src))

    def clamp_(self, min=None, max=None):
        return self._in_place("clamp_", backend.array_module(self.array).clip(self.array, min, max))


def _raw(x):
    """The array behind a Tensor, or the value itself."""
    return x.array if isinstance(x, Tensor) else x


def _raw_index(index):
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(i.array if isinstance(i, Tensor) else i for i in index)
    return index


def as_tensor(x, like=None, op="tensor()"):
    """``x`` as a Tensor; numbers take ``like``'s dtype and device so float32 stays float32."""
    if isinstance(x, Tensor):
        return x
    if like is None:
        return Tensor._make(_to_array(x, None, "cpu", op=op))
    if isinstance(x, numbers.Real):
        xp = backend.array_module(like.array)
        dtype = like.dtype if like.dtype.kind == "f" or not isinstance(x, float) else _DEFAULT_FLOAT
        return Tensor._make(xp.asarray(x, dtype=dtype))
    return Tensor._make(_to_array(x, None, like.device, op=op))


class _RemovableHook:
    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


def split_device_dtype(device, dtype):
    """``to(x)`` takes a device or a dtype as its first argument, as in PyTorch."""
    if device is not None and not isinstance(device, str):
        try:
            return None, np.dtype(device)
        except TypeError:
            pass
    return device, dtype


from . import ops  # noqa: E402  (ops needs Tensor defined)
